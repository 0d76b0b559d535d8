"""Cookie and Set-Cookie header values (RFC 6265): one reader for each, and the writer for Cookie.

    Cookie: sid=abc; theme=dark                              → [("sid", "abc"), ("theme", "dark")]
    Set-Cookie: sid=abc; Path=/; Secure; HttpOnly            → SetCookie("sid", "abc", (("path", "/"),
                                                                ("secure", ""), ("httponly", "")))

Reading is lenient, as browsers read (RFC 6265 §5.2, §5.4): whitespace around names and values is
dropped, a value keeps any double quotes it was sent with (they are part of it), a Cookie part without
`=` is skipped and a Set-Cookie without a `name=` pair is ignored. What an attribute means (domain and
path matching, expiry) is for whoever keeps cookies, such as the `stickycookie` addon.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["SetCookie", "format_cookie", "parse_cookie", "parse_set_cookie"]


def parse_cookie(value: str) -> list[tuple[str, str]]:
    """The `(name, value)` pairs of one Cookie header value, in order."""
    pairs = []
    for part in value.split(";"):
        name, eq, val = part.partition("=")
        if eq:
            pairs.append((name.strip(), val.strip()))
    return pairs


def format_cookie(pairs: Iterable[tuple[str, str]]) -> str:
    """A Cookie header value: `name=value` pairs joined by `; `."""
    return "; ".join(f"{name}={value}" for name, value in pairs)


class SetCookie(NamedTuple):
    """One Set-Cookie header value."""

    name: str
    value: str
    attributes: tuple[tuple[str, str], ...]
    """`(name, value)` of each attribute in order, names lower-cased; a flag such as `Secure` has the value ""."""

    def attribute(self, name: str) -> str | None:
        """The value of the last attribute called `name` (lower-case), None if there is none (RFC 6265 §5.3)."""
        for key, value in reversed(self.attributes):
            if key == name:
                return value
        return None


def parse_set_cookie(value: str) -> SetCookie | None:
    """One Set-Cookie header value; None for one without a `name=` pair (RFC 6265 §5.2 ignores those)."""
    pair, *attrs = value.split(";")
    name, eq, val = pair.partition("=")
    name = name.strip()
    if not eq or not name:
        return None
    attributes = []
    for attr in attrs:
        key, _, arg = attr.partition("=")
        key = key.strip().lower()
        if key:
            attributes.append((key, arg.strip()))
    return SetCookie(name, val.strip(), tuple(attributes))
