"""Peek at a TLS ClientHello (sans-io): SNI, ALPN, supported versions and cipher suites from the first bytes
a client sends, so the proxy can pick a certificate and a layer before the handshake starts.

This is the one place we parse TLS bytes by hand (STYLE, principle 1); the handshake itself is left to
`ssl.SSLObject`. Only the TLS 1.0-1.3 record format is understood, not the SSLv2-compatible hello.
"""
from __future__ import annotations

from dataclasses import dataclass, field

MAX_SIZE = 64 * 1024
"""Bytes of records we are willing to buffer for one ClientHello; real ones are well under 2 KiB (or ~10 with PQ
key shares)."""
MAX_RECORD = 2**14 + 2048
"""RFC 8446 §5.1 caps plaintext records at 2^14; a little slack for lenient peers."""

CONTENT_TYPE_HANDSHAKE = 22
HANDSHAKE_CLIENT_HELLO = 1
EXT_SERVER_NAME = 0
EXT_ALPN = 16
EXT_SUPPORTED_VERSIONS = 43


class ClientHelloError(ValueError):
    """The bytes are not (the start of) a valid TLS ClientHello."""


@dataclass(frozen=True)
class ClientHello:
    sni: str | None
    """The host_name from the server_name extension, as sent (ASCII), or None."""
    alpn: list[str] = field(default_factory=list)
    """ALPN protocol ids in the client's order, decoded as latin-1 (lossless for arbitrary bytes)."""
    versions: list[int] = field(default_factory=list)
    """supported_versions entries (0x0304 = TLS 1.3), or empty when the extension is absent."""
    cipher_suites: list[int] = field(default_factory=list)
    legacy_version: int = 0
    """The ClientHello's legacy_version field (0x0303 for TLS 1.2 and 1.3 clients)."""
    extensions: list[int] = field(default_factory=list)
    """Extension type ids in the order sent (for fingerprinting and debugging)."""
    raw: bytes = b""
    """The complete TLS records the ClientHello was read from; replay them to the real handshake."""


def is_tls_handshake(prefix: bytes) -> bool:
    """Whether the first bytes a client sent look like a TLS handshake record. Needs at least 2 bytes."""
    if len(prefix) < 2 or prefix[0] != CONTENT_TYPE_HANDSHAKE or prefix[1] != 3:
        return False
    return len(prefix) < 3 or prefix[2] <= 4


def parse_client_hello(data: bytes) -> ClientHello | None:
    """Parse the ClientHello at the start of `data`, which may span several handshake records.

    Returns None while more bytes are needed, raises `ClientHelloError` as soon as the bytes cannot be a
    ClientHello (including one larger than `MAX_SIZE`). Bytes after the records that hold the hello are ignored.
    """
    data = bytes(data)
    handshake = bytearray()
    need: int | None = None  # total handshake bytes (header + body), once the header is known
    pos = 0
    while need is None or len(handshake) < need:
        if pos + 5 > len(data):
            _check_record_header(data[pos:])
            return None
        _check_record_header(data[pos:pos + 5])
        length = int.from_bytes(data[pos + 3:pos + 5], "big")
        if length == 0:
            raise ClientHelloError("empty handshake record")
        if length > MAX_RECORD:
            raise ClientHelloError(f"TLS record of {length} bytes exceeds the maximum of {MAX_RECORD}")
        end = pos + 5 + length
        if end > MAX_SIZE:
            raise ClientHelloError(f"ClientHello exceeds {MAX_SIZE} bytes")
        if not handshake:  # the first payload byte, even of a partial record, decides the message type
            _check_handshake_start(data[pos + 5:end])
        if end > len(data):
            return None
        handshake += data[pos + 5:end]
        pos = end
        if need is None and len(handshake) >= 4:
            need = 4 + int.from_bytes(handshake[1:4], "big")
            if need > MAX_SIZE:
                raise ClientHelloError(f"ClientHello of {need} bytes exceeds {MAX_SIZE}")
    return _parse_body(bytes(handshake[4:need]), data[:pos])


