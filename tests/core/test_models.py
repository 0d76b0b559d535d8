"""The flow model without any I/O: Headers, MultiDict, Request, Response, bodies and encodings, flows."""
from __future__ import annotations

import asyncio
import gzip
import zlib

import brotli
import pytest
import zstandard

from interpose.http import Headers, HTTPFlow, Request, Response
from interpose.model import encoding
from interpose.model.connection import Client, Server
from interpose.model.flow import KILLED_MSG, Error
from interpose.model.multidict import MultiDict

# -- Headers -------------------------------------------------------------------


def test_headers_case_insensitive_get():
    h = Headers([(b"Content-Type", b"text/html"), (b"X-Foo", b"bar")])
    assert h["content-type"] == "text/html"
    assert h["CONTENT-TYPE"] == "text/html"
    assert h.get("x-FOO") == "bar"
    assert h.get("missing") is None
    assert h.get("missing", "dflt") == "dflt"
    assert "x-foo" in h and "X-Foo" in h
    assert "nope" not in h
    assert 42 not in h
    with pytest.raises(KeyError):
        h["missing"]


def test_headers_duplicates_kept_and_joined():
    h = Headers([(b"Set-Cookie", b"a=1"), (b"X-Foo", b"bar"), (b"set-cookie", b"b=2")])
    assert h.get_all("SET-COOKIE") == ["a=1", "b=2"]
    assert h["set-cookie"] == "a=1, b=2"
    assert h.get("set-cookie") == "a=1, b=2"
    assert len(h) == 2  # distinct names
    assert list(h) == ["Set-Cookie", "X-Foo"]  # first spelling, in order
    assert h.items(multi=True) == [("Set-Cookie", "a=1"), ("X-Foo", "bar"), ("set-cookie", "b=2")]
    assert dict(h.items()) == {"Set-Cookie": "a=1, b=2", "X-Foo": "bar"}


def test_headers_set_all_add_insert_del():
    h = Headers([(b"A", b"1"), (b"Via", b"x"), (b"B", b"2"), (b"via", b"y")])
    h.set_all("VIA", ["p", "q", "r"])
    # Replaced in place of the first occurrence, keeping its spelling.
    assert h.fields == [(b"A", b"1"), (b"Via", b"p"), (b"Via", b"q"), (b"Via", b"r"), (b"B", b"2")]

    h.set_all("new", ["n"])
    assert h.fields[-1] == (b"new", b"n")

    h.add("a", "again")
    assert h.get_all("A") == ["1", "again"]
    assert h.fields[-1] == (b"a", b"again")

    h.insert(0, "First", "yes")
    assert h.fields[0] == (b"First", b"yes")

    h["b"] = "two"
    assert h.fields[5] == (b"B", b"two")

    del h["via"]
    assert "via" not in h
    assert h.get_all("via") == []
    with pytest.raises(KeyError):
        del h["via"]

    h.set_all("a", [])
    assert "a" not in h
    assert list(h) == ["First", "B", "new"]


def test_headers_keep_original_case_on_the_wire():
    h = Headers([(b"X-MiXeD-CaSe", b"v"), (b"host", b"example.com")])
    h["x-mixed-case"] = "w"
    assert h.fields == [(b"X-MiXeD-CaSe", b"w"), (b"host", b"example.com")]
    assert bytes(h) == b"X-MiXeD-CaSe: w\r\nhost: example.com\r\n"


def test_headers_constructors_and_copy():
    h = Headers(host="example.com", content_type="text/html")
    assert h.fields == [(b"host", b"example.com"), (b"content-type", b"text/html")]
    h2 = Headers([("Str-Name", "str value")])
    assert h2.fields == [(b"Str-Name", b"str value")]
    raw = [(b"A", b"1")]
    adopted = Headers.from_raw(raw)
    assert adopted.fields is raw

    c = h.copy()
    c["host"] = "other"
    assert h["host"] == "example.com"
    assert c != h
    assert Headers(host="example.com", content_type="text/html") == h


def test_headers_non_ascii_values_survive():
    h = Headers([(b"X-Bin", b"\xff\xfe")])
    value = h["x-bin"]
    h["x-bin"] = value
    assert h.fields == [(b"X-Bin", b"\xff\xfe")]


# -- MultiDict -----------------------------------------------------------------


