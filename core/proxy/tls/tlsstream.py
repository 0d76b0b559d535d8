"""TLS over an existing stream with the stdlib's `ssl.SSLObject` and `MemoryBIO` (sans-io TLS).

Used for the client side of interception: the ClientHello has already been peeked from the socket,
so the handshake must start from bytes we hold, which `asyncio`'s `start_tls` cannot do.
`TlsStream` offers the same methods as `interpose.proxy.layer.Stream`, so layers don't know the difference.
"""
from __future__ import annotations

import ssl

from interpose.proxy.layer import Stream, peek_more


class TlsStream:
    def __init__(self, raw: Stream, context: ssl.SSLContext, server_side: bool,
                 server_hostname: str | None = None) -> None:
        self.raw = raw
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(self.incoming, self.outgoing, server_side=server_side,
                                       server_hostname=server_hostname)
        self.pending = b""
        self._eof = False
        if raw.pending:  # bytes already peeked off the socket start the handshake
            self.incoming.write(raw.pending)
            raw.pending = b""

    def _flush(self) -> None:
        if self.outgoing.pending:
            self.raw.write(self.outgoing.read())

    async def _fill(self) -> bool:
        """Move more ciphertext from the socket into the TLS object. False at EOF."""
        data = await self.raw.read()
        if not data:
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    async def handshake(self) -> None:
        while True:
            try:
                self.sslobj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                await self.raw.drain()
                if not await self._fill():
                    raise ConnectionResetError("peer closed the connection during the TLS handshake") from None
        self._flush()
        await self.raw.drain()

    async def read(self, n: int = 65536) -> bytes:
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        return await self._read_decrypted(n)

    async def _read_decrypted(self, n: int) -> bytes:
        while True:
            try:
                return self.sslobj.read(n)
            except ssl.SSLWantReadError:
                self._flush()
                if not await self._fill():
                    try:
                        return self.sslobj.read(n)
                    except (ssl.SSLWantReadError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
                        self._eof = True
                        return b""
            except ssl.SSLZeroReturnError:
                self._eof = True
                return b""
            except ssl.SSLError as e:
                raise ConnectionResetError(f"TLS error: {e.reason or e}") from None

    def unread(self, data: bytes) -> None:
        self.pending = data + self.pending

    async def peek(self, n: int, timeout: float | None = None) -> bytes:
        """As `Stream.peek`: everything that arrived (at least n bytes unless EOF or the timeout came first)."""
        self.pending = await peek_more(self.pending, n, timeout, self._read_decrypted)
        return self.pending

    def write(self, data: bytes) -> None:
        if data and not self.raw.closed:
            try:
                self.sslobj.write(data)
            except ssl.SSLError as e:
                raise ConnectionResetError(f"TLS error: {e.reason or e}") from None
            self._flush()

    async def drain(self) -> None:
        await self.raw.drain()

    def write_buffer_size(self) -> int:
        return self.raw.write_buffer_size()

    def write_eof(self) -> None:
        """TLS has no half-close that survives in practice: send close_notify and close."""
        self.close()

    def close(self) -> None:
        if not self.raw.closed:
            try:
                self.sslobj.unwrap()
            except (ssl.SSLError, ValueError):
                pass
            self._flush()
            self.raw.close()

    @property
    def closed(self) -> bool:
        return self.raw.closed

    def at_eof(self) -> bool:
        return self._eof and not self.pending

    def extra(self, name: str) -> object:
        if name == "ssl_object":
            return self.sslobj
        return self.raw.extra(name)