def _check_record_header(header: bytes) -> None:
    """Validate as much of a record header as is present."""
    if len(header) >= 1 and header[0] != CONTENT_TYPE_HANDSHAKE:
        raise ClientHelloError(f"not a TLS handshake record (content type {header[0]})")
    if len(header) >= 2 and header[1] != 3:
        raise ClientHelloError(f"unknown TLS record version {header[1]}.{header[2] if len(header) > 2 else '?'}")


def _check_handshake_start(handshake: bytes | bytearray) -> None:
    if handshake and handshake[0] != HANDSHAKE_CLIENT_HELLO:
        raise ClientHelloError(f"first handshake message is type {handshake[0]}, not a ClientHello")


class _Reader:
    """Bounds-checked big-endian reads over one buffer; every overrun is a ClientHelloError."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.remaining():
            raise ClientHelloError(f"truncated {self.what}: needs {n} bytes, {self.remaining()} left")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def take_all(self) -> bytes:
        return self.take(self.remaining())

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> _Reader:
        """A reader over the next length-prefixed vector."""
        return _Reader(self.take(self.uint(length_bytes)), self.what)

    def expect_end(self) -> None:
        if self.remaining():
            raise ClientHelloError(f"{self.remaining()} unexpected trailing bytes in {self.what}")


def _parse_body(body: bytes, raw: bytes) -> ClientHello:
    r = _Reader(body, "ClientHello")
    legacy_version = r.uint(2)
    if legacy_version >> 8 != 3:
        raise ClientHelloError(f"unknown ClientHello version {legacy_version:#06x}")
    r.take(32)  # random
    session_id = r.vector(1)
    if session_id.remaining() > 32:
        raise ClientHelloError("session id longer than 32 bytes")
    suites = r.vector(2)
    if suites.remaining() < 2 or suites.remaining() % 2:
        raise ClientHelloError("malformed cipher suite list")
    cipher_suites = [suites.uint(2) for _ in range(suites.remaining() // 2)]
    if r.vector(1).remaining() < 1:
        raise ClientHelloError("empty compression method list")
    sni: str | None = None
    alpn: list[str] = []
    versions: list[int] = []
    ext_types: list[int] = []
    if r.remaining():  # extensions are optional (pre-TLS 1.2 hellos may omit the block)
        exts = r.vector(2)
        r.expect_end()
        while exts.remaining():
            ext_type = exts.uint(2)
            ext = exts.vector(2)
            if ext_type in ext_types:
                raise ClientHelloError(f"duplicate extension {ext_type}")
            ext_types.append(ext_type)
            ext.what = f"extension {ext_type}"
            if ext_type == EXT_SERVER_NAME:
                sni = _parse_sni(ext)
            elif ext_type == EXT_ALPN:
                alpn = _parse_alpn(ext)
            elif ext_type == EXT_SUPPORTED_VERSIONS:
                versions = _parse_versions(ext)
    return ClientHello(sni=sni, alpn=alpn, versions=versions, cipher_suites=cipher_suites,
                       legacy_version=legacy_version, extensions=ext_types, raw=raw)


def _parse_sni(ext: _Reader) -> str | None:
    # An empty extension is legal in a ServerHello; from a client it means nothing useful.
    if not ext.remaining():
        return None
    names = ext.vector(2)
    ext.expect_end()
    sni: str | None = None
    while names.remaining():
        name_type = names.uint(1)
        name = names.vector(2).take_all()
        if name_type == 0 and sni is None:
            if not name or b"\x00" in name:
                raise ClientHelloError("empty or NUL-containing server name")
            try:
                sni = name.decode("ascii")
            except UnicodeDecodeError:
                raise ClientHelloError("server name is not ASCII") from None
    return sni


def _parse_alpn(ext: _Reader) -> list[str]:
    protocols = ext.vector(2)
    ext.expect_end()
    alpn: list[str] = []
    while protocols.remaining():
        proto = protocols.vector(1).take_all()
        if not proto:
            raise ClientHelloError("empty ALPN protocol id")
        alpn.append(proto.decode("latin-1"))
    return alpn


def _parse_versions(ext: _Reader) -> list[int]:
    versions = ext.vector(1)
    ext.expect_end()
    if versions.remaining() % 2:
        raise ClientHelloError("malformed supported_versions list")
    return [versions.uint(2) for _ in range(versions.remaining() // 2)]
