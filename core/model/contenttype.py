"""Header values with parameters: `Content-Type` (media type + parameters), `Content-Disposition` and the like.

    media-type = type "/" subtype parameters                     (RFC 9110 §8.3.1)
    parameters = *( OWS ";" OWS [ parameter ] )                  (§5.6.6)
    parameter  = parameter-name "=" ( token / quoted-string )

A quoted-string's backslash escapes a character (§5.6.4), and a `;` inside quotes belongs to the value,
so `charset="iso-8859-1"` reads as `iso-8859-1` and `boundary="a;b"` as `a;b`. Parameter names are
case-insensitive (lower-cased here); values keep their case. The first of repeated names wins. Reading
is lenient, as for any header a client or server may have got wrong: empty or nameless parameters are
skipped, an unterminated quoted string runs to the end, and nothing raises.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

__all__ = ["ContentType", "media_type", "params", "parse", "set_param"]

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_OWS = " \t"


class ContentType(NamedTuple):
    """A parsed Content-Type value."""

    media_type: str
    """`type/subtype`, lower-cased ("" when the value has none)."""
    params: dict[str, str]
    """Parameter name (lower-cased) → value (unquoted)."""


class _Param(NamedTuple):
    name: str
    value: str
    start: int
    """Offset of the parameter's name in the header value."""
    end: int
    """Offset just after its value (after the closing quote of a quoted one)."""


def _scan(value: str) -> Iterator[_Param]:
    """Each parameter after the first `;`, in order."""
    n = len(value)
    i = value.find(";")
    while 0 <= i < n:
        i += 1  # past the ";"
        while i < n and value[i] in _OWS:
            i += 1
        start = i
        while i < n and value[i] not in "=;":
            i += 1
        name = value[start:i].rstrip(_OWS)
        if i >= n or value[i] == ";":  # "; ;" or a bare word: not a parameter
            continue
        i += 1  # past the "="
        while i < n and value[i] in _OWS:
            i += 1
        if i < n and value[i] == '"':
            chars, i = [], i + 1
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(value[i])
                i += 1
            text, end = "".join(chars), min(i + 1, n)
            i = value.find(";", end)
        else:
            semi = value.find(";", i)
            stop = n if semi < 0 else semi
            text = value[i:stop].rstrip(_OWS)
            end, i = i + len(text), semi
        if name and _TOKEN.fullmatch(name):
            yield _Param(name.lower(), text, start, end)


def media_type(value: str | None) -> str:
    """`'Text/HTML; charset=utf-8'` → `'text/html'`."""
    return (value or "").split(";", 1)[0].strip().lower()


def params(value: str | None) -> dict[str, str]:
    """The parameters of a header value: `'form-data; name="a b"'` → `{'name': 'a b'}`."""
    out: dict[str, str] = {}
    if value:
        for p in _scan(value):
            out.setdefault(p.name, p.value)
    return out


def parse(value: str | None) -> ContentType:
    """`'text/html; Charset="UTF-8"'` → `ContentType('text/html', {'charset': 'UTF-8'})`."""
    return ContentType(media_type(value), params(value))


def _quote(text: str) -> str:
    if _TOKEN.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_param(value: str, name: str, new: str) -> str:
    """`value` with parameter `name` set to `new`: its first occurrence is rewritten in place as `name=new`
    (everything else stays as written), or it is appended. `new` is quoted when it is not a token."""
    for p in _scan(value):
        if p.name == name.lower():
            return f"{value[:p.start]}{name}={_quote(new)}{value[p.end:]}"
    return f"{value}; {name}={_quote(new)}" if value.strip() else f"{name}={_quote(new)}"
