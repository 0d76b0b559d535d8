"""Content views: body → highlighted markup lines, per view, plus auto-selection, safety and speed."""
from __future__ import annotations

import json
import re
import struct
import time
import zlib

import pytest
import urwid
from hypothesis import given, settings
from hypothesis import strategies as st

from interpose.tui import contentviews
from interpose.tui.contentviews import Rendered, guess, render, view_names
from interpose.tui.contentviews.image import image_info
from interpose.tui.palette import ATTRIBUTES, FOCUS_MAP, PALETTE


def text_of(r: Rendered) -> list[str]:
    return ["".join(t for _, t in line) for line in r.lines]


def segments(r: Rendered) -> list[tuple[str, str]]:
    return [seg for line in r.lines for seg in line]


def attrs_of(r: Rendered, needle: str) -> set[str]:
    return {a for a, t in segments(r) if needle in t}


# Every character a content view must never hand to the terminal.
UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")


def assert_safe(r: Rendered) -> None:
    for attr, text in segments(r):
        assert attr in ATTRIBUTES, attr
        assert isinstance(text, str)
        assert not UNSAFE.search(text), (attr, text)
        assert "\t" not in text


# --- images built by hand -------------------------------------------------------------------

def png(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\xff\x00\x00\xff" * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def gif(w: int, h: int, frames: int = 1) -> bytes:
    out = b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"  # 2-colour table
    for _ in range(frames):
        out += b"\x21\xf9\x04\x04\x0a\x00\x00\x00"  # graphic control extension
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02\x02\x4c\x01\x00"
    return out + b"\x3b"


def jpeg(w: int, h: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc2" + struct.pack(">HBHHB", 17, 8, h, w, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof + b"\xff\xda\x00\x02" + b"\x00" * 10 + b"\xff\xd9"


def bmp(w: int, h: int) -> bytes:
    row = (w * 3 + 3) & ~3
    dib = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, row * h, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + row * h, 0, 0, 54) + dib + b"\x00" * row * h


def webp_lossless(w: int, h: int) -> bytes:
    data = b"\x2f" + struct.pack("<I", (w - 1) | ((h - 1) << 14) | (1 << 28)) + b"\x00" * 8
    chunk = b"VP8L" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def ico() -> bytes:
    entries = [(16, 16), (0, 0)]  # 0 means 256
    out = struct.pack("<HHH", 0, 1, len(entries))
    for k, (w, h) in enumerate(entries):
        out += struct.pack("<BBBBHHII", w, h, 0, 0, 1, 32, 4, 6 + 16 * len(entries) + 4 * k)
    return out + b"\x00" * 8


@pytest.mark.parametrize(("body", "fmt", "dims"), [
    (png(3, 2), "PNG", "3 × 2"),
    (gif(5, 4), "GIF", "5 × 4"),
    (jpeg(640, 480), "JPEG", "640 × 480"),
    (bmp(7, 3), "BMP", "7 × 3"),
    (webp_lossless(300, 200), "WebP", "300 × 200"),
    (ico(), "ICO", "256 × 256"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="120px" height="40"/>', "SVG", "120 × 40"),
    (b'<svg viewBox="0 0 24 16"></svg>', "SVG", "24 × 16"),
])
def test_image_metadata(body: bytes, fmt: str, dims: str) -> None:
    r = render(body, "image/whatever", "image")
    assert r.view == "image" and r.error is None
    lines = text_of(r)
    assert lines[0].split() == ["Format:", fmt]
    assert lines[1].split(":", 1)[1].strip() == dims
    assert lines[2].split(":", 1)[1].strip().startswith(f"{len(body):,} bytes")
    assert r.title.startswith(f"{fmt} image, {dims}")
    assert_safe(r)


def test_image_details() -> None:
    assert ("Colour", "8-bit RGBA") in image_info(png(1, 1)).details  # type: ignore[union-attr]
    assert ("Frames", "3") in image_info(gif(2, 2, frames=3)).details  # type: ignore[union-attr]
    assert ("Encoding", "progressive") in image_info(jpeg(2, 2)).details  # type: ignore[union-attr]
    assert ("Bits per pixel", "24") in image_info(bmp(2, 2)).details  # type: ignore[union-attr]


def test_image_auto_and_garbage() -> None:
    assert render(png(4, 4), "image/png").view == "image"
    assert render(png(4, 4), "").view == "image"  # sniffed by magic bytes
    r = render(b"\x89PNG but truncated\x00", "image/png")
    assert r.view == "hex" and r.error == "not a recognised image format"
    for n in range(40):  # cut-off headers never raise
        for body in (png(9, 9)[:n], gif(9, 9)[:n], jpeg(9, 9)[:n], bmp(9, 9)[:n], webp_lossless(9, 9)[:n]):
            render(body, "image/png", "image")


# --- JSON -------------------------------------------------------------------------------------

def test_json_pretty_and_highlighted() -> None:
    body = '{"name":"Zoë","n":1.10,"big":1e400,"ok":true,"none":null,"list":[1,{"a":[]}],"empty":{}}'.encode()
    r = render(body, "application/json; charset=utf-8")
    assert (r.view, r.title, r.error) == ("json", "JSON", None)
    assert text_of(r) == [
        "{",
        '  "name": "Zoë",',
        '  "n": 1.10,',
        '  "big": 1e400,',
        '  "ok": true,',
        '  "none": null,',
        '  "list": [',
        "    1,",
        "    {",
        '      "a": []',
        "    }",
        "  ],",
        '  "empty": {}',
        "}",
    ]
    assert attrs_of(r, '"name"') == {"syntax_key"}
    assert attrs_of(r, '"Zoë"') == {"syntax_string"}
    assert attrs_of(r, "1.10") == {"syntax_number"}
    assert attrs_of(r, "true") == {"syntax_keyword"}
    assert attrs_of(r, "{") == {"syntax_punct"}


def test_json_keeps_key_order_and_duplicates() -> None:
    r = render(b'{"z": 1, "a": 2, "z": 3}', "application/json")
    assert text_of(r) == ["{", '  "z": 1,', '  "a": 2,', '  "z": 3', "}"]


def test_json_scalar_and_lines() -> None:
    assert text_of(render(b'"just a string"', "application/json")) == ['"just a string"']
    r = render(b'{"a":1}\n{"b":[2]}\n', "application/x-ndjson")
    assert r.title == "JSON lines (2 documents)" and text_of(r)[0] == "{"


def test_invalid_json_falls_back_to_raw() -> None:
    r = render(b'{"a": 1,, }', "application/json")
    assert r.view == "raw"
    assert r.error is not None and r.error.startswith("Invalid JSON: ") and "column" in r.error
    assert text_of(r) == ['{"a": 1,, }']


def test_json_too_deep_falls_back() -> None:
    r = render(b"[" * 100_000 + b"]" * 100_000, "application/json")
    assert r.view == "raw" and r.error


def test_json_5mb_is_rendered_whole() -> None:
    """A 5 MiB minified JSON body is pretty-printed to its end, by content type and sniffed (how long it
    takes: bench/contentview_bench.py)."""
    from bench.contentview_bench import body_of

    body = body_of(5)
    assert 5 * 1024 * 1024 <= len(body) < 5.5 * 1024 * 1024
    for ctype in ("application/json", ""):  # by content type, and sniffed
        r = render(body, ctype)
        assert r.view == "json" and r.error is None
        assert text_of(r)[-1] == "]" and len(r.lines) > 100_000


# --- markup and code --------------------------------------------------------------------------

HTML = b"""<!DOCTYPE html><html><head><title>Shop</title><meta charset="utf-8">
<style>body { color: red }
  p { margin: 0 }</style><script>if (a < b) { go("</div>") }</script></head>
<body><!-- nav --><div class="main" id=x><p>Hello <b>there</b>, world<p>second<br>
<ul><li>one<li>two</ul><pre>  keep
    this</pre><img src="a.png"></div></body></html>"""


def test_html_reindent_and_highlight() -> None:
    r = render(HTML, "text/html; charset=utf-8")
    assert (r.view, r.title, r.error) == ("html", "HTML", None)
    lines = text_of(r)
    assert lines[:4] == ["<!DOCTYPE html>", "<html>", "  <head>", "    <title>Shop</title>"]
    assert "body { color: red }" in lines and "  p { margin: 0 }" in lines  # style kept as is
    assert '    <script>if (a < b) { go("</div>") }</script>' in lines  # script body is not markup
    assert any(ln.strip() == '<div class="main" id=x>' for ln in lines)
    assert "    keep" not in lines and "  keep" in lines and "    this" in lines  # <pre> verbatim
    assert lines[-1] == "</html>"
    assert "syntax_tag" in attrs_of(r, "div") and "syntax_attr" in attrs_of(r, "class")
    assert_safe(r)


def test_html_survives_broken_markup() -> None:
    for body in (b"<div><p>unclosed <b>bold", b"</p></div>stray closers", b"<a href='x", b"< 3 > 2 <<<>>",
                 b"<!-- never closed", b"<script>no end", b"<" * 5000 + b"a" * 10):
        r = render(body, "text/html")
        assert r.view == "html" and r.error is None
        assert "".join(text_of(r)).replace(" ", "")  # something is shown


def test_xml_reindent() -> None:
    body = (b'<?xml version="1.0"?><feed xmlns="urn:x"><entry id="1"><title>A &amp; B</title><empty/>'
            b'<![CDATA[<raw>]]></entry></feed>')
    r = render(body, "application/atom+xml")
    assert r.view == "xml"
    assert text_of(r) == ['<?xml version="1.0"?>', '<feed xmlns="urn:x">', '  <entry id="1">',
                          "    <title>A &amp; B</title>", "    <empty/>", "    <![CDATA[<raw>]]>", "  </entry>",
                          "</feed>"]


def test_javascript_highlight_and_beautify() -> None:
    r = render(b'function f(a) {\n  return "x" + 42; // note\n}\n', "application/javascript")
    assert (r.view, r.title) == ("javascript", "JavaScript")
    assert text_of(r) == ["function f(a) {", '  return "x" + 42; // note', "}"]
    assert attrs_of(r, "function") == {"syntax_keyword"}
    assert attrs_of(r, '"x"') == {"syntax_string"} and "syntax_comment" in attrs_of(r, "// note")
    minified = b'var s="a;{b}";function g(x){if(x){return 1}else{return 2}}' * 10
    r = render(minified, "text/javascript")
    assert r.title == "JavaScript (beautified)"
    lines = text_of(r)
    assert lines[:7] == ['var s="a;{b}";', "function g(x){", "  if(x){", "    return 1", "  } else{", "    return 2",
                         "  }"]


def test_css_highlight_and_beautify() -> None:
    r = render(b"a { color: red; }\n", "text/css")
    assert r.view == "css" and text_of(r) == ["a { color: red; }"]
    r = render(b"body{margin:0;padding:0}.a{color:#fff}" * 20, "text/css")
    assert text_of(r)[:5] == ["body{", "  margin:0;", "  padding:0", "}", ".a{"]


def test_large_code_uses_simplified_highlighting() -> None:
    body = b"function f(a){if(a){return 'x;'}else{g(a);}}" * 6000
    start = time.perf_counter()
    r = render(body, "application/javascript")
    assert time.perf_counter() - start < 3
    assert "simplified" in r.title and text_of(r)[:3] == ["function f(a){", "  if(a){", "    return 'x;'"]


# --- forms ------------------------------------------------------------------------------------

def test_urlencoded_table() -> None:
    r = render(b"user=alice&password=s3cr%26t&note=two+words%0Aline2&empty=&x=%E2%9C%93",
               "application/x-www-form-urlencoded")
    assert (r.view, r.title) == ("urlencoded", "URL-encoded form (5 fields)")
    assert text_of(r) == ["user:     alice", "password: s3cr&t", "note:     two words", "          line2",
                          "empty:    ", "x:        ✓"]
    assert r.lines[0][0] == ("syntax_key", "user:")


def test_query_view() -> None:
    r = render(None, "", query=[("q", "a b"), ("page", "2")])
    assert (r.view, r.title) == ("query", "Query (2 parameters)")
    assert text_of(r) == ["q:    a b", "page: 2"]
    assert render(b"", "", "query").lines == [[("dim", "(no query string)")]]


MULTIPART = (
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="title"\r\n\r\n'
    b"Holiday\r\nphotos\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="meta"\r\nContent-Type: application/json\r\n\r\n'
    b'{"a":1}\r\n'
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="file"; filename="beach.png"\r\nContent-Type: image/png\r\n\r\n'
    + png(2, 2) +
    b"\r\n--XyZ--\r\n"
)


def test_multipart_with_file_part() -> None:
    r = render(MULTIPART, 'multipart/form-data; boundary="XyZ"')
    assert (r.view, r.title, r.error) == ("multipart", "Multipart form (3 parts)", None)
    lines = text_of(r)
    assert lines[:4] == ["── part 1 (15 B)", "name: title", "Holiday", "photos"]
    i = lines.index("name: meta")
    assert lines[i + 1:i + 5] == ["Content-Type: application/json", "{", '  "a": 1', "}"]
    i = lines.index("name: file")
    assert lines[i + 1:i + 4] == ["filename: beach.png", "Content-Type: image/png",
                                  f"<{len(png(2, 2))} bytes binary: PNG 2 × 2>"]
    assert "warn" not in {a for a, _ in segments(r)}


def test_multipart_problems() -> None:
    r = render(MULTIPART, "multipart/form-data")
    assert r.view == "hex" and r.error is not None and "boundary" in r.error
    r = render(b"no parts here", "multipart/form-data; boundary=abc")
    assert r.view == "raw" and r.error is not None and "not found" in r.error
    r = render(MULTIPART[:60], "multipart/form-data; boundary=XyZ")
    assert r.view == "multipart" and text_of(r)[-1].startswith("(closing boundary missing")


# --- raw, hex, safety -------------------------------------------------------------------------

def test_hex_exact() -> None:
    r = render(b"Hello, world!\n0123456789", "", "hex")
    assert (r.view, r.title) == ("hex", "Hex dump (24 B)")
    assert text_of(r) == [
        "00000000  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 0a 30 31  |Hello, world!.01|",
        "00000010  32 33 34 35 36 37 38 39                           |23456789|",
    ]
    assert text_of(render(b"abc", "", "hex")) == ["00000000  61 62 63" + " " * 42 + "|abc|"]
    assert render(bytes(1300), "", "hex").title == "Hex dump (1.3 KiB)"


def test_raw_neutralises_control_characters() -> None:
    body = "red \x1b[31mX\x1b[0m\ttab\r\nbell\x07 del\x7f c1\u009b bidi\u202eevil nul\x00 cr\rover\n".encode()
    r = render(body, "text/plain")
    assert r.view == "raw"
    assert text_of(r) == ["red ^[[31mX^[[0m        tab",
                          "bell^G del^? c1\\x9b bidi\\u202eevil nul^@ cr^Mover"]
    assert_safe(r)


CONTROL = "".join(map(chr, range(32))) + "\x7f\u0085\u009b\u2028\u202e\u2066"


@pytest.mark.parametrize(("view", "ctype"), [
    ("raw", "text/plain"), ("html", "text/html"), ("xml", "text/xml"), ("javascript", "text/javascript"),
    ("css", "text/css"), ("urlencoded", "application/x-www-form-urlencoded"), ("hex", ""), ("auto", ""),
])
def test_control_characters_never_reach_the_terminal(view: str, ctype: str) -> None:
    body = f"<a title='{CONTROL}'>{CONTROL}</a> var x = '{CONTROL}'; /* {CONTROL} */ k={CONTROL}".encode()
    assert_safe(render(body, ctype, view))


def test_control_characters_in_json_and_multipart_and_query() -> None:
    doc = {CONTROL: CONTROL, "list": [CONTROL]}
    for ensure_ascii in (True, False):
        r = render(json.dumps(doc, ensure_ascii=ensure_ascii).encode(), "application/json")
        assert r.view == "json"
        assert_safe(r)
    mp = (b"--b\r\nContent-Disposition: form-data; name=\"\x1b[2J\"\r\nX-Evil: \x1b]0;t\x07\r\n\r\n"
          + CONTROL.encode() + b"\r\n--b--\r\n")
    assert_safe(render(mp, "multipart/form-data; boundary=b"))
    assert_safe(render(b"", "", "query", query=[(CONTROL, CONTROL)]))


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=300), view=st.sampled_from(view_names()),
       ctype=st.sampled_from(["", "application/json", "text/html", "multipart/form-data; boundary=a",
                              "image/png", "text/plain; charset=bogus", "text/plain; charset=latin-1",
                              "application/grpc-web-text", "application/graphql"]))
