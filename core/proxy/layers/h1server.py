"""The server side of HTTP/1: one h11 client connection per server, pooled per client connection."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import h11

from interpose.errors import ServerProtocolError
from interpose.http import Headers, HTTPFlow, Response
from interpose.model.connection import Server
from interpose.proxy import upstream
from interpose.proxy.layer import Stream, Watchdog
from interpose.proxy.layers import h1wire
from interpose.proxy.layers.http import StaleConnection
from interpose.proxy.tls import toserver

RAW_READ = 1 << 20
"""Largest read while a streamed body bypasses h11."""
RAW_ABOVE = 1 << 20
"""Streamed bodies from this size on bypass h11 (smaller ones are not worth losing the connection for)."""


class H1Server:
    """One HTTP/1.1 connection to a server (or upstream proxy), used for one request at a time."""

    def __init__(self, server: Server, stream: Stream, absolute_form: bool, head_limit: int,
                 read_timeout: float | None = None) -> None:
        self.key: tuple[Any, ...] = ()
        """Where it goes, as the pool files it."""
        self.share: tuple[Any, ...] | None = None
        """Its key in the proxy's pool of idle connections (layers/shared.py) when it may outlive its client
        connection; None when it may not (pinned by connection-bound authentication, sent elsewhere by an addon)."""
        self.server = server
        self.stream = stream
        self.absolute_form = absolute_form
        self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=head_limit)
        self.uses = 0
        self.read_timeout = read_timeout or None
        """Seconds the server may stay silent while a response is awaited (read_timeout_s)."""
        self._dog: Watchdog | None = None
        self.streamed = False
        self.heard = False
        """Bytes came from the server since the last request went out (else a kept connection that fails was
        closed by the server before it saw the request: the request is sent again on a new one)."""
        self.bypassed = False
        self._raw_length: int | None = None
        """The Content-Length of the response being read, when its body may bypass h11."""
        self._trailers: list[tuple[bytes, bytes]] | None = None
        """The request goes out chunked (None: not), and the trailers checked so far."""
        self._request: Any = None
        self.trailers: Headers | None = None
        """The trailers of the response body just read (chunked framing), for HttpExchange."""

    def _lost(self, e: OSError) -> ServerProtocolError:
        """The error for a connection to the server that broke."""
        return ServerProtocolError(upstream.describe_os_error(e, self.server.address[0] if self.server.address else ""))

    def _refused(self) -> str | None:
        """Why the server hung up on the first request, if it was over a client certificate."""
        return toserver.refused_client(self.stream) if self.uses == 1 else None

    def _silent(self) -> ServerProtocolError:
        return ServerProtocolError(f"server sent nothing for {self.read_timeout:g} s (read_timeout_s)", 504)

    async def _read(self, n: int = 65536) -> bytes:
        """The next bytes from the server, within read_timeout_s. A Watchdog (one timer per connection, moved
        by attribute writes) keeps this cheap: asyncio.timeout would make a timer per read."""
        if self.read_timeout is None:
            return await self.stream.read(n)
        dog = self._dog
        if dog is None or dog.task is not asyncio.current_task():  # (HTTP/2 clients use it from several tasks)
            if dog is not None:
                dog.close()
            dog = self._dog = Watchdog()
        dog.arm(self.read_timeout)
        try:
            return await self.stream.read(n)
        except asyncio.CancelledError:
            if dog.expired():
                raise self._silent() from None
            raise
        finally:
            dog.disarm()

    async def _event(self) -> object:
        conn = self.conn
        try:
            while True:
                event = conn.next_event()
                if event is not h11.NEED_DATA:
                    return event
                data = await self._read()
                self.heard = self.heard or bool(data)
                conn.receive_data(data)
        except h11.RemoteProtocolError as e:
            refused = self._refused()
            raise ServerProtocolError(refused or f"invalid response from server: {e}") from None
        except ConnectionError as e:
            refused = self._refused()
            raise (ServerProtocolError(refused) if refused else self._lost(e)) from None

    async def send_request_head(self, flow: HTTPFlow) -> None:
        self.stream.write(self._head(flow))

    async def send_whole_request(self, flow: HTTPFlow) -> None:
        parts, body = [self._head(flow)], flow.request.raw_content
        if body:
            parts.append(self.conn.send(h11.Data(data=body)))
        parts.append(self.conn.send(h11.EndOfMessage(headers=self._end_fields())))
        h1wire.write_parts(self.stream, parts)
        await self.stream.drain()

    def _head(self, flow: HTTPFlow) -> bytes:
        req = flow.request
        self.uses += 1
        self.heard = False
        self.streamed = bool(req.stream)
        length, keep = h1wire.request_length(req, self.streamed)
        where = "cannot send this request to the server"
        trailers = h1wire.trailer_fields(req, where) if not keep else []  # (a bad one: 502, as in the head)
        if trailers:
            length = None  # only chunked framing carries trailers
        target = req.url if self.absolute_form else req.path
        headers = h1wire.wire_headers(req, length=length, keep_length=keep)
        chunked = (self.streamed or bool(trailers)) and length is None and not keep
        if chunked:
            headers.append((b"Transfer-Encoding", b"chunked"))  # h11 frames a request without either as empty
        self._trailers, self._request = (trailers if chunked else None), req
        if "host" not in req.headers:  # a request that came in over HTTP/2 carries :authority instead
            headers.insert(0, (b"Host", (req.authority or req.host_header_value).encode("utf-8", "surrogateescape")))
        method, raw_target = req.method.encode("utf-8", "surrogateescape"), target.encode("utf-8", "surrogateescape")
        try:
            event = h11.Request(method=method, target=raw_target, headers=headers)
        except h11.LocalProtocolError as e:  # h11 checks the method, target and fields: name the bad one
            h1wire.check_request_line(method, raw_target, where)
            h1wire.check_fields(headers, where)
            raise ServerProtocolError(f"{where}: {e}") from None
        try:
            data = self.conn.send(event)
        except h11.LocalProtocolError as e:
            raise ServerProtocolError(f"{where}: {e}", 502) from None
        return data

    async def send_request_data(self, data: bytes) -> None:
        if data:
            self.stream.write(self.conn.send(h11.Data(data=data)))
            await self.stream.drain()

    async def send_request_end(self) -> None:
        self.stream.write(self.conn.send(h11.EndOfMessage(headers=self._end_fields())))
        await self.stream.drain()

    def _end_fields(self) -> list[tuple[bytes, bytes]]:
        """The request's trailers, when it goes out chunked. A streamed request's arrive after its head went
        out: a bad one is left off then (as HTTP/2 does)."""
        if self._trailers is None or not self.streamed:
            return self._trailers or []
        return h1wire.late_trailer_fields(self._request, "cannot send these trailers to the server")[0]

    async def response_head(self, flow: HTTPFlow) -> Response:
        while True:
            try:
                event = await self._event()
            except ServerProtocolError as e:
                # (h11 is in ERROR by now when the server hung up: `heard` tells whether any answer came)
                stale = self.uses > 1 and not self.streamed and not self.heard
                if stale and e.status != 504:  # (a server that stays silent is not retried)
                    raise StaleConnection() from None
                raise
            if isinstance(event, h11.InformationalResponse) and event.status_code != 101:
                continue  # 100 Continue and friends are for us, not the client
            if isinstance(event, (h11.Response, h11.InformationalResponse)):
                self._raw_length = _plain_length(event, flow.request.method)
                self.trailers = None
                resp = Response(
                    event.status_code,
                    event.reason.decode("latin-1"),
                    h1wire.version(event.http_version),
                    Headers.from_raw(list(event.headers.raw_items())),
                    content=None,
                )
                return resp
            if isinstance(event, h11.ConnectionClosed):
                if self.uses > 1 and not self.streamed:
                    raise StaleConnection()
                raise ServerProtocolError("server closed the connection without responding")
            raise ServerProtocolError(f"unexpected event from server: {event!r}")

    async def response_body(self, streaming: bool = False) -> AsyncIterator[bytes]:
        if self.conn.their_state is h11.SWITCHED_PROTOCOL:
            return
        length = self._raw_length if streaming else None
        if length is not None:
            async for chunk in self._raw_body(length):
                yield chunk
            return
        while True:
            event = await self._event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):  # h11 checked the trailers' names and values as a head's
                self.trailers = Headers.from_raw(list(event.headers.raw_items())) if event.headers else None
                return
            else:
                raise ServerProtocolError(f"unexpected event in response body: {event!r}")

    def spliceable(self) -> int | None:
        """The length of the response body when it can be spliced to the client (see HttpExchange): not
        through a TlsStream (TLS inside an HTTPS upstream proxy's TLS), which has no transport to splice from."""
        return self._raw_length if hasattr(self.stream, "splice") else None

    async def splice_body(self, sink: Any) -> None:
        """Pass the body of known length straight from the socket to `sink` (a BodySink), bypassing h11 and
        the StreamReader: no Python copies at all. The connection is not reused afterwards."""
        assert self._raw_length is not None
        self.bypassed = True
        left = self._raw_length
        first = self.conn.trailing_data[0][:left]
        if first:
            sink.write(first)
            left -= len(first)
        if not left:
            return
        guard = _StallGuard(self.read_timeout, sink)
        try:
            await self.stream.splice(left, guard.write, sink.congested, guard.drain)
        except EOFError as e:
            raise ServerProtocolError(
                f"server closed the connection {e.args[0]} bytes before the end of the body") from None
        except ConnectionError as e:
            raise self._lost(e) from None
        except asyncio.CancelledError:
            if guard.expired():
                raise self._silent() from None
            raise
        finally:
            guard.close()

    async def _raw_body(self, length: int) -> AsyncIterator[bytes]:
        """A streamed body of known length, read from the socket in big chunks without h11, which would copy
        each chunk into its buffer and out again (a third of the CPU of a big download). h11 then never
        sees the body, so the connection is not reused."""
        self.bypassed = True
        left = length
        first = self.conn.trailing_data[0][:left]
        if first:
            left -= len(first)
            yield first
        while left:
            try:
                chunk = await self._read(min(left, RAW_READ))
            except ConnectionError as e:
                raise self._lost(e) from None
            if not chunk:
                raise ServerProtocolError(f"server closed the connection {left} bytes before the end of the body")
            if len(chunk) > left:
                chunk = chunk[:left]
            left -= len(chunk)
            yield chunk

    def park(self) -> None:
        """Forget the last exchange (its request, its client's task) before the connection waits for another
        client connection: a parked connection must not keep a finished flow's bodies alive."""
        self._request = self.trailers = self._trailers = None
        if self._dog is not None:
            self._dog.close()
            self._dog = None

    @property
    def reusable(self) -> bool:
        return not self.bypassed and self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE

    @property
    def switched(self) -> bool:
        return self.conn.their_state is h11.SWITCHED_PROTOCOL


class _StallGuard:
    """read_timeout_s for a spliced body: cancels the task once the server sent nothing for `timeout` s
    (time spent waiting for a slow client to drain does not count)."""

    def __init__(self, timeout: float | None, sink: Any) -> None:
        self.sink = sink
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.last = self.loop.time()
        self.draining = False
        self.fired = False
        self.timer = self.loop.call_later(timeout, self._check) if timeout else None

    def write(self, data: bytes) -> None:
        self.last = self.loop.time()
        self.sink.write(data)

    async def drain(self) -> None:
        self.draining = True
        try:
            await self.sink.drain()
        finally:
            self.draining = False
            self.last = self.loop.time()

    def _check(self) -> None:
        assert self.timeout is not None
        idle = self.loop.time() - self.last
        if idle >= self.timeout and not self.draining and self.task is not None:
            self.fired = True
            self.timer = None
            self.task.cancel()
        else:
            self.timer = self.loop.call_later(max(self.timeout - idle, 0.05), self._check)

    def expired(self) -> bool:
        if self.fired and self.task is not None and self.task.uncancel() == 0:
            return True
        return False

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


def _plain_length(event: h11.Response | h11.InformationalResponse, method: str) -> int | None:
    """The body length of a response framed by one valid Content-Length alone, if at least RAW_ABOVE."""
    if event.status_code < 200 or event.status_code in h1wire.NO_BODY_STATUS or method == "HEAD":
        return None
    length = None
    for name, value in event.headers:  # h11 lower-cases names
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            if length is not None or not value.isdigit():
                return None
            length = int(value)
    return length if length is not None and length >= RAW_ABOVE else None
