"""Tests for interpose.flowfilter: every operator, precedence, quoting, error messages, and never raising."""
from __future__ import annotations

import gzip
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interpose.flowfilter import OPERATORS, Filter, FilterError, match, parse
from interpose.http import HTTPFlow, Request, Response
from interpose.model.connection import Client, Server
from interpose.model.flow import Error

# -- flow factories ---------------------------------------------------------------------------------


def http_flow(
    method: str = "GET",
    url: str = "http://example.com/path?q=1",
    content: bytes = b"",
    headers: dict[str, str] | None = None,
    response: Response | None | bool = True,
) -> HTTPFlow:
    f = HTTPFlow(Client(address=("127.0.0.1", 5000)), Server(address=("example.com", 80)))
    f.request = Request.make(method, url, content, headers if headers is not None else {"Accept": "*/*"})
    if response is True:
        f.response = Response.make(200, b'{"a": 1}', {"Content-Type": "application/json"})
    elif response:
        f.response = response
    return f


def failed_flow() -> HTTPFlow:
    f = http_flow(response=None)
    f.error = Error("connection refused")
    return f


def msg(from_client: bool, content: bytes) -> SimpleNamespace:
    return SimpleNamespace(from_client=from_client, content=content)


def ws_flow() -> SimpleNamespace:
    """A WebSocketFlow stand-in (interpose.websocket may not exist yet) and its handshake HTTPFlow."""
    hs = http_flow(url="http://example.com/ws", response=Response.make(101, b"", {"Upgrade": "websocket"}))
    ws = SimpleNamespace(
        type="websocket",
        handshake_flow=hs,
        messages=[msg(True, b"hello server"), msg(False, b"hello client")],
        error=None,
        marked=False,
        is_replay=None,
        client_conn=hs.client_conn,
        server_conn=hs.server_conn,
    )
    hs.websocket = ws  # type: ignore[assignment]
    return ws


def tcp_flow() -> SimpleNamespace:
    return SimpleNamespace(
        type="tcp",
        messages=[msg(True, b"PING db"), msg(False, b"PONG \xff\xfe")],
        client_conn=Client(address=("10.1.1.1", 40000)),
        server_conn=Server(address=("db.internal", 5432)),
        error=None,
        marked=False,
        is_replay=None,
    )


def m(expr: str, flow: Any) -> bool:
    result = parse(expr)(flow)
    assert isinstance(result, bool)
    return result


# -- operators --------------------------------------------------------------------------------------


def test_url_and_bare_words() -> None:
    f = http_flow()
    assert m("~u example.com/path", f)
    assert m("~u q=1$", f)
    assert not m("~u other", f)
    assert m("example", f) and m("path", f)
    assert not m("nowhere", f)
    assert m(r"path\?q=1", f)


def test_domain_uses_host_and_pretty_host() -> None:
    f = http_flow(url="http://10.0.0.1/")
    f.request.headers["Host"] = "api.example.org"
    assert m(r"~d 10\.0\.0\.1", f)
    assert m(r"~d api\.example\.org", f)
    assert not m("~d example.com", f)


def test_method() -> None:
    assert m("~m GET", http_flow())
    assert m("~m ^post$", http_flow("POST"))
    assert not m("~m POST", http_flow())


def test_status_code() -> None:
    f = http_flow()
    assert m("~c 200", f)
    assert not m("~c 404", f)
    assert not m("~c 200", http_flow(response=None))
    assert not m("~c 200", failed_flow())


def test_headers() -> None:
    f = http_flow()
    assert m(r"~h 'accept: \*/\*'", f)
    assert m("~hq accept", f)
    assert not m("~hs accept", f)
    assert m('~hs "content-type: application/json"', f)
    assert m('~h "^content-length: 8$"', f)
    assert not m("~hq content-length", f)
    assert not m("~h x-missing", f)


