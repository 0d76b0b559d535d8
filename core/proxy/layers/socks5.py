"""SOCKS5 (RFC 1928) in front of everything else: read the greeting and the CONNECT request, answer,
then treat the connection like a CONNECT tunnel (TLS, HTTP or TCP, told apart by its first bytes).

Only CONNECT is supported, with no authentication. This is our own byte-level code (STYLE allows it
for SOCKS5), bounded and checked at every step.
"""
from __future__ import annotations

import ipaddress
import struct

from interpose.proxy.layer import Layer, choose
from interpose.proxy.layers import tunnel

VERSION = 5
NO_AUTH, NO_ACCEPTABLE = 0x00, 0xFF
CMD_CONNECT = 0x01
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 0x01, 0x03, 0x04
REP_OK, REP_FAILURE, REP_CMD_UNSUPPORTED, REP_ATYP_UNSUPPORTED = 0x00, 0x01, 0x07, 0x08


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
            return
        ctx.tunnel = target
        self._reply(REP_OK)
        await ctx.client.drain()
        layer = await tunnel.detect(ctx)
        await (await choose(layer)).run()

    async def _handshake(self) -> tuple[str, int]:
        ver, nmethods = await self._read(2)
        if ver != VERSION:
            raise Socks5Error(f"not a SOCKS5 client (version byte {ver})")
        methods = await self._read(nmethods)
        if NO_AUTH not in methods:
            self.ctx.client.write(bytes([VERSION, NO_ACCEPTABLE]))
            raise Socks5Error("client offers no method without authentication")
        self.ctx.client.write(bytes([VERSION, NO_AUTH]))
        ver, cmd, _, atyp = await self._read(4)
        if ver != VERSION:
            raise Socks5Error(f"bad version byte {ver} in request")
        if cmd != CMD_CONNECT:
            self._reply(REP_CMD_UNSUPPORTED)
            raise Socks5Error(f"command {cmd} is not supported (only CONNECT)")
        if atyp == ATYP_IPV4:
            host = str(ipaddress.IPv4Address(await self._read(4)))
        elif atyp == ATYP_IPV6:
            host = str(ipaddress.IPv6Address(await self._read(16)))
        elif atyp == ATYP_DOMAIN:
            (length,) = await self._read(1)
            host = (await self._read(length)).decode("idna", "replace") if length else ""
            if not host:
                self._reply(REP_FAILURE)
                raise Socks5Error("empty host name")
        else:
            self._reply(REP_ATYP_UNSUPPORTED)
            raise Socks5Error(f"address type {atyp} is not supported")
        (port,) = struct.unpack("!H", await self._read(2))
        if port == 0:
            self._reply(REP_FAILURE)
            raise Socks5Error("port 0")
        return host, port
