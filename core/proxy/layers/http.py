"""The life of one HTTP request/response, whatever the wire protocol on either side.

`HttpExchange.run()` walks a flow through requestheaders → body → request → server → responseheaders
→ body → response, honouring intercepts, answers set by addons, streaming and size limits. The client
side (`ClientSide`) and server side (`ServerSide`, both in `interpose.proxy.layers.sides`) hide the
framing (h11, h2).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from interpose.errors import ClientProtocolError, ProtocolError, ServerProtocolError
from interpose.http import HTTPFlow, Request, Response, is_websocket_handshake
from interpose.model.flow import Error
from interpose.proxy.layer import Context
from interpose.proxy.layers.sides import BodySink, ClientSide, Pool, ServerSide, WholeRequest, WholeResponse
from interpose.proxy.upstream import ServerConnectError
from interpose.runtime import hooks
from interpose.runtime.bus import FlowIntercepted, FlowResumed
from interpose.runtime.options import parse_size

__all__ = ["BodySink", "ClientGone", "ClientSide", "FlowKilled", "HttpExchange", "Pool", "ServerSide",
           "StaleConnection", "WholeRequest", "WholeResponse", "error_response"]

ANSWERED_BODY_LIMIT = 65536
"""A request an addon answered at `requestheaders` (a 407, a replay) keeps at most this much of its body;
a bigger one is not read (nor waited for): the answer goes out and the connection ends."""
WATCH_CLIENT_AFTER_S = 0.5
"""How long the server may think before the proxy starts watching whether the client is still there."""


class FlowKilled(Exception):
    """The user or an addon killed the flow: close the client's connection."""


class ClientGone(Exception):
    """The client went away in the middle of an exchange."""


class StaleConnection(Exception):
    """A reused keep-alive server connection was closed before any response byte came: retry once."""


def error_response(status: int, msg: str) -> Response:
    r = Response.make(status, f"interpose: {msg}\n")
    r.headers["connection"] = "close"
    return r


def _apply(stream: object, chunk: bytes) -> bytes:
    return stream(chunk) if callable(stream) else chunk