def test_body_request_response() -> None:
    f = http_flow("POST", content=b"user=alice", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert m("~b alice", f) and m("~bq alice", f) and not m("~bs alice", f)
    assert m('~b "\\"a\\""', f) and m('~bs "\\"a\\""', f) and not m('~bq "\\"a\\""', f)
    assert not m("~b bob", f)


def test_body_is_decoded_and_bytes_safe() -> None:
    f = http_flow(response=Response.make(200, b"", {"Content-Encoding": "gzip"}))
    assert f.response is not None
    f.response.content = b"secret token \xff\xfe end"
    assert f.response.raw_content == gzip.compress(b"secret token \xff\xfe end", compresslevel=6, mtime=0)
    assert m('~bs "secret token"', f)
    assert m("~bs SECRET", f)  # case-insensitive on bytes too
    assert m(r"~bs \xff\xfe", f)
    assert not m("~bs gzip", f)
    # a pattern valid only as str (\u escape) falls back to searching the decoded text
    g = http_flow(response=Response.make(200, "été", {}))
    assert m(r"~bs \u00e9t\u00e9", g)
    assert not m(r"~bs \u00e0", g)


def test_content_type() -> None:
    f = http_flow("POST", content=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert m("~t json", f) and m("~ts json", f) and not m("~tq json", f)
    assert m("~t form", f) and m("~tq form", f) and not m("~ts form", f)
    assert not m("~t html", f)


def test_request_response_error_flags() -> None:
    done, pending, failed = http_flow(), http_flow(response=None), failed_flow()
    assert [m("~q", x) for x in (done, pending, failed)] == [False, True, False]
    assert [m("~s", x) for x in (done, pending, failed)] == [True, False, False]
    assert [m("~e", x) for x in (done, pending, failed)] == [False, False, True]


def test_flow_types() -> None:
    ws, tcp, http = ws_flow(), tcp_flow(), http_flow()
    hs = ws.handshake_flow
    assert m("~http", http) and m("~http", hs) and not m("~http", ws) and not m("~http", tcp)
    assert m("~websocket", ws) and m("~websocket", hs)
    assert not m("~websocket", http) and not m("~websocket", tcp)
    assert m("~tcp", tcp) and not m("~tcp", http) and not m("~tcp", ws)
    assert all(m("~all", x) for x in (ws, tcp, http, hs, failed_flow(), object()))


def test_marked_replay_comment() -> None:
    f = http_flow()
    assert not m("~marked", f) and not m("~replay", f) and not m("~comment .", f)
    f.marked = True
    f.is_replay = "request"
    f.comment = "Look HERE"
    assert m("~marked", f) and m("~replay", f) and m("~comment here", f)
    assert not m("~comment nothing", f)


@pytest.mark.parametrize(
    ("ctype", "asset"),
    [
        ("application/javascript; charset=utf-8", True),
        ("text/javascript", True),
        ("application/x-javascript", True),
        ("text/css", True),
        ("image/png", True),
        ("font/woff2", True),
        ("application/font-woff", True),
        ("application/x-shockwave-flash", True),
        ("text/html", False),
        ("application/json", False),
    ],
)
def test_asset(ctype: str, asset: bool) -> None:
    assert m("~a", http_flow(response=Response.make(200, b"x", {"Content-Type": ctype}))) is asset


def test_asset_needs_a_response() -> None:
    assert not m("~a", http_flow(response=None))
    assert not m("~a", http_flow(headers={"Content-Type": "image/png"}, response=None))


def test_addresses() -> None:
    f = http_flow()
    assert m(r"~src ^127\.0\.0\.1:5000$", f) and not m("~src 10.", f)
    assert m("~dst example.com:80", f) and not m("~dst :443", f)
    assert m("~dst db.internal:5432", tcp_flow()) and m("~src 10.1.1.1", tcp_flow())
    f.client_conn.address = None
    assert not m("~src .", f)


def test_websocket_flow_uses_handshake_and_messages() -> None:
    ws = ws_flow()
    hs = ws.handshake_flow
    for flow in (ws, hs):
        assert m("~u /ws$", flow) and m("~d example", flow) and m("~c 101", flow) and m("~h upgrade", flow)
        assert m("~b 'hello server'", flow) and m("~b 'hello client'", flow)
        assert m("~bq 'hello server'", flow) and not m("~bq 'hello client'", flow)
        assert m("~bs 'hello client'", flow) and not m("~bs 'hello server'", flow)
        assert m("~s", flow) and not m("~q", flow) and not m("~e", flow)
        assert m("~src 127.0.0.1:5000", flow)
    ws.error = Error("peer went away")
    assert m("~e", ws)


def test_tcp_messages() -> None:
    t = tcp_flow()
    assert m("~b ping", t) and m("~bq ping", t) and not m("~bs ping", t)
    assert m("~bs pong", t) and not m("~bq pong", t)
    assert m(r"~bs \xff", t)
    for expr in ("~u .", "~d .", "~m .", "~h .", "~c 200", "~s", "~q", "~e", "~t .", "~a", "~http", "~websocket"):
        assert not m(expr, t), expr


# -- combinators and syntax ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("~s | ~e & ~tcp", True),  # & binds tighter than |
        ("~e & ~tcp | ~s", True),
        ("(~s | ~e) & ~tcp", False),
        ("!~s & ~e", False),  # ! binds tighter than &
        ("!(~s & ~e)", True),
        ("!~e & ~s", True),
        ("!!~s", True),
        ("~s ~http", True),  # implicit and
        ("~s ~tcp", False),
        ("~s | ~e ~tcp", True),  # implicit and binds like &
        ("~s!~e", True),
        ("~q|~s", True),
        ("(~s)(~http)", True),
        ("((~s | ~e)) & !(~tcp | ~websocket)", True),
        ("example ~m GET", True),
        ("example ~m POST", False),
        ("~s&~e|~http", True),
    ],
)
def test_precedence(expr: str, expected: bool) -> None:
    assert m(expr, http_flow()) is expected


