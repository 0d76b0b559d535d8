"""HTTP/1 chunked trailers cross the proxy both ways, between a raw-socket client and a raw-socket origin:
the request's trailers reach the origin, the response's reach the client, and addons see them as
`flow.request.trailers` / `flow.response.trailers` (and may change them, checked like header fields).
A buffered message with trailers goes out chunked, the framing that carries them; fields a trailer
section may not carry (Content-Length, Host, ...) are dropped."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Recorder

REQUEST_BODY = b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc123\r\nX-Req-Note: sent last\r\n\r\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Digest\r\n\r\n"
            b"4\r\nbody\r\n0\r\nX-Digest: sha-256=xyz\r\nX-Resp-Note: done\r\n\r\n")


class RawOrigin:
    """Reads one chunked request as bytes (head to the end of its trailer section) and answers with a
    chunked response with trailers."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.got = asyncio.Event()
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            body = b""
            if b"chunked" in head.lower():
                while not body.endswith(b"\r\n\r\n") or b"\r\n0\r\n" not in b"\r\n" + body:
                    body += await reader.readuntil(b"\r\n")
            elif b"content-length:" in head.lower():
                n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                body = await reader.readexactly(n)
            self.requests.append(head + body)
            self.got.set()
            writer.write(RESPONSE)
            await writer.drain()
            await reader.read()  # until the proxy closes
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def start(self) -> RawOrigin:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self


@pytest.fixture
async def raw_origin() -> AsyncIterator[RawOrigin]:
    o = await RawOrigin().start()
    yield o
    o.server.close()


async def _exchange(proxy: Any, origin: RawOrigin, request: bytes) -> bytes:
    """Send a raw request through the proxy; the raw response, up to the end of its trailer section."""
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            assert b"chunked" in head.lower(), head
            body = b""
            while not (body.startswith(b"0\r\n") or b"\r\n0\r\n" in body) or not body.endswith(b"\r\n\r\n"):
                body += await reader.readuntil(b"\r\n")
            return head + body
    finally:
        writer.close()


def _chunked_request(port: int) -> bytes:
    return (b"POST http://127.0.0.1:%d/upload HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nTransfer-Encoding: chunked\r\n"
            b"Trailer: X-Checksum\r\n\r\n" % (port, port)) + REQUEST_BODY


async def test_trailers_are_relayed_both_ways_and_seen_by_addons(make_proxy, raw_origin: RawOrigin) -> None:
    rec = Recorder(["response"])
    proxy = await make_proxy(rec)
    raw = await _exchange(proxy, raw_origin, _chunked_request(raw_origin.port))
    # the client got the body and the server's trailers
    assert b"4\r\nbody\r\n" in raw
    assert raw.endswith(b"0\r\nX-Digest: sha-256=xyz\r\nX-Resp-Note: done\r\n\r\n"), raw
    # the origin got the request's body and trailers
    sent = raw_origin.requests[0]
    assert b"transfer-encoding: chunked" in sent.lower()
    assert sent.endswith(b"0\r\nX-Checksum: abc123\r\nX-Req-Note: sent last\r\n\r\n"), sent
    assert b"hello" in sent and b" world" in sent
    await rec.wait_for("response")
    (flow,) = rec.calls[-1][1]
    assert flow.request.content == b"hello world"
    assert list(flow.request.trailers.items(multi=True)) == [("X-Checksum", "abc123"), ("X-Req-Note", "sent last")]
    assert flow.response.content == b"body"
    assert flow.response.trailers["x-digest"] == "sha-256=xyz"


class Retrailer:
    """Changes the trailers at `request` and `response`: a field added, one a trailer may not carry, one
    removed."""

    def request(self, flow: Any) -> None:
        flow.request.trailers["X-Added"] = "by-addon"
        flow.request.trailers["Content-Length"] = "999"  # not a trailer field: dropped on the way
        del flow.request.trailers["X-Req-Note"]

    def response(self, flow: Any) -> None:
        flow.response.trailers["X-Resp-Added"] = "yes"


async def test_addons_change_trailers_and_forbidden_fields_are_dropped(make_proxy, raw_origin: RawOrigin) -> None:
    proxy = await make_proxy(Retrailer())
    raw = await _exchange(proxy, raw_origin, _chunked_request(raw_origin.port))
    sent = raw_origin.requests[0]
    assert sent.endswith(b"0\r\nX-Checksum: abc123\r\nX-Added: by-addon\r\n\r\n"), sent
    assert raw.endswith(b"X-Resp-Note: done\r\nX-Resp-Added: yes\r\n\r\n"), raw


class BadTrailer:
    def request(self, flow: Any) -> None:
        flow.request.trailers["X-Bad"] = "a\r\nX-Smuggled: 1"


async def test_a_trailer_with_crlf_is_refused_like_a_header(make_proxy, raw_origin: RawOrigin) -> None:
    rec = Recorder(["error"])
    proxy = await make_proxy(BadTrailer(), rec)
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    try:
        writer.write(_chunked_request(raw_origin.port))
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 502"), head
    finally:
        writer.close()
    await rec.wait_for("error")
    (flow,) = rec.calls[-1][1]
    assert "X-Bad" in flow.error.msg and "CR, LF or NUL" in flow.error.msg
    assert not raw_origin.requests  # nothing reached the origin


async def test_an_http10_client_gets_the_body_without_the_trailers(make_proxy, raw_origin: RawOrigin) -> None:
    """HTTP/1.0 has no chunked framing, so nothing can carry trailers to it: the body comes as it is."""
    from tests.conftest import raw_request

    rec = Recorder(["response"])
    proxy = await make_proxy(rec)
    raw = await raw_request(proxy.host, proxy.port, b"GET http://127.0.0.1:%d/x HTTP/1.0\r\n\r\n" % raw_origin.port)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" not in head.lower()
    assert body == b"body" and b"X-Digest" not in raw
    await rec.wait_for("response")
    assert rec.calls[-1][1][0].response.trailers["x-digest"] == "sha-256=xyz"  # the flow keeps them
