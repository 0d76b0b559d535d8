"""HTTP/2 towards the client, with h2: every stream is its own flow, served by its own task.

A reset of one stream ends that flow only; the connection and its other streams carry on.
"""
from __future__ import annotations

import asyncio
import time
import traceback
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import h2.events
import h2.exceptions

from interpose.errors import ClientProtocolError, ProtocolError
from interpose.http import Headers, HTTPFlow, Request, Response
from interpose.model.connection import Server
from interpose.proxy.layer import Context, Layer
from interpose.proxy.layers import h1wire, h2conn
from interpose.proxy.layers.h2conn import H2Endpoint, H2Stream, StreamGone
from interpose.proxy.layers.http import ClientGone, HttpExchange
from interpose.proxy.layers.pool import get_pool
from interpose.proxy.layers.sides import WholeResponse


class Http2Layer(Layer):
    kind = "http2"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.ep = H2Endpoint(ctx.client, client_side=False, on_request=self._on_request)
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        self.ctx.client_conn.alpn = "h2"
        await self.ep.start()
        try:
            await self.ep.read_loop()
            if self.ep.violation is not None:
                self.ctx.log(f"{self.client_conn.address}: HTTP/2 protocol error from the client: {self.ep.violation}",
                             "info")
        finally:
            for t in self.tasks:
                t.cancel()
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            await self.ep.close()

    def _on_request(self, s: H2Stream, event: h2.events.RequestReceived) -> None:
        task = asyncio.create_task(self._serve(s, event))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve(self, s: H2Stream, event: h2.events.RequestReceived) -> None:
        side = H2ClientStream(self.ep, s, request_ended=event.stream_ended is not None)
        try:
            flow = self._make_flow(event)
        except ClientProtocolError as e:
            await side.refuse(e.status, str(e))
            return
        side.method = flow.request.method
        try:
            exchange = HttpExchange(self.ctx, flow, side, get_pool(self.ctx))
            await exchange.run()
            if exchange.close_after and not side.request_ended:
                self.ep.reset(s, 0)  # NO_ERROR: answered, the rest of the request body is not wanted (RFC 9113 §8.1)
        except Exception as e:  # like the connection's catch-all: log it, and end this stream only
            tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            self.ctx.log(f"{self.client_conn.address}: internal error on stream {s.id}: {e}\n{tb}", "error")
            side.abort()
        finally:
            self.ep.forget(s)

    def _make_flow(self, event: h2.events.RequestReceived) -> HTTPFlow:
        ctx = self.ctx
        pseudo, headers = h2conn.split_pseudo(list(event.headers))
        method = pseudo.get(b":method", b"").decode("ascii", "replace")
        path = pseudo.get(b":path", b"").decode("utf-8", "surrogateescape")
        authority = pseudo.get(b":authority", b"").decode("utf-8", "surrogateescape")
        scheme = pseudo.get(b":scheme", b"https").decode("ascii", "replace")
        if not method or (method != "CONNECT" and not path):
            raise ClientProtocolError("request without :method or :path")
        if method == "CONNECT":
            raise ClientProtocolError("CONNECT over HTTP/2 is not supported", 405)
        if ctx.tunnel is not None:
            host, port = ctx.tunnel
            scheme = ctx.tunnel_scheme
        else:
            try:
                parts = urllib.parse.urlsplit("//" + authority)
                hostname, port = parts.hostname, parts.port or (443 if scheme == "https" else 80)
            except ValueError:
                raise ClientProtocolError(f"invalid :authority {authority[:64]!r}") from None
            if not hostname:
                raise ClientProtocolError("request without :authority")
            host = hostname
        req = Request(method, scheme, host, port, path, "HTTP/2.0", headers, None, authority=authority)
        if ctx.mode.kind == "reverse" and not ctx.options.keep_host_header:
            req.authority = req.host_header_value
        req.timestamp_start = time.time()
        flow = HTTPFlow(ctx.client_conn, Server(address=(host, port)), mode=ctx.mode.kind)
        flow.request = req
        return flow