def test_quoting() -> None:
    f = http_flow("POST", content=b'say "hi" it\'s a\\b', headers={"X-Note": "two words"})
    assert m('~h "x-note: two words"', f) and m("~h 'x-note: two words'", f)
    assert m(r'~b "say \"hi\""', f)
    assert m(r"~b 'it\'s'", f)
    assert m(r'~b "a\\b"', f)  # \\ stays a regex escape: a literal backslash
    assert m(r'~u "q=\d"', f)  # other escapes reach the regex untouched
    assert m('"example.com/path"', f)  # a quoted bare word
    assert m('~u ""', f)  # the empty regex matches everything
    assert not m('~u "pa th"', f)
    assert m("~u (path|nope)", f) and m("(~u (nope|path))", f)  # balanced parentheses stay in the regex
    assert not m(r"~u \(", f)
    assert m("~u a|b", f)  # | inside a word is regex alternation


def test_case_insensitive() -> None:
    f = http_flow()
    assert m("~m get", f) and m("~d EXAMPLE.COM", f) and m("EXAMPLE", f) and m("~h ACCEPT", f)
    assert m("~t APPLICATION/JSON", f) and m('~bs "\\"A\\""', f)


def test_filter_object_api() -> None:
    flt = parse("~u foo & ~c 200")
    assert isinstance(flt, Filter)
    assert flt.expr == "~u foo & ~c 200"
    assert repr(flt) == "<Filter '~u foo & ~c 200' = (~u 'foo' & ~c 200)>"
    assert repr(parse("!a | ~q")) == "<Filter '!a | ~q' = (!~u 'a' | ~q)>"
    assert flt == parse("~u foo & ~c 200") and hash(flt) == hash(parse("~u foo & ~c 200"))
    assert match("~c 200", http_flow()) and not match("~c 201", http_flow())
    assert match(parse("~s"), http_flow())
    with pytest.raises(FilterError):
        match("~c", http_flow())
    assert "~c CODE" in OPERATORS and "~websocket" in OPERATORS and "~u REGEX" in OPERATORS


# -- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "why", "pos"),
    [
        ("", "empty expression", 0),
        ("   ", "empty expression", 0),
        ("~c abc", "~c expects a status code number", 3),
        ("~c", "~c expects a status code number", 2),
        ("~c 2000", "~c expects a status code number", 3),
        ("~zz", "unknown operator ~zz", 0),
        ("~u a ~zz", "unknown operator ~zz", 5),
        ("~hx foo", "did you mean ~h", 0),
        ("~", "expected an operator name after ~", 0),
        ("(~s", "unbalanced parenthesis", 0),
        ("~s & (~q | (~e)", "unbalanced parenthesis: this ( is never closed", 5),
        ("~s)", "unbalanced parenthesis", 2),
        (")", "unbalanced parenthesis", 0),
        ("~u [", "invalid regular expression in ~u", 3),
        ("~u ab(", "invalid regular expression in ~u: missing ), unterminated subpattern", 5),
        ("~h 'a['", "invalid regular expression in ~h", 4),
        ("[", "invalid regular expression in bare word", 0),
        ("~s &", "expected an expression after &", 4),
        ("~s | ", "expected an expression after |", 5),
        ("~s & | ~q", "expected an expression after &, found |", 5),
        ("!", "expected an expression after !", 1),
        ("()", "expected an expression after (, found )", 1),
        ("& ~s", "expected an expression before &", 0),
        ("~u", "~u expects a regular expression", 2),
        ("~b ~q", "~b expects a regular expression", 3),
        ("~u 'abc", "unterminated quoted string", 3),
        ("(" * 200 + "~s" + ")" * 200, "nested too deeply", 100),
        ("~s & " + "!" * 300 + "~e", "nested too deeply", 105),
    ],
)
def test_errors(expr: str, why: str, pos: int) -> None:
    with pytest.raises(FilterError) as info:
        parse(expr)
    e = info.value
    assert isinstance(e, ValueError)
    assert why in e.reason and why in str(e)
    assert e.pos == pos and e.expr == expr
    first, shown, caret = str(e).split("\n")
    assert first.endswith(f"(at offset {pos})")
    assert caret == "  " + " " * pos + "^"
    assert len(shown) == len(expr) + 2


