"""Text plumbing shared by the content views: safe decoding, pygments tokens → markup lines, raw and hex.

Everything here returns *lines*: a list of `(attribute, text)` segments per line, which is valid urwid
text markup. No segment ever contains a newline or a character that would steer the terminal.
"""
from __future__ import annotations

import codecs
import gc
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from pygments.token import (
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Token,
    _TokenType,
)

from interpose.model.contenttype import params
from interpose.model.printable import has_unsafe as has_unsafe
from interpose.model.printable import sanitize
from interpose.model.printable import sanitize_segment as sanitize_segment

Segment = tuple[str, str]
Line = list[Segment]

TAB_SIZE = 8

# --- making text terminal-safe: one escaping for the dump output and the UI (interpose.model.printable)

def prepare(text: str) -> str:
    """Normalise newlines, neutralise control characters and expand tabs, ready for display or lexing."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    text = sanitize(text)
    if "\t" in text:
        text = text.expandtabs(TAB_SIZE)
    return text


def decode(body: bytes, content_type: str = "") -> str:
    """Decode with the declared charset if Python knows it, else UTF-8; undecodable bytes become U+FFFD."""
    charset = params(content_type).get("charset", "utf-8")
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    return body.decode(charset, errors="replace")


def is_binary(body: bytes) -> bool:
    """Binary means: a NUL byte, or not valid UTF-8."""
    if b"\x00" in body:
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def is_printable_text(body: bytes) -> bool:
    """Valid UTF-8 with no control characters other than tab, CR, LF and form feed."""
    if is_binary(body):
        return False
    return re.search(rb"[\x01-\x08\x0b\x0e-\x1f\x7f]", body) is None


# --- pygments tokens → attributes -----------------------------------------------------------

BASE_ATTRS: dict[_TokenType, str] = {
    Token: "text",
    Name.Tag: "syntax_tag",
    Name.Attribute: "syntax_attr",
    Name.Decorator: "syntax_attr",
    Name.Builtin: "syntax_keyword",
    Name.Entity: "syntax_keyword",
    Keyword: "syntax_keyword",
    String: "syntax_string",
    Number: "syntax_number",
    Comment: "syntax_comment",
    Operator: "syntax_punct",
    Operator.Word: "syntax_keyword",
    Punctuation: "syntax_punct",
    Error: "text",  # lexers flag oddities as Error; real traffic has plenty, so don't shout
}
JSON_ATTRS: dict[_TokenType, str] = {**BASE_ATTRS, Name.Tag: "syntax_key"}


class AttrMap:
    """Token type → palette attribute, resolved through the token's parents and cached."""

    def __init__(self, table: Mapping[_TokenType, str]) -> None:
        self.table = dict(table)
        self.cache: dict[_TokenType, str] = {}

    def __getitem__(self, ttype: _TokenType) -> str:
        try:
            return self.cache[ttype]
        except KeyError:
            t: _TokenType | None = ttype
            while t is not None and t not in self.table:
                t = t.parent
            attr = self.table[t] if t is not None else "text"
            self.cache[ttype] = attr
            return attr


BASE_MAP = AttrMap(BASE_ATTRS)
JSON_MAP = AttrMap(JSON_ATTRS)


def tokens_to_lines(tokens: Iterable[tuple[_TokenType, str]], attrs: AttrMap = BASE_MAP) -> list[Line]:
    """Split a token stream into lines of (attribute, text); adjacent same-attribute text is merged.

    The text must already be `prepare`d. A final empty line (after a trailing newline) is dropped.
    """
    lines: list[Line] = []
    cur: Line = []
    cache = attrs.cache
    for ttype, text in tokens:
        if not text:
            continue
        attr = cache.get(ttype) or attrs[ttype]
        if "\n" in text:
            parts = text.split("\n")
            for part in parts[:-1]:
                if part:
                    if cur and cur[-1][0] == attr:
                        cur[-1] = (attr, cur[-1][1] + part)
                    else:
                        cur.append((attr, part))
                lines.append(cur)
                cur = []
            text = parts[-1]
            if not text:
                continue
        if cur and cur[-1][0] == attr:
            cur[-1] = (attr, cur[-1][1] + text)
        else:
            cur.append((attr, text))
    if cur:
        lines.append(cur)
    return lines


# --- raw and hex ------------------------------------------------------------------------------

def raw_lines(text: str) -> list[Line]:
    """Plain text → one "text" segment per line (empty lines are empty markup lists)."""
    text = prepare(text)
    text = text.removesuffix("\n")
    return [[("text", ln)] if ln else [] for ln in text.split("\n")]


_HEX_PRINTABLE = bytes(b if 0x20 <= b < 0x7F else 0x2E for b in range(256))


def hex_lines(body: bytes) -> list[Line]:
    """Classic `hexdump -C` layout: offset, two groups of eight bytes, and the printable ASCII column."""
    # Hex-encode and translate the whole body once in C, then slice: ~3x faster than per line.
    hexed = body.hex(" ") + " "  # "xx " per byte
    ascii_ = body.translate(_HEX_PRINTABLE).decode("ascii")
    lines: list[Line] = []
    append = lines.append
    for off in range(0, len(body), 16):
        h = off * 3
        first, second = hexed[h:h + 24], hexed[h + 24:h + 48]
        append([("dim", f"{off:08x}  "), ("text", f"{first:<24} {second:<24} "),
                ("syntax_string", f"|{ascii_[off:off + 16]}|")])
    return lines


def hard_wrap(lines: list[Line], width: int) -> list[Line]:
    """Split lines longer than `width` characters into several lines of at most `width` (nothing is lost)."""
    out: list[Line] = []
    for line in lines:
        if sum(len(t) for _, t in line) <= width:
            out.append(line)
            continue
        cur: Line = []
        n = 0
        for attr, text in line:
            while text:
                piece, text = text[:width - n], text[width - n:]
                cur.append((attr, piece))
                n += len(piece)
                if n == width:
                    out.append(cur)
                    cur, n = [], 0
        if cur:
            out.append(cur)
    return out


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic GC while building big line lists.

    Rendering makes up to millions of small tuples and lists; every few hundred allocations the GC
    would rescan the growing heap, which doubles the time. None of these objects can form a cycle.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
