"""One HTTP/2 connection, either side, with h2: a reader task dispatching frames to per-stream queues,
flow-controlled sends, and header translation between HTTP/2 and our message model.

Each HTTP/2 stream is served by its own task that awaits its own queue, so a stream that is held by
an intercept, or slow, never stalls its siblings. Received data is acknowledged only once consumed,
which makes h2's flow control our backpressure.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from interpose.http import Headers, Message, Request, Response
from interpose.proxy.layer import Stream

# Connection-specific headers have no place in HTTP/2 (RFC 9113 §8.2.2).
CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"host", b"expect"}
)
WINDOW = 2**22  # generous receive windows: throughput without unbounded buffering


class StreamGone(Exception):
    """The peer reset the stream, or the connection ended, while we were using it."""


class H2Stream:
    def __init__(self, stream_id: int) -> None:
        self.id = stream_id
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self.window = asyncio.Event()
        self.gone = asyncio.Event()
        """Set when the peer resets this stream or the connection ends."""
        self.reset_code: int | None = None
        self.closed = False


class H2Endpoint:
    """Wraps `h2.connection.H2Connection` over a stream. `on_request(stream, event)` is called for each
    new request when acting as the server side."""

    def __init__(self, io: Stream, client_side: bool,
                 on_request: Callable[[H2Stream, Any], None] | None = None) -> None:
        self.io = io
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=client_side, header_encoding=None, validate_inbound_headers=True,
                                      normalize_outbound_headers=False)
        )
        self.streams: dict[int, H2Stream] = {}
        self.on_request = on_request
        self.terminated: str | None = None
        self.violation: str | None = None
        """What the peer did wrong, when it broke the protocol (h2 answered with GOAWAY)."""
        self._conn_window = asyncio.Event()
        self._slots = asyncio.Event()
        """Set whenever one of our streams may have closed (or the peer's limit changed): wakes `open_outbound`."""
        self.idle = asyncio.Event()
        self.idle.set()

    async def start(self) -> None:
        client = self.conn.config.client_side
        settings = {
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW,
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 256,
        }
        if client:
            settings[h2.settings.SettingCodes.ENABLE_PUSH] = 0
        self.conn.local_settings = h2.settings.Settings(client=client, initial_values=settings)
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(WINDOW)
        await self.flush()

    async def flush(self) -> None:
        self._slots.set()
        data = self.conn.data_to_send()
        if data:
            self.io.write(data)
            await self.io.drain()

    def open(self, stream_id: int) -> H2Stream:
        s = H2Stream(stream_id)
        self.streams[stream_id] = s
        self.idle.clear()
        return s

    async def open_outbound(self) -> H2Stream:
        """A new stream of ours, once the peer's MAX_CONCURRENT_STREAMS leaves room for it."""
        while self.conn.open_outbound_streams >= self.conn.remote_settings.max_concurrent_streams:
            if self.terminated is not None:
                raise StreamGone(self.terminated)
            self._slots.clear()
            await self._slots.wait()
        return self.open(self.conn.get_next_available_stream_id())

    def forget(self, s: H2Stream) -> None:
        self.streams.pop(s.id, None)
        if not self.streams:
            self.idle.set()
        # Data nobody will read (a body left unread, a stream reset) still used the connection's window.
        unread = 0
        while not s.events.empty():
            event = s.events.get_nowait()
            if isinstance(event, h2.events.DataReceived):
                unread += event.flow_controlled_length
        self._release_window(s.id, unread)

    def _release_window(self, stream_id: int, n: int) -> None:
        """Give the connection-level window back for `n` bytes of a stream that is done (h2 skips the stream's
        own window once it is closed)."""
        if n and self.terminated is None:
            try:
                self.conn.acknowledge_received_data(n, stream_id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
                return
            self.io.write(self.conn.data_to_send())

    async def read_loop(self) -> None:
        """Read frames until the connection ends; every open stream learns how it ended."""
        try:
            while True:
                data = await self.io.read()
                if not data:
                    self.terminated = "connection closed by peer"
                    break
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError as e:
                    self.terminated = f"HTTP/2 protocol error: {e}"
                    self.violation = str(e) or type(e).__name__
                    await self.flush()  # h2 queued a GOAWAY
                    break
                for event in events:
                    self._dispatch(event)
                await self.flush()
        except (ConnectionError, OSError) as e:
            self.terminated = f"connection error: {e}"
        finally:
            for s in list(self.streams.values()):
                s.events.put_nowait(None)
                s.window.set()
                s.gone.set()
            self._conn_window.set()
            self._slots.set()

    def _dispatch(self, event: Any) -> None:
        sid = getattr(event, "stream_id", None)
        if isinstance(event, h2.events.RequestReceived):
            s = self.open(event.stream_id)
            if self.on_request is not None:
                self.on_request(s, event)
            return
        if isinstance(event, h2.events.WindowUpdated):
            if sid:
                if sid in self.streams:
                    self.streams[sid].window.set()
            else:
                self._conn_window.set()
                for s in self.streams.values():
                    s.window.set()
            return
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self._conn_window.set()
            for s in self.streams.values():
                s.window.set()
            return
        if isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = f"peer ended the connection (GOAWAY, error code {event.error_code})"
            return
        stream = self.streams.get(sid) if sid else None
        if stream is None:
            if isinstance(event, h2.events.DataReceived):
                self._release_window(event.stream_id, event.flow_controlled_length)
            return
        s = stream
        if isinstance(event, h2.events.StreamReset):
            s.reset_code = event.error_code
            s.window.set()
            s.gone.set()
        s.events.put_nowait(event)

    async def next_event(self, s: H2Stream) -> Any:
        event = await s.events.get()
        if event is None:
            raise StreamGone(self.terminated or "connection closed")
        if isinstance(event, h2.events.StreamReset):
            raise StreamGone(f"stream reset by peer (error code {event.error_code})")
        return event

    def ack(self, s: H2Stream, n: int) -> None:
        if n and s.reset_code is None and self.terminated is None:
            try:
                self.conn.acknowledge_received_data(n, s.id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
                pass
            # Send the WINDOW_UPDATE now: a peer that used up its window sends nothing that would flush it later.
            self.io.write(self.conn.data_to_send())

    async def send_headers(self, s: H2Stream, headers: list[tuple[bytes, bytes]], end: bool = False) -> None:
        self._check(s)
        try:
            self.conn.send_headers(s.id, headers, end_stream=end)
        except h2.exceptions.StreamClosedError:
            raise StreamGone("stream closed") from None
        await self.flush()

    async def send_data(self, s: H2Stream, data: bytes, end: bool = False) -> None:
        view = memoryview(data)
        while view:
            self._check(s)
            window = min(self.conn.local_flow_control_window(s.id), self.conn.max_outbound_frame_size)
            if window <= 0:
                s.window.clear()
                self._conn_window.clear()
                await asyncio.wait(
                    [asyncio.ensure_future(s.window.wait()), asyncio.ensure_future(self._conn_window.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                continue
            chunk, view = view[:window], view[window:]
            try:
                self.conn.send_data(s.id, chunk.tobytes(), end_stream=end and not view)
            except h2.exceptions.StreamClosedError:
                raise StreamGone("stream closed") from None
            await self.flush()
        if end and not data:
            await self.end(s)

    async def end(self, s: H2Stream) -> None:
        self._check(s)
        try:
            self.conn.end_stream(s.id)
        except h2.exceptions.StreamClosedError:
            raise StreamGone("stream closed") from None
        await self.flush()

    def reset(self, s: H2Stream, code: int = 8) -> None:
        """RST_STREAM (CANCEL by default): ends this stream only."""
        if s.reset_code is None and self.terminated is None:
            try:
                self.conn.reset_stream(s.id, code)
                self.io.write(self.conn.data_to_send())
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
                pass
            self._slots.set()
        s.reset_code = s.reset_code if s.reset_code is not None else code

    def _check(self, s: H2Stream) -> None:
        if s.reset_code is not None:
            raise StreamGone(f"stream reset (error code {s.reset_code})")
        if self.terminated is not None:
            raise StreamGone(self.terminated)

    async def close(self) -> None:
        if self.terminated is None:
            self.terminated = "closed"
            try:
                self.conn.close_connection()
                await self.flush()
            except (h2.exceptions.ProtocolError, ConnectionError, OSError):
                pass
        self.io.close()


# -- translation ---------------------------------------------------------------
def split_pseudo(fields: list[tuple[bytes, bytes]]) -> tuple[dict[bytes, bytes], Headers]:
    pseudo: dict[bytes, bytes] = {}
    regular: list[tuple[bytes, bytes]] = []
    for k, v in fields:
        if k.startswith(b":"):
            pseudo[k] = v
        else:
            regular.append((k, v))
    return pseudo, Headers.from_raw(regular)


def h2_fields(message: Message, length: int | None, keep_length: bool) -> list[tuple[bytes, bytes]]:
    """Regular header fields for HTTP/2: lowercase names, no connection-specific ones, TE only as trailers."""
    out = []
    for k, v in message.headers.fields:
        lk = k.lower()
        if lk in CONNECTION_SPECIFIC or (lk == b"te" and v.strip().lower() != b"trailers"):
            continue
        if lk == b"content-length" and (length is not None or not keep_length):
            continue
        out.append((lk, v))
    if length is not None:
        out.append((b"content-length", str(length).encode()))
    return out


def request_pseudo(req: Request) -> list[tuple[bytes, bytes]]:
    authority = req.headers.get("host") or req.authority or req.host_header_value
    return [(b":method", req.method.encode("utf-8", "surrogateescape")), (b":scheme", req.scheme.encode()),
            (b":authority", authority.encode("utf-8", "surrogateescape")),
            (b":path", req.path.encode("utf-8", "surrogateescape"))]


def response_from(fields: list[tuple[bytes, bytes]]) -> Response:
    pseudo, headers = split_pseudo(fields)
    status = pseudo.get(b":status", b"502")
    return Response(int(status), "", "HTTP/2.0", headers, content=None)