class HttpExchange:
    """Drives one flow. Owned by the client-side layer, which calls `run()` once per request."""

    def __init__(self, ctx: Context, flow: HTTPFlow, client: ClientSide, pool: Pool) -> None:
        self.ctx = ctx
        self.flow = flow
        self.client = client
        self.pool = pool
        opts = ctx.options
        self.body_limit = parse_size(opts.body_size_limit)
        self.stream_above = parse_size(opts.stream_large_bodies)
        self.close_after = False
        """The client's connection must end after this exchange (its request body was left unread)."""

    async def hook(self, hook: hooks.Hook, stage: str) -> None:
        flow = self.flow
        await self.ctx.addons.trigger(hook)
        if flow.intercepted:
            self.ctx.bus.publish(FlowIntercepted(flow, stage))
            await self._wait_for_resume()
            self.ctx.bus.publish(FlowResumed(flow))
        if flow.killed:
            raise FlowKilled()

    async def _wait_for_resume(self) -> None:
        """Wait for resume/kill, unless the client leaves first: then the flow ends with an error."""
        flow = self.flow
        resumed = asyncio.ensure_future(flow.wait_for_resume())
        gone = asyncio.ensure_future(self.client.wait_closed())
        try:
            await asyncio.wait((resumed, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not resumed.done():
                resumed.cancel()
            await asyncio.wait((resumed, gone))  # as in _unless_client_leaves
        if not resumed.done() or resumed.cancelled():
            flow.intercepted = False
            raise ClientGone(f"{self._gone_reason()} while the flow was intercepted")

    async def _unless_client_leaves(self, waiting: Awaitable[Response]) -> Response:
        """Wait for the server's answer, unless the client leaves first: a server that never answers must
        not hold the client's connection (and this task) forever once nobody is waiting for it.

        Most answers come in well under WATCH_CLIENT_AFTER_S, so the client is only watched after that: the
        fast path costs one timer, not a task and an `asyncio.wait` per request. A client that leaves is
        noticed by the watcher, which cancels this task; that cancellation becomes ClientGone here."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        watch: asyncio.Future[None] | None = None
        left = waiting_done = False

        def client_left(w: asyncio.Future[None]) -> None:
            nonlocal left
            # The callback runs a loop turn after the watcher ends: by then the answer may have come.
            if not waiting_done and not w.cancelled() and w.exception() is None:
                left = True
                task.cancel()

        def start_watching() -> None:
            nonlocal watch
            watch = asyncio.ensure_future(self.client.wait_closed())
            watch.add_done_callback(client_left)

        timer = loop.call_later(WATCH_CLIENT_AFTER_S, start_watching)
        try:
            return await waiting
        except asyncio.CancelledError:
            if left and task.uncancel() == 0:
                raise ClientGone(f"{self._gone_reason()} while waiting for the server's response") from None
            raise
        finally:
            waiting_done = True
            timer.cancel()
            if watch is not None and not watch.done():
                watch.cancel()
                # Let the cancellation land: a client read still pending would collide with the layer's next read.
                await asyncio.wait((watch,))

    def _gone_reason(self) -> str:
        """How the client left, once wait_closed() returned; a side may say more (an HTTP/2 stream's reset)."""
        return str(getattr(self.client, "gone_reason", "client disconnected"))

    async def fail(self, msg: str, status: int | None) -> None:
        """Record the error, fire `error`, and tell the client if it can still be told."""
        flow = self.flow
        if flow.error is None:
            flow.error = Error(msg)
        if not flow.killed and not self.client.response_started:
            # What the client gets now is made up by the proxy, not the server's response.
            flow.response = None
        await self.ctx.addons.trigger(hooks.ErrorHook(flow))
        if status is not None and not self.client.response_started:
            try:
                await self.send_response(error_response(status, msg))
            except (ClientGone, ProtocolError, OSError):
                self.client.abort()
        else:
            self.client.abort()

    def _should_stream(self, message: Request | Response) -> bool:
        if message.stream or self.stream_above is None:
            return bool(message.stream)
        cl = message.headers.get("content-length")
        return cl is not None and cl.isdigit() and int(cl) > self.stream_above

    async def run(self) -> bool:
        """Returns False when the connection must not be reused."""
        flow = self.flow
        try:
            await self._run()
            return not self.close_after
        except FlowKilled:
            await self.fail(flow.error.msg if flow.error else "killed", None)
        except ServerConnectError as e:
            await self.fail(str(e), 502)
        except ProtocolError as e:  # the client's (4xx), the server's (502), or a message that cannot be sent
            await self.fail(str(e), e.status)
        except ClientGone as e:
            await self.fail(str(e) or "client disconnected", None)
        except OSError as e:
            await self.fail(f"connection error: {e.strerror or e}", 502)
        except asyncio.CancelledError:
            # Torn down from outside: the client's HTTP/2 connection ended under this stream, or the proxy
            # is stopping. The flow still ends with an error (addons see every flow end), then it goes on.
            held, flow.intercepted = flow.intercepted, False
            if flow.error is None:
                flow.error = Error("connection closed "
                                   + ("while the flow was intercepted" if held else "before the flow completed"))
            if not flow.killed and not self.client.response_started:
                flow.response = None
            await asyncio.shield(self.ctx.addons.trigger(hooks.ErrorHook(flow)))
            raise
        finally:
            flow.live = False
        return False

    async def _run(self) -> None:
        flow, req = self.flow, self.flow.request
        await self.hook(hooks.RequestHeadersHook(flow), "requestheaders")
        if flow.response is None and is_websocket_handshake(req):
            await self.hook(hooks.WebsocketHandshakeHook(flow), "websocket_handshake")
        if flow.response is not None:
            await self._answered_request_body()
            await self._answer_from_addon()
            return
        rest = self._request_chunks() if self._should_stream(req) else await self._buffer_request(may_stream=True)
        if rest is not None:
            server = await self._stream_request(rest)
        else:
            await self.hook(hooks.RequestHook(flow), "request")
            if flow.response is not None:
                await self._answer_from_addon()
                return
            server = await self._send_buffered()
        ok = False
        try:
            try:
                resp = await self._unless_client_leaves(server.response_head(flow))
            except StaleConnection:
                await self.pool.release(flow, server, False)
                server = await self._send_buffered(fresh=True)
                resp = await self._unless_client_leaves(server.response_head(flow))
            await self._relay_response(server, resp)
            ok = True
        finally:
            await self.pool.release(flow, server, ok)

    async def _send_buffered(self, fresh: bool = False) -> ServerSide:
        """Send the buffered request on a server connection; once more on a new one when a kept connection
        turns out to be closed by the server (`StaleConnection` covers the same when reading the answer)."""
        flow = self.flow
        server = await self.pool.get(flow, fresh)
        try:
            await server.send_whole_request(flow)
        except ConnectionError:
            if fresh or getattr(server, "uses", 0) < 2:
                raise
            await self.pool.release(flow, server, False)
            return await self._send_buffered(fresh=True)
        return server

    async def _answer_from_addon(self) -> None:
        await self.hook(hooks.ResponseHook(self.flow), "response")
        if self.flow.response is not None:
            await self.send_response(self.flow.response)

    async def _request_chunks(self) -> AsyncIterator[bytes]:
        """The client's request body, refused (413) once it passes body_size_limit."""
        seen = 0
        async for chunk in self.client.request_body():
            seen += len(chunk)
            if self.body_limit is not None and seen > self.body_limit:
                raise ClientProtocolError(f"request body exceeds body_size_limit ({self.body_limit} bytes)", 413)
            yield chunk
        trailers = getattr(self.client, "request_trailers", None)  # HTTP/1 chunked bodies', HTTP/2's last HEADERS
        if trailers is not None:
            self.flow.request.trailers = trailers

    async def _answered_request_body(self) -> None:
        """The body of a request that already has its answer: kept when small, otherwise neither buffered
        nor read to its end (a refused 256 MiB upload must not cost 256 MiB)."""
        req = self.flow.request
        declared = req.headers.get("content-length")
        if declared is None or (declared.isdigit() and int(declared) <= ANSWERED_BODY_LIMIT):
            body = bytearray()
            async for chunk in self.client.request_body():
                body += chunk
                if len(body) > ANSWERED_BODY_LIMIT:
                    break
            else:
                req.raw_content = bytes(body)
                req.timestamp_end = time.time()
                return
        # Too big: not waited for (the client may wait for the answer before sending it), not kept.
        req.raw_content = b""
        self.close_after = True
        self.ctx.log(f"{self.flow.client_conn.address}: request answered at requestheaders; its body (over "
                     f"{ANSWERED_BODY_LIMIT} bytes) is not read, closing the connection", "debug")

    async def _buffer_request(self, may_stream: bool = False) -> AsyncIterator[bytes] | None:
        """Read the body into `raw_content`. With `may_stream`, a body growing past stream_large_bodies (no
        Content-Length told us in advance) is not buffered further: returns the chunks to stream instead."""
        req = self.flow.request
        body = bytearray()
        chunks = self._request_chunks()
        async for chunk in chunks:
            body += chunk
            if may_stream and self.stream_above is not None and len(body) > self.stream_above:
                return _prepend(bytes(body), chunks)
        req.raw_content = bytes(body)
        req.timestamp_end = time.time()
        return None

    async def _stream_request(self, chunks: AsyncIterator[bytes]) -> ServerSide:
        flow, req = self.flow, self.flow.request
        req.stream = req.stream or True
        server = await self.pool.get(flow)
        await server.send_request_head(flow)
        async for chunk in chunks:
            await server.send_request_data(_apply(req.stream, chunk))
        await server.send_request_end()
        req.raw_content = None
        req.timestamp_end = time.time()
        await self.hook(hooks.RequestHook(flow), "request")
        return server

    async def _relay_response(self, server: ServerSide, resp: Response) -> None:
        flow = self.flow
        flow.response = resp
        await self.hook(hooks.ResponseHeadersHook(flow), "responseheaders")
        if flow.response is not resp:  # an addon replaced the response: drop the server's body
            async for _ in server.response_body():
                pass
        elif self._should_stream(resp):
            await self._stream_response(self._response_chunks(server, streaming=True), resp.stream or True, server)
        else:
            await self._buffer_response(server)
        await self.hook(hooks.ResponseHook(flow), "response")
        if flow.response is not None and not self.client.response_started:
            await self.send_response(flow.response)

    async def _response_chunks(self, server: ServerSide, streaming: bool = False) -> AsyncIterator[bytes]:
        """The server's response body, refused once it passes body_size_limit."""
        seen = 0
        async for chunk in server.response_body(streaming):
            seen += len(chunk)
            if self.body_limit is not None and seen > self.body_limit:
                raise ServerProtocolError(f"response body exceeds body_size_limit ({self.body_limit} bytes)")
            yield chunk
        trailers = getattr(server, "trailers", None)  # HTTP/2's (gRPC's status is there), HTTP/1 chunked bodies'
        if trailers is not None and self.flow.response is not None:
            self.flow.response.trailers = trailers

    async def _buffer_response(self, server: ServerSide) -> None:
        resp = self.flow.response
        assert resp is not None
        body = bytearray()
        chunks = self._response_chunks(server)
        async for chunk in chunks:
            body += chunk
            if self.stream_above is not None and len(body) > self.stream_above:
                # No Content-Length told us in advance: switch to streaming mid-body.
                resp.stream = True
                await self._stream_response(_prepend(bytes(body), chunks), True)
                return
        resp.raw_content = bytes(body)
        resp.timestamp_end = time.time()

    async def _stream_response(self, chunks: AsyncIterator[bytes], stream: bool | Callable[[bytes], bytes],
                               server: ServerSide | None = None) -> None:
        resp = self.flow.response
        assert resp is not None
        resp.stream = stream
        resp.raw_content = None
        await self.client.send_response_head(self.flow, resp)
        # Nobody looks at the chunks (no stream function): a body of known length may be spliced from the
        # server's socket to the client's, which saves every copy Python would make.
        length = server.spliceable() if server is not None and stream is True else None
        sink = self.client.body_sink() if length is not None else None
        if sink is not None:
            assert server is not None and length is not None
            if self.body_limit is not None and length > self.body_limit:
                raise ServerProtocolError(f"response body exceeds body_size_limit ({self.body_limit} bytes)")
            await server.splice_body(sink)
        else:
            async for chunk in chunks:
                await self.client.send_response_data(_apply(stream, chunk))
        await self.client.send_response_end()
        resp.timestamp_end = time.time()

    async def send_response(self, resp: Response) -> None:
        if resp.timestamp_end is None:
            resp.timestamp_end = time.time()
        await self.client.send_whole_response(self.flow, resp)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk
