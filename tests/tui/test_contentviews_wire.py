"""The protobuf, grpc, msgpack, graphql and sse content views on real payloads, edge cases and garbage."""
from __future__ import annotations

import base64
import json
import random

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interpose.model import encoding
from interpose.model.multidict import Headers
from interpose.tui.contentviews import guess, render
from interpose.tui.contentviews import protobuf as pb
from tests.tui.payloads import Item, Legacy, Node, grpc_frame, msgpack_bytes, nested, order_bytes
from tests.tui.test_contentviews import assert_safe, text_of

PB = "application/x-protobuf"


def screen(r) -> str:
    assert_safe(r)
    return "\n".join(text_of(r))


# --- protobuf -------------------------------------------------------------------------------------

def test_protobuf_real_message_fields_wire_types_nesting_packed() -> None:
    r = render(order_bytes(), PB)
    assert r.view == "protobuf" and r.error is None
    assert r.title == "Protobuf (13 top-level fields, no schema)"
    lines = text_of(r)
    assert '1 len string: "Ada Lovelace"' in lines
    assert "2 varint: 150" in lines
    assert "3 len message (10 bytes) {" in lines and "  1 varint: 42" in lines and '  2 len string: "widget"' in lines
    assert "4 len bytes (6): 01 96 01 03 8e 02" in lines  # packed int32 [1, 150, 3, 270]
    assert "    as packed varint: 1, 150, 3, 270" in lines
    assert "5 len bytes (7): fa fb fc fd fe ff 00" in lines  # bytes, not a string
    assert "6 i64: 4612811918334230528  (double 2.5)" in lines
    assert "    as packed fixed32: 7, 8" in lines
    assert "8 varint: 5  (sint -3)" in lines
    assert "9 i32: 1069547520  (float 1.5)" in lines
    assert "10 varint: 18446744073709551615  (int64 -1)" in lines
    assert lines.count('11 len string: "fast"') == 1 and '11 len string: "fragile"' in lines  # repeated
    assert "12 len message (13 bytes) {" in lines and '  2 len string: "gift wrap"' in lines
    assert r.lines[0][0] == ("syntax_key", "1") and r.lines[3][:2] == [("text", "  "), ("syntax_key", "1")]


def test_protobuf_strings_that_also_parse_as_messages() -> None:
    # "hi" is also a valid message (field 13, varint 105): printable text wins
    assert text_of(render(Item(label="hi").SerializeToString(), PB)) == ['2 len string: "hi"']
    # a message whose bytes happen to be printable ("\n\n" + 10 characters) is still a message
    inner = Item(label="0123456789").SerializeToString()
    assert inner.startswith(b"\x12\x0a")
    outer = Node(child=Node(depth=3)).SerializeToString()
    assert text_of(render(outer, PB)) == ["1 len message (2 bytes) {", "  2 varint: 3  (sint -2)", "}"]
    wrapped = b"\x0a" + bytes([len(inner)]) + inner  # field 1 holding the Item
    assert "1 len message (12 bytes) {" in text_of(render(wrapped, PB))
    # UTF-8 text is a string; text with control characters is bytes
    assert text_of(render(Item(label="naïve 表").SerializeToString(), PB)) == ['2 len string: "naïve 表"']
    r = render(b"\x12\x03a\x01b", PB)
    assert text_of(r)[0] == "2 len bytes (3): 61 01 62"
    assert text_of(render(b"\x12\x00", PB)) == ["2 len: empty (string, bytes or message)"]


def test_protobuf_groups_and_escapes() -> None:
    m = Legacy()
    m.entry.key = 5
    assert text_of(render(m.SerializeToString(), PB)) == ["10 group {", "  11 varint: 5  (sint -3)", "}"]
    r = render(Item(label="\x1b[2J\u202e evil").SerializeToString(), PB)
    assert_safe(r)  # a string with an escape is bytes (control character), shown in hex
    r = render(Item(label="bidi \u202e and line\u2028sep").SerializeToString(), PB)
    assert r.view == "protobuf" and "\\u202e" in screen(r)


def test_protobuf_depth_limit_and_field_budget() -> None:
    r = render(nested(100), PB)
    assert r.view == "protobuf"
    lines = text_of(r)
    depth = max(len(t) - len(t.lstrip()) for t in lines if "as packed" not in t) // 2
    assert depth == pb.MAX_DEPTH - 1
    assert any("len bytes (" in t for t in lines)  # below the limit the rest shows as bytes
    many = b"\x08\x01" * (pb.MAX_FIELDS + 10)
    r = render(many, PB)
    assert r.view == "protobuf" and text_of(r)[-1].startswith("… stopped after 200,000 fields")
    assert len(r.lines) == pb.MAX_FIELDS + 1
    # deeply nested groups: bounded, not a RecursionError
    r = render(b"\x0b" * 5000 + b"\x0c" * 5000, PB)
    assert r.view == "hex" and "groups nested deeper than 32" in r.error


@pytest.mark.parametrize(("body", "reason"), [
    (b"\x00\x01", "invalid field number 0 at byte 0"),
    (b"\x0f", "invalid wire type 7 at byte 0"),
    (b"\x08", "truncated varint at byte 1"),
    (b"\x08" + b"\xff" * 11, "varint longer than 10 bytes at byte 1"),
    (b"\x0a\x10abc", "field 1 at byte 0 claims 16 bytes, 3 left"),
    (b"\x0d\x01\x02", "truncated i32 field 1 at byte 0"),
    (b"\x0c", "unexpected end of group 1 at byte 0"),
    (b"\x0b\x08\x01", "group 1 at byte 0 is not closed"),
])
def test_protobuf_garbage_falls_back_to_hex_and_says_why(body: bytes, reason: str) -> None:
    r = render(body, PB)
    assert r.view == "hex" and r.error == f"not a protobuf message: {reason}"
    assert_safe(r)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_protobuf_and_grpc_never_raise(body: bytes) -> None:
    for view, ctype in (("protobuf", PB), ("grpc", "application/grpc"), ("grpc", "application/grpc-web-text"),
                        ("msgpack", ""), ("graphql", ""), ("sse", "")):
        r = render(body, ctype, view, headers=Headers(grpc_encoding="gzip"))
        assert r.view in (view, "hex", "raw") and r.lines
        assert_safe(r)


def test_protobuf_mutated_real_messages_never_raise() -> None:
    rnd = random.Random(7)
    base = bytearray(order_bytes())
    for _ in range(500):
        b = bytearray(base)
        for _ in range(rnd.randint(1, 4)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        r = render(bytes(b[:rnd.randint(1, len(b))]), PB)
        assert r.view in ("protobuf", "hex")
        assert_safe(r)


# --- gRPC -----------------------------------------------------------------------------------------

def test_grpc_messages_each_decoded() -> None:
    body = grpc_frame(order_bytes()) + grpc_frame(Item(id=9, label="second").SerializeToString())
    r = render(body, "application/grpc")
    assert r.view == "grpc" and r.title == "gRPC (2 messages)"
    lines = text_of(r)
    assert lines[0] == "── message 1 (113 B)"
    assert '  1 len string: "Ada Lovelace"' in lines and "    1 varint: 42" in lines
    assert "── message 2 (10 B)" in lines and '  2 len string: "second"' in lines
    assert guess("application/grpc+proto", body) == "grpc"


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_grpc_compressed_messages(coding: str) -> None:
    body = grpc_frame(order_bytes(), coding) + grpc_frame(b"")
    r = render(body, "application/grpc", headers=Headers(grpc_encoding=coding))
    assert r.title == "gRPC (2 messages, 1 compressed)"
    lines = text_of(r)
    assert lines[0].startswith("── message 1 (") and f", {coding}: 113 B)" in lines[0]
    assert '  1 len string: "Ada Lovelace"' in lines and "  (empty message)" in lines
    # without the header the compressed flag still says so; gzip is recognised by its magic
    if coding == "gzip":
        assert '  1 len string: "Ada Lovelace"' in text_of(render(body, "application/grpc"))


def test_grpc_decompression_honours_decode_limit() -> None:
    bomb = Item(label="x" * 200_000).SerializeToString()
    body = grpc_frame(bomb, "gzip")
    before = encoding.decode_limit()
    encoding.set_decode_limit(64 * 1024)
    try:
        r = render(body, "application/grpc", headers=Headers(grpc_encoding="gzip"))
    finally:
        encoding.set_decode_limit(before)
    lines = text_of(r)
    assert r.view == "grpc" and lines[1] == "  inflates past the decode_limit (64k for the whole body)"
    assert lines[2].startswith("  00000000  1f 8b")  # the compressed bytes, in hex
    r = render(grpc_frame(b"not gzip at all", "gzip")[:5] + b"garbage!!!", "application/grpc",
               headers=Headers(grpc_encoding="snappy"))
    assert "cannot decompress (snappy): unknown content encoding 'snappy'" in screen(r)


def test_grpc_web_trailers_and_text() -> None:
    body = grpc_frame(order_bytes()) + grpc_frame(b"grpc-status: 0\r\ngrpc-message: OK\r\n", trailers=True)
    r = render(body, "application/grpc-web+proto")
    assert r.title == "gRPC-Web (1 message)"
    lines = text_of(r)
    assert "── trailers (34 bytes)" in lines and "  grpc-status: 0" in lines and "  grpc-message: OK" in lines
    # grpc-web-text: base64, in chunks each padded on its own
    chunks = base64.b64encode(grpc_frame(Item(id=1).SerializeToString())) + base64.b64encode(
        grpc_frame(b"grpc-status: 0\r\n", trailers=True))
    r = render(chunks, "application/grpc-web-text")
    assert r.view == "grpc" and "  1 varint: 1" in text_of(r) and "  grpc-status: 0" in text_of(r)


def test_grpc_truncated_garbage_and_undecodable_messages() -> None:
    full = grpc_frame(order_bytes())
    r = render(full[:40], "application/grpc")
    assert r.view == "grpc" and text_of(r)[-1] == "last message truncated: 35 of 113 bytes"
    r = render(full + b"\x00\x00", "application/grpc")
    assert text_of(r)[-1] == "2 stray bytes after the last message"
    r = render(grpc_frame(b"\x00\xffjunk"), "application/grpc")
    assert r.view == "grpc" and "  not a protobuf message: invalid field number 0 at byte 0" in text_of(r)
    r = render(b"<html>oops</html>", "application/grpc")
    assert r.view == "hex" and r.error == "not gRPC framing: flag byte 0x3c"
    r = render(b"\x00\xff\xff\xff\xff", "application/grpc")
    assert r.view == "hex" and "first message claims 4,294,967,295 bytes" in r.error
    r = render(b"!!!not base64", "application/grpc-web-text")
    assert r.view == "hex" and r.error == "not base64 (application/grpc-web-text)"


# --- MessagePack ----------------------------------------------------------------------------------

def test_msgpack_real_payload() -> None:
    r = render(msgpack_bytes(), "application/msgpack")
    assert r.view == "msgpack" and r.title == "MessagePack"
    lines = text_of(r)
    assert lines[0] == "{" and lines[-1] == "}"
    for want in ('  "user": "ada",', '  "id": 7,', '  "ratio": 0.25,', '  "tags": [', '    "a",',
                 '  "blob": b"00 01 fe" (3 bytes),', '  "when": timestamp 2023-11-14T22:13:20+00:00,',
                 '  "ext": ext 5: 78 79 (2 bytes),', "  3: nil,", '  "ok": true'):
        assert want in lines
    assert guess("application/x-msgpack", b"\x80") == "msgpack"


def test_msgpack_streams_garbage_and_depth() -> None:
    stream = msgpack.packb({"a": 1}) + msgpack.packb([1, 2]) + b"\x93\x01"
    r = render(stream, "application/msgpack")
    assert r.title == "MessagePack (2 objects)"
    assert text_of(r)[0] == "── object 1"
    assert text_of(r)[-1] == "2 bytes after the last object are not MessagePack (incomplete or invalid)"
    r = render(b"\xc1", "application/msgpack")
    assert r.view == "hex" and r.error == "not MessagePack (FormatError)"
    r = render(b"\x91" * 2000, "application/msgpack")
    assert r.view == "hex" and r.error == "MessagePack nested deeper than 1024 levels"
    r = render(b"\x91" * 1000 + b"\x01", "application/msgpack")
    assert r.view == "msgpack" and "items nested too deep" in screen(r)
    r = render(msgpack.packb({"k": "\x1b[2J"}) + b"\xa2\xff\xfe", "application/msgpack")
    assert '"\\u001b[2J"' in screen(r) and '"\\udcff\\udcfe"' in screen(r)


# --- GraphQL --------------------------------------------------------------------------------------

QUERY = ('query Hero($ep: Episode = JEDI, $withFriends: Boolean!) { hero(episode: $ep) { name, '
         '...Details friends @include(if: $withFriends) { name } ... on Droid { primaryFunction } } } '
         'fragment Details on Character { id appearsIn }')


def test_graphql_json_request_pretty_printed_with_variables() -> None:
    body = json.dumps({"query": QUERY, "variables": {"ep": "EMPIRE", "withFriends": True},
                       "operationName": "Hero"}).encode()
    for ctype in ("application/json", "application/graphql+json", ""):
        assert guess(ctype, body) == "graphql"
    r = render(body, "application/json")
    assert r.view == "graphql" and r.title == "GraphQL"
    assert text_of(r) == [
        "operation: Hero",
        "query Hero($ep: Episode = JEDI, $withFriends: Boolean!) {",
        "  hero(episode: $ep) {",
        "    name",
        "    ...Details",
        "    friends @include(if: $withFriends) {",
        "      name",
        "    }",
        "    ... on Droid {",
        "      primaryFunction",
        "    }",
        "  }",
        "}",
        "",
        "fragment Details on Character {",
        "  id",
        "  appearsIn",
        "}",
        "── variables",
        "{",
        '  "ep": "EMPIRE",',
        '  "withFriends": true',
        "}",
    ]
    segs = dict((t, a) for line in r.lines for a, t in line)
    assert segs["query"] == "syntax_keyword" and segs["ep"] == "syntax_attr" and segs["include"] == "syntax_tag"


def test_graphql_batch_raw_query_and_what_stays_json() -> None:
    batch = json.dumps([{"query": "{ me { id } }"}, {"query": "mutation { like(id: 1, input: {a: [1, 2]}) { ok } }",
                                                     "variables": None}]).encode()
    r = render(batch, "application/json")
    assert r.title == "GraphQL batch (2 requests)"
    assert text_of(r) == ["── request 1 of 2", "{", "  me {", "    id", "  }", "}", "── request 2 of 2",
                          "mutation {", "  like(id: 1, input: {a: [1, 2]}) {", "    ok", "  }", "}"]
    r = render(b'query { a(s: """block\nstring""") }  # done', "application/graphql")
    assert r.title == "GraphQL query"
    assert text_of(r) == ["query {", '  a(s: """block', 'string""")', "}", "# done"]
    assert guess("application/json", b'{"query": 5}') == "json"
    assert guess("application/json", b'{"search": {"query": "x"}}') == "json"
    assert guess("application/json", b'[]') == "json"
    r = render(b'{"data": 1}', "", "graphql")
    assert r.view == "raw" and "not a GraphQL request" in r.error
    assert_safe(render(b"{ a(x: \"\x1b[2J\") \x07 }", "application/graphql"))


# --- server-sent events ---------------------------------------------------------------------------

def test_sse_events_fields_comments_and_json_data() -> None:
    body = (b": stream opened\n\nid: 1\nevent: price\ndata: {\"sym\": \"ACME\", \"px\": 12.5}\n\n"
            b"data: first line\r\ndata: second line\r\nretry: 3000\r\n\r\nid: 3\rdata\rx-custom: y\r\r"
            b"data: cut off")
    r = render(body, "text/event-stream; charset=utf-8")
    assert r.view == "sse" and r.title == "Server-sent events (4 events)"
    assert text_of(r) == [
        "  : stream opened",
        "── event 1 price", "  id: 1", "  event: price", "  data:", "    {", '      "sym": "ACME",',
        '      "px": 12.5', "    }",
        "── event 2", "  data:", "    first line", "    second line", "  retry: 3000",
        "── event 3", "  id: 3", "  data:", "    ", "  x-custom: y  (unknown field)",
        "── event 4 (incomplete: the stream ends before its blank line)", "  data:", "    cut off",
    ]
    r = render(b"data: \x1b]0;title\x07\n\n", "text/event-stream")
    assert_safe(r)
    assert render(b"\n\n\n", "text/event-stream").lines == [[("dim", "(no events)")]]


def test_every_new_type_is_picked_by_auto() -> None:
    cases = {"application/x-protobuf": "protobuf", "application/protobuf": "protobuf", "application/grpc": "grpc",
             "application/grpc-web": "grpc", "application/grpc-web-text+proto": "grpc",
             "application/msgpack": "msgpack", "application/x-msgpack": "msgpack", "application/graphql": "graphql",
             "text/event-stream": "sse"}
    for ctype, view in cases.items():
        assert guess(ctype, b"\x08\x01") == view, ctype