def test_multidict_basics():
    changes: list[list[tuple[str, str]]] = []
    md = MultiDict([("a", "1"), ("b", "2"), ("a", "3")], on_change=lambda f: changes.append(list(f)))
    assert md["a"] == "1"
    assert md.get_all("a") == ["1", "3"]
    assert list(md) == ["a", "b"]
    assert len(md) == 2
    assert md.items(multi=True) == [("a", "1"), ("b", "2"), ("a", "3")]
    assert "A" not in md  # case-sensitive
    assert changes == []

    md["a"] = "x"
    assert md.fields == [("a", "x"), ("b", "2")]
    md.add("c", "4")
    md.set_all("b", ["5", "6"])
    assert md.fields == [("a", "x"), ("b", "5"), ("b", "6"), ("c", "4")]
    del md["b"]
    assert md.fields == [("a", "x"), ("c", "4")]
    with pytest.raises(KeyError):
        del md["zz"]
    with pytest.raises(KeyError):
        md["zz"]
    assert len(changes) == 4
    assert changes[-1] == [("a", "x"), ("c", "4")]


# -- Request -------------------------------------------------------------------


def test_request_make_and_url_parts():
    r = Request.make("get", "http://example.com:8080/a/b?x=1&y=2")
    assert r.method == "GET"
    assert (r.scheme, r.host, r.port, r.path) == ("http", "example.com", 8080, "/a/b?x=1&y=2")
    assert r.url == "http://example.com:8080/a/b?x=1&y=2"
    assert r.headers["host"] == "example.com:8080"
    assert r.headers.fields[0][0] == b"Host"
    assert r.content == b""
    assert "content-length" not in r.headers
    assert r.path_components == ("a", "b")

    p = Request.make("POST", "https://example.com/submit", "hé", {"X-One": "1"})
    assert p.port == 443 and p.scheme == "https"
    assert p.headers["host"] == "example.com"
    assert p.content == "hé".encode()
    assert p.headers["content-length"] == str(len("hé".encode()))
    assert p.headers["x-one"] == "1"

    empty_post = Request.make("POST", "http://example.com/")
    assert empty_post.headers["content-length"] == "0"


def test_request_url_setter():
    r = Request.make("GET", "http://example.com/old")
    r.url = "https://other.org:8443/new/path?k=v"
    assert (r.scheme, r.host, r.port, r.path) == ("https", "other.org", 8443, "/new/path?k=v")
    assert r.headers["host"] == "other.org:8443"
    assert r.url == "https://other.org:8443/new/path?k=v"

    r.url = "http://example.net"
    assert (r.port, r.path) == (80, "/")
    assert r.url == "http://example.net/"

    with pytest.raises(ValueError):
        r.url = "/relative/only"

    r.host = "changed.example"
    r.port = 81
    assert r.url == "http://changed.example:81/"


def test_request_ipv6_host():
    r = Request.make("GET", "http://[::1]:8080/x")
    assert r.host == "::1"
    assert r.url == "http://[::1]:8080/x"
    assert r.headers["host"] == "[::1]:8080"


def test_request_pretty_host_and_url():
    r = Request("GET", "http", "10.0.0.1", 80, "/p", headers=[(b"Host", b"example.com")])
    assert r.pretty_host == "example.com"
    assert r.pretty_url == "http://example.com/p"
    assert r.url == "http://10.0.0.1/p"

    c = Request("CONNECT", "http", "example.com", 443, "", authority="example.com:443")
    assert c.url == "example.com:443"

    # the Host header equal to `host` is returned without parsing; otherwise it is parsed (lower case, no port)
    same = Request("GET", "http", "example.com", 80, "/", headers=[(b"Host", b"example.com")])
    assert same.pretty_host == "example.com"
    upper = Request("GET", "http", "Example.COM", 80, "/", headers=[(b"Host", b"Example.COM")])
    assert upper.pretty_host == "example.com"
    ported = Request("GET", "http", "example.com", 8080, "/",
                     headers=[(b"HOST", b"example.com:8080"), (b"X-Host", b"x")])
    assert ported.pretty_host == "example.com" and ported.headers.get("host") == "example.com:8080"


def test_request_query_get_set_and_mutation():
    r = Request.make("GET", "http://e.com/search?q=a+b&page=2&q=c")
    q = r.query
    assert q["q"] == "a b"
    assert q.get_all("q") == ["a b", "c"]
    assert q["page"] == "2"

    q["page"] = "3"
    assert r.path == "/search?q=a+b&page=3&q=c"
    q.add("new", "x y")
    assert r.path == "/search?q=a+b&page=3&q=c&new=x+y"
    del q["q"]
    assert r.path == "/search?page=3&new=x+y"
    r.query["page"] = "4"  # a fresh view writes back too
    assert r.query["page"] == "4"

    r.query = {"only": "one"}
    assert r.path == "/search?only=one"
    r.query = [("a", "1"), ("a", "2")]
    assert r.path == "/search?a=1&a=2"
    r.query = []
    assert r.path == "/search"
    assert list(r.query) == []


