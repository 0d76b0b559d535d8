"""Server connections of one client connection: HTTP/1 ones used one request at a time and kept
alive between requests, HTTP/2 ones shared by every request to the same place. With `server_reuse` on,
idle HTTP/1 ones outlive the client connection in the proxy's `SharedPool` (layers/shared.py), and a new
client connection takes one from there before it connects."""
from __future__ import annotations

from typing import TYPE_CHECKING

from interpose.http import HTTPFlow
from interpose.model.connection import Server
from interpose.proxy import upstream
from interpose.proxy.layer import Context, Stream
from interpose.proxy.layers import h1wire
from interpose.proxy.layers.h1server import H1Server
from interpose.proxy.layers.shared import SharedPool, idle_ok, shared_key
from interpose.runtime.options import parse_size

if TYPE_CHECKING:
    from interpose.proxy.layers.h2server import H2Server, H2ServerStream  # h2 is imported on the first HTTP/2 server

Address = tuple[str, int]
Key = tuple[Address, "Address | None", bool]
"""(address, via, tls)"""


class ServerPool:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.idle: dict[Key, list[H1Server]] = {}
        self.busy: set[H1Server] = set()
        self.h2: dict[Key, H2Server] = {}
        self.head_limit = parse_size(ctx.options.header_size_limit) or 65536

    def route(self, flow: HTTPFlow) -> tuple[Key, bool]:
        """Where this request goes: ((address, via, tls), absolute_form)."""
        req, mode = flow.request, self.ctx.mode
        if mode.kind == "upstream":
            if req.scheme == "http" and self.ctx.tunnel is None:
                # (an https:// upstream proxy's own TLS is `upstream.connect`'s business, not the request's)
                return (mode.address, None, False), True
            return ((req.host, req.port), mode.address, req.scheme == "https"), False
        return ((req.host, req.port), None, req.scheme == "https"), False

    async def get(self, flow: HTTPFlow, fresh: bool = False) -> H1Server | H2ServerStream:
        """A server connection for `flow`: one this client connection keeps, one the proxy keeps idle, or a
        new one. `fresh`: a new one (a kept one turned out to be closed by the server)."""
        key, absolute = self.route(flow)
        h2c = self._h2c_target(key)
        upgrade = h2c and h1wire.is_upgrade(flow.request)
        h2 = None if upgrade else self.h2.get(key)
        if h2 is not None:
            if h2.alive:
                return self._use(flow, h2.server, h2.exchange())
            del self.h2[key]
            await self._close_h2(h2)
        # Idle HTTP/1 connections to an h2c server are the ones upgrades left behind (refused): for upgrades only.
        idle = self.idle.get(key, []) if (upgrade or not h2c) and not fresh else []
        while idle:
            h = idle.pop()
            if h.stream.closed or h.stream.at_eof():
                await upstream.disconnect(self.ctx, h.server, h.stream)
                continue
            self.busy.add(h)
            return self._use(flow, h.server, h)
        address, via, tls = key
        alpn = ("h2", "http/1.1") if tls and not absolute else ("http/1.1",) if tls else ()
        sni = self._sni(flow)
        if not fresh and not h2c:
            reused = self.reuse(key, sni, alpn, absolute)
            if reused is not None:
                self.idle[key].remove(reused)
                self.busy.add(reused)
                return self._use(flow, reused.server, reused)
        server = flow.server_conn if flow.server_conn.timestamp_tcp_setup is None else Server()
        server.address, server.via = address, via
        self.ctx.server_conn = server
        flow.server_conn = server
        stream = await upstream.connect(self.ctx, server, tls=tls, sni=sni, alpn=alpn)
        if h2c and not upgrade:
            server.alpn = "h2"  # reverse:h2c://: HTTP/2 in clear text, with prior knowledge
        conn = await self.adopt(key, server, stream, absolute, sni=sni, alpn=alpn, shareable=not h2c)
        if not isinstance(conn, H1Server):
            return self._use(flow, server, conn.exchange())
        self.idle[key].remove(conn)
        self.busy.add(conn)
        return self._use(flow, server, conn)

    def _h2c_target(self, key: Key) -> bool:
        """Is `key` reverse:h2c://'s server? Requests go to it over HTTP/2 with prior knowledge, except an
        HTTP/1.1 upgrade (WebSocket): HTTP/2 has no Upgrade, so that one gets an HTTP/1.1 connection of its
        own, which h2c servers that take WebSockets accept (docs/modes.md)."""
        mode = self.ctx.mode
        return mode.h2c and not key[2] and key[0] == mode.address and key[1] is None

    def _sni(self, flow: HTTPFlow) -> str:
        """The name a new TLS connection for `flow` asks for: the request's host, except inside an intercepted
        tunnel to an address (transparent mode, CONNECT to an IP) where the client named the server by SNI,
        as the first connection did (`TlsLayer`)."""
        req, ctx = flow.request, self.ctx
        client_sni = getattr(ctx.client_conn.tls, "sni", None)
        if (isinstance(client_sni, str) and ctx.mode.kind != "reverse" and ctx.tunnel == (req.host, req.port)
                and upstream.invalid_host(client_sni) is None):  # (a hostile SNI is refused by connect, saying so)
            return client_sni
        return req.host

    def _use(self, flow: HTTPFlow, server: Server, side: H1Server | H2ServerStream) -> H1Server | H2ServerStream:
        flow.server_conn = server
        self.ctx.server_conn = server
        return side

    def _shared(self) -> SharedPool | None:
        """The proxy's pool of idle connections, when `server_reuse` is on."""
        shared: SharedPool | None = self.ctx.shared
        if shared is None:
            return None
        if not self.ctx.options.server_reuse:
            shared.flush()  # turned off: let the idle ones go
            return None
        return shared

    def reuse(self, key: Key, sni: str | None, alpn: tuple[str, ...], absolute: bool = False) -> H1Server | None:
        """An idle connection the proxy kept from an earlier client connection, taken into this pool (idle),
        or None. The TLS layer asks before it connects, `get` before a request connects."""
        shared = self._shared()
        if shared is None or not shared.count:
            return None
        share = shared_key(self.ctx, key[0], key[1], key[2], sni, alpn, absolute)
        h = shared.take(share) if share is not None else None
        if h is None:
            return None
        h.key = key
        h.uses = max(h.uses, 1)  # it carried requests before: one that meets a closed connection is retried
        self.idle.setdefault(key, []).append(h)
        self.ctx.server_conn = h.server
        return h

    async def adopt(self, key: Key, server: Server, stream: Stream, absolute: bool = False, *, sni: str | None = None,
                    alpn: tuple[str, ...] = (), shareable: bool = True) -> H1Server | H2Server:
        """Take an open connection into the pool (the TLS layer connects before any request). `shareable`: it
        may outlive this client connection (`sni` and `alpn` are what it was opened with)."""
        if server.alpn == "h2":
            from interpose.proxy.layers.h2server import H2Server

            h2 = H2Server(server, stream, self.ctx.options.read_timeout_s)
            await h2.start()
            self.h2[key] = h2
            return h2
        h = H1Server(server, stream, absolute, self.head_limit, self.ctx.options.read_timeout_s)
        h.key = key
        if (shareable and self.ctx.shared is not None and server.address == key[0] and server.via == key[1]
                and not server.connect_headers):
            # (not when an addon sent it elsewhere, or set CONNECT headers, in serverconnect: that was decided
            # for this client)
            h.share = shared_key(self.ctx, key[0], key[1], key[2], sni, alpn, absolute)
        self.idle.setdefault(key, []).append(h)
        return h

    async def release(self, flow: HTTPFlow, side: H1Server | H2ServerStream, ok: bool) -> None:
        if not isinstance(side, H1Server):  # a stream of a shared HTTP/2 connection
            if not ok:
                side.abort()
            return
        if ok and side.switched:
            return  # stays busy until the next layer takes it (take_switched)
        self.busy.discard(side)
        if side.share is not None and connection_bound_auth(flow):
            side.share = None  # pinned to this client: its server authenticated the connection, not a request
        if ok and side.reusable:
            side.conn.start_next_cycle()
            self.idle.setdefault(side.key, []).append(side)
        else:
            await upstream.disconnect(self.ctx, side.server, side.stream)

    def take_switched(self) -> H1Server | None:
        """The connection that just switched protocols (101), handed to another layer."""
        for h in list(self.busy):
            if h.switched:
                self.busy.discard(h)
                return h
        return None

    async def _close_h2(self, h2: H2Server) -> None:
        await h2.close()
        await upstream.disconnect(self.ctx, h2.server, h2.stream)

    async def close(self) -> None:
        shared = self._shared()
        for conns in self.idle.values():
            for h in conns:
                if shared is not None and h.share is not None and idle_ok(h):
                    h.park()
                    shared.put(h.share, h)
                else:
                    await upstream.disconnect(self.ctx, h.server, h.stream)
        for h in list(self.busy):
            await upstream.disconnect(self.ctx, h.server, h.stream)
        for h2 in self.h2.values():
            await self._close_h2(h2)
        self.idle.clear()
        self.busy.clear()
        self.h2.clear()


