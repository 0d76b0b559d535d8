"""Raw relays: `tcp` (opaque bytes in a tunnel) and `passthrough` (TLS relayed untouched)."""
from __future__ import annotations

from core import upstream
from core.connection import Server
from core.layer import Layer
from core.layers import tunnel


class TcpLayer(Layer):
    kind = "tcp"

    async def run(self) -> None:
        ctx = self.ctx
        if ctx.tunnel is None:
            ctx.log(f"{ctx.client_conn.address}: a {self.kind} layer needs a destination (a CONNECT target)", "error")
            return
        mode = ctx.mode
        server = Server(address=ctx.tunnel, via=mode.address if mode.kind == "upstream" else None)
        ctx.server_conn = server
        try:
            stream = await upstream.connect(ctx, server)
        except upstream.ServerConnectError as e:
            server.error = str(e)
            ctx.log(f"{ctx.tunnel[0]}:{ctx.tunnel[1]}: {e}", "info")
            return
        try:
            await tunnel.relay(ctx.client, stream)
        finally:
            await upstream.disconnect(ctx, server, stream)


class PassthroughLayer(TcpLayer):
    """TLS the proxy does not intercept (ignored hosts): bytes go through as they are."""

    kind = "passthrough"
