"""HTTP/1.1 end to end: real clients (curl, httpx) through the real proxy to the real local origin."""
from __future__ import annotations

import asyncio
import gzip
import json
import re
import resource
import socket
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Recorder, curl

MiB = 2**20


# -- helpers ----------------------------------------------------------------------------------------
def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a `curl -i` output or raw bytes, skipping 1xx and CONNECT's 200."""
    while True:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        if 100 <= status < 200 or "connection established" in lines[0].lower():
            raw = rest
            continue
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        return status, headers, rest


def flows(rec: Recorder, hook: str) -> list[Any]:
    return [args[0] for name, args in rec.calls if name == hook]


async def talk(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes to the proxy and read until it closes the connection (a timeout fails the test)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout):
            return await reader.read(-1)
    finally:
        writer.close()


async def assert_serves(proxy: Any, origin: Any, path: str = "/still-alive") -> None:
    """The proxy still answers a normal request after whatever the test did to it."""
    code, out, err = await curl("-x", proxy.url, f"{origin.url}{path}")
    assert code == 0, err
    assert out == f"ok {path}".encode()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark for this process (Linux) and return ru_maxrss in bytes."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # then the baseline is the lifetime peak: the assertion below only gets weaker
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def write_file(path: Path, size: int, chunk: bytes = b"u" * MiB) -> Path:
    with path.open("wb") as f:
        left = size
        while left:
            f.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))
    return path