_BOUND_SCHEMES = frozenset({b"ntlm", b"negotiate"})
"""Authentication schemes that authenticate the connection rather than each request (RFC 4559, MS-NTHT)."""
_REQUEST_AUTH = frozenset({b"authorization", b"proxy-authorization"})
_ALL_AUTH = _REQUEST_AUTH | {b"www-authenticate", b"proxy-authenticate"}
_LENGTHS = frozenset(len(n) for n in _ALL_AUTH)


def connection_bound_auth(flow: HTTPFlow) -> bool:
    """Whether `flow` took part in NTLM or Negotiate authentication (its request carried such credentials, or
    its 401/407 asked for them): the server connection then belongs to this client and is never shared.
    (Runs after every exchange: one pass over the raw request fields, the response's only on a 401/407.)"""
    names = _REQUEST_AUTH
    fields = flow.request.headers.fields
    resp = flow.response
    if resp is not None and resp.status_code in (401, 407):
        names = _ALL_AUTH
        fields = fields + resp.headers.fields
    for name, value in fields:
        if len(name) in _LENGTHS and name.lower() in names:
            for part in value.split(b","):
                if part.strip().split(b" ", 1)[0].lower() in _BOUND_SCHEMES:
                    return True
    return False


def get_pool(ctx: Context) -> ServerPool:
    """The connection's pool, made on first use and shared by the layers that follow."""
    if ctx.pool is None:
        ctx.pool = ServerPool(ctx)
    return ctx.pool
