"""Content-Encoding: decode and encode bodies (gzip, deflate, br, zstd, identity).

A chain such as `gzip, br` is applied in order; decoding undoes it in reverse.
An unknown or corrupt encoding raises `ValueError` naming the coding.

Decoding is bounded: every decoder streams and stops as soon as its output (of any step of a chain)
would exceed `decode_limit` bytes, raising `BodyTooLarge`, so a decompression bomb never costs more
than about the limit in memory. The flow model has no access to options, so the limit is this
module's setting: `set_decode_limit(n)` (None: no limit). The runtime sets it from the `decode_limit`
option whenever that option changes (`interpose.runtime.options.core_options`); the default matches
the option's (32 MiB).
"""
from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import brotli
import zstandard

from interpose.errors import InterposeError
from interpose.model.units import human_size

_zstd_c = zstandard.ZstdCompressor()

DEFAULT_DECODE_LIMIT = 32 * 1024 * 1024
_limit: int | None = DEFAULT_DECODE_LIMIT
_CHUNK = 1 << 20


class BodyTooLarge(InterposeError):
    """A body whose decoded size exceeds the `decode_limit` option (`size` is its encoded size)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"body too large to decode: {human_size(size)} encoded inflates past the decode_limit of "
            f"{human_size(limit)} (raise it with --set decode_limit=SIZE)"
        )
        self.size = size
        self.limit = limit


class _Over(Exception):
    """Raised inside a decoder when its output passes the limit."""


def set_decode_limit(limit: int | None) -> None:
    """Bytes a decoded body (and each step of a chain) may have; None: no limit."""
    global _limit
    _limit = limit


def decode_limit() -> int | None:
    return _limit


def _inflate(data: bytes, wbits: int, limit: int | None, members: bool) -> bytes:
    # With a limit, output comes in steps of at most 1 MiB, so a bomb is stopped holding ~the limit.
    out: list[bytes] = []
    total = 0
    d = zlib.decompressobj(wbits)
    buf = data
    while True:
        step = 0 if limit is None else min(_CHUNK, limit + 1 - total)  # 0: no cap on this call
        chunk = d.decompress(buf, step)
        total += len(chunk)
        out.append(chunk)
        if limit is not None and total > limit:
            raise _Over
        if d.eof:
            rest = d.unused_data
            if not (members and rest.strip(b"\0")):
                return b"".join(out)
            d = zlib.decompressobj(wbits)  # gzip: another member follows
            buf = rest
            continue
        buf = d.unconsumed_tail
        if (step == 0 or len(chunk) < step) and not buf:  # all input used, no more output, no end
            raise ValueError("incomplete or truncated stream")


def _decode_gzip(data: bytes, limit: int | None) -> bytes:
    return _inflate(data, 16 + zlib.MAX_WBITS, limit, True)


def _decode_deflate(data: bytes, limit: int | None) -> bytes:
    # Servers send either zlib-wrapped or raw deflate under this name; accept both.
    try:
        return _inflate(data, zlib.MAX_WBITS, limit, False)
    except zlib.error:
        return _inflate(data, -zlib.MAX_WBITS, limit, False)


def _decode_br(data: bytes, limit: int | None) -> bytes:
    d = brotli.Decompressor()
    step = _CHUNK if limit is None else min(_CHUNK, limit + 1)
    out = [d.process(data, output_buffer_limit=step)]
    total = len(out[0])
    while not d.is_finished():
        if limit is not None and total > limit:
            raise _Over
        chunk = d.process(b"", output_buffer_limit=step)
        if not chunk:  # no output and not finished: it wants input there is not
            raise ValueError("incomplete or truncated stream")
        total += len(chunk)
        out.append(chunk)
    if limit is not None and total > limit:
        raise _Over
    return b"".join(out)


def _decode_zstd(data: bytes, limit: int | None) -> bytes:
    # Frames without a content size need the streaming reader.
    out: list[bytes] = []
    total = 0
    with zstandard.ZstdDecompressor().stream_reader(data) as r:
        while chunk := r.read(_CHUNK):
            total += len(chunk)
            if limit is not None and total > limit:
                raise _Over
            out.append(chunk)
    return b"".join(out)


def _identity(data: bytes, limit: int | None) -> bytes:
    return data


_DECODERS: dict[str, Callable[[bytes, int | None], bytes]] = {
    "gzip": _decode_gzip,
    "x-gzip": _decode_gzip,
    "deflate": _decode_deflate,
    "br": _decode_br,
    "zstd": _decode_zstd,
    "identity": _identity,
    "none": _identity,
}

_ENCODERS = {
    "gzip": lambda d: gzip.compress(d, compresslevel=6, mtime=0),
    "x-gzip": lambda d: gzip.compress(d, compresslevel=6, mtime=0),
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": _zstd_c.compress,
    "identity": lambda d: d,
    "none": lambda d: d,
}


def codings(header: str | None) -> list[str]:
    """`"gzip, br"` → `["gzip", "br"]`, lowercased, empties dropped."""
    if not header:
        return []
    return [c.strip().lower() for c in header.split(",") if c.strip()]


def decode(data: bytes, header: str | None, limit: int | None | bool = True) -> bytes:
    """Undo the Content-Encoding chain. `limit` is the byte cap (True: the module's `decode_limit()`).

    Raises `BodyTooLarge` when an output would pass the limit, `ValueError` when it cannot decode.
    """
    cap = _limit if limit is True else (None if limit is False else limit)
    size = len(data)
    for c in reversed(codings(header)):
        fn = _DECODERS.get(c)
        if fn is None:
            raise ValueError(f"unknown content encoding {c!r}")
        try:
            data = fn(data, cap)
        except _Over:
            assert cap is not None
            raise BodyTooLarge(size, cap) from None
        except Exception as e:
            raise ValueError(f"cannot decode {c} body: {e}") from e
    return data


def encode(data: bytes, header: str | None) -> bytes:
    for c in codings(header):
        fn = _ENCODERS.get(c)
        if fn is None:
            raise ValueError(f"unknown content encoding {c!r}")
        data = fn(data)
    return data


def supported(header: str | None) -> bool:
    return all(c in _DECODERS for c in codings(header))