class H2ClientStream(WholeResponse):
    """`ClientSide` for one stream of a client's HTTP/2 connection."""

    def __init__(self, ep: H2Endpoint, s: H2Stream, request_ended: bool) -> None:
        self.ep = ep
        self.s = s
        self.request_ended = request_ended
        self.response_ended = False
        self.method = "GET"
        self._started = False
        self._response: Response | None = None
        self.request_trailers: Headers | None = None
        """The request's trailers (a last HEADERS frame, as gRPC clients may send), once its body was read."""

    async def request_body(self) -> AsyncIterator[bytes]:
        try:
            while not self.request_ended:
                event: Any = await self.ep.next_event(self.s)
                if isinstance(event, h2.events.DataReceived):
                    self.ep.ack(self.s, event.flow_controlled_length)
                    if event.data:
                        yield event.data
                    if event.stream_ended is not None:
                        self.request_ended = True
                elif isinstance(event, h2.events.TrailersReceived):  # h2 checked END_STREAM is on it
                    self.request_trailers = h2conn.split_pseudo(event.headers)[1]
                    self.request_ended = True
                elif isinstance(event, h2.events.StreamEnded):
                    self.request_ended = True
        except StreamGone as e:
            raise ClientGone(f"client {e}") from None

    @property
    def response_started(self) -> bool:
        return self._started

    async def send_response_head(self, flow: HTTPFlow, response: Response) -> None:
        if response.status_code < 200:
            return  # 1xx have no HTTP/2 equivalent we need to relay
        streamed = bool(response.stream)
        length, keep = h1wire.response_length(self.method, response, streamed)
        regular = h2conn.h2_fields(response, length, keep)
        h1wire.check_fields(regular, "cannot send this response to the client")  # h2 would send CR/LF as is
        fields = [(b":status", str(response.status_code).encode())] + regular
        self._started = True
        self._response = response
        end = self.method == "HEAD" or response.status_code in h1wire.NO_BODY_STATUS
        try:
            await self.ep.send_headers(self.s, fields, end=end)
        except StreamGone as e:
            raise ClientGone(f"client {e}") from None
        except h2.exceptions.ProtocolError as e:
            raise ProtocolError(f"cannot send this response over HTTP/2: {e}", 502) from None
        self.response_ended = end

    async def send_response_data(self, data: bytes) -> None:
        if data and not self.response_ended:
            try:
                await self.ep.send_data(self.s, data)
            except StreamGone as e:
                raise ClientGone(f"client {e}") from None

    async def send_response_end(self) -> None:
        if not self.response_ended:
            self.response_ended = True
            trailers = self._response.trailers if self._response is not None else None
            try:
                fields = [(k.lower(), v) for k, v in trailers.fields if not k.startswith(b":")] if trailers else []
                try:
                    h1wire.check_fields(fields, "cannot send these trailers to the client")
                except ProtocolError:
                    fields = []  # the body has gone out already: end the stream without them
                if fields:  # gRPC's status: the stream ends with them
                    await self.ep.send_headers(self.s, fields, end=True)
                else:
                    await self.ep.end(self.s)
            except StreamGone as e:
                raise ClientGone(f"client {e}") from None

    def abort(self) -> None:
        self.ep.reset(self.s)

    async def wait_closed(self) -> None:
        await self.s.gone.wait()

    @property
    def gone_reason(self) -> str:
        """How the client left this stream, once wait_closed() returned."""
        if self.s.reset_code is not None:
            return f"client reset the stream (error code {self.s.reset_code})"
        return "client closed the connection"

    async def refuse(self, status: int, msg: str) -> None:
        body = f"interpose: {msg}\n".encode()
        fields = [(b":status", str(status).encode()), (b"content-type", b"text/plain; charset=utf-8"),
                  (b"content-length", str(len(body)).encode())]
        try:
            await self.ep.send_headers(self.s, fields)
            await self.ep.send_data(self.s, body, end=True)
        except StreamGone:
            pass
