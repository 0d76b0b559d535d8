"""WebSocket relay with wsproto on both sides, after an HTTP/1.1 upgrade the proxy has seen through.

The handshake was already done by h11, so each side is a `wsproto.connection.Connection` (no handshake
of its own) with permessage-deflate configured as the server accepted it. Fragments are joined into
whole messages; each goes through `websocket_message`, where it may be edited, dropped or held.
Pings and pongs are passed on; a close is passed on and its code and reason recorded.

A message whose fragments add up to more than `websocket_max_message_size` closes both sides with 1009
(message too big); the fragments read after that are discarded, so memory stays bounded. Nothing is
sent to a side whose wsproto state no longer allows it (data only while OPEN, a close while OPEN or
REMOTE_CLOSING). While a message is held, a close or hang-up of either side ends the hold (`relay.Watch`).
"""
from __future__ import annotations

import asyncio
from typing import Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.events import Message as WsMessage
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason

from interpose.model.flow import Error
from interpose.model.messages import Message
from interpose.proxy.layer import Layer, Stream
from interpose.proxy.layers.relay import Watch, deliver, side
from interpose.runtime import hooks
from interpose.runtime.options import parse_size
from interpose.websocket import WebSocketFlow, WebSocketMessage

_CLOSABLE = (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING)
TOO_BIG = 1009  # CloseReason.MESSAGE_TOO_BIG
DEFLATE_READ = 4096
"""Bytes read at a time from a peer that may send compressed messages (permessage-deflate)."""
CLOSE_TIMEOUT_S = 5.0
"""How long a peer closed with 1009 has to answer with its own close before the proxy hangs up on it."""


def sendable(ws: Connection, event: Any) -> bool:
    """Whether wsproto accepts `event` in the connection's state (it raises otherwise)."""
    if isinstance(event, CloseConnection):
        return ws.state in _CLOSABLE
    return ws.state is ConnectionState.OPEN


def extensions(accepted: str | None) -> list[Extension]:
    """Extensions as the server's `Sec-WebSocket-Extensions` answer set them up."""
    for offer in (accepted or "").split(","):
        if offer.strip().split(";")[0].strip().lower() == "permessage-deflate":
            ext = PerMessageDeflate()
            ext.finalize(offer.strip())
            return [ext]
    return []


class _Side:
    def __init__(self, io: Stream, ws: Connection) -> None:
        self.io = io
        self.ws = ws

    async def send(self, event: Any) -> None:
        if sendable(self.ws, event):
            self.io.write(self.ws.send(event))
            await self.io.drain()


