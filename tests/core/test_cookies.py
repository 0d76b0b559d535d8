"""interpose.model.cookies: the one reader for Cookie and the one for Set-Cookie."""
from __future__ import annotations

import pytest

from interpose.model.cookies import SetCookie, format_cookie, parse_cookie, parse_set_cookie


@pytest.mark.parametrize(("value", "pairs"), [
    ("a=1; b=2", [("a", "1"), ("b", "2")]),
    (" a = 1 ;b=x=y;;", [("a", "1"), ("b", "x=y")]),
    ("flag; c=3", [("c", "3")]),  # a part without = is no cookie
    ('q="a b"', [("q", '"a b"')]),  # quotes are part of the value
    ("", []),
])
def test_parse_cookie(value, pairs):
    assert parse_cookie(value) == pairs


def test_format_cookie_round_trips():
    pairs = [("a", "1"), ("b", "x=y")]
    assert format_cookie(pairs) == "a=1; b=x=y"
    assert parse_cookie(format_cookie(pairs)) == pairs


def test_parse_set_cookie():
    c = parse_set_cookie("sid=abc; Path=/app; Domain=.Example.com; Expires=Wed, 21 Oct 2037 07:28:00 GMT; "
                         "Secure; HttpOnly; Max-Age=60; path=/last")
    assert c == SetCookie("sid", "abc", (("path", "/app"), ("domain", ".Example.com"),
                                         ("expires", "Wed, 21 Oct 2037 07:28:00 GMT"), ("secure", ""),
                                         ("httponly", ""), ("max-age", "60"), ("path", "/last")))
    assert c.attribute("path") == "/last"  # the last one counts (RFC 6265 §5.3)
    assert c.attribute("secure") == "" and c.attribute("samesite") is None


@pytest.mark.parametrize("value", ["novalue", "=anonymous", " ; Path=/", ""])
def test_set_cookie_without_a_name_is_ignored(value):
    assert parse_set_cookie(value) is None


def test_set_cookie_keeps_the_value_as_sent():
    assert parse_set_cookie(' q = "a b" ;;SameSite=Lax') == SetCookie("q", '"a b"', (("samesite", "Lax"),))
    assert parse_set_cookie("empty=") == SetCookie("empty", "", ())