def test_never_raises_and_always_safe(body: bytes, view: str, ctype: str) -> None:
    r = render(body, ctype, view)
    assert r.view in contentviews.VIEWS and r.view != "auto"
    assert r.lines
    assert_safe(r)


# --- common behaviour -------------------------------------------------------------------------

@pytest.mark.parametrize("body", [None, b""])
def test_no_content(body: bytes | None) -> None:
    r = render(body, "application/json")
    assert r.view == "json" and r.lines == [[("dim", "(no content)")]] and r.error is None
    assert render(body, "", "hex").lines == [[("dim", "(no content)")]]


def test_max_lines_and_full_rendering() -> None:
    body = "".join(f"line {i}\n" for i in range(1000)).encode()
    r = render(body, "text/plain")
    assert len(r.lines) == 1000 and text_of(r)[-1] == "line 999"
    long_line = b"x" * 100_000
    assert text_of(render(long_line, "text/plain")) == ["x" * 100_000]  # never cut
    r = render(body, "text/plain", max_lines=10)
    assert len(r.lines) == 11 and text_of(r)[-1] == "… 990 lines omitted"
    assert len(render(long_line, "text/plain", wrap_at=1000).lines) == 100


def test_unknown_view_and_registry() -> None:
    assert view_names() == ["auto", "json", "html", "xml", "javascript", "css", "urlencoded", "multipart",
                            "query", "graphql", "protobuf", "grpc", "msgpack", "sse", "image", "hex", "raw"]
    assert list(contentviews.VIEWS) == view_names()
    r = render(b"hi", "text/plain", "nope")
    assert r.view == "raw" and r.error == "unknown view 'nope'; showing auto"


