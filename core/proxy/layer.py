"""Layers: one object per protocol stage of a client connection, each with `async def run()`.

A connection starts with the layer its mode calls for (`http1` in regular mode). CONNECT peeks at the
tunnel's first bytes and picks the next one. Before a layer runs, `next_layer(layer)` lets addons swap
it: `return layer.replace("tcp")` (calling `replace` alone is enough too).
"""
from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from interpose.model.connection import Address, Client, Server
from interpose.runtime import hooks

if TYPE_CHECKING:
    from interpose.proxy.modes import Mode
    from interpose.runtime.addonmanager import AddonManager
    from interpose.runtime.bus import EventBus
    from interpose.runtime.options import Options

KINDS = ("tls", "http1", "http2", "tcp", "websocket", "passthrough", "socks5")


# The one table of layer kinds: kind → (module, class). A module is imported the first time a connection
# needs its kind (the server preloads the common ones at start), which keeps h2 and wsproto out of startup.
TABLE: dict[str, tuple[str, str]] = {
    "http1": ("interpose.proxy.layers.http1", "Http1Layer"),
    "http2": ("interpose.proxy.layers.http2", "Http2Layer"),
    "tls": ("interpose.proxy.layers.tls", "TlsLayer"),
    "tcp": ("interpose.proxy.layers.tcp", "TcpLayer"),
    "passthrough": ("interpose.proxy.layers.tcp", "PassthroughLayer"),
    "websocket": ("interpose.proxy.layers.websocket", "WebSocketLayer"),
    "socks5": ("interpose.proxy.layers.socks5", "Socks5Layer"),
}
EAGER = ("http1", "tls", "tcp", "passthrough", "socks5")
"""The kinds the server loads when it starts, so the first connection does not pay for the imports."""


class _Registry(dict[str, "type[Layer]"]):
    """Layer classes by kind, loaded from TABLE on first use."""

    def __missing__(self, kind: str) -> type[Layer]:
        module, name = TABLE[kind]  # KeyError for an unknown kind
        cls: type[Layer] = getattr(importlib.import_module(module), name)
        self[kind] = cls
        return cls

    def get(self, kind: str, default: Any = None) -> Any:
        try:
            return self[kind]
        except KeyError:
            return default


LAYERS: dict[str, type[Layer]] = _Registry()


class Watchdog:
    """A deadline for one task, with one timer per connection instead of one per read.

    `arm(seconds)` sets the deadline and `disarm()` clears it; both are attribute writes in the common case.
    The timer, when it fires, moves itself to the current deadline, or cancels the task once the deadline
    has passed: the task, catching that CancelledError, asks `expired()` whether it was the deadline.
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.deadline: float | None = None
        self.fired = False
        self._timer: asyncio.TimerHandle | None = None

    def arm(self, seconds: float) -> None:
        self.deadline = deadline = self.loop.time() + seconds
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._check)

    def disarm(self) -> None:
        self.deadline = None

    def expired(self) -> bool:
        """After a CancelledError in the task: True (and the cancellation taken back) when the deadline
        caused it, False when it came from elsewhere and must propagate."""
        if not self.fired:
            return False
        self.fired = False
        if self.task is not None:
            self.task.uncancel()
        return True

    def _check(self) -> None:
        self._timer = None
        deadline = self.deadline
        if deadline is None:
            return
        if self.loop.time() < deadline:
            self._timer = self.loop.call_at(deadline, self._check)
            return
        self.deadline = None
        self.fired = True
        if self.task is not None:
            self.task.cancel()

    def close(self) -> None:
        self.deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


SPLICE_HIGH_WATER = 1 << 20
"""While splicing, the source stops being read once this much waits to be sent to the other side."""


class _Splice(asyncio.Protocol):
    """Stands in for a stream's StreamReaderProtocol while `Stream.splice` runs: each chunk the transport
    reads goes straight to the sink, without the StreamReader's buffer (two copies per chunk)."""

    def __init__(self, transport: asyncio.Transport, left: int, sink: Callable[[bytes], None],
                 congested: Callable[[], bool]) -> None:
        self.transport = transport
        self.left = left
        self.sink = sink
        self.congested = congested
        self.extra = b""
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.error is not None:
            return
        if len(data) > self.left:
            self.extra += data[self.left:]
            data = data[: self.left]
        self.left -= len(data)
        if data:
            try:
                self.sink(data)
            except Exception as e:  # the other side is gone
                self.error = e
        if self.left == 0 or self.error is not None or self.congested():
            self.transport.pause_reading()
            self._wake()

    def eof_received(self) -> bool:
        self.error = self.error or EOFError()
        self._wake()
        return True  # the stream's owner closes it

    def connection_lost(self, exc: Exception | None) -> None:
        self.error = self.error or exc or EOFError()
        self._wake()


class _ReadAhead(Protocol):
    """The StreamReader internals `Stream.splice` takes over: the bytes it has already read ahead."""

    _buffer: bytearray


async def peek_more(pending: bytes, n: int, timeout: float | None,
                    read: Callable[[int], Awaitable[bytes]]) -> bytes:
    """`pending` plus what `read` gives until there are n bytes, EOF, or (with a timeout) after one read
    or when the timeout passes: the peeking loop of `Stream` and `TlsStream`."""
    while len(pending) < n:
        try:
            async with asyncio.timeout(timeout):
                chunk = await read(max(n - len(pending), 65536))
        except TimeoutError:
            break
        if not chunk:
            break
        pending += chunk
        if timeout is not None:
            break  # one read is enough to decide; don't wait for more
    return pending


