"""MessagePack → indented, highlighted lines, decoded by the maintained `msgpack` package.

A body may hold several objects one after the other (a stream); each is shown. The layout is JSON's,
plus what JSON lacks: binary values (`b"…"` in hex), keys of any type, extension types and timestamps.
Bounds: msgpack itself refuses nesting deeper than 1024 levels; below `MAX_DEPTH` levels containers are
elided, and output stops after `MAX_LINES` lines.
"""
from __future__ import annotations

import json
import math
from typing import Any

import msgpack

from interpose.tui.contentviews.text import Line, Segment, sanitize_segment

MAX_DEPTH = 64
MAX_LINES = 200_000
MAX_OBJECTS = 100_000
BYTES_SHOWN = 128

PUNCT = "syntax_punct"


class MsgpackError(ValueError):
    """The body is not MessagePack."""


def unpack(body: bytes) -> tuple[list[Any], int]:
    """The objects in the body and how many bytes they used; raises MsgpackError if there is none."""
    u = msgpack.Unpacker(raw=False, strict_map_key=False, use_list=False, unicode_errors="surrogateescape",
                         timestamp=0, max_buffer_size=max(len(body), 1))
    u.feed(body)
    objs: list[Any] = []
    used = 0
    try:
        for obj in u:
            objs.append(obj)
            used = u.tell()
            if len(objs) >= MAX_OBJECTS:
                break
    except msgpack.StackError:
        raise MsgpackError("MessagePack nested deeper than 1024 levels") from None
    except (ValueError, TypeError, msgpack.UnpackException) as e:  # FormatError, unhashable key, ...
        if not objs:
            why = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            raise MsgpackError(f"not MessagePack ({why})") from None
    if not objs:
        raise MsgpackError("not MessagePack: incomplete object")
    return objs, used


def _str(s: str) -> str:
    # surrogateescape keeps undecodable bytes as lone surrogates: show them as \udcXX escapes
    return sanitize_segment(json.dumps(s, ensure_ascii=False).encode("utf-8", "backslashreplace").decode())


def _bytes(b: bytes) -> Segment:
    more = f" … {len(b) - BYTES_SHOWN} more" if len(b) > BYTES_SHOWN else ""
    return ("syntax_string", f'b"{b[:BYTES_SHOWN].hex(" ")}{more}" ({len(b)} bytes)')


def _scalar(v: Any) -> Segment:
    if v is None:
        return ("syntax_keyword", "nil")
    if v is True or v is False:
        return ("syntax_keyword", "true" if v else "false")
    if isinstance(v, int):
        return ("syntax_number", str(v))
    if isinstance(v, float):
        return ("syntax_number", repr(v) if math.isfinite(v) else str(v))
    if isinstance(v, str):
        return ("syntax_string", _str(v))
    if isinstance(v, (bytes, bytearray)):
        return _bytes(bytes(v))
    if isinstance(v, msgpack.Timestamp):
        return ("syntax_number", f"timestamp {v.to_datetime().isoformat()}"
                if _valid_ts(v) else f"timestamp {v.seconds}s {v.nanoseconds}ns")
    if isinstance(v, msgpack.ExtType):
        return ("syntax_tag", f"ext {v.code}: {v.data[:BYTES_SHOWN].hex(' ')} ({len(v.data)} bytes)")
    return ("text", sanitize_segment(repr(v)))  # pragma: no cover - msgpack yields nothing else


def _valid_ts(v: Any) -> bool:
    try:
        v.to_datetime()
    except (OverflowError, ValueError, OSError):
        return False
    return True


def _key(k: Any) -> Segment:
    if isinstance(k, str):
        return ("syntax_key", _str(k))
    if isinstance(k, tuple) and not isinstance(k, msgpack.ExtType):  # an array as a key
        return ("syntax_key", sanitize_segment(repr(k)))
    return _scalar(k)


class _Full(Exception):
    pass


class _Printer:
    def __init__(self) -> None:
        self.lines: list[Line] = []

    def add(self, line: Line) -> None:
        if len(self.lines) >= MAX_LINES:
            raise _Full
        self.lines.append(line)

    def value(self, v: Any, level: int, head: Line, comma: bool) -> None:
        tail: Line = [(PUNCT, ",")] if comma else []
        if not isinstance(v, (list, tuple, dict)) or isinstance(v, msgpack.ExtType):
            self.add([*head, _scalar(v), *tail])
            return
        is_map = isinstance(v, dict)
        opener, closer = ("{", "}") if is_map else ("[", "]")
        if not v:
            self.add([*head, (PUNCT, opener + closer), *tail])
            return
        if level >= MAX_DEPTH:
            self.add([*head, (PUNCT, opener), ("dim", f" … {len(v)} items nested too deep "), (PUNCT, closer), *tail])
            return
        self.add([*head, (PUNCT, opener)])
        pad = ("text", "  " * (level + 1))
        n = len(v)
        items = v.items() if isinstance(v, dict) else ((None, x) for x in v)
        for i, (k, x) in enumerate(items, 1):
            key: Line = [pad]
            if is_map:
                key += [_key(k), (PUNCT, ": ")]
            self.value(x, level + 1, key, i < n)
        self.add([("text", "  " * level), (PUNCT, closer), *tail])


def msgpack_view(body: bytes) -> tuple[str, list[Line]]:
    """(title, lines) of a MessagePack body; raises MsgpackError when it is not MessagePack."""
    objs, used = unpack(body)
    p = _Printer()
    try:
        for i, obj in enumerate(objs, 1):
            if len(objs) > 1:
                p.add([("title", f"── object {i}")])
            p.value(obj, 0, [], False)
    except _Full:
        p.lines.append([("warn", f"… stopped after {MAX_LINES:,} lines (the hex view shows everything)")])
    if used < len(body):
        p.lines.append([("warn", f"{len(body) - used:,} bytes after the last object are not MessagePack "
                                 "(incomplete or invalid)")])
    title = "MessagePack" + (f" ({len(objs)} objects)" if len(objs) > 1 else "")
    return title, p.lines
