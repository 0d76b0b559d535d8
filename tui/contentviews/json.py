"""JSON → pretty-printed, highlighted lines (indent 2, original key order, duplicate keys and number text kept).

Why not run pygments' JsonLexer over `json.dumps(indent=2)`? Its character-by-character lexer alone
needs about 2 s for 5 MB. Instead the parsed document is walked once and every value is emitted with
the attribute of the pygments token type JsonLexer gives it (keys `Name.Tag`, strings `String.Double`,
`Number`, `Keyword.Constant`, `Punctuation`), mapped through the same table as every other lexer:
the same colours in a fraction of the time.
"""
from __future__ import annotations

import json
from typing import Any

from pygments.token import Keyword, Name, Number, Punctuation, String

from interpose.tui.contentviews.text import JSON_MAP, Line, Segment, no_gc, sanitize_segment

try:  # the C accelerator; the pure-Python fallback produces the same text
    from _json import encode_basestring as _quote
except ImportError:  # pragma: no cover
    from json.encoder import py_encode_basestring as _quote

KEY = JSON_MAP[Name.Tag]
STRING = JSON_MAP[String.Double]
NUMBER = JSON_MAP[Number]
CONST = JSON_MAP[Keyword.Constant]
PUNCT = JSON_MAP[Punctuation]
COMMA: Segment = (PUNCT, ",")
COLON: Segment = (PUNCT, ": ")
_CONSTS: dict[Any, Segment] = {None: (CONST, "null"), True: (CONST, "true"), False: (CONST, "false")}


class _Num(str):
    """A JSON number exactly as written (float() would turn 1.10 into 1.1 and 1e400 into inf)."""

    __slots__ = ()


def parse(text: str) -> Any:
    """Parse JSON; objects become tuples of (key, value) pairs, numbers `_Num` source text.

    Raises ValueError (json.JSONDecodeError) or RecursionError for bad or absurdly deep input.
    """
    with no_gc():
        return json.loads(text, object_pairs_hook=tuple, parse_float=_Num, parse_int=_Num,
                          parse_constant=_Num)


def _quoted(s: str) -> str:
    q = _quote(s)
    # _quote escapes C0 controls but keeps DEL, C1 and bidi characters (and other non-ASCII) as is.
    if not q.isascii() or "\x7f" in q:
        q = sanitize_segment(q)
    return q


def _scalar(v: Any) -> Segment:
    if type(v) is str:
        return (STRING, _quoted(v))
    if type(v) is _Num:
        return (NUMBER, str.__str__(v))
    return _CONSTS[v]


def json_lines(doc: Any) -> list[Line]:
    """Pretty-print a document returned by `parse` into markup lines."""
    with no_gc():
        return _Printer().run(doc)


class _Printer:
    """One walk over the document; objects are tuples of pairs, arrays are lists."""

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.pads: list[Segment] = [("text", "  " * i) for i in range(32)]
        self.keys: dict[str, Segment] = {}  # real documents repeat their keys; quote each once

    def run(self, doc: Any) -> list[Line]:
        if isinstance(doc, (list, tuple)):
            self.container(doc, 0, [], True)
        else:
            self.lines.append([_scalar(doc)])
        return self.lines

    def pad(self, level: int) -> Segment:
        while level >= len(self.pads):
            self.pads.append(("text", "  " * len(self.pads)))
        return self.pads[level]

    def container(self, v: list[Any] | tuple[Any, ...], level: int, head: Line, last: bool) -> None:
        append = self.lines.append
        is_obj = type(v) is tuple
        if not v:
            head.append((PUNCT, "{}" if is_obj else "[]"))
            if not last:
                head.append(COMMA)
            append(head)
            return
        head.append((PUNCT, "{" if is_obj else "["))
        append(head)
        pad = self.pad(level + 1)
        keys = self.keys
        n = len(v)
        i = 0
        if is_obj:
            for key, item in v:
                i += 1
                k = keys.get(key)
                if k is None:
                    k = keys[key] = (KEY, _quoted(key))
                t = type(item)
                if t is list or t is tuple:
                    self.container(item, level + 1, [pad, k, COLON], i == n)
                    continue
                if t is str:
                    seg: Segment = (STRING, _quoted(item))
                elif t is _Num:
                    seg = (NUMBER, str.__str__(item))
                else:
                    seg = _CONSTS[item]
                append([pad, k, COLON, seg] if i == n else [pad, k, COLON, seg, COMMA])
        else:
            for item in v:
                i += 1
                t = type(item)
                if t is list or t is tuple:
                    self.container(item, level + 1, [pad], i == n)
                    continue
                seg = _scalar(item)
                append([pad, seg] if i == n else [pad, seg, COMMA])
        closer = (PUNCT, "}" if is_obj else "]")
        tail = [self.pads[level], closer] if level else [closer]
        if not last:
            tail.append(COMMA)
        append(tail)


def looks_like_json(text: str) -> bool:
    """Cheap pre-check for sniffing: the first non-blank character opens an object or array."""
    return text.lstrip()[:1] in ("{", "[")