def test_error_caret_stays_aligned_with_tabs() -> None:
    with pytest.raises(FilterError) as info:
        parse("~s\t&\n~zz")
    assert str(info.value).split("\n")[1:] == ["  ~s & ~zz", "       ^"]


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(FilterError):
        parse(None)  # type: ignore[arg-type]


# -- never raising ----------------------------------------------------------------------------------


class _Exploding:
    """A flow whose every attribute access fails in some unexpected way."""

    type = "http"

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"boom: {name}")


def _broken_request_flow() -> HTTPFlow:
    f = http_flow()

    class BadRequest(Request):
        @property
        def content(self) -> bytes:  # type: ignore[override]
            raise MemoryError("too big")

    f.request.__class__ = BadRequest
    return f


SAMPLE_FLOWS: list[Any] = [
    http_flow(),
    http_flow(response=None),
    failed_flow(),
    ws_flow(),
    ws_flow().handshake_flow,
    tcp_flow(),
    SimpleNamespace(),
    SimpleNamespace(type="websocket", handshake_flow=None, messages=None),
    SimpleNamespace(type="http", request=SimpleNamespace(headers={"A": "b"}, url=None)),
    None,
    object(),
    _Exploding(),
    _broken_request_flow(),
]

EVERY_OPERATOR = [op.split()[0] for op in OPERATORS]


@pytest.mark.parametrize("op", EVERY_OPERATOR)
def test_no_operator_raises_on_odd_flows(op: str) -> None:
    expr = {"~c": "~c 200"}.get(op, op if op in OPERATORS else f"{op} .")
    flt = parse(expr)
    for flow in SAMPLE_FLOWS:
        assert isinstance(flt(flow), bool)
        assert isinstance(parse(f"!{expr}")(flow), bool)


def test_broken_body_is_no_match() -> None:
    f = _broken_request_flow()
    assert not m("~bq .", f)
    assert m("~u example", f)


_ALPHABET = st.sampled_from(list("~!&|()'\"\\ \t.*[]{}?+^$")
                            + ["~u", "~c", "~q", "~h", "~bs", "~websocket", "~zz", "200"])
_TOKENS = st.sampled_from(
    ["~u", "~d", "~c", "~q", "~s", "~h", "~b", "~bq", "~a", "~websocket", "~tcp", "~all", "~zz", "!", "&", "|",
     "(", ")", "foo", "'a b'", '"x\\"y"', "200", "[", "(a|b)", "\\", "'", '"', "example", "~src", "~comment"]
)


def _check_never_crashes(text: str) -> None:
    try:
        flt = parse(text)
    except FilterError as e:
        assert e.reason and 0 <= e.pos <= len(text)
        return
    for flow in SAMPLE_FLOWS:
        assert isinstance(flt(flow), bool)
    assert isinstance(repr(flt), str)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.lists(_ALPHABET | st.characters(), max_size=30).map("".join))
def test_random_text_parses_or_raises_filter_error(text: str) -> None:
    _check_never_crashes(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=12).map(" ".join))
def test_random_token_soup_parses_or_raises_filter_error(text: str) -> None:
    _check_never_crashes(text)


def test_message_direction_operators():
    from types import SimpleNamespace

    def tcp(*directions: bool) -> SimpleNamespace:
        return SimpleNamespace(type="tcp", messages=[SimpleNamespace(from_client=d, content=b"x") for d in directions])

    assert parse("~wq")(tcp(False, True)) and not parse("~ws")(tcp(False, True))
    assert parse("~ws")(tcp(True, False)) and not parse("~wq")(tcp(True, False))
    assert not parse("~wq")(tcp()) and not parse("~ws")(tcp())
    handshake = SimpleNamespace(type="http", websocket=tcp(True), request=None, response=None)
    assert parse("~websocket & ~wq")(handshake)
