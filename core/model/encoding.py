"""Content-Encoding: decode and encode bodies (gzip, deflate, br, zstd, identity).

A chain such as `gzip, br` is applied in order; decoding undoes it in reverse.
An unknown or corrupt encoding raises `ValueError` naming the coding.
"""
from __future__ import annotations

import gzip
import zlib

import brotli
import zstandard

_zstd_c = zstandard.ZstdCompressor()


def _decode_deflate(data: bytes) -> bytes:
    # Servers send either zlib-wrapped or raw deflate under this name; accept both.
    try:
        return zlib.decompress(data)
    except zlib.error:
        return zlib.decompress(data, -zlib.MAX_WBITS)


def _decode_zstd(data: bytes) -> bytes:
    # Frames without a content size need the streaming reader.
    with zstandard.ZstdDecompressor().stream_reader(data) as r:
        return r.read()


_DECODERS = {
    "gzip": gzip.decompress,
    "x-gzip": gzip.decompress,
    "deflate": _decode_deflate,
    "br": brotli.decompress,
    "zstd": _decode_zstd,
    "identity": lambda d: d,
    "none": lambda d: d,
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


def decode(data: bytes, header: str | None) -> bytes:
    for c in reversed(codings(header)):
        fn = _DECODERS.get(c)
        if fn is None:
            raise ValueError(f"unknown content encoding {c!r}")
        try:
            data = fn(data)
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
