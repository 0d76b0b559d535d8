"""Protocol layers. Importing this package registers every layer kind with `interpose.proxy.layer.LAYERS`."""
from interpose.proxy.layers import http1, socks5, tcp, tls  # noqa: F401  (registration; http2 and websocket on first use)
