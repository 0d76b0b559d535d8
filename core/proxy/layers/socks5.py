"""SOCKS5 (RFC 1928) in front of everything else: read the greeting and the CONNECT request, answer,
then treat the connection like a CONNECT tunnel (TLS, HTTP or TCP, told apart by its first bytes).

Only CONNECT is supported. Without `proxyauth` the client must offer "no authentication"; with it, only
username/password (RFC 1929) is accepted, checked against the same option as HTTP proxy authentication
(`user:pass`, `any`, `@htpasswd`): other methods get 0xFF, wrong credentials a non-zero status, and the
connection closes. A domain name (1 to 255 bytes) must be a valid host name (general failure, 0x01,
otherwise) that resolves (host unreachable, 0x04, otherwise) before the client is told it succeeded.
This is our own byte-level code (STYLE allows it for SOCKS5), bounded and checked at every step.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct

from interpose.proxy import upstream
from interpose.proxy.layer import Layer, choose
from interpose.proxy.layers import tunnel

VERSION = 5
NO_AUTH, USER_PASS, NO_ACCEPTABLE = 0x00, 0x02, 0xFF
AUTH_VERSION, AUTH_OK, AUTH_FAILED = 0x01, 0x00, 0x01
CMD_CONNECT = 0x01
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 0x01, 0x03, 0x04
REP_OK, REP_FAILURE, REP_HOST_UNREACHABLE, REP_CMD_UNSUPPORTED, REP_ATYP_UNSUPPORTED = 0x00, 0x01, 0x04, 0x07, 0x08


class Socks5Error(Exception):
    pass


class Socks5Layer(Layer):
    kind = "socks5"

    async def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = await self.ctx.client.read(n - len(data))
            if not chunk:
                raise Socks5Error("client closed the connection during the SOCKS5 handshake")
            data += chunk
        if len(data) > n:  # a client that sent ahead: keep the rest for the next layer
            self.ctx.client.unread(data[n:])
            data = data[:n]
        return data

    def _reply(self, code: int) -> None:
        self.ctx.client.write(bytes([VERSION, code, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0]))

    async def run(self) -> None:
        ctx = self.ctx
        try:
            target = await self._handshake()
        except Socks5Error as e:
            ctx.log(f"{ctx.client_conn.address}: SOCKS5: {e}", "info")
            try:  # let the client read the refusal before the connection closes
                await ctx.client.drain()
            except OSError:
                pass
            return
        ctx.tunnel = target
        self._reply(REP_OK)
        await ctx.client.drain()
        layer = await tunnel.detect(ctx)
        await (await choose(layer)).run()

    async def _authenticate(self, methods: bytes) -> None:
        """Choose the method; with proxyauth set, run the RFC 1929 username/password exchange."""
        client = self.ctx.client
        if not self.ctx.options.proxyauth:
            if NO_AUTH not in methods:
                client.write(bytes([VERSION, NO_ACCEPTABLE]))
                raise Socks5Error("client offers no method without authentication")
            client.write(bytes([VERSION, NO_AUTH]))
            return
        if USER_PASS not in methods:
            client.write(bytes([VERSION, NO_ACCEPTABLE]))
            raise Socks5Error("client offers no username/password authentication, which proxyauth requires")
        client.write(bytes([VERSION, USER_PASS]))
        ver, ulen = await self._read(2)
        if ver != AUTH_VERSION:
            client.write(bytes([AUTH_VERSION, AUTH_FAILED]))
            raise Socks5Error(f"bad username/password version byte {ver}")
        user = await self._read(ulen) if ulen else b""
        (plen,) = await self._read(1)
        password = await self._read(plen) if plen else b""
        auth = self.ctx.addons.get("proxyauth")
        login = getattr(auth, "socks5_login", None)
        ok = False
        if login is not None:
            try:
                ok = bool(login(self.ctx.client_conn, user, password))
            except Exception:  # fail closed
                ok = False
        if not ok:
            client.write(bytes([AUTH_VERSION, AUTH_FAILED]))
            raise Socks5Error("wrong username or password")
        client.write(bytes([AUTH_VERSION, AUTH_OK]))

    async def _handshake(self) -> tuple[str, int]:
        ver, nmethods = await self._read(2)
        if ver != VERSION:
            raise Socks5Error(f"not a SOCKS5 client (version byte {ver})")
        methods = await self._read(nmethods) if nmethods else b""
        await self._authenticate(methods)
        ver, cmd, _, atyp = await self._read(4)
        if ver != VERSION:
            raise Socks5Error(f"bad version byte {ver} in request")
        if cmd != CMD_CONNECT:
            self._reply(REP_CMD_UNSUPPORTED)
            raise Socks5Error(f"command {cmd} is not supported (only CONNECT)")
        domain = False
        if atyp == ATYP_IPV4:
            host = str(ipaddress.IPv4Address(await self._read(4)))
        elif atyp == ATYP_IPV6:
            host = str(ipaddress.IPv6Address(await self._read(16)))
        elif atyp == ATYP_DOMAIN:
            (length,) = await self._read(1)
            host = self._domain(await self._read(length) if length else b"")
            domain = True
        else:
            self._reply(REP_ATYP_UNSUPPORTED)
            raise Socks5Error(f"address type {atyp} is not supported")
        (port,) = struct.unpack("!H", await self._read(2))
        if port == 0:
            self._reply(REP_FAILURE)
            raise Socks5Error("port 0")
        if domain:
            await self._resolve(host, port)
        return host, port

    def _domain(self, raw: bytes) -> str:
        """The name a client sent: ASCII, or UTF-8 that IDNA turns into ASCII; a refusal (0x01) otherwise."""
        try:
            host = raw.decode("utf-8")
        except UnicodeDecodeError:
            host = ""
            reason = f"host name of {len(raw)} bytes is not UTF-8"
        else:
            reason = upstream.invalid_host(host) or ""
        if not raw:
            reason = "empty host name"
        if reason:
            self._reply(REP_FAILURE)
            raise Socks5Error(reason)
        return host

    async def _resolve(self, host: str, port: int) -> None:
        """Answer host unreachable (0x04) for a name that does not resolve, as a SOCKS5 server should."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.ctx.options.connect_timeout_s):
                await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError, UnicodeError, ValueError) as e:
            self._reply(REP_HOST_UNREACHABLE)
            why = "timed out" if isinstance(e, TimeoutError) else "does not resolve"
            raise Socks5Error(f"host name {host[:64]!r} {why}") from None
