"""HTTP/1.1 towards the client, with h11: requests in, responses out, CONNECT and upgrades handed on.

One `Http1Layer` serves a client connection's requests in order (pipelined ones wait their turn in
h11's buffer). Each request becomes an `HTTPFlow` that `HttpExchange` walks through the hooks.
"""
from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import AsyncIterator

import h11

from interpose.errors import ClientProtocolError, ProtocolError, ServerProtocolError
from interpose.http import Headers, HTTPFlow, Request, Response, is_websocket_handshake
from interpose.model.connection import Server
from interpose.model.flow import Error
from interpose.proxy import upstream
from interpose.proxy.layer import LAYERS, SPLICE_HIGH_WATER, Context, Layer, Watchdog, choose
from interpose.proxy.layers import h1wire, tunnel
from interpose.proxy.layers.http import ClientGone, HttpExchange
from interpose.proxy.layers.pool import get_pool
from interpose.runtime import hooks
from interpose.runtime.options import parse_size

MAX_REQUEST_LINE = 8192
LINGER_S = 2.0
"""After refusing a client that may still be sending, read (and drop) its bytes this long before closing:
closing with unread input sends a TCP reset, which can destroy the answer before the client reads it."""


class Http1Layer(Layer):
    kind = "http1"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.head_limit = parse_size(ctx.options.header_size_limit) or 65536
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.head_limit)
        self._started = self._refused = self._no_body = False
        self._method = "GET"
        self._first_line = b""
        self._response: Response | None = None
        self._chunked = False  # the response goes out chunked: the one framing that carries trailers
        self.request_trailers: Headers | None = None  # the request body's (chunked), for HttpExchange

    # -- the request loop -------------------------------------------------
    async def run(self) -> None:
        self._watchdog = Watchdog()  # the idle and request-head timeouts
        try:
            await self._run()
        finally:
            self._watchdog.close()

    async def _run(self) -> None:
        client = self.ctx.client
        while True:
            event = await self._read_head()
            if event is None:
                if self._refused:
                    await self._linger()
                return
            try:
                flow = self._make_flow(event)
            except ClientProtocolError as e:
                self._refuse(e.status, str(e))
                await self._linger()
                return
            if flow.request.method == "CONNECT":
                await self._connect(flow)
                return
            self._started = False
            self._method = flow.request.method
            ok = await HttpExchange(self.ctx, flow, self, get_pool(self.ctx)).run()
            await asyncio.sleep(0)  # let other connections run: a busy keep-alive client must not hog the loop
            if not ok or client.closed:
                if not client.closed and self.conn.their_state is h11.SEND_BODY:
                    await self._linger()  # answered (413…) before the client finished its body
                return
            if self.conn.our_state is h11.SWITCHED_PROTOCOL:
                await self._upgraded(flow)
                return
            if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                self.conn.start_next_cycle()
            else:
                return

    async def _read_head(self) -> h11.Request | None:
        opts, conn, stream, dog = self.ctx.options, self.conn, self.ctx.client, self._watchdog
        self._first_line = b""
        pipelined = conn.trailing_data[0]
        raw = [pipelined] if pipelined else []  # the head's bytes as sent, for the checks h11 cannot make
        raw_len = len(pipelined)
        deadline: float | None = None
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as e:
                status = e.error_status_hint
                if status == 431 and b"\n" not in self._first_line[:MAX_REQUEST_LINE]:
                    self._refuse(414, f"request line longer than {MAX_REQUEST_LINE} bytes")
                elif status == 431:
                    self._refuse(431, f"request headers larger than header_size_limit ({self.head_limit} bytes)")
                else:
                    self._refuse(status, f"malformed request: {e}")
                return None
            if event is h11.NEED_DATA:
                timeout = opts.idle_timeout_s if deadline is None else max(0.0, deadline - time.monotonic())
                if timeout is not None:  # (the watchdog is disarmed after every read)
                    dog.arm(timeout)
                try:
                    data = await stream.read()
                except asyncio.CancelledError:
                    if not dog.expired():
                        raise
                    if deadline is not None:
                        self._refuse(408, "request head not received in time")
                    else:
                        self.client_conn.error = f"idle for {timeout:g} s (idle_timeout_s): closed"
                    return None
                except ConnectionError:
                    return None
                finally:
                    dog.disarm()
                if deadline is None and data:
                    deadline = time.monotonic() + opts.header_read_timeout_s
                if len(self._first_line) <= MAX_REQUEST_LINE:
                    self._first_line += data[: MAX_REQUEST_LINE + 1]
                if raw_len <= self.head_limit:
                    raw.append(data)
                    raw_len += len(data)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            if isinstance(event, h11.Request):
                if len(event.target) > MAX_REQUEST_LINE:
                    self._refuse(414, f"request line longer than {MAX_REQUEST_LINE} bytes")
                    return None
                # h11 only enforces its limit on a head still incomplete; one that arrived whole is checked here.
                head_size = len(event.method) + len(event.target) + 12 + sum(
                    len(k) + len(v) + 4 for k, v in event.headers.raw_items())
                if head_size > self.head_limit:
                    self._refuse(431, f"request headers larger than header_size_limit ({self.head_limit} bytes)")
                    return None
                problem = h1wire.framing_problem(event, raw[0] if len(raw) == 1 else b"".join(raw))
                if problem is not None:
                    self._refuse(400, problem)
                    return None
                return event
            return None

    def _refuse(self, status: int, msg: str) -> None:
        reason = h1wire.REFUSALS.get(status, "Error")
        self.ctx.log(f"{self.client_conn.address}: {msg}", "info")
        self.client_conn.error = f"{status} {reason}: {msg}"
        self.ctx.client.write(h1wire.raw_error(status, reason, msg))
        self._refused = True

    async def _linger(self) -> None:
        client = self.ctx.client
        try:
            await client.drain()
            client.write_eof()
            async with asyncio.timeout(LINGER_S):
                while await client.read():
                    pass
        except (TimeoutError, ConnectionError, OSError):
            pass

    def _make_flow(self, event: h11.Request) -> HTTPFlow:
        ctx = self.ctx
        method = event.method.decode("ascii", "replace")  # case-sensitive (RFC 9110 §9.1): "hEAD" is not HEAD
        target = event.target.decode("utf-8", "surrogateescape")
        headers = Headers.from_raw(list(event.headers.raw_items()))
        version = h1wire.version(event.http_version)
        mode = ctx.mode
        if method == "CONNECT":
            if mode.kind not in ("regular", "upstream") or ctx.tunnel is not None:
                raise ClientProtocolError(f"CONNECT is not allowed in {mode.kind} mode", 405)
            try:  # urlsplit itself refuses some targets ("[::1": an unclosed IPv6 bracket)
                parts = urllib.parse.urlsplit("//" + target)
                host, port = parts.hostname, parts.port
            except ValueError:
                host, port = None, None
            if not host or not port:
                raise ClientProtocolError(f"invalid CONNECT target {target!r}")
            req = Request(method, "http", host, port, "", version, headers, b"", authority=target)
        elif target.lower().startswith(("http://", "https://")):
            if mode.kind == "reverse" or ctx.tunnel is not None:
                raise ClientProtocolError("absolute-form request where origin-form was expected")
            try:
                parts = urllib.parse.urlsplit(target)
            except ValueError as e:
                raise ClientProtocolError(f"invalid URL {target[:64]!r}: {e}") from None
            try:
                port = parts.port
            except ValueError:
                raise ClientProtocolError(f"invalid port in {target!r}") from None
            scheme = parts.scheme.lower()
            if not parts.hostname:
                raise ClientProtocolError(f"no host in {target!r}")
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            req = Request(method, scheme, parts.hostname, port or (443 if scheme == "https" else 80), path, version,
                          headers, None)
        elif ctx.tunnel is not None:
            host, port = ctx.tunnel
            req = Request(method, ctx.tunnel_scheme, host, port, target, version, headers, None)
            if mode.kind == "reverse" and not ctx.options.keep_host_header and "host" in req.headers:
                req.headers["host"] = req.host_header_value
        else:
            raise ClientProtocolError(
                f"this is a proxy: send absolute-form requests (GET http://host/path), not {target[:64]!r}"
            )
        req.timestamp_start = time.time()
        flow = HTTPFlow(ctx.client_conn, Server(address=(req.host, req.port)), mode=mode.kind)
        flow.request = req
        return flow

    # -- ClientSide, for HttpExchange ---------------------------------------
    async def request_body(self) -> AsyncIterator[bytes]:
        conn, stream = self.conn, self.ctx.client
        self.request_trailers = None
        if conn.they_are_waiting_for_100_continue:
            stream.write(conn.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")))
        while True:
            try:
                event = await h1wire.next_event(conn, stream)
            except h11.RemoteProtocolError as e:
                if conn.their_state is h11.ERROR and "peer closed" in str(e):
                    raise ClientGone("client closed the connection in the middle of the request body") from None
                raise ClientProtocolError(f"malformed request body: {e}", e.error_status_hint) from None
            except ConnectionError:
                raise ClientGone("client connection reset in the middle of the request body") from None
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):  # h11 checked the trailers' names and values as a head's
                self.request_trailers = Headers.from_raw(list(event.headers.raw_items())) if event.headers else None
                return
            else:
                raise ClientGone("client closed the connection in the middle of the request body")

    @property
    def response_started(self) -> bool:
        return self._started

    async def send_response_head(self, flow: HTTPFlow, response: Response) -> None:
        self.ctx.client.write(self._head(response))

    async def send_whole_response(self, flow: HTTPFlow, response: Response) -> None:
        parts, body, conn = [self._head(response)], response.raw_content, self.conn
        if conn.our_state is h11.SEND_BODY:
            if body and not self._no_body:
                parts.append(conn.send(h11.Data(data=body)))
            parts.append(conn.send(h11.EndOfMessage(headers=self._trailers())))
        h1wire.write_parts(self.ctx.client, parts)
        await self._drain()

    def _head(self, response: Response) -> bytes:
        # Nothing is sent (and the response is not started) until the head is known to be valid: a bad
        # field is then answered with a clean 502 instead (h11 checks names, values and the status).
        where = "cannot send this response to the client"
        streamed = bool(response.stream)
        length, keep = h1wire.response_length(self._method, response, streamed)
        if length is not None and self.conn.their_http_version == b"1.1" and h1wire.trailer_fields(response, where):
            length = None  # trailers need chunked framing (h11's for an HTTP/1.1 client without a length); bad: 502
        headers = h1wire.wire_headers(response, length=length, keep_length=keep)
        if self.conn.their_state is h11.SEND_BODY and response.status_code >= 200:  # its body will not be read
            headers.append((b"Connection", b"close"))
        reason = response.reason.encode("latin-1", "replace") if response.reason else b""
        h1wire.check_reason(reason, where)  # h11 does not check the reason phrase
        try:
            if response.status_code < 200:
                event: h11.InformationalResponse | h11.Response = h11.InformationalResponse(
                    status_code=response.status_code, headers=headers, reason=reason)
            else:
                event = h11.Response(status_code=response.status_code, headers=headers, reason=reason)
        except h11.LocalProtocolError as e:
            h1wire.check_fields(headers, where)  # names the bad field
            raise ServerProtocolError(f"{where}: {e}") from None
        try:
            data = self.conn.send(event)
        except h11.LocalProtocolError as e:
            raise ProtocolError(f"{where}: {e}", 502) from None
        self._started = True
        # A body after these would break the framing (h11 refuses it): HEAD and 204/304 answers have none.
        self._no_body = self._method == "HEAD" or response.status_code in h1wire.NO_BODY_STATUS
        self._response = response
        self._chunked = length is None and not keep and not self._no_body and self.conn.their_http_version == b"1.1"
        return data

    def _trailers(self) -> list[tuple[bytes, bytes]]:
        """The response's trailers, when its framing carries them (a bad one is left off and logged)."""
        response, self._response = self._response, None  # let go: an idle keep-alive conn keeps no body alive
        if not self._chunked or response is None:
            return []
        fields, bad = h1wire.late_trailer_fields(response, "cannot send these trailers to the client")
        if bad is not None:
            self.ctx.log(f"{self.client_conn.address}: {bad}; the response ends without them", "warn")
        return fields

    def body_sink(self) -> Http1Layer | None:
        return None if self._no_body or self.conn.our_state is not h11.SEND_BODY else self

    def write(self, data: bytes) -> None:
        """BodySink: one chunk of a spliced body (h11 frames it without copying)."""
        parts = self.conn.send_with_data_passthrough(h11.Data(data=data))
        assert parts is not None  # None only for ConnectionClosed
        for part in parts:
            self.ctx.client.write(part)

    def congested(self) -> bool:
        return self.ctx.client.write_buffer_size() > SPLICE_HIGH_WATER

    async def drain(self) -> None:
        await self._drain()

    async def send_response_data(self, data: bytes) -> None:
        if data and self.conn.our_state is h11.SEND_BODY and not self._no_body:
            self.ctx.client.write(self.conn.send(h11.Data(data=data)))
            await self._drain()

    async def send_response_end(self) -> None:
        if self.conn.our_state is h11.SEND_BODY:
            self.ctx.client.write(self.conn.send(h11.EndOfMessage(headers=self._trailers())))
        await self._drain()

    async def _drain(self) -> None:
        try:
            await self.ctx.client.drain()
        except ConnectionError:
            raise ClientGone("client disconnected before the response was complete") from None

    def abort(self) -> None:
        self.ctx.client.close()

    async def wait_closed(self) -> None:
        stream = self.ctx.client
        # Bytes already waiting (a pipelined request) or arriving prove the client is still there;
        # they stay buffered for the next request.
        if not stream.pending and not await stream.peek(1):
            return
        await asyncio.Event().wait()

    # -- handing over -----------------------------------------------------------
    async def _connect(self, flow: HTTPFlow) -> None:
        ctx, req = self.ctx, flow.request
        await ctx.addons.trigger(hooks.HttpConnectHook(flow))
        resp = flow.response
        if resp is None and not flow.killed and (bad := upstream.invalid_host(req.host)) is not None:
            # Refused at once, as curl and nginx would: no tunnel to a name that can never be dialled.
            flow.error = Error(bad)
            self._refuse(502, bad)
            await ctx.addons.trigger(hooks.ErrorHook(flow))
            flow.live = False
            return
        if flow.killed or (resp is not None and not 200 <= resp.status_code < 300):
            if resp is not None:
                self._method = "CONNECT"
                resp.headers["connection"] = "close"
                try:
                    await self.send_response_head(flow, resp)
                except ProtocolError as e:  # a field that cannot go on the wire: nothing was sent yet
                    flow.error = Error(str(e))
                    self._refuse(502, str(e))
                    await self.ctx.addons.trigger(hooks.ErrorHook(flow))
                    flow.live = False
                    return
                if resp.raw_content:
                    await self.send_response_data(resp.raw_content)
                await self.send_response_end()
            flow.live = False
            return
        self.ctx.client.write(
            self.conn.send(h11.Response(status_code=200, headers=[], reason=b"Connection established")))
        await self._drain()
        flow.response = resp or Response(200, "Connection established", content=b"")
        flow.live = False
        ctx.client.unread(self.conn.trailing_data[0])
        ctx.tunnel = (req.host, req.port)
        layer = await tunnel.detect(ctx)
        chosen = await choose(layer)
        await chosen.run()

    async def _upgraded(self, flow: HTTPFlow) -> None:
        """The server agreed to switch protocols (101): WebSocket, or raw TCP for anything else."""
        server = get_pool(self.ctx).take_switched()
        if server is None:
            return
        self.ctx.client.unread(self.conn.trailing_data[0])
        server.stream.unread(server.conn.trailing_data[0])
        self.ctx.server_conn = server.server
        layer = LAYERS["websocket" if is_websocket_handshake(flow.request) else "tcp"](self.ctx)
        layer.server_stream, layer.handshake_flow = server.stream, flow
        try:
            chosen = await choose(layer)
            await chosen.run()
        finally:
            await upstream.disconnect(self.ctx, server.server, server.stream)
