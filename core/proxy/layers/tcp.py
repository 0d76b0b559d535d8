"""Raw relays: `tcp` (opaque bytes as TCP flows, one message per chunk received) and `passthrough`
(TLS the proxy does not intercept, relayed untouched with no flow).

Each direction is its own task: a held chunk stalls only its own direction. One side's EOF is passed
on as a half-close, so the other side may still answer. A flow keeps at most `max_messages` messages
and `max_message_bytes` of their contents (the oldest are forgotten; the counters keep the totals).

While a chunk is held, a reset of either connection ends the hold and the flow (`tcp_error`); an EOF
does not, since a half-closed peer may still read the answer. `tcp_end`/`tcp_error` fire before the
server connection is closed (and `serverdisconnect` fires), as with WebSocket.
"""
from __future__ import annotations

import asyncio

from interpose.model.connection import Server
from interpose.model.flow import Error
from interpose.model.messages import Message
from interpose.proxy import upstream
from interpose.proxy.layer import Context, Layer, Stream
from interpose.proxy.layers import tunnel
from interpose.proxy.layers.relay import Watch, deliver, side
from interpose.runtime import hooks
from interpose.runtime.options import parse_size
from interpose.tcp import TCPFlow, TCPMessage


def _tunnel_server(ctx: Context) -> Server:
    """The tunnel's server: the one `next_layer` saw (not connected yet; an addon may have changed its
    address), or a new one to the tunnel's target."""
    server = ctx.server_conn
    if server is None or server.timestamp_tcp_setup is not None or server.error is not None:
        assert ctx.tunnel is not None
        mode = ctx.mode
        server = Server(address=ctx.tunnel, via=mode.address if mode.kind == "upstream" else None)
        ctx.server_conn = server
    return server


class TcpLayer(Layer):
    kind = "tcp"

    async def _server(self) -> tuple[Server, Stream]:
        """The server connection: one handed over (after an upgrade) or a new one to the tunnel target."""
        ctx = self.ctx
        if self.server_stream is not None:
            assert ctx.server_conn is not None
            return ctx.server_conn, self.server_stream
        server = _tunnel_server(ctx)
        return server, await upstream.connect(ctx, server)

    async def run(self) -> None:
        ctx = self.ctx
        if ctx.tunnel is None and self.server_stream is None:
            ctx.log(f"{ctx.client_conn.address}: a {self.kind} layer needs a destination (a CONNECT target)", "error")
            return
        flow = TCPFlow(ctx.client_conn, ctx.server_conn or Server(address=ctx.tunnel),
                       max_messages=ctx.options.max_messages)
        flow.max_bytes = parse_size(ctx.options.max_message_bytes)
        self.watch = Watch()
        await ctx.addons.trigger(hooks.TcpStartHook(flow))
        try:
            server, stream = await self._server()
        except upstream.ServerConnectError as e:
            flow.error = Error(str(e))
            flow.live = False
            await ctx.addons.trigger(hooks.TcpErrorHook(flow))
            return
        flow.server_conn = server
        client = ctx.client

        def kill() -> None:
            client.close()
            stream.close()

        def inject(msg: Message) -> None:
            flow.add_message(msg)
            (stream if msg.from_client else client).write(msg.content)

        flow.on_kill, flow.on_inject = kill, inject
        try:
            try:
                await asyncio.gather(self._pump(flow, client, stream, True), self._pump(flow, stream, client, False))
            finally:
                flow.live = False
                flow.on_kill = flow.on_inject = None
            await ctx.addons.trigger(hooks.TcpErrorHook(flow) if flow.error else hooks.TcpEndHook(flow))
        finally:
            if self.server_stream is None:
                await upstream.disconnect(ctx, server, stream)

    async def _pump(self, flow: TCPFlow, src: Stream, dst: Stream, from_client: bool) -> None:
        while True:
            try:
                data = await src.read()
            except (ConnectionError, OSError) as e:
                if flow.error is None:
                    flow.error = Error(f"{side(from_client)} reset the connection ({e.strerror or e})")
                self.watch.end(side(from_client))
                dst.close()
                return
            if not data:
                dst.write_eof()
                return
            msg = TCPMessage(from_client, data)
            if await deliver(self.ctx, flow, msg, hooks.TcpMessageHook, self.watch, src, eof_ends=False):
                try:
                    dst.write(msg.content)
                    await dst.drain()
                except (ConnectionError, OSError) as e:
                    if flow.error is None:
                        flow.error = Error(f"{side(not from_client)} connection lost ({e.strerror or e})")
                    src.close()
                    return
            elif self.watch.broke:
                src.close()
                dst.close()
                return
            if flow.killed:
                return


class PassthroughLayer(Layer):
    """TLS the proxy does not intercept (ignored hosts): bytes go through as they are, no flow."""

    kind = "passthrough"

    async def run(self) -> None:
        ctx = self.ctx
        if ctx.tunnel is None:
            ctx.log(f"{ctx.client_conn.address}: a passthrough layer needs a destination", "error")
            return
        server = _tunnel_server(ctx)
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