class WebSocketLayer(Layer):
    kind = "websocket"

    async def run(self) -> None:
        ctx = self.ctx
        hs = self.handshake_flow
        assert hs is not None and hs.response is not None and self.server_stream is not None
        accepted = hs.response.headers.get("sec-websocket-extensions")
        # wsproto inflates whatever it is given at once: with compression, small reads bound that to
        # about a thousand times DEFLATE_READ (deflate's best ratio) before the size limit can count it.
        self.read_size = DEFLATE_READ if extensions(accepted) else 65536
        client = _Side(ctx.client, Connection(ConnectionType.SERVER, extensions(accepted)))
        server = _Side(self.server_stream, Connection(ConnectionType.CLIENT, extensions(accepted)))
        flow = WebSocketFlow(hs, max_messages=ctx.options.max_messages)
        flow.max_bytes = parse_size(ctx.options.max_message_bytes)
        self.max_size = parse_size(ctx.options.websocket_max_message_size)
        self.watch = Watch()
        hs.websocket = flow

        def kill() -> None:
            ctx.client.close()
            server.io.close()

        def inject(msg: Message) -> None:
            flow.add_message(msg)
            dst = server if msg.from_client else client
            event = TextMessage(data=msg.text) if msg.is_text else BytesMessage(data=msg.content)
            if sendable(dst.ws, event):
                dst.io.write(dst.ws.send(event))

        flow.on_kill, flow.on_inject = kill, inject
        await ctx.addons.trigger(hooks.WebsocketStartHook(flow))
        try:
            await asyncio.gather(self._run_pump(flow, client, server, True),
                                 self._run_pump(flow, server, client, False))
        finally:
            flow.live = False
            flow.on_kill = flow.on_inject = None
        if flow.error is None and flow.close_code is None:
            flow.error = Error("connection ended without a close frame")
        await ctx.addons.trigger(hooks.WebsocketErrorHook(flow) if flow.error else hooks.WebsocketEndHook(flow))

    async def _run_pump(self, flow: WebSocketFlow, src: _Side, dst: _Side, from_client: bool) -> None:
        try:
            await self._pump(flow, src, dst, from_client)
        finally:
            self.watch.end(side(from_client))  # nothing more can be sent to this side

    async def _pump(self, flow: WebSocketFlow, src: _Side, dst: _Side, from_client: bool) -> None:
        parts: list[bytes] = []
        size = 0
        max_size = self.max_size
        too_big = False
        while True:
            try:
                if too_big:  # whatever the offender still sends is dropped, but not for ever
                    async with asyncio.timeout(CLOSE_TIMEOUT_S):
                        data = await src.io.read(self.read_size)
                else:
                    data = await src.io.read(self.read_size)
            except TimeoutError:  # neither side answered the close: hang up on both
                src.io.close()
                dst.io.close()
                return
            except (ConnectionError, OSError) as e:
                data = None
                if flow.error is None and src.ws.state is not ConnectionState.CLOSED:
                    flow.error = Error(f"{side(from_client)} connection lost ({e.strerror or e})")
            if not data:
                if src.ws.state is not ConnectionState.CLOSED and flow.error is None:
                    flow.error = Error(f"{side(from_client)} disconnected without a close frame")
                if flow.error is not None:
                    dst.io.close()
                else:
                    dst.io.write_eof()
                return
            src.ws.receive_data(data)
            for event in src.ws.events():
                if isinstance(event, WsMessage):
                    if too_big:
                        continue  # the rest of what the offender sends before it answers our close
                    payload = event.data.encode("utf-8") if isinstance(event.data, str) else bytes(event.data)
                    parts.append(payload)
                    size += len(payload)
                    if max_size is not None and size > max_size:
                        too_big = True
                        parts.clear()
                        await self._too_big(flow, src, dst, from_client)
                        continue
                    if not event.message_finished:
                        continue
                    msg = WebSocketMessage(from_client, b"".join(parts), is_text=isinstance(event, TextMessage))
                    parts.clear()
                    size = 0
                    if await deliver(self.ctx, flow, msg, hooks.WebsocketMessageHook, self.watch, src.io):
                        out = TextMessage(data=msg.text) if msg.is_text else BytesMessage(data=msg.content)
                        await self._send(flow, dst, out)
                    elif self.watch.broke:
                        await self._abandon(flow, src, dst)
                        return
                elif isinstance(event, Ping):
                    await self._send(flow, dst, Ping(payload=bytes(event.payload)))
                elif isinstance(event, Pong):
                    await self._send(flow, dst, Pong(payload=bytes(event.payload)))
                elif isinstance(event, CloseConnection):
                    self.watch.end(side(from_client))
                    if await self._closed(flow, src, dst, event, from_client):
                        return
                    if src.ws.state is ConnectionState.CLOSED and dst.io.closed:
                        # The close handshake with this peer is done and the other side is gone (it broke
                        # the protocol): nothing more can come, so hang up rather than wait for the peer to.
                        src.io.close()
                        return
                if flow.killed:
                    return

    async def _too_big(self, flow: WebSocketFlow, src: _Side, dst: _Side, from_client: bool) -> None:
        """Close both sides with 1009; the offender's answer (its close) ends this direction as usual."""
        if flow.error is None:
            flow.error = Error(f"{side(from_client)} sent a WebSocket message larger than "
                               f"websocket_max_message_size ({self.max_size} bytes): closed with 1009")
        if flow.close_code is None:
            flow.close_code, flow.close_reason, flow.closed_by_client = TOO_BIG, "message too big", False
        await self._send(flow, src, CloseConnection(code=TOO_BIG, reason="message too big"))
        await self._send(flow, dst, CloseConnection(code=TOO_BIG, reason="message too big"))

    async def _abandon(self, flow: WebSocketFlow, src: _Side, dst: _Side) -> None:
        """A peer went away while a message was held: tell whoever is left, and hang up on both."""
        for s in (src, dst):
            if not s.io.closed:
                await self._send(flow, s, CloseConnection(code=CloseReason.GOING_AWAY, reason="peer went away"))
        src.io.close()
        dst.io.close()

    async def _send(self, flow: WebSocketFlow, dst: _Side, event: Any) -> None:
        try:
            await dst.send(event)
        except (ConnectionError, OSError) as e:
            if flow.error is None:
                flow.error = Error(f"connection lost while sending ({e.strerror or e})")

    async def _closed(self, flow: WebSocketFlow, src: _Side, dst: _Side, event: CloseConnection,
                      from_client: bool) -> bool:
        """Pass a close on. True when this direction is finished (the peer broke the protocol)."""
        if flow.close_code is None:
            flow.close_code, flow.close_reason = event.code, event.reason or ""
            flow.closed_by_client = from_client
        if src.ws.state is ConnectionState.OPEN:
            # wsproto reports frames it could not parse as a close it made up, leaving the state OPEN:
            # close on the offender with that code (1002 and friends) and tell the other side.
            if flow.error is None:
                flow.error = Error(f"{side(from_client)} broke the WebSocket protocol: {event.reason}")
            await self._send(flow, src, CloseConnection(code=event.code, reason=event.reason))
            await self._send(flow, dst, CloseConnection(code=CloseReason.GOING_AWAY, reason="peer protocol error"))
            src.io.close()
            return True
        await self._send(flow, dst, CloseConnection(code=event.code, reason=event.reason))
        return False