def client(proxy: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(proxy=proxy.url, trust_env=False, timeout=20)


# -- methods and bodies ----------------------------------------------------------------------------
async def test_get_post_put_with_bodies(make_proxy, origin):
    rec = Recorder(["response"])
    proxy = await make_proxy(rec)
    async with client(proxy) as c:
        r_get = await c.get(f"{origin.url}/echo?q=1", headers={"X-Test": "get"})
        r_post = await c.post(f"{origin.url}/echo/post", content=b"post body \x00\xff")
        r_put = await c.put(f"{origin.url}/echo/put", content=b"put body")
    assert [r.status_code for r in (r_get, r_post, r_put)] == [200, 200, 200]

    got, posted, put = origin.received
    assert (got.method, got.path, got.body, got.header("x-test")) == ("GET", "/echo?q=1", b"", "get")
    assert (posted.method, posted.body, posted.header("content-length")) == ("POST", b"post body \x00\xff", "12")
    assert (put.method, put.body, put.header("content-length")) == ("PUT", b"put body", "8")
    assert r_post.json()["body"] == "post body \x00\xff"
    assert r_put.json() == {"method": "PUT", "path": "/echo/put", "headers": [list(h) for h in put.headers],
                            "body": "put body"}
    assert [f.request.content for f in flows(rec, "response")] == [b"", b"post body \x00\xff", b"put body"]
    assert json.loads(flows(rec, "response")[1].response.text)["method"] == "POST"


async def test_curl_put_and_post(proxy, origin):
    code, out, err = await curl("-x", proxy.url, "-X", "PUT", "--data-binary", "curl put", f"{origin.url}/echo")
    assert code == 0, err
    assert json.loads(out)["method"] == "PUT" and json.loads(out)["body"] == "curl put"
    code, out, err = await curl("-x", proxy.url, "-d", "a=1&b=2", f"{origin.url}/echo")
    assert code == 0, err
    assert origin.received[-1].method == "POST"
    assert origin.received[-1].body == b"a=1&b=2"
    assert origin.received[-1].header("content-type") == "application/x-www-form-urlencoded"


# -- chunked ---------------------------------------------------------------------------------------
async def test_chunked_upload_with_curl(make_proxy, origin, tmp_path):
    rec = Recorder(["request"])
    proxy = await make_proxy(rec)
    body = bytes(range(256)) * 40  # 10 KiB
    f = tmp_path / "upload.bin"
    f.write_bytes(body)
    code, out, err = await curl("-x", proxy.url, "-H", "Transfer-Encoding: chunked",
                                "--data-binary", f"@{f}", f"{origin.url}/echo")
    assert code == 0, err
    assert origin.received[-1].body == body
    assert json.loads(out)["body"].encode("latin-1") == body
    assert flows(rec, "request")[-1].request.content == body


async def test_chunked_upload_with_httpx_generator(proxy, origin):
    async def parts():
        for i in range(5):
            yield f"part{i};".encode()

    async with client(proxy) as c:
        r = await c.post(f"{origin.url}/echo", content=parts())
    assert r.status_code == 200
    assert origin.received[-1].body == b"part0;part1;part2;part3;part4;"
    assert r.json()["body"] == "part0;part1;part2;part3;part4;"


async def test_chunked_download(make_proxy, origin):
    rec = Recorder(["response"])
    proxy = await make_proxy(rec)
    code, out, err = await curl("-x", proxy.url, f"{origin.url}/chunked/100000/1000")
    assert code == 0, err
    assert out == b"y" * 100000
    assert flows(rec, "response")[-1].response.content == b"y" * 100000

    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/chunked/5000/7")
    assert r.content == b"y" * 5000


async def test_chunked_download_larger_than_stream_threshold(make_proxy, origin):
    """No Content-Length and more than stream_large_bodies: the proxy switches to streaming mid-body."""
    rec = Recorder(["response"])
    proxy = await make_proxy(rec, stream_large_bodies="1m")
    code, out, err = await curl("-x", proxy.url, f"{origin.url}/chunked/3000000/65536")
    assert code == 0, err
    assert len(out) == 3000000 and out == b"y" * 3000000
    resp = flows(rec, "response")[-1].response
    assert resp.stream and resp.raw_content is None


async def test_big_streamed_download_bypasses_h11_and_keeps_the_client_connection(make_proxy, origin):
    """A streamed body of known length at or above 1 MiB is read straight off the server's socket; the
    bytes arrive exact, the client's connection stays open, and the next request gets a new server
    connection (h11 never saw that body, so that one is not reused)."""
    rec = Recorder(["serverconnect", "response"])
    proxy = await make_proxy(rec, stream_large_bodies="100k")
    async with client(proxy) as c:
        r1 = await c.get(f"{origin.url}/bytes/{3 * MiB + 7}")
        r2 = await c.get(f"{origin.url}/bytes/{2 * MiB}")
        r3 = await c.get(f"{origin.url}/one")
    assert len(r1.content) == 3 * MiB + 7 and len(r2.content) == 2 * MiB and r3.text == "ok /one"
    assert r1.content == b"x" * (3 * MiB + 7)
    assert rec.names.count("serverconnect") == 3
    assert all(f.response.stream and f.response.raw_content is None for f in flows(rec, "response")[:2])


async def test_big_streamed_download_cut_short_by_the_server(make_proxy):
    """The server promises 2 MiB and closes after 1 MiB: the client's body is cut short too, never
    padded, and the flow ends with an error that says so."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 * MiB) + b"c" * MiB)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rec = Recorder(["error"])
    proxy = await make_proxy(rec, stream_large_bodies="100k")
    try:
        code, out, err = await curl("-x", proxy.url, f"http://127.0.0.1:{port}/short")
        assert code != 0 and len(out) == MiB and out == b"c" * MiB
        await rec.wait_for("error")
        [flow] = flows(rec, "error")
        assert "server closed the connection 1048576 bytes before the end of the body" in flow.error.msg
        await assert_serves_direct(proxy)
    finally:
        server.close()


async def test_client_leaving_in_the_middle_of_a_spliced_download(make_proxy, origin):
    rec = Recorder(["error"])
    proxy = await make_proxy(rec, stream_large_bodies="100k")
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(f"GET {origin.url}/bytes/{64 * MiB} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await reader.readexactly(MiB)
    writer.transport.abort()
    await rec.wait_for("error")
    [flow] = flows(rec, "error")
    assert "client" in flow.error.msg
    await assert_serves(proxy, origin)


async def assert_serves_direct(proxy: Any) -> None:
    """The proxy still answers (its own error page for an unreachable port is enough)."""
    code, out, err = await curl("-x", proxy.url, f"http://127.0.0.1:{closed_port()}/")
    assert code == 0 and b"interpose" in out, err


# -- connection management -------------------------------------------------------------------------
async def test_keep_alive_reuses_both_connections(make_proxy, origin):
    rec = Recorder(["clientconnect", "serverconnect", "response"])
    proxy = await make_proxy(rec)
    async with client(proxy) as c:
        r1 = await c.get(f"{origin.url}/one")
        r2 = await c.post(f"{origin.url}/echo", content=b"two")
    assert (r1.text, r2.json()["body"]) == ("ok /one", "two")
    assert rec.names.count("clientconnect") == 1
    assert rec.names.count("serverconnect") == 1
    assert origin.connections == 1
    assert len(flows(rec, "response")) == 2


async def test_pipelined_requests_answered_in_order(proxy, origin):
    base = origin.url
    data = (f"GET {base}/p1 HTTP/1.1\r\nHost: x\r\n\r\n"
            f"POST {base}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            f"GET {base}/p3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode()
    out = await talk(proxy.port, data)
    assert out.count(b"HTTP/1.1 200 ") == 3
    first, second, third = out.index(b"ok /p1"), out.index(b'"body": "hello"'), out.index(b"ok /p3")
    assert first < second < third
    assert [r.path for r in origin.received] == ["/p1", "/echo", "/p3"]


async def test_connection_close_from_client(make_proxy, origin):
    rec = Recorder(["clientdisconnect", "response"])
    proxy = await make_proxy(rec)
    out = await talk(proxy.port, f"GET {origin.url}/bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    status, headers, body = parse_response(out)
    assert (status, body) == (200, b"ok /bye")
    assert headers.get("connection", "").lower() == "close"
    await rec.wait_for("clientdisconnect")
    # Connection is hop-by-hop: the origin connection stays the proxy's business.
    assert origin.received[-1].header("connection") is None

    code, out, err = await curl("-x", proxy.url, "-H", "Connection: close", f"{origin.url}/curl-close")
    assert code == 0, err
    assert out == b"ok /curl-close"


async def test_server_connection_close_is_honoured(proxy, origin):
    async with client(proxy) as c:
        r1 = await c.get(f"{origin.url}/close")
        r2 = await c.get(f"{origin.url}/after-close")
    assert (r1.text, r2.text) == ("ok", "ok /after-close")
    assert origin.connections == 2


# -- bodiless responses ----------------------------------------------------------------------------
async def test_head_keeps_content_length(proxy, origin):
    code, out, err = await curl("-x", proxy.url, "-I", f"{origin.url}/bytes/1234")
    assert code == 0, err
    status, headers, body = parse_response(out)
    assert (status, headers["content-length"], body) == (200, "1234", b"")

    async with client(proxy) as c:
        r = await c.head(f"{origin.url}/bytes/4321")
        after = await c.get(f"{origin.url}/after-head")  # framing stayed right on the same connection
    assert r.status_code == 200 and r.headers["content-length"] == "4321" and r.content == b""
    assert after.text == "ok /after-head"
    assert origin.received[-2].method == "HEAD"


async def test_204_and_304(proxy, origin):
    async with client(proxy) as c:
        r204 = await c.get(f"{origin.url}/status/204")
        r304 = await c.get(f"{origin.url}/status/304", headers={"If-None-Match": '"x"'})
        after = await c.get(f"{origin.url}/after")
    assert (r204.status_code, r204.content) == (204, b"")
    assert (r304.status_code, r304.content) == (304, b"")
    assert "transfer-encoding" not in r204.headers and "transfer-encoding" not in r304.headers
    assert after.text == "ok /after"
    assert origin.received[1].header("if-none-match") == '"x"'

    out = await talk(proxy.port,
                     f"GET {origin.url}/status/204 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    status, _, body = parse_response(out)
    assert (status, body) == (204, b"")


# -- Expect: 100-continue --------------------------------------------------------------------------
async def test_expect_100_continue(proxy, origin, tmp_path):
    body = b"e" * 4096
    f = tmp_path / "expect.bin"
    f.write_bytes(body)
    # A long expect timeout: if the proxy never says 100 Continue, curl would wait 30 s and the test times out.
    code, out, err = await curl("-v", "-x", proxy.url, "-H", "Expect: 100-continue", "--expect100-timeout", "30",
                                "--data-binary", f"@{f}", f"{origin.url}/echo", timeout=15)
    assert code == 0, err
    assert b"HTTP/1.1 100 Continue" in err
    assert json.loads(out)["body"].encode() == body
    assert origin.received[-1].body == body


# -- encodings and big bodies ----------------------------------------------------------------------
async def test_gzip_passes_through_unchanged(make_proxy, origin):
    rec = Recorder(["response"])
    proxy = await make_proxy(rec)
    code, out, err = await curl("-x", proxy.url, "-i", f"{origin.url}/gzip")
    assert code == 0, err
    status, headers, body = parse_response(out)
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert body[:2] == b"\x1f\x8b" and int(headers["content-length"]) == len(body)
    assert gzip.decompress(body) == b"hello compressed world " * 20
    resp = flows(rec, "response")[-1].response
    assert resp.raw_content == body
    assert resp.content == b"hello compressed world " * 20


async def test_large_download_streams_with_bounded_memory(make_proxy, origin):
    rec = Recorder(["response"])
    proxy = await make_proxy(rec)
    size = 64 * MiB
    before = reset_peak_rss()
    code, out, err = await curl("-x", proxy.url, "-o", "/dev/null", "-w", "%{size_download} %{http_code}",
                                f"{origin.url}/bytes/{size}", timeout=60)
    grown = peak_rss() - before
    assert code == 0, err
    assert out == f"{size} 200".encode()
    assert grown < 40 * MiB, f"peak RSS grew by {grown / MiB:.1f} MiB for a {size // MiB} MiB body"
    resp = flows(rec, "response")[-1].response
    assert resp.stream and resp.raw_content is None


async def test_large_download_with_httpx_stream(proxy, origin):
    size = 56 * MiB
    before = reset_peak_rss()
    n = 0
    async with client(proxy) as c, c.stream("GET", f"{origin.url}/bytes/{size}") as r:
        assert r.headers["content-length"] == str(size)
        async for chunk in r.aiter_raw():
            n += len(chunk)
    grown = peak_rss() - before
    assert n == size
    assert grown < 40 * MiB, f"peak RSS grew by {grown / MiB:.1f} MiB"


async def test_large_upload_streams_with_bounded_memory(make_proxy, origin, tmp_path):
    rec = Recorder(["request"])
    proxy = await make_proxy(rec)
    size = 64 * MiB
    f = write_file(tmp_path / "big.bin", size)
    before = reset_peak_rss()
    code, out, err = await curl("-x", proxy.url, "--data-binary", f"@{f}", "-H", "Expect:",
                                f"{origin.url}/sink", timeout=60)
    grown = peak_rss() - before
    assert code == 0, err
    assert out == str(size).encode()
    assert origin.received[-1].body_size == size
    assert grown < 40 * MiB, f"peak RSS grew by {grown / MiB:.1f} MiB for a {size // MiB} MiB upload"
    req = flows(rec, "request")[-1].request
    assert req.stream and req.raw_content is None


async def test_large_chunked_upload_streams_with_bounded_memory(make_proxy, origin, tmp_path):
    """No Content-Length: the proxy starts buffering, then switches to streaming past stream_large_bodies."""
    rec = Recorder(["request"])
    proxy = await make_proxy(rec)
    size = 64 * MiB
    f = write_file(tmp_path / "big-chunked.bin", size)
    before = reset_peak_rss()
    code, out, err = await curl("-x", proxy.url, "-H", "Transfer-Encoding: chunked", "-H", "Expect:",
                                "--data-binary", f"@{f}", f"{origin.url}/sink", timeout=60)
    grown = peak_rss() - before
    assert code == 0, err
    assert out == str(size).encode()
    assert origin.received[-1].body_size == size
    assert origin.received[-1].header("transfer-encoding") == "chunked"
    assert grown < 40 * MiB, f"peak RSS grew by {grown / MiB:.1f} MiB for a {size // MiB} MiB chunked upload"
    req = flows(rec, "request")[-1].request
    assert req.stream and req.raw_content is None


# -- modes -----------------------------------------------------------------------------------------
async def test_upstream_mode(make_proxy, origin):
    up_rec, front_rec = Recorder(), Recorder()
    upstream = await make_proxy(up_rec)
    front = await make_proxy(front_rec, mode=f"upstream:{upstream.url}")

    code, out, err = await curl("-x", front.url, f"{origin.url}/via-upstream")
    assert code == 0, err
    assert out == b"ok /via-upstream"
    for rec in (front_rec, up_rec):
        flow = flows(rec, "response")[-1]
        assert (flow.request.url, flow.response.status_code) == (f"{origin.url}/via-upstream", 200)
    assert flows(front_rec, "serverconnect")[-1].address == ("127.0.0.1", upstream.port)

    # CONNECT through the upstream: the front proxy tunnels via the upstream's CONNECT.
    code, out, err = await curl("-p", "-x", front.url, f"{origin.url}/tunnelled")
    assert code == 0, err
    assert out == b"ok /tunnelled"
    for rec in (front_rec, up_rec):
        connect = flows(rec, "http_connect")[-1]
        assert ((connect.request.method, connect.request.host, connect.request.port)
                == ("CONNECT", "127.0.0.1", origin.port))
        assert flows(rec, "response")[-1].request.path == "/tunnelled"
    assert [r.path for r in origin.received] == ["/via-upstream", "/tunnelled"]


async def test_reverse_mode_rewrites_host(make_proxy, origin):
    rec = Recorder(["response"])
    proxy = await make_proxy(rec, mode=f"reverse:{origin.url}")
    code, out, err = await curl(f"http://127.0.0.1:{proxy.port}/echo/rev?a=b")
    assert code == 0, err
    echoed = json.loads(out)
    assert echoed["path"] == "/echo/rev?a=b"
    assert origin.received[-1].header("host") == f"127.0.0.1:{origin.port}"
    assert flows(rec, "response")[-1].request.url == f"{origin.url}/echo/rev?a=b"

    # Absolute-form is not what a reverse proxy expects.
    out = await talk(proxy.port, f"GET {origin.url}/x HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert parse_response(out)[0] == 400
    code, out, err = await curl(f"http://127.0.0.1:{proxy.port}/again")
    assert (code, out) == (0, b"ok /again"), err


async def test_connect_tunnel_carrying_plain_http(make_proxy, origin):
    rec = Recorder(["http_connect", "next_layer", "response"])
    proxy = await make_proxy(rec)
    code, out, err = await curl("-p", "-x", proxy.url, f"{origin.url}/inside")
    assert code == 0, err
    assert out == b"ok /inside"
    connect = flows(rec, "http_connect")[-1]
    assert (connect.request.host, connect.request.port) == ("127.0.0.1", origin.port)
    inner = [f for f in flows(rec, "response") if f.request.method == "GET"]
    assert len(inner) == 1
    assert (inner[0].request.url, inner[0].response.content) == (f"{origin.url}/inside", b"ok /inside")
    assert [layer.kind for layer in flows(rec, "next_layer")] == ["http1", "http1"]


# -- errors ----------------------------------------------------------------------------------------
async def test_connection_refused_is_502(make_proxy, origin):
    rec = Recorder(["error", "response"])
    proxy = await make_proxy(rec)
    port = closed_port()
    code, out, err = await curl("-x", proxy.url, "-i", f"http://127.0.0.1:{port}/nothing")
    assert code == 0, err
    status, _, body = parse_response(out)
    assert status == 502
    assert b"connection refused" in body
    await rec.wait_for("error")
    flow = flows(rec, "error")[-1]
    assert "connection refused" in flow.error.msg
    assert flow.response is None
    assert flows(rec, "response") == []
    await assert_serves(proxy, origin)


async def test_unresolvable_name_is_502(make_proxy, origin):
    rec = Recorder(["error"])
    proxy = await make_proxy(rec)
    code, out, err = await curl("-x", proxy.url, "-i", "http://nonexistent.invalid/")
    assert code == 0, err
    status, _, body = parse_response(out)
    assert status == 502
    assert b"name does not resolve" in body and b"nonexistent.invalid" in body
    await rec.wait_for("error")
    assert "name does not resolve" in flows(rec, "error")[-1].error.msg
    await assert_serves(proxy, origin)


async def test_malformed_request_line_is_400(proxy, origin):
    out = await talk(proxy.port, b"THIS IS NOT HTTP\r\n\r\n")
    status, _, body = parse_response(out)
    assert status == 400 and body.startswith(b"interpose: malformed request")
    await assert_serves(proxy, origin)


async def test_request_line_too_long_is_414(proxy, origin):
    out = await talk(proxy.port, f"GET {origin.url}/{'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    status, _, body = parse_response(out)
    assert status == 414 and b"request line longer than 8192" in body
    assert origin.received == []
    await assert_serves(proxy, origin)


async def test_request_line_just_under_limit_is_served(proxy, origin):
    path = "/" + "b" * 8000
    code, out, err = await curl("-x", proxy.url, f"{origin.url}{path}")
    assert code == 0, err
    assert out == f"ok {path}".encode()


async def test_headers_over_limit_is_431(make_proxy, origin):
    proxy = await make_proxy(header_size_limit="4k")
    out = await talk(proxy.port, f"GET {origin.url}/ HTTP/1.1\r\nHost: x\r\nX-Big: {'h' * 5000}\r\n\r\n".encode())
    status, _, body = parse_response(out)
    assert status == 431 and b"header_size_limit" in body
    assert origin.received == []
    code, out, err = await curl("-x", proxy.url, "-H", f"X-Small: {'s' * 1000}", f"{origin.url}/fits")
    assert (code, out) == (0, b"ok /fits"), err


async def test_origin_form_to_regular_proxy_is_400(proxy, origin):
    out = await talk(proxy.port, b"GET /just/a/path HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status, _, body = parse_response(out)
    assert status == 400 and b"absolute-form" in body
    await assert_serves(proxy, origin)


async def test_server_reset_mid_body_buffered(make_proxy, origin):
    """A buffered response cut off by the server: nothing was sent yet, so the client gets a 502."""
    rec = Recorder(["error"])
    proxy = await make_proxy(rec)
    code, out, err = await curl("-x", proxy.url, "-i", f"{origin.url}/reset-mid-body")
    await rec.wait_for("error")
    assert code == 0, err
    status, _, body = parse_response(out)
    assert status == 502 and b"reset" in body
    assert "reset" in flows(rec, "error")[-1].error.msg
    await assert_serves(proxy, origin)


async def test_server_reset_mid_body_streamed(make_proxy, origin):
    """A streamed response cut off by the server: the client sees a truncated body and an error."""
    class StreamAll:
        def responseheaders(self, flow):
            flow.response.stream = True

    rec = Recorder(["error"])
    proxy = await make_proxy(StreamAll(), rec)
    code, out, err = await curl("-x", proxy.url, f"{origin.url}/reset-mid-body")
    assert code != 0  # 18: transfer closed with outstanding read data remaining
    assert out == b"z" * 1000
    await rec.wait_for("error")
    assert "reset" in flows(rec, "error")[-1].error.msg
    await assert_serves(proxy, origin)


async def test_server_reset_before_answering_is_502(make_proxy, origin):
    rec = Recorder(["error"])
    proxy = await make_proxy(rec)
    code, out, err = await curl("-x", proxy.url, "-i", f"{origin.url}/reset")
    assert code == 0, err
    status, _, body = parse_response(out)
    assert status == 502
    assert re.search(rb"reset|closed the connection", body)
    await rec.wait_for("error")
    assert flows(rec, "error")[-1].error.msg in body.decode()
    await assert_serves(proxy, origin)


async def test_body_size_limit_is_413(make_proxy, origin):
    rec = Recorder(["error"])
    proxy = await make_proxy(rec, body_size_limit="1k")
    code, out, err = await curl("-x", proxy.url, "-i", "-H", "Expect:", "--data-binary", "b" * 2048,
                                f"{origin.url}/echo")
    assert code == 0, err
    status, _, body = parse_response(out)
    assert status == 413 and b"body_size_limit" in body
    assert origin.received == []
    await rec.wait_for("error")
    code, out, err = await curl("-x", proxy.url, "--data-binary", "s" * 512, f"{origin.url}/echo")
    assert code == 0, err
    assert json.loads(out)["body"] == "s" * 512


async def test_body_size_limit_applies_to_streamed_bodies(make_proxy, origin):
    rec = Recorder(["error"])
    proxy = await make_proxy(rec, body_size_limit="1k", stream_large_bodies="2k")
    # A request streamed because its Content-Length is above stream_large_bodies.
    code, out, err = await curl("-x", proxy.url, "-i", "-H", "Expect:", "--data-binary", "b" * 5000,
                                f"{origin.url}/sink")
    assert code == 0, err
    status, _, body = parse_response(out)
    assert status == 413 and b"body_size_limit" in body
    assert not any(r.body_size == 5000 for r in origin.received)
    # A response with no Content-Length, buffered until it passes the limit: nothing sent yet, so a 502.
    code, out, err = await curl("-x", proxy.url, "-i", f"{origin.url}/chunked/5000/100")
    assert code == 0, err
    status, _, body = parse_response(out)
    assert status == 502 and b"response body exceeds body_size_limit" in body
    # A response streamed because of its Content-Length: cut off once past the limit.
    code, out, err = await curl("-x", proxy.url, f"{origin.url}/bytes/5000")
    assert code != 0 and len(out) < 5000
    await rec.wait_for("error", 3)
    assert all("body_size_limit" in f.error.msg for f in flows(rec, "error"))
    code, out, err = await curl("-x", proxy.url, f"{origin.url}/small")
    assert (code, out) == (0, b"ok /small"), err
