"""Protocol layers. Importing this package registers every layer kind with `core.layer.LAYERS`."""
from core.layers import http1, http2, socks5, tcp, tls, websocket  # noqa: F401  (registration)
