"""Hostile HTTP through the real proxy: request smuggling heads, response splitting by addons, refused
uploads that must not be buffered, servers that stop sending. Raw sockets send the exact bytes; real
origins answer; every test also checks that the proxy still serves a normal request afterwards."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from interpose.http import HTTPFlow, Response
from tests.conftest import Recorder, curl
from tests.integration.test_cli import DumpProcess
from tests.integration.test_http1 import assert_serves, parse_response, talk
from tests.tls_servers import https_url

MiB = 2**20


def flows(rec: Recorder, hook: str) -> list[HTTPFlow]:
    return [args[0] for name, args in rec.calls if name == hook]


# -- 1. request smuggling: heads h11 would accept but a proxy must refuse ------------------------------------
def head(origin: Any, fields: bytes, body: bytes = b"") -> bytes:
    return (f"POST {origin.url}/echo HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\n".encode() + fields
            + b"\r\n" + body)


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("fields, status, why", [
    # CL.TE: the proxy frames by TE, an origin that frames by CL sees SMUGGLED as a second request
    (b"Content-Length: 40\r\nTransfer-Encoding: chunked\r\n", 400, b"both Content-Length and Transfer-Encoding"),
    (b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n", 400, b"both Content-Length and Transfer-Encoding"),
    # the same, with the Transfer-Encoding value folded onto the next line
    (b"Content-Length: 40\r\nTransfer-Encoding:\r\n chunked\r\n", 400, b"obsolete line folding"),
    (b"Content-Length: 5\r\nX-Folded: a\r\n\tb\r\n", 400, b"obsolete line folding"),
    (b"Content-Length: 5\r\nContent-Length: 5\r\n", 400, b"duplicate Content-Length"),
    (b"Content-Length: 5, 5\r\n", 400, b"duplicate Content-Length"),
    (b"Content-Length: 5\r\nContent-Length: 6\r\n", 400, b"Content-Length"),
    (b"Transfer-Encoding: gzip, chunked\r\n", 501, b"Transfer-Encoding"),
    (b"Transfer-Encoding: chunked, gzip\r\n", 501, b"Transfer-Encoding"),
    (b"Transfer-Encoding: identity\r\n", 501, b"Transfer-Encoding"),
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 501, b"Transfer-Encoding"),
])
async def test_ambiguous_framing_is_refused_and_closed(make_proxy, origin, fields, status, why):
    proxy = await make_proxy()
    # a chunked body that ends at once, then what a CL-framing origin would take for a second request
    raw = await talk(proxy.port, head(origin, fields, b"0\r\n\r\n" + SMUGGLED))
    got, headers, body = parse_response(raw)
    assert got == status, raw
    assert why in body, body
    assert headers["connection"] == "close"
    assert raw.count(b"HTTP/1.1 ") == 1  # one answer, then the connection closed (talk read to EOF)
    assert origin.received == []  # nothing reached the origin, smuggled or not
    await assert_serves(proxy, origin)


async def test_empty_lines_before_the_request_line_hide_nothing(make_proxy, origin):
    proxy = await make_proxy()
    raw = await talk(proxy.port, b"\r\n\r\n" + head(origin, b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"))
    assert parse_response(raw)[0] == 400  # (h11 refuses those empty lines already; framing_problem skips them)
    assert origin.received == []
    await assert_serves(proxy, origin)


async def test_one_content_length_and_chunked_alone_still_work(make_proxy, origin):
    proxy = await make_proxy()
    raw = await talk(proxy.port, head(origin, b"Content-Length: 5\r\nConnection: close\r\n", b"hello"))
    assert parse_response(raw)[0] == 200
    raw = await talk(proxy.port, head(origin, b"Transfer-Encoding: chunked\r\nConnection: close\r\n",
                                      b"5\r\nhello\r\n0\r\n\r\n"))
    assert parse_response(raw)[0] == 200
    assert [r.body for r in origin.received] == [b"hello", b"hello"]


# -- 2. response splitting and wire validation ----------------------------------------------------------------
class Poison:
    """Puts `value` into one field of the flow at `hook`."""

    def __init__(self, hook: str, field: str, value: Any) -> None:
        self.field, self.value = field, value
        setattr(self, hook, self._poison)

    def _poison(self, flow: HTTPFlow) -> None:
        if flow.request.path.endswith(("/still-alive", "/fine")):
            return  # the requests that show the proxy still serves
        what, _, name = self.field.partition(":")
        if what == "answer":  # an answer made at requestheaders, as server_replay or a flow file's would be
            flow.response = Response.make(200, "replayed")
            what = "reason"
        target: Any = flow.request if what in ("method", "path", "request-header") else flow.response
        if what.endswith("header"):
            target.headers[name] = self.value
        elif what == "header-name":
            target.headers.fields.append((self.value, b"v"))
        else:
            setattr(target, what, self.value)


@pytest.mark.parametrize("hook, field, value, named", [
    ("response", "reason", "OK\r\nSet-Cookie: evil=1", "reason phrase"),
    ("responseheaders", "reason", "OK\nSet-Cookie: evil=1", "reason phrase"),
    ("requestheaders", "answer", "OK\r\nSet-Cookie: evil=1", "reason phrase"),
    ("response", "header:x-note", "a\r\nSet-Cookie: evil=1", "'x-note'"),
    ("response", "header-name", b"Set-Cookie: evil=1\r\nX", "invalid header name"),
])
async def test_bad_response_fields_give_a_clean_502(make_proxy, origin, hook, field, value, named):
    rec = Recorder()
    proxy = await make_proxy(Poison(hook, field, value), rec)
    raw = await talk(proxy.port, f"GET {origin.url}/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
    status, headers, body = parse_response(raw)
    assert status == 502, raw
    assert b"evil" not in raw.partition(b"\r\n\r\n")[0]  # nothing was split off into the head
    assert "set-cookie" not in headers
    assert named.encode() in body, body
    await rec.wait_for("error")
    (flow,) = flows(rec, "error")
    assert flow.error is not None and named in flow.error.msg
    await assert_serves(proxy, origin)


@pytest.mark.parametrize("field, value, named", [
    ("request-header:x-note", "a\r\nX-Injected: 1", "'x-note'"),
    ("header-name", b"X-Injected: 1\r\nX", "invalid header name"),
    ("path", "/a HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /b", "invalid request target"),
    ("method", "GET /x HTTP/1.1\r\n", "invalid method"),
])
async def test_bad_request_fields_never_reach_the_server(make_proxy, origin, field, value, named):
    rec = Recorder()
    if field == "header-name":
        field = "request-header-name"

    class PoisonRequest(Poison):
        def _poison(self, flow: HTTPFlow) -> None:
            if self.field == "request-header-name" and flow.request.path == "/x":
                flow.request.headers.fields.append((self.value, b"v"))
            else:
                super()._poison(flow)

    proxy = await make_proxy(PoisonRequest("request", field, value), rec)
    raw = await talk(proxy.port, f"GET {origin.url}/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
    status, _, body = parse_response(raw)
    assert status == 502, raw
    assert named.encode() in body, body
    assert origin.received == []
    await rec.wait_for("error")
    assert named in flows(rec, "error")[0].error.msg
    await assert_serves(proxy, origin)


async def test_http2_bad_fields_on_both_sides(make_proxy, test_ca, h2_origin):
    ca = None
    for side, hook, field, value in [("client", "response", "header:x-note", "a\r\nset-cookie: evil=1"),
                                     ("server", "request", "request-header:x-note", "a\r\nx-injected: 1")]:
        rec = Recorder()
        proxy = await make_proxy(Poison(hook, field, value), rec, ssl_verify_upstream_trusted_ca=test_ca.path)
        ca = str(proxy.master.certs.ca_cert_path)
        code, out, err = await curl("-s", "-i", "--http2", "--cacert", ca, "-x", proxy.url,
                                    https_url(h2_origin.port, f"/echo/{side}"))
        assert code == 0, err
        status, headers, body = parse_response(out)
        assert b"\r\n\r\nHTTP/2 502" in out, out  # after CONNECT's 200
        assert "set-cookie" not in headers
        assert b"'x-note'" in body, body
        await rec.wait_for("error")
        assert "'x-note'" in flows(rec, "error")[0].error.msg
        code, out, err = await curl("-s", "--http2", "--cacert", ca, "-x", proxy.url,
                                    https_url(h2_origin.port, "/echo/fine"))
        assert code == 0 and b"/echo/fine" in out, (out, err)


# -- 3. a refused upload is not buffered ---------------------------------------------------------------------
async def test_answered_request_with_huge_body_is_not_read(make_proxy, origin):
    rec = Recorder()
    proxy = await make_proxy(rec, proxyauth="user:pass")
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(f"POST {origin.url}/sink HTTP/1.1\r\nHost: a\r\nContent-Length: {256 * MiB}\r\n\r\n".encode()
                 + b"x" * 65536)
    async with asyncio.timeout(10):
        raw = await reader.read(-1)  # the answer, then EOF: the proxy does not wait for 256 MiB
    writer.close()
    status, headers, _ = parse_response(raw)
    assert status == 407
    assert headers["connection"] == "close"
    assert origin.received == []
    (flow,) = flows(rec, "response")
    assert flow.request.raw_content == b""
    code, out, err = await curl("-U", "user:pass", "-x", proxy.url, f"{origin.url}/still-alive")
    assert code == 0 and out == b"ok /still-alive", err


async def test_answered_request_with_small_body_keeps_it_and_the_connection(make_proxy, origin):
    rec = Recorder()
    proxy = await make_proxy(rec, proxyauth="user:pass")
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        for _ in range(2):  # the same connection answers twice
            writer.write(f"POST {origin.url}/sink HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello".encode())
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
                status, headers, _ = parse_response(head)
                await reader.readexactly(int(headers["content-length"]))
            assert status == 407
    finally:
        writer.close()
    assert [f.request.raw_content for f in flows(rec, "response")] == [b"hello", b"hello"]


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


async def test_refused_256_mib_upload_keeps_the_proxy_small(tmp_path, origin):
    dump = await DumpProcess.start("-q", "--set", "proxyauth=user:pass", tmp=tmp_path)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", dump.port)
        writer.write(f"POST {origin.url}/sink HTTP/1.1\r\nHost: a\r\nContent-Length: {256 * MiB}\r\n\r\n".encode())
        chunk = b"x" * MiB
        try:  # keep sending body while the proxy answers and closes
            for _ in range(32):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        async with asyncio.timeout(10):
            raw = await reader.read(-1)
        writer.close()
        assert parse_response(raw)[0] == 407
        assert vm_kib(dump.proc.pid, "VmHWM") < 200 * 1024, vm_kib(dump.proc.pid, "VmHWM")
        code, out, err = await curl("-U", "user:pass", "-x", dump.url, f"{origin.url}/still-alive")
        assert code == 0 and out == b"ok /still-alive", err
    finally:
        await dump.stop()


# -- 4. read_timeout_s ---------------------------------------------------------------------------------------
class StallingOrigin:
    """Reads a request head, sends `sent` (part of a response, or nothing), then stays silent."""

    def __init__(self, sent: bytes) -> None:
        self.sent = sent
        self.release = asyncio.Event()

    async def start(self) -> StallingOrigin:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(self.sent)
            await writer.drain()
            await self.release.wait()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        self.release.set()
        self.server.close()


@pytest.mark.parametrize("sent", [
    b"",  # no head
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 50,  # half a body
], ids=["no-head", "half-body"])
async def test_silent_server_times_out_with_504(make_proxy, origin, sent):
    stalling = await StallingOrigin(sent).start()
    rec = Recorder()
    proxy = await make_proxy(rec, read_timeout_s=0.5)
    try:
        raw = await talk(proxy.port, f"GET http://127.0.0.1:{stalling.port}/ HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        status, _, body = parse_response(raw)
        assert status == 504, raw
        assert b"server sent nothing for 0.5 s" in body
        await rec.wait_for("error")
        assert "server sent nothing for 0.5 s" in flows(rec, "error")[0].error.msg
        await assert_serves(proxy, origin)
    finally:
        await stalling.stop()


@pytest.mark.parametrize("length", [100, 4 * MiB], ids=["streamed", "spliced"])
async def test_silent_server_mid_streamed_body_ends_the_flow(make_proxy, origin, length):
    part = b"x" * (length // 2)
    stalling = await StallingOrigin(f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n".encode() + part).start()
    rec = Recorder()
    proxy = await make_proxy(rec, read_timeout_s=0.5, stream_large_bodies="10")
    try:
        raw = await talk(proxy.port, f"GET http://127.0.0.1:{stalling.port}/ HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        status, headers, body = parse_response(raw)
        assert status == 200 and int(headers["content-length"]) == length
        assert len(body) == len(part)  # the head went out, so the connection is closed short of the length
        await rec.wait_for("error")
        assert "server sent nothing for 0.5 s" in flows(rec, "error")[0].error.msg
        await assert_serves(proxy, origin)
    finally:
        await stalling.stop()


async def test_read_timeout_option_is_declared(make_proxy):
    proxy = await make_proxy()
    assert proxy.master.options.read_timeout_s == 60.0


class Refuse:
    """Answers requests to /refuse at requestheaders, as proxyauth or a replay would."""

    def requestheaders(self, flow: HTTPFlow) -> None:
        if flow.request.path.startswith("/refuse"):
            flow.response = Response.make(403, "refused")


async def test_http2_answered_request_with_big_body_is_not_read(make_proxy, test_ca, h2_origin):
    import ssl

    import httpx

    rec = Recorder()
    proxy = await make_proxy(Refuse(), rec, ssl_verify_upstream_trusted_ca=test_ca.path)
    verify = ssl.create_default_context(cafile=str(proxy.master.certs.ca_cert_path))
    async with httpx.AsyncClient(proxy=proxy.url, verify=verify, http2=True, http1=False, trust_env=False,
                                 timeout=10, limits=httpx.Limits(max_connections=1)) as c:
        # (httpx sends a whole body before it reads the answer, so each stays within the stream's window.) Six
        # unread MiB are more than the connection's window: the proxy gives it back for bodies it never reads.
        for _ in range(6):
            r = await c.post(https_url(h2_origin.port, "/refuse"), content=b"x" * MiB)
            assert (r.status_code, r.http_version, r.content) == (403, "HTTP/2", b"refused")
        r = await c.get(https_url(h2_origin.port, "/echo/fine"))  # the same connection goes on
        assert r.status_code == 200 and r.http_version == "HTTP/2"
    refused = [f for f in flows(rec, "response") if f.request.path == "/refuse"]
    assert [f.request.raw_content for f in refused] == [b""] * 6
    assert rec.names.count("clientconnect") == 1


async def test_replayed_request_with_a_bad_field_errors_and_sends_nothing(make_proxy, origin):
    from interpose.runtime.builtins.replay import replay

    rec = Recorder()
    proxy = await make_proxy(rec)
    await assert_serves(proxy, origin, "/original")
    (flow,) = flows(rec, "response")
    flow.request.headers["x-note"] = "a\r\nX-Injected: 1"  # as an edit in the UI or a loaded flow file could
    new = await replay(proxy.master, flow)
    assert new.error is not None and "'x-note'" in new.error.msg
    assert new.response is None
    assert [name for name, args in rec.calls if args and args[0] is new][-1] == "error"
    assert [r.path for r in origin.received] == ["/original"]
    await assert_serves(proxy, origin)


async def test_refused_connect_with_a_bad_reason_gets_a_502(make_proxy, origin):
    class RefuseConnect:
        def http_connect(self, flow: HTTPFlow) -> None:
            flow.response = Response.make(403, "no")
            flow.response.reason = "Forbidden\r\nSet-Cookie: evil=1"

    rec = Recorder()
    proxy = await make_proxy(RefuseConnect(), rec)
    raw = await talk(proxy.port, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    status, headers, body = parse_response(raw)
    assert status == 502 and "set-cookie" not in headers and b"reason phrase" in body, raw
    await rec.wait_for("error")
    assert "reason phrase" in flows(rec, "error")[0].error.msg
    await assert_serves(proxy, origin)