class Stream:
    """A socket seen through asyncio streams, with bytes that were peeked and pushed back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.pending = b""

    async def read(self, n: int = 65536) -> bytes:
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        return await self.reader.read(n)

    def unread(self, data: bytes) -> None:
        self.pending = data + self.pending

    async def peek(self, n: int, timeout: float | None = None) -> bytes:
        """The bytes buffered at the start of the stream, without consuming them: at least n unless EOF or
        the timeout comes first (b"" if nothing came). All that arrived is kept, not just n, so the next
        read() returns the peer's first chunk whole (a raw TCP relay must not split it at the peek size)."""
        self.pending = await peek_more(self.pending, n, timeout, self.reader.read)
        return self.pending

    def write(self, data: bytes) -> None:
        if data:
            self.writer.write(data)

    def write_buffer_size(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        return self.writer.transport.get_write_buffer_size()

    async def splice(self, n: int, sink: Callable[[bytes], None], congested: Callable[[], bool],
                     drain: Callable[[], Awaitable[None]]) -> None:
        """Hand the next `n` bytes from the peer to `sink` as the transport reads them, bypassing the
        StreamReader. Reading pauses while `congested()` until `drain()` returns. Raises EOFError (or the
        connection's error) if the peer stops first (EOFError's argument: the bytes missing), or what `sink`
        raised; bytes after the n-th are kept for the next read()."""
        reader = self.reader
        # A connection's transport reads as well as writes (StreamWriter only promises the writing half).
        transport = cast(asyncio.Transport, self.writer.transport)
        first = self.pending
        self.pending = b""
        # What the StreamReader already read ahead (no public way to take it).
        buffered = cast(_ReadAhead, reader)._buffer
        if buffered:
            first += bytes(buffered)
            buffered.clear()
        if reader.at_eof() and len(first) < n:
            raise EOFError(n - len(first))
        loop = asyncio.get_running_loop()
        old = transport.get_protocol()
        splice = _Splice(transport, n, sink, congested)
        transport.set_protocol(splice)
        try:
            if first:
                splice.data_received(first)
            while splice.left and splice.error is None:
                if splice.congested():
                    await drain()
                splice.waiter = loop.create_future()
                transport.resume_reading()
                await splice.waiter
            if isinstance(splice.error, EOFError):
                raise EOFError(splice.left)  # how many bytes never came
            if splice.error is not None:
                raise splice.error
        finally:
            if not transport.is_closing():
                transport.set_protocol(old)
                transport.resume_reading()
            self.pending = splice.extra + self.pending

    async def drain(self) -> None:
        await self.writer.drain()

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()

    @property
    def closed(self) -> bool:
        return self.writer.is_closing()

    def at_eof(self) -> bool:
        """True once the peer has closed its side (and nothing is left to read)."""
        return not self.pending and self.reader.at_eof()

    def write_eof(self) -> None:
        """Half-close: tell the peer we will send nothing more. Closes outright where that's impossible."""
        try:
            if self.writer.can_write_eof() and not self.closed:
                self.writer.write_eof()
                return
        except (OSError, RuntimeError):
            pass
        self.close()

    def extra(self, name: str) -> object:
        return self.writer.get_extra_info(name)


class Context:
    """What the layers of one client connection share."""

    def __init__(
        self,
        client: Stream,
        client_conn: Client,
        options: Options,
        addons: AddonManager,
        bus: EventBus,
        log: Callable[[str, str], None],
        mode: Mode,
    ) -> None:
        self.client = client
        self.client_conn = client_conn
        self.options = options
        self.addons = addons
        self.bus = bus
        self.log = log
        self.mode = mode
        self.server_conn: Server | None = None
        self.tunnel: Address | None = None
        """The CONNECT target when layers run inside a tunnel."""
        self.tunnel_scheme = "http"
        self.pool: Any = None
        """The server connections (`interpose.proxy.layers.pool.ServerPool`), shared by the layers of this
        connection."""
        self.certs: Any = None
        """The `interpose.proxy.tls.certs.CertStore` minting certificates for TLS interception."""
        self.shared: Any = None
        """The proxy's idle server connections (`interpose.proxy.layers.shared.SharedPool`), kept between
        client connections when `server_reuse` is on; None where they are not (replays)."""


class Layer:
    """Base of every layer. Subclasses set `kind` and implement `run`."""

    kind: ClassVar[str] = ""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.replacement: Layer | None = None
        self.sni: str | None = None
        self.alpn: str | None = None
        self.server_stream: Stream | None = None
        """A server connection handed over by the previous layer (after an HTTP upgrade)."""
        self.handshake_flow: Any = None
        """The HTTP flow that upgraded the connection, for the layer that follows it."""

    @property
    def client_conn(self) -> Client:
        return self.ctx.client_conn

    @property
    def server_conn(self) -> Server | None:
        return self.ctx.server_conn

    def replace(self, kind: str) -> Layer:
        """A layer of another kind for the same connection; the proxy runs it instead of this one."""
        if kind not in KINDS:
            raise ValueError(f"unknown layer kind {kind!r}; use one of {', '.join(KINDS)}")
        cls = LAYERS.get(kind)
        if cls is None:
            raise ValueError(f"layer kind {kind!r} is not available in this version")
        new = cls(self.ctx)
        new.sni, new.alpn = self.sni, self.alpn
        new.server_stream, new.handshake_flow = self.server_stream, self.handshake_flow
        self.replacement = new
        return new

    async def run(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind}>"


async def choose(layer: Layer) -> Layer:
    """Fire `next_layer` and return the layer that should run (the addon's choice if it made one)."""
    await layer.ctx.addons.trigger(hooks.NextLayerHook(layer))
    chosen = layer
    seen = 0
    while chosen.replacement is not None and chosen.replacement is not chosen and seen < 8:
        chosen = chosen.replacement
        seen += 1
    return chosen
