"""Raw relays: `tcp` (opaque bytes as TCP flows, one message per chunk received) and `passthrough`
(TLS the proxy does not intercept, relayed untouched with no flow).

Each direction is its own task: a held chunk stalls only its own direction. One side's EOF is passed
on as a half-close, so the other side may still answer.
"""
from __future__ import annotations

import asyncio

from interpose.model.connection import Server
from interpose.model.flow import Error
from interpose.model.messages import Message
from interpose.proxy import upstream
from interpose.proxy.layer import Layer, Stream
from interpose.proxy.layers import tunnel
from interpose.proxy.layers.relay import deliver, side
from interpose.runtime import hooks
from interpose.tcp import TCPFlow, TCPMessage


class TcpLayer(Layer):
    kind = "tcp"

    async def _server(self) -> tuple[Server, Stream]:
        """The server connection: one handed over (after an upgrade) or a new one to the tunnel target."""
        ctx = self.ctx
        if self.server_stream is not None:
            assert ctx.server_conn is not None
            return ctx.server_conn, self.server_stream
        assert ctx.tunnel is not None
        mode = ctx.mode
        server = Server(address=ctx.tunnel, via=mode.address if mode.kind == "upstream" else None)
        ctx.server_conn = server
        return server, await upstream.connect(ctx, server)

    async def run(self) -> None:
        ctx = self.ctx
        if ctx.tunnel is None and self.server_stream is None:
            ctx.log(f"{ctx.client_conn.address}: a {self.kind} layer needs a destination (a CONNECT target)", "error")
            return
        flow = TCPFlow(ctx.client_conn, ctx.server_conn or Server(address=ctx.tunnel),
                       max_messages=ctx.options.max_messages)
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
            await asyncio.gather(self._pump(flow, client, stream, True), self._pump(flow, stream, client, False))
        finally:
            flow.live = False
            flow.on_kill = flow.on_inject = None
            if self.server_stream is None:
                await upstream.disconnect(ctx, server, stream)
        await ctx.addons.trigger(hooks.TcpErrorHook(flow) if flow.error else hooks.TcpEndHook(flow))

    async def _pump(self, flow: TCPFlow, src: Stream, dst: Stream, from_client: bool) -> None:
        while True:
            try:
                data = await src.read()
            except (ConnectionError, OSError) as e:
                if flow.error is None:
                    flow.error = Error(f"{side(from_client)} reset the connection ({e.strerror or e})")
                dst.close()
                return
            if not data:
                dst.write_eof()
                return
            msg = TCPMessage(from_client, data)
            if await deliver(self.ctx, flow, msg, hooks.TcpMessageHook):
                try:
                    dst.write(msg.content)
                    await dst.drain()
                except (ConnectionError, OSError) as e:
                    if flow.error is None:
                        flow.error = Error(f"{side(not from_client)} connection lost ({e.strerror or e})")
                    src.close()
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