def test_request_cookies():
    r = Request.make("GET", "http://e.com/", headers=[("Cookie", "a=1; b=2;flag"), ("cookie", " c = 3 ")])
    assert r.cookies.items(multi=True) == [("a", "1"), ("b", "2"), ("c", "3")]
    cookies = r.cookies
    cookies["b"] = "20"
    assert r.headers.get_all("cookie") == ["a=1; b=20; c=3"]
    r.cookies = {"only": "x"}
    assert r.headers["cookie"] == "only=x"
    r.cookies = []
    assert "cookie" not in r.headers


def test_request_urlencoded_form():
    r = Request.make("POST", "http://e.com/f", "a=1&b=x+y", {"Content-Type": "application/x-www-form-urlencoded"})
    form = r.urlencoded_form
    assert form.items(multi=True) == [("a", "1"), ("b", "x y")]
    form["c"] = "3"
    assert r.content == b"a=1&b=x+y&c=3"
    assert r.headers["content-length"] == "13"

    plain = Request.make("POST", "http://e.com/f", "a=1", {"Content-Type": "text/plain"})
    assert list(plain.urlencoded_form) == []  # not a form
    plain.urlencoded_form = {"k": "v"}
    assert plain.headers["content-type"] == "application/x-www-form-urlencoded"
    assert plain.content == b"k=v"


# -- Response --------------------------------------------------------------------


def test_response_make():
    r = Response.make(404, "not here")
    assert (r.status_code, r.reason) == (404, "Not Found")
    assert r.content == b"not here"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-length"] == "8"
    assert r.http_version == "HTTP/1.1"

    b = Response.make(200, b"\x00\x01", {"Content-Type": "application/octet-stream"})
    assert b.headers["content-type"] == "application/octet-stream"
    assert b.content == b"\x00\x01"

    odd = Response.make(599)
    assert odd.reason == ""
    assert odd.content == b""
    assert odd.headers["content-length"] == "0"

    d = Response.make()
    assert d.status_code == 200 and d.reason == "OK"


def test_response_cookies():
    r = Response.make(200, headers=[("Set-Cookie", "sid=abc; Path=/; HttpOnly"), ("Set-Cookie", "theme=dark")])
    assert r.cookies.items(multi=True) == [("sid", "abc"), ("theme", "dark")]


def test_response_cookies_one_per_set_cookie():
    r = Response.make(200, headers=[
        ("Set-Cookie", "sid=abc; Expires=Wed, 21 Oct 2037 07:28:00 GMT; SameSite=Lax; Priority=High"),
        ("Set-Cookie", "no pair here"),
        ("Set-Cookie", 'q="quoted value"'),
    ])
    # Attributes are never cookies, even ones the reader does not know; quotes belong to the value (RFC 6265).
    assert r.cookies.items(multi=True) == [("sid", "abc"), ("q", '"quoted value"')]


# -- bodies and Content-Encoding -------------------------------------------------

CODINGS = ["gzip", "deflate", "br", "zstd"]
BODY = b"hello hello hello body " * 50


@pytest.mark.parametrize("coding", CODINGS)
def test_content_setter_encodes_and_fixes_length(coding):
    r = Response.make(200, b"", {"Content-Encoding": coding})
    r.content = BODY
    assert r.raw_content != BODY
    assert len(r.raw_content) < len(BODY)
    assert encoding.decode(r.raw_content, coding) == BODY
    assert r.content == BODY
    assert r.headers["content-length"] == str(len(r.raw_content))
    assert r.headers["content-encoding"] == coding

    r.text = "short"
    assert r.content == b"short"
    assert r.headers["content-length"] == str(len(r.raw_content))


