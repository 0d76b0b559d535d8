"""interpose.store.export: the curl and HTTPie commands are run for real (curl against a local origin) and must
deliver exactly the request's method, target, headers and body bytes; raw messages must parse with h11."""
from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import tempfile

import h11
import pytest

from interpose.http import Headers, HTTPFlow, Request, Response
from interpose.model.connection import Client, Server
from interpose.store import export
from interpose.tcp import TCPFlow
from interpose.websocket import WebSocketFlow
from tests.servers import Origin, Received

NASTY = b"it's \"quoted\" $HOME ${PATH} `id` $(id) \\n \\ back\nslash  two  spaces\n! * ? ~ # ; & | < > %s %%"
BINARY = b"\x00\xff'\"\n\r\t$`\\%\x01\x7f\x80 binary \x00 tail"


def make_flow(method: str, url: str, content: bytes = b"", headers=None) -> HTTPFlow:
    f = HTTPFlow(Client(address=("127.0.0.1", 1)), Server(address=("example.com", 80)))
    f.request = Request.make(method, url, content, headers)
    return f


async def run_shell(cmd: str, timeout: float = 20) -> tuple[int, bytes, bytes]:
    """`bash -c CMD`; a command too long for one argument (a piped big body) runs from a script file."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    with tempfile.NamedTemporaryFile("w", suffix=".sh") as script:
        args = ["-c", cmd]
        if len(cmd) > 100_000:
            script.write(cmd)
            script.flush()
            args = [script.name]
        proc = await asyncio.create_subprocess_exec("bash", *args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, env=env)
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    return proc.returncode or 0, out, err


async def replay_with_curl(origin: Origin, flow: HTTPFlow, cmd: str | None = None) -> Received:
    before = len(origin.received)
    rc, _, err = await run_shell(cmd if cmd is not None else export.curl(flow))
    assert rc == 0, err.decode(errors="replace")
    assert len(origin.received) == before + 1
    return origin.received[-1]


def assert_same_request(flow: HTTPFlow, got: Received) -> None:
    req = flow.request
    assert got.method == req.method
    assert got.path == req.path
    body = req.raw_content or b""
    assert got.body == body
    # Every header the flow had arrives, same spelling and order (curl adds User-Agent/Accept around them).
    sent = [(k.decode(), v.decode()) for k, v in req.headers.fields if k.lower() != b"content-length"]
    received = iter(got.headers)
    for name, value in sent:
        assert any(k == name and v == value for k, v in received), f"{name}: {value} missing or out of order"
    if body:
        assert got.header("content-length") == str(len(body))
    if "content-type" not in req.headers:
        assert got.header("content-type") is None


# -- curl, run for real --------------------------------------------------------------------------


async def test_curl_text_body_with_shell_metacharacters(origin: Origin) -> None:
    flow = make_flow("POST", origin.url + "/echo?a=1&b='x'%20$y", NASTY,
                     {"Content-Type": "text/plain; charset=utf-8", "X-Quote": "it's $HOME `id`", "X-Sp": "a  b"})
    cmd = export.curl(flow)
    assert "--data-binary '" in cmd and "-X" not in cmd  # POST is implied by the body
    assert_same_request(flow, await replay_with_curl(origin, flow))


async def test_curl_binary_body_with_nul_bytes_round_trips(origin: Origin) -> None:
    flow = make_flow("PUT", origin.url + "/echo/bin", BINARY, {"Content-Type": "application/octet-stream"})
    cmd = export.curl(flow)
    assert cmd.startswith("printf -- ") and "--data-binary @-" in cmd and "-X PUT" in cmd
    assert_same_request(flow, await replay_with_curl(origin, flow))


async def test_curl_binary_body_without_nul_uses_ansi_c_quoting(origin: Origin) -> None:
    body = BINARY.replace(b"\x00", b"") + "é\u200b".encode()
    flow = make_flow("PATCH", origin.url + "/echo", body, {"Content-Type": "application/x-thing"})
    cmd = export.curl(flow)
    assert "--data-binary $'" in cmd and "\\xff" in cmd and "\\x00" not in cmd
    assert_same_request(flow, await replay_with_curl(origin, flow))


async def test_curl_body_starting_with_at_is_not_a_file(origin: Origin) -> None:
    flow = make_flow("POST", origin.url + "/echo", b"@/etc/passwd", {"Content-Type": "text/plain"})
    assert "--data-raw @/etc/passwd" in export.curl(flow)
    assert_same_request(flow, await replay_with_curl(origin, flow))


async def test_curl_large_body_is_piped(origin: Origin) -> None:
    body = (b"line of text with 'quotes' and $vars\n" * 8000)[:300_000]
    flow = make_flow("POST", origin.url + "/echo", body, {"Content-Type": "text/plain"})
    assert export.curl(flow).startswith("printf -- ")
    assert_same_request(flow, await replay_with_curl(origin, flow))


@pytest.mark.parametrize("method", ["GET", "DELETE", "OPTIONS", "HEAD", "PURGE"])
async def test_curl_methods_without_body(origin: Origin, method: str) -> None:
    flow = make_flow(method, origin.url + "/echo/m", b"", {"Accept": "application/json"})
    cmd = export.curl(flow)
    assert "--data" not in cmd
    assert ("-X" in cmd) == (method not in ("GET", "HEAD"))
    assert_same_request(flow, await replay_with_curl(origin, flow))


async def test_curl_get_with_body_and_empty_post(origin: Origin) -> None:
    flow = make_flow("GET", origin.url + "/echo", b"q=1", {"Content-Type": "application/x-www-form-urlencoded"})
    assert "-X GET" in export.curl(flow)
    assert_same_request(flow, await replay_with_curl(origin, flow))

    flow = make_flow("POST", origin.url + "/echo", b"")
    got = await replay_with_curl(origin, flow)
    assert_same_request(flow, got)
    assert got.header("content-length") == "0"


async def test_curl_headers_verbatim(origin: Origin) -> None:
    flow = make_flow("POST", origin.url + "/echo", b"{}", [
        ("Content-Type", "application/json"), ("X-Dup", "1"), ("x-dup", "2"), ("X-Empty", ""),
        ("Cookie", "a=1; b=\"two words\""), ("Accept-Encoding", "gzip, br"), ("Authorization", "Bearer a$b`c'd"),
    ])
    cmd = export.curl(flow)
    assert "--compressed" not in cmd and "Content-Length" not in cmd and "content-length" not in cmd
    assert "-H 'X-Empty;'" in cmd
    got = await replay_with_curl(origin, flow)
    assert_same_request(flow, got)
    assert [v for k, v in got.headers if k.lower() == "x-dup"] == ["1", "2"]
    assert got.header("x-empty") == ""


async def test_curl_host_header_kept_only_when_it_differs(origin: Origin) -> None:
    flow = make_flow("GET", origin.url + "/echo")
    assert "Host" not in export.curl(flow)
    assert_same_request(flow, await replay_with_curl(origin, flow))

    flow.request.headers["Host"] = "virtual.example"
    assert "-H 'Host: virtual.example'" in export.curl(flow)
    got = await replay_with_curl(origin, flow)
    assert got.header("host") == "virtual.example"


async def test_curl_url_is_sent_as_is(origin: Origin) -> None:
    # Dot segments would be squashed and brackets read as globs without --path-as-is / --globoff.
    flow = make_flow("GET", origin.url + "/echo/a/../b/./c?x[]=1&y={2}&z=%20")
    cmd = export.curl(flow)
    assert "--path-as-is" in cmd and "--globoff" in cmd
    assert_same_request(flow, await replay_with_curl(origin, flow))


async def test_curl_with_file(origin: Origin, tmp_path) -> None:
    path = tmp_path / "it's a body.bin"
    flow = make_flow("POST", origin.url + "/echo", BINARY, {"Content-Type": "application/octet-stream"})
    cmd = export.curl_with_file(flow, str(path))
    assert path.read_bytes() == BINARY
    assert "--data-binary '@" in cmd
    assert_same_request(flow, await replay_with_curl(origin, flow, cmd))


async def test_curl_http2_flow(origin: Origin) -> None:
    # An HTTP/2 request has no Host header (:authority instead) and lower-case names.
    req = Request("POST", "http", "127.0.0.1", origin.port, "/echo/h2", "HTTP/2.0",
                  [("content-type", "text/plain"), ("x-h2", "yes")], b"h2 body", authority=f"127.0.0.1:{origin.port}")
    flow = HTTPFlow(Client(address=("127.0.0.1", 1)), Server(address=("127.0.0.1", origin.port)))
    flow.request = req
    assert_same_request(flow, await replay_with_curl(origin, flow))


# -- curl and httpie as text ---------------------------------------------------------------------


def test_quoting_survives_shlex() -> None:
    flow = make_flow("POST", "http://example.com/x?a=1", NASTY, {"Content-Type": "text/plain", "X-Q": "a'b $c `d`"})
    words = shlex.split(export.curl(flow))
    assert words[words.index("--data-binary") + 1].encode() == NASTY
    assert "X-Q: a'b $c `d`" in words
    assert words[-3] == "http://example.com/x?a=1"


def test_ansi_c_quote() -> None:
    assert export.ansi_c_quote(b"a'b\\c\n\xff") == "$'a\\'b\\\\c\\n\\xff'"
    assert export.ansi_c_quote(b"\x01a") == "$'\\x01a'"  # two hex digits, so the next char is not eaten
    with pytest.raises(ValueError):
        export.ansi_c_quote(b"\x00")


async def test_ansi_c_and_printf_quoting_in_bash() -> None:
    data = bytes(range(1, 256))
    rc, out, _ = await run_shell(f"printf %s {export.ansi_c_quote(data)}")
    assert rc == 0 and out == data
    data = bytes(range(256)) + b"-n %s \\"
    rc, out, _ = await run_shell(export.printf_pipe(data) + "cat")
    assert rc == 0 and out == data
    rc, out, _ = await run_shell(export.printf_pipe(b"-n leading dash") + "cat")
    assert out == b"-n leading dash"


def test_httpie_text() -> None:
    flow = make_flow("POST", "http://example.com/x?a=1", NASTY,
                     [("Content-Type", "text/plain"), ("X-Eq", "=starts"), ("X-At", "@file"), ("X-Empty", "")])
    words = shlex.split(export.httpie(flow))
    assert words[:2] == ["http", "--raw"]
    assert words[2].encode() == NASTY
    assert words[3:5] == ["POST", "http://example.com/x?a=1"]
    assert "Content-Type:text/plain" in words
    assert "X-Eq:\\=starts" in words and "X-At:\\@file" in words and "X-Empty;" in words
    assert not any(w.lower().startswith(("host", "content-length")) for w in words)


def test_httpie_binary_and_no_content_type() -> None:
    flow = make_flow("PUT", "http://example.com/x", BINARY)
    cmd = export.httpie(flow)
    assert cmd.startswith("printf -- ") and "--raw" not in cmd
    assert cmd.endswith("Content-Type:")  # unsets HTTPie's JSON default


@pytest.mark.skipif(shutil.which("http") is None, reason="HTTPie is not installed")
async def test_httpie_runs(origin: Origin) -> None:
    for body in (NASTY, BINARY):
        flow = make_flow("POST", origin.url + "/echo", body, {"Content-Type": "text/plain", "X-Q": "a'b"})
        got = await replay_with_curl(origin, flow, export.httpie(flow) + " --ignore-netrc")
        assert got.body == body and got.header("x-q") == "a'b"


def test_non_http_flows() -> None:
    tcp = TCPFlow(Client(address=("127.0.0.1", 1)), Server(address=("example.com", 80)))
    with pytest.raises(ValueError):
        export.curl(tcp)
    hs = make_flow("GET", "http://example.com/ws", b"", {"Upgrade": "websocket"})
    ws = WebSocketFlow(hs)
    assert export.curl(ws) == export.curl(hs)
    assert export.raw_request(ws).startswith(b"GET /ws HTTP/1.1\r\n")


# -- raw messages --------------------------------------------------------------------------------


def parse_raw_request(data: bytes) -> tuple[h11.Request, bytes]:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    req = conn.next_event()
    assert isinstance(req, h11.Request)
    body = b""
    while True:
        ev = conn.next_event()
        if isinstance(ev, h11.Data):
            body += ev.data
        else:
            assert isinstance(ev, h11.EndOfMessage), ev
            return req, body


def test_raw_request_http1() -> None:
    flow = make_flow("POST", "http://example.com:8080/x?a=1", BINARY,
                     [("Content-Type", "a/b"), ("X-Dup", "1"), ("x-dup", "2")])
    data = export.raw_request(flow)
    assert data.startswith(b"POST /x?a=1 HTTP/1.1\r\nHost: example.com:8080\r\n"
                           b"Content-Type: a/b\r\nX-Dup: 1\r\nx-dup: 2\r\n")
    assert data.endswith(b"\r\n\r\n" + BINARY)
    req, body = parse_raw_request(data)
    assert req.target == b"/x?a=1" and body == BINARY


def test_raw_request_http2_gets_host_and_length() -> None:
    req = Request("POST", "https", "example.com", 443, "/p", "HTTP/2.0", [("content-type", "text/plain")], b"abc",
                  authority="example.com")
    flow = HTTPFlow(Client(address=("127.0.0.1", 1)), Server(address=("example.com", 443)))
    flow.request = req
    data = export.raw_request(flow)
    assert data == b"POST /p HTTP/1.1\r\nHost: example.com\r\ncontent-type: text/plain\r\nContent-Length: 3\r\n\r\nabc"
    parsed, body = parse_raw_request(data)
    assert parsed.target == b"/p" and body == b"abc"


def test_raw_request_chunked_is_rechunked() -> None:
    flow = make_flow("POST", "http://example.com/up", b"")
    flow.request.headers = Headers([(b"Host", b"example.com"), (b"Transfer-Encoding", b"chunked")])
    flow.request.raw_content = b"hello world"
    data = export.raw_request(flow)
    assert data.endswith(b"\r\n\r\nb\r\nhello world\r\n0\r\n\r\n")
    assert parse_raw_request(data)[1] == b"hello world"


def test_raw_response_and_raw() -> None:
    flow = make_flow("GET", "http://example.com/")
    assert export.raw_response(flow) == b""
    assert export.raw(flow) == export.raw_request(flow)
    flow.response = Response.make(404, b"nope", {"Content-Type": "text/plain"})
    assert export.raw_response(flow) == (b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                                         b"content-length: 4\r\n\r\nnope")
    flow.response.reason = ""  # HTTP/2: no reason phrase
    flow.response.http_version = "HTTP/2.0"
    assert export.raw_response(flow).startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert export.raw(flow) == export.raw_request(flow) + b"\r\n\r\n" + export.raw_response(flow)


def test_formats_table() -> None:
    flow = make_flow("GET", "http://example.com/")
    flow.response = Response.make(200, b"ok")
    assert set(export.FORMATS) == {"curl", "httpie", "raw_request", "raw_response", "raw"}
    for name, fn in export.FORMATS.items():
        out = fn(flow)
        assert isinstance(out, str if name in ("curl", "httpie") else bytes) and out