@pytest.mark.parametrize(("ctype", "body", "expected"), [
    ("application/json", b"{}", "json"),
    ("application/json; charset=utf-8", b"not json", "json"),
    ("application/vnd.api+json", b"{}", "json"),
    ("application/problem+json", b"{}", "json"),
    ("text/json", b"[]", "json"),
    ("", b'  {"sniffed": true}', "json"),
    ("text/plain", b"[1, 2, 3]", "json"),
    ("application/octet-stream", b"[1, 2", "raw"),
    ("text/html; charset=UTF-8", b"<p>", "html"),
    ("", b"<!DOCTYPE html><html></html>", "html"),
    ("application/xml", b"<a/>", "xml"),
    ("text/xml", b"<a/>", "xml"),
    ("application/rss+xml", b"<rss/>", "xml"),
    ("image/svg+xml", b"<svg/>", "xml"),
    ("", b'<?xml version="1.0"?><a/>', "xml"),
    ("application/javascript", b"x()", "javascript"),
    ("text/javascript", b"x()", "javascript"),
    ("application/x-javascript", b"x()", "javascript"),
    ("text/css", b"a{}", "css"),
    ("application/x-www-form-urlencoded", b"a=1", "urlencoded"),
    ("multipart/form-data; boundary=x", b"--x--", "multipart"),
    ("image/png", b"\x89PNG", "image"),
    ("image/webp", b"RIFF", "image"),
    ("", png(1, 1), "image"),
    ("text/plain", b"hello", "raw"),
    ("text/csv", b"a,b\x00", "raw"),
    ("", b"plain words", "raw"),
    ("application/octet-stream", b"\x00\x01\x02", "hex"),
    ("", b"\xff\xfe\xfd", "hex"),
    ("application/pdf", b"%PDF-1.4\n\xe2\xe3\xcf\xd3", "hex"),
])
def test_guess(ctype: str, body: bytes, expected: str) -> None:
    assert guess(ctype, body) == expected
    assert render(body, ctype).view in (expected, "raw", "hex")  # a failing view falls back