@pytest.mark.parametrize("coding,compress", [
    ("gzip", gzip.compress),
    ("x-gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda d: _raw_deflate(d)),
    ("br", brotli.compress),
    ("zstd", zstandard.ZstdCompressor().compress),
    ("zstd", lambda d: _zstd_stream(d)),
], ids=["gzip", "x-gzip", "zlib-deflate", "raw-deflate", "br", "zstd", "zstd-no-size"])
def test_content_decodes_wire_bodies(coding, compress):
    r = Response(200, "OK", headers=[(b"Content-Encoding", coding.encode())], content=compress(BODY))
    assert r.content == BODY
    assert r.text == BODY.decode()


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def _zstd_stream(data: bytes) -> bytes:
    c = zstandard.ZstdCompressor().compressobj()
    return c.compress(data) + c.flush()


def test_content_encoding_chain():
    raw = brotli.compress(gzip.compress(BODY))
    r = Response(200, "OK", headers=[(b"Content-Encoding", b"gzip, br")], content=raw)
    assert r.content == BODY
    r.content = b"again"
    assert encoding.decode(r.raw_content, "gzip, br") == b"again"
    assert brotli.decompress(r.raw_content)[:2] == b"\x1f\x8b"  # br outermost, gzip inside


def test_identity_and_no_encoding():
    r = Response(200, "OK", headers=[(b"Content-Encoding", b"identity")], content=b"plain")
    assert r.content == b"plain"
    r2 = Response(200, "OK", content=b"plain")
    r2.content = "text"
    assert r2.raw_content == b"text"
    assert r2.headers["content-length"] == "4"
    assert Response(200, content=None).content is None


def test_corrupt_body_is_returned_raw():
    r = Response(200, "OK", headers=[(b"Content-Encoding", b"gzip")], content=b"not gzip at all")
    assert r.content == b"not gzip at all"


def test_unsupported_encoding_dropped_on_set():
    r = Response(200, "OK", headers=[(b"Content-Encoding", b"compress")], content=b"???")
    assert r.content == b"???"  # cannot decode: raw
    r.content = b"new"
    assert "content-encoding" not in r.headers
    assert r.raw_content == b"new"


def test_content_setter_replaces_transfer_encoding():
    r = Response(200, "OK", headers=[(b"Transfer-Encoding", b"chunked")], content=b"")
    r.content = b"abc"
    assert "transfer-encoding" not in r.headers
    assert r.headers["content-length"] == "3"


def test_decode_and_encode_methods():
    r = Response.make(200, BODY, {"Content-Encoding": "gzip"})
    assert r.raw_content != BODY
    r.decode()
    assert "content-encoding" not in r.headers
    assert r.raw_content == BODY
    assert r.headers["content-length"] == str(len(BODY))
    r.encode("br")
    assert r.headers["content-encoding"] == "br"
    assert brotli.decompress(r.raw_content) == BODY


@pytest.mark.parametrize("coding", CODINGS)
def test_encoding_errors_on_corrupt_data(coding):
    with pytest.raises(ValueError, match=coding):
        encoding.decode(b"\x00garbage that is not compressed\xff" * 3, coding)


def test_encoding_module_api():
    assert encoding.codings(" GZIP , br,, ") == ["gzip", "br"]
    assert encoding.codings(None) == []
    assert encoding.supported("gzip, zstd")
    assert not encoding.supported("gzip, compress")
    assert encoding.decode(b"same", None) == b"same"
    with pytest.raises(ValueError, match="compress"):
        encoding.decode(b"x", "compress")
    with pytest.raises(ValueError, match="compress"):
        encoding.encode(b"x", "compress")
    for c in CODINGS:
        assert encoding.decode(encoding.encode(BODY, c), c) == BODY


def test_text_uses_charset():
    r = Response.make(200, b"caf\xe9", {"Content-Type": "text/plain; charset=latin-1"})
    assert r.charset == "latin-1"
    assert r.text == "café"
    r.text = "naïve"
    assert r.raw_content == b"na\xefve"
    assert r.headers["content-length"] == "5"

    u = Response.make(200, "café")
    assert u.text == "café"
    assert u.raw_content == "café".encode()

    bogus = Response.make(200, "ü".encode(), {"Content-Type": "text/plain; charset=no-such-charset"})
    assert bogus.text == "ü"  # unknown charset: utf-8


@pytest.mark.parametrize("content_type", [
    'text/plain; charset="iso-8859-1"',
    "text/plain;charset=ISO-8859-1",
    'text/html; Charset = "iso-8859-1"; format=flowed',
    'text/plain; name="a;b"; charset="iso-8859-1"',
])
def test_text_uses_a_quoted_or_spaced_charset(content_type):
    r = Response.make(200, b"caf\xe9 \xa3", {"Content-Type": content_type})
    assert r.charset.lower() == "iso-8859-1"
    assert r.text == "café £"
    r.text = "naïve"
    assert r.raw_content == b"na\xefve"
    assert r.headers["content-type"] == content_type  # it could hold the text: the header stays


def test_text_that_a_quoted_charset_cannot_hold_switches_to_utf8():
    r = Response.make(200, b"", {"Content-Type": 'text/plain; charset="iso-8859-1"; format=flowed'})
    r.text = "price: €"
    assert r.content == "price: €".encode()
    assert r.headers["content-type"] == "text/plain; charset=utf-8; format=flowed"
    assert r.text == "price: €"


def test_content_type_is_the_media_type():
    r = Response.make(200, b"", {"Content-Type": ' Text/HTML ; charset="utf-8"'})
    assert r.content_type == "text/html"
    octets = Response.make(200, b"", {"Content-Type": "application/octet-stream"})
    assert octets.content_type == "application/octet-stream"
    no_type = Response.make(200, b"")
    assert "content-type" not in no_type.headers
    assert no_type.content_type == "" and no_type.charset == "utf-8"


def test_text_that_charset_cannot_hold_round_trips():
    r = Response.make(200, b"", {"Content-Type": "text/plain; charset=latin-1"})
    r.text = "price: €"
    assert r.text == "price: €"
    assert r.content == "price: €".encode()
    assert "utf-8" in r.headers["content-type"].lower()


def test_text_of_gzipped_body():
    r = Response.make(200, b"", {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"})
    r.text = "zipped text"
    assert gzip.decompress(r.raw_content) == b"zipped text"
    assert r.text == "zipped text"


# -- flows -----------------------------------------------------------------------


def make_flow() -> HTTPFlow:
    f = HTTPFlow(Client(address=("127.0.0.1", 50000)), Server(address=("example.com", 80)))
    f.request = Request.make("POST", "http://example.com/path?a=1", b"body", {"X-Orig": "1"})
    f.response = Response.make(200, b"response body", {"X-Resp": "1"})
    return f


async def test_flow_copy_is_independent():
    f = make_flow()
    f.metadata["note"] = ["a"]
    f.marked = True
    f.intercept()
    c = f.copy()
    assert c.id != f.id
    assert not c.live and not c.intercepted
    assert c.marked
    assert c.request is not f.request and c.response is not f.response

    c.request.headers["X-Orig"] = "changed"
    c.request.query["a"] = "2"
    c.request.content = b"other"
    c.response.content = b"other response"
    c.metadata["note"].append("b")
    c.client_conn.address = ("10.0.0.1", 1)

    assert f.request.headers["x-orig"] == "1"
    assert f.request.path == "/path?a=1"
    assert f.request.content == b"body"
    assert f.response.content == b"response body"
    assert f.metadata["note"] == ["a"]
    assert f.client_conn.address == ("127.0.0.1", 50000)
    assert f.intercepted and f.live
    f.resume()


async def test_intercept_resume_transitions():
    f = make_flow()
    assert not f.intercepted
    await f.wait_for_resume()  # nothing armed: returns at once

    f.intercept()
    f.intercept()  # idempotent
    assert f.intercepted
    waiter = asyncio.create_task(f.wait_for_resume())
    await asyncio.sleep(0)
    assert not waiter.done()
    f.resume()
    assert not f.intercepted
    async with asyncio.timeout(1):
        await waiter
    f.resume()  # resuming a flow that is not held is harmless
    assert not f.intercepted and f.error is None

    # It can be held again later.
    f.intercept()
    waiter = asyncio.create_task(f.wait_for_resume())
    await asyncio.sleep(0)
    assert not waiter.done()
    f.resume()
    async with asyncio.timeout(1):
        await waiter


async def test_kill_transitions():
    f = make_flow()
    assert f.killable and not f.killed
    f.intercept()
    waiter = asyncio.create_task(f.wait_for_resume())
    await asyncio.sleep(0)
    f.kill()
    async with asyncio.timeout(1):
        await waiter
    assert f.killed
    assert not f.intercepted
    assert isinstance(f.error, Error)
    assert f.error.msg == KILLED_MSG
    assert "killed" in str(f.error)
    assert not f.killable

    g = make_flow()
    g.kill()  # not held: still marked killed; the layer checks after the hook
    assert g.killed and g.error is not None


async def test_kill_keeps_an_earlier_error():
    f = make_flow()
    f.error = Error("server went away")
    f.kill()
    assert f.killed
    assert f.error.msg == "server went away"


def test_intercept_without_loop_for_dead_flows():
    f = make_flow()
    f.live = False
    f.intercept()  # no running loop needed for a flow that is not live
    assert f.intercepted
    f.resume()
    assert not f.intercepted


async def test_backup_and_revert():
    f = make_flow()
    client_conn = f.client_conn
    assert not f.modified
    f.backup()
    f.request.headers["X-Orig"] = "edited"
    f.request.path = "/edited"
    assert f.modified
    f.revert()
    assert not f.modified
    assert f.request.path == "/path?a=1"
    assert f.request.headers["x-orig"] == "1"
    assert f.client_conn.address == client_conn.address
