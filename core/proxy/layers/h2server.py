"""The server side of HTTP/2: one multiplexed connection per server, one `H2ServerStream` per request."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import h2.events

from interpose.errors import ServerProtocolError
from interpose.http import Headers, HTTPFlow, Request, Response
from interpose.model.connection import Server
from interpose.proxy.layer import Stream
from interpose.proxy.layers import h1wire, h2conn
from interpose.proxy.layers.h2conn import H2Endpoint, H2Stream, StreamGone
from interpose.proxy.layers.sides import WholeRequest


class H2Server:
    """A multiplexed HTTP/2 connection to a server, shared by every request going there."""

    def __init__(self, server: Server, stream: Stream, read_timeout: float | None = None) -> None:
        self.server = server
        self.read_timeout = read_timeout or None
        """Seconds a stream's server may stay silent while its response is awaited (read_timeout_s)."""
        self.stream = stream
        self.ep = H2Endpoint(stream, client_side=True)
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.ep.start()
        self._reader = asyncio.create_task(self.ep.read_loop())

    @property
    def alive(self) -> bool:
        return self.ep.terminated is None and not self.stream.closed

    def exchange(self) -> H2ServerStream:
        return H2ServerStream(self)

    async def close(self) -> None:
        await self.ep.close()
        if self._reader is not None:
            self._reader.cancel()


class H2ServerStream(WholeRequest):
    """`ServerSide` for one request on a shared HTTP/2 connection."""

    def __init__(self, owner: H2Server) -> None:
        self.owner = owner
        self.server = owner.server
        self.ep = owner.ep
        self.s: H2Stream | None = None
        self.request_ended = False
        self.response_ended = False
        self._request: Request | None = None
        self.trailers: Headers | None = None
        """The response's trailers (gRPC's grpc-status travels there), once the body has been read."""

    async def _next(self) -> object:
        assert self.s is not None
        try:
            async with asyncio.timeout(self.owner.read_timeout):
                return await self.ep.next_event(self.s)
        except TimeoutError:
            raise ServerProtocolError(
                f"server sent nothing for {self.owner.read_timeout:g} s (read_timeout_s)", 504) from None

    def _gone(self, e: StreamGone) -> ServerProtocolError:
        return ServerProtocolError(f"HTTP/2 server: {e}")

    async def send_request_head(self, flow: HTTPFlow) -> None:
        req = flow.request
        streamed = bool(req.stream)
        length, keep = h1wire.request_length(req, streamed)
        pseudo, regular = h2conn.request_pseudo(req), h2conn.h2_fields(req, length, keep)
        where = "cannot send this request to the server"
        h1wire.check_request_line(pseudo[0][1], pseudo[3][1], where)  # :method, :path
        h1wire.check_fields(regular, where)  # h2 would send CR/LF as is
        if h1wire.BAD_VALUE.search(pseudo[2][1]) or b" " in pseudo[2][1]:
            raise ServerProtocolError(f"{where}: invalid :authority {pseudo[2][1]!r}")
        fields = pseudo + regular
        if not streamed:  # a bad trailer of a buffered request is a 502, as a bad header field is
            h1wire.trailer_fields(req, "cannot send these trailers to the server")
        self._request = req
        try:
            self.s = await self.ep.open_outbound()
        except StreamGone as e:
            raise self._gone(e) from None
        # Trailers end the stream with a HEADERS frame of their own: the head may not end it then.
        end = not streamed and not req.raw_content and not req.trailers
        try:
            await self.ep.send_headers(self.s, fields, end=end)
        except StreamGone as e:
            raise self._gone(e) from None
        self.request_ended = end

    async def send_request_data(self, data: bytes) -> None:
        assert self.s is not None
        if data and not self.request_ended:
            try:
                await self.ep.send_data(self.s, data)
            except StreamGone as e:
                raise self._gone(e) from None

    async def send_request_end(self) -> None:
        assert self.s is not None
        if not self.request_ended:
            self.request_ended = True
            fields = self._end_fields()
            try:
                if fields:  # the stream ends with them
                    await self.ep.send_headers(self.s, fields, end=True)
                else:
                    await self.ep.end(self.s)
            except StreamGone as e:
                raise self._gone(e) from None

    def _end_fields(self) -> list[tuple[bytes, bytes]]:
        """The request's trailers, names lowercased for HTTP/2. A streamed request's arrive after its head
        went out: a bad one is left off then (the stream cannot take the head back)."""
        if self._request is None or not self._request.trailers:
            return []
        fields, _ = h1wire.late_trailer_fields(self._request, "cannot send these trailers to the server")
        return [(k.lower(), v) for k, v in fields]

    async def response_head(self, flow: HTTPFlow) -> Response:
        assert self.s is not None
        while True:
            try:
                event = await self._next()
            except StreamGone as e:
                raise self._gone(e) from None
            if isinstance(event, h2.events.InformationalResponseReceived):
                continue
            if isinstance(event, h2.events.ResponseReceived):
                if event.stream_ended is not None:
                    self.response_ended = True
                return h2conn.response_from(event.headers)

    async def response_body(self, streaming: bool = False) -> AsyncIterator[bytes]:
        assert self.s is not None
        try:
            while not self.response_ended:
                event = await self._next()
                if isinstance(event, h2.events.DataReceived):
                    self.ep.ack(self.s, event.flow_controlled_length)
                    if event.data:
                        yield event.data
                    if event.stream_ended is not None:
                        self.response_ended = True
                elif isinstance(event, h2.events.TrailersReceived):
                    self.trailers = h2conn.split_pseudo(event.headers)[1]
                    if event.stream_ended is not None:
                        self.response_ended = True
                elif isinstance(event, h2.events.StreamEnded):
                    self.response_ended = True
        except StreamGone as e:
            raise self._gone(e) from None
        finally:
            if self.response_ended:
                self.ep.forget(self.s)

    def abort(self) -> None:
        if self.s is not None:
            self.ep.reset(self.s)
            self.ep.forget(self.s)
