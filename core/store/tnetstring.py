"""tnetstrings as mitmproxy writes them: a streaming reader (one top-level record at a time) and a writer.

A value is `LENGTH:DATA` followed by one type byte: `,` bytes, `;` text (UTF-8), `#` integer, `^` float,
`!` boolean (`true`/`false`), `~` null (empty), `]` list (the values one after another), `}` dictionary
(key, value, key, value...). A mitmproxy flow file is flow dictionaries one after another.

    for offset, value in records(f):   # raises TNetstringError (with the byte offset) at damage
        ...
    dumps({"a": [1, 2.5, b"x"]})       # b'25:1:a;17:1:1#3:2.5^1:x,]}'

Reading never evaluates anything: every value is built from its type byte. One record is read whole
(its length is its first field), so memory is bounded by the largest record, not the file; a length
beyond the end of the file is reported as truncation before anything is allocated for it.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["MAX_DEPTH", "TNetstringError", "dumps", "parse", "records"]

MAX_DEPTH = 64
"""Nesting deeper than this is refused (a flow is about 6 deep)."""
_MAX_LEN_DIGITS = 12  # up to ~1 TB per value
_MAX_NUMBER_LEN = 400
_INT = re.compile(rb"[-+]?[0-9]+")
_CHUNK = 1 << 20
_FLOAT = re.compile(rb"[-+]?(?:[0-9]+\.?[0-9]*(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?|inf|nan)")


class TNetstringError(ValueError):
    """Damaged or foreign data. `offset` is where in the file (or buffer) it was found; `truncated` says
    the data ended inside a value (as when the writer was stopped mid-record)."""

    def __init__(self, msg: str, offset: int, truncated: bool = False) -> None:
        super().__init__(msg)
        self.msg = msg
        self.offset = offset
        self.truncated = truncated

    def __str__(self) -> str:
        return f"{self.msg} (at byte {self.offset})"


# -- parsing one value from memory ---------------------------------------------------------------------------
def _length(buf: bytes, pos: int, end: int, base: int) -> tuple[int, int]:
    """The length prefix at `pos`: (length, position of the data)."""
    colon = buf.find(b":", pos, min(end, pos + _MAX_LEN_DIGITS + 1))
    if colon < 0:
        if end - pos <= _MAX_LEN_DIGITS and buf[pos:end].isdigit():
            raise TNetstringError("the data ends inside a length", base + pos, truncated=True)
        raise TNetstringError("expected a length followed by ':'", base + pos)
    digits = buf[pos:colon]
    if not digits.isdigit() or not digits.isascii():
        raise TNetstringError(f"expected a length, got {bytes(digits[:20])!r}", base + pos)
    return int(digits), colon + 1


def _value(buf: bytes, pos: int, end: int, depth: int, base: int) -> tuple[Any, int]:
    """The value starting at `pos` (ending at most at `end`) and the position after it."""
    n, start = _length(buf, pos, end, base)
    stop = start + n
    if stop >= end:
        raise TNetstringError(f"a value of {n} bytes runs past the end of its container", base + pos,
                              truncated=stop >= len(buf))
    return _payload(buf, pos, start, stop, depth, base), stop + 1


def _payload(buf: bytes, pos: int, start: int, stop: int, depth: int, base: int) -> Any:
    """The value whose data is `buf[start:stop]` and whose type byte is `buf[stop]` (`pos`: where its
    length began, for messages)."""
    n = stop - start
    kind = buf[stop]
    if kind == 0x2C:  # ,
        return buf[start:stop]
    if kind == 0x3B:  # ;
        try:
            return buf[start:stop].decode("utf-8")
        except UnicodeDecodeError:
            raise TNetstringError("text that is not UTF-8", base + start) from None
    if kind == 0x23:  # #
        raw = buf[start:stop]
        if n > _MAX_NUMBER_LEN or not _INT.fullmatch(raw):
            raise TNetstringError(f"not an integer: {raw[:20]!r}", base + start)
        return int(raw)
    if kind == 0x5E:  # ^
        raw = buf[start:stop]
        if n > _MAX_NUMBER_LEN or not _FLOAT.fullmatch(raw):
            raise TNetstringError(f"not a number: {raw[:20]!r}", base + start)
        return float(raw)
    if kind == 0x21:  # !
        raw = buf[start:stop]
        if raw == b"true":
            return True
        if raw == b"false":
            return False
        raise TNetstringError(f"not a boolean: {raw[:20]!r}", base + start)
    if kind == 0x7E:  # ~
        if n:
            raise TNetstringError("a null with data", base + start)
        return None
    if kind in (0x5D, 0x7D):  # ] }
        if depth >= MAX_DEPTH:
            raise TNetstringError(f"nested deeper than {MAX_DEPTH} levels", base + pos)
        items = []
        i = start
        while i < stop:
            item, i = _value(buf, i, stop, depth + 1, base)
            items.append(item)
        if kind == 0x5D:
            return items
        if len(items) % 2:
            raise TNetstringError("a dictionary with a key but no value", base + start)
        d: dict[Any, Any] = {}
        for k in range(0, len(items), 2):
            key = items[k]
            if not isinstance(key, (str, bytes, int, float, bool)) and key is not None:
                raise TNetstringError("a dictionary key that is a list or dictionary", base + start)
            d[key] = items[k + 1]
        return d
    raise TNetstringError(f"unknown type byte {bytes([kind])!r}", base + stop)


def parse(data: bytes) -> Any:
    """The one value `data` holds (nothing may follow it)."""
    value, end = _value(data, 0, len(data), 0, 0) if data else (None, -1)
    if end < 0:
        raise TNetstringError("no data", 0, truncated=True)
    if end != len(data):
        raise TNetstringError("data after the value", end)
    return value


# -- streaming records from a file ---------------------------------------------------------------------------
def _remaining(f: IO[bytes]) -> int | None:
    """How many bytes are left to read in `f`, when that can be known."""
    try:
        size = os.fstat(f.fileno()).st_size
        return size - f.tell()
    except (AttributeError, OSError, ValueError):
        return None


def _read_chunked(f: IO[bytes], n: int) -> bytes:
    parts = []
    left = n
    while left:
        chunk = f.read(min(left, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def records(f: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """Yield `(offset, value)` for each top-level value in `f`, reading one at a time. Whitespace between
    records is skipped. Raises TNetstringError at the first damage, after yielding every value before it."""
    offset = 0
    while True:
        head = f.read(1)
        while head in (b"\n", b"\r", b" ", b"\t"):
            offset += 1
            head = f.read(1)
        if not head:
            return
        while head[-1:].isdigit() and len(head) <= _MAX_LEN_DIGITS:
            more = f.read(1)
            if not more:
                raise TNetstringError("the file ends inside a record's length", offset, truncated=True)
            head += more
        if head[-1:] != b":" or len(head) < 2:
            raise TNetstringError(f"not a tnetstring: expected a length followed by ':', got {head[:20]!r}", offset)
        n = int(head[:-1])
        left = _remaining(f)
        if left is not None and n + 1 > left:
            raise TNetstringError(f"the file ends inside a record of {n} bytes ({left} left)", offset, truncated=True)
        if left is not None or n < _CHUNK:
            body = f.read(n + 1)  # one allocation: the record's data and its type byte
        else:  # a stream of unknown size: a false length must not allocate before the data is there
            body = _read_chunked(f, n + 1)
        if len(body) < n + 1:
            raise TNetstringError(f"the file ends inside a record of {n} bytes", offset, truncated=True)
        value = _payload(body, 0, 0, n, 0, offset + len(head))
        del body
        yield offset, value
        offset += len(head) + n + 1


# -- writing -------------------------------------------------------------------------------------------------
def _dump(value: Any, out: list[bytes]) -> None:
    if value is None:
        out.append(b"0:~")
        return
    if isinstance(value, bool):
        out.append(b"4:true!" if value else b"5:false!")
        return
    if isinstance(value, int):
        data, kind = str(value).encode(), b"#"
    elif isinstance(value, float):
        data, kind = repr(value).encode(), b"^"
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data, kind = bytes(value), b","
    elif isinstance(value, str):
        data, kind = value.encode("utf-8", "surrogateescape"), b";"
    elif isinstance(value, (list, tuple)):
        parts: list[bytes] = []
        for item in value:
            _dump(item, parts)
        data, kind = b"".join(parts), b"]"
    elif isinstance(value, dict):
        parts = []
        for k, v in value.items():
            _dump(k, parts)
            _dump(v, parts)
        data, kind = b"".join(parts), b"}"
    else:
        raise TypeError(f"cannot write a {type(value).__name__} as a tnetstring")
    out += (str(len(data)).encode(), b":", data, kind)


def dumps(value: Any) -> bytes:
    """`value` (None, bool, int, float, bytes, str, list/tuple, dict) as one tnetstring."""
    out: list[bytes] = []
    _dump(value, out)
    return b"".join(out)
