"""Idle HTTP/1 server connections kept between client connections (option `server_reuse`, default on).

When a client connection ends, the idle server connections it opened are not closed but parked here, filed
under everything that makes two connections interchangeable (`shared_key`): the address, the upstream proxy
and how it is spoken to, TLS or not, the name sent as SNI, the ALPN offer, the client certificate, the
version limits and the verification settings (what `toserver.context_for` makes a context of). The next client
connection that needs the same key takes the newest one instead of connecting: no TCP connect, no TLS
handshake towards the server, which is most of what a new intercepted HTTPS connection costs.

Rules (the pool's caller, `ServerPool`, decides what may come here): only HTTP/1 connections that finished
their last exchange cleanly (never after an error, a `Connection: close`, a streamed or spliced body or a
protocol switch), never one pinned to its client by connection-bound authentication (NTLM, Negotiate), never
one whose address an addon changed in `serverconnect`. A parked connection is dropped once idle for
`IDLE_S`, when its key already has `PER_KEY` idle ones (the oldest goes), and when the server closed it or
sent anything while it was idle (checked before reuse). `serverconnect`/`serverdisconnect` fire once per real
connection: a reused connection is announced by no hook, its flows carry the same `server_conn`.
"""
from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from interpose.proxy import upstream
from interpose.proxy.tls import toserver

if TYPE_CHECKING:
    from interpose.proxy.layer import Context
    from interpose.proxy.layers.h1server import H1Server

IDLE_S = 30.0
"""Seconds a parked connection is kept (many servers close idle connections after 5-75 s; a request that
meets a connection the server has just closed is retried on a new one)."""
PER_KEY = 32
"""Idle connections kept per key (32: a busy proxy's clients open connections to one server in bursts)."""
TOTAL = 512
"""Idle connections kept at most, over all keys (the least recently parked go first)."""


def shared_key(ctx: Context, address: tuple[str, int], via: tuple[str, int] | None, tls: bool,
               sni: str | None, alpn: tuple[str, ...], absolute: bool) -> tuple[Any, ...] | None:
    """What a connection for these parameters must match to be reused, or None when none may be (a client
    certificate that cannot be used: connecting says why)."""
    opts = ctx.options
    proxy_tls = upstream.proxy_speaks_tls(ctx, via or address)
    if not tls:
        return (address, via, False, None, absolute, proxy_tls, bool(opts.ssl_insecure),
                opts.ssl_verify_upstream_trusted_ca)
    # What `toserver.context_for` makes a context of, but the key log file: a kept connection logged its
    # secrets at its handshake, and reading the environment twice per connection shows in profiles.
    name = sni or address[0]
    try:
        cert = toserver.client_cert_path(opts.client_certs, name)
    except toserver.ClientCertError:
        return None
    return (address, via, True, name, absolute, proxy_tls, bool(opts.ssl_insecure),
            opts.ssl_verify_upstream_trusted_ca, alpn, cert, opts.tls_version_server_min, opts.tls_version_server_max)


def idle_ok(h: H1Server) -> bool:
    """Whether a parked connection can carry a request: open, not at EOF, and nothing unread from the server
    (a server sends nothing between exchanges; bytes there mean it is closing or confused)."""
    stream = h.stream
    if stream.closed or stream.at_eof() or stream.pending:
        return False
    buffered = getattr(getattr(stream, "reader", None), "_buffer", None)
    return not buffered and not h.conn.trailing_data[0]


class _Owner:
    """What `upstream.disconnect` needs of a context: the addons to tell."""

    def __init__(self, addons: Any) -> None:
        self.addons = addons


class SharedPool:
    """The idle server connections of one proxy server, shared by its client connections."""

    def __init__(self, addons: Any) -> None:
        self.owner = _Owner(addons)
        self.idle: OrderedDict[tuple[Any, ...], list[tuple[float, H1Server]]] = OrderedDict()
        self.count = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self.reused = 0
        """Connections handed out again (for tests and the benchmark's notes)."""

    def take(self, key: tuple[Any, ...]) -> H1Server | None:
        """The newest usable idle connection for `key` (dead ones found on the way are closed), or None."""
        conns = self.idle.get(key)
        while conns:
            _, h = conns.pop()
            self.count -= 1
            if idle_ok(h):
                if not conns:
                    del self.idle[key]
                self.reused += 1
                return h
            self._close_later(h)
        if conns is not None:
            del self.idle[key]
        return None

    def put(self, key: tuple[Any, ...], h: H1Server) -> None:
        """Park `h` (finished its exchange cleanly, or never used) for the next client connection."""
        loop = asyncio.get_running_loop()
        conns = self.idle.setdefault(key, [])
        self.idle.move_to_end(key)
        conns.append((loop.time(), h))
        self.count += 1
        if len(conns) > PER_KEY:
            self._close_later(conns.pop(0)[1])
            self.count -= 1
        while self.count > TOTAL:
            oldest_key = next(iter(self.idle))
            oldest = self.idle[oldest_key]
            self._close_later(oldest.pop(0)[1])
            self.count -= 1
            if not oldest:
                del self.idle[oldest_key]
        if self._timer is None:
            self._timer = loop.call_later(IDLE_S, self._sweep)

    def _sweep(self) -> None:
        """Close what has been idle for IDLE_S or died meanwhile; come back while anything is left."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        first = None
        for key in list(self.idle):
            keep = []
            for since, h in self.idle[key]:
                if now - since >= IDLE_S or not idle_ok(h):
                    self._close_later(h)
                    self.count -= 1
                else:
                    keep.append((since, h))
                    first = since if first is None else min(first, since)
            if keep:
                self.idle[key] = keep
            else:
                del self.idle[key]
        if first is not None:
            self._timer = loop.call_later(max(first + IDLE_S - now, 0.5), self._sweep)

    def _close_later(self, h: H1Server) -> None:
        task = asyncio.get_running_loop().create_task(self._close(h))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, h: H1Server) -> None:
        await upstream.disconnect(self.owner, h.server, h.stream)  # type: ignore[arg-type]  # (only .addons)

    def flush(self) -> None:
        """Close every parked connection in the background."""
        for entries in self.idle.values():
            for _, h in entries:
                self._close_later(h)
        self.idle.clear()
        self.count = 0

    async def close(self) -> None:
        """Close every parked connection (the proxy is stopping, or `server_reuse` was turned off)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        conns = [h for entries in self.idle.values() for _, h in entries]
        self.idle.clear()
        self.count = 0
        for h in conns:
            await self._close(h)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