# --- urwid and palette ------------------------------------------------------------------------

SAMPLES = [
    (b'{"a": [1, "two", null]}', "application/json"), (HTML, "text/html"), (b"<a><b>t</b></a>", "text/xml"),
    (b"var a = 1; // c", "application/javascript"), (b"a{b:c}", "text/css"),
    (b"a=1&b=2", "application/x-www-form-urlencoded"),
    (MULTIPART, "multipart/form-data; boundary=XyZ"), (png(3, 3), "image/png"), (bytes(range(256)), ""),
    ("wide 表 \x1b[1m text\n\n".encode(), "text/plain"), (None, ""),
]


@pytest.mark.parametrize(("body", "ctype"), SAMPLES)
def test_lines_are_valid_urwid_markup(body: bytes | None, ctype: str) -> None:
    r = render(body, ctype)
    for line in r.lines[:200]:
        canvas = urwid.Text(line).render((80,))
        assert canvas.rows() >= 1
    assert_safe(r)


def test_palette_covers_everything() -> None:
    required = {"text", "title", "header", "header_name", "header_value", "method", "url", "status_1xx",
                "status_2xx", "status_3xx", "status_4xx", "status_5xx", "error", "intercepted", "marked", "focus",
                "statusbar", "statusbar_key", "key", "dim", "warn", "highlight", "diff_add", "diff_del", "flow_ws",
                "flow_tcp", "tab", "tab_active", "syntax_key", "syntax_string", "syntax_number", "syntax_keyword",
                "syntax_punct", "syntax_comment", "syntax_tag", "syntax_attr"}
    assert required <= ATTRIBUTES
    assert len(ATTRIBUTES) == len(PALETTE)  # no duplicates
    for name, fg, bg, _mono, fg_hi, bg_hi in PALETTE:
        urwid.AttrSpec(fg, bg, 16)
        urwid.AttrSpec(fg_hi, bg_hi, 256)
        if name not in ("focus", "highlight", "statusbar", "statusbar_key", "tab_active"):
            assert bg == "default" and bg_hi == "default", name  # the terminal's own background
    screen = urwid.display.raw.Screen()
    screen.register_palette(PALETTE)
    assert FOCUS_MAP["syntax_key"] == "focus" and FOCUS_MAP[None] == "focus"
