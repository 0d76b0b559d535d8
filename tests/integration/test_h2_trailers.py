"""HTTP/2 request trailers (a last HEADERS frame after the body, as gRPC clients may send) cross the proxy:
a raw h2 client sends them, the flow keeps them in `flow.request.trailers` (addons may change them), and
the server gets them, as trailers of its own framing: a last HEADERS frame towards an HTTP/2 server,
a chunked body's trailer section towards an HTTP/1 one. An HTTP/1 client's chunked trailers reach an
HTTP/2 server the same way.

The origin is a raw h2 server (the h2 library over a loopback socket, h2c) that records the trailers it
received and answers with them in its body, so each test checks what really arrived.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest

from tests.conftest import Recorder
from tests.integration.test_h1_trailers import RawOrigin


class H2TrailerOrigin:
    """h2c (prior knowledge) origin: per request, records (headers, body, trailers) and answers 200 with
    `trailers: NAME=VALUE;...` as the body."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[bytes, bytes], bytes, list[tuple[bytes, bytes]] | None]] = []
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        heads: dict[int, dict[bytes, bytes]] = {}
        bodies: dict[int, bytes] = {}
        trailers: dict[int, list[tuple[bytes, bytes]]] = {}
        try:
            while data := await reader.read(65536):
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        heads[ev.stream_id], bodies[ev.stream_id] = dict(ev.headers), b""
                    elif isinstance(ev, h2.events.DataReceived):
                        bodies[ev.stream_id] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.TrailersReceived):
                        trailers[ev.stream_id] = list(ev.headers)
                    elif isinstance(ev, h2.events.StreamEnded):
                        sid = ev.stream_id
                        got = trailers.get(sid)
                        self.received.append((heads[sid], bodies[sid], got))
                        answer = b"trailers: " + b";".join(k + b"=" + v for k, v in got or [])
                        conn.send_headers(sid, [(b":status", b"200"), (b"content-length", b"%d" % len(answer))])
                        conn.send_data(sid, answer, end_stream=True)
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            writer.close()

    async def start(self) -> H2TrailerOrigin:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self


@pytest.fixture
async def h2_origin() -> AsyncIterator[H2TrailerOrigin]:
    o = await H2TrailerOrigin().start()
    yield o
    o.server.close()


@pytest.fixture
async def raw_origin() -> AsyncIterator[RawOrigin]:
    o = await RawOrigin().start()
    yield o
    o.server.close()


async def h2_post_with_trailers(port: int, authority: str, body: bytes,
                                trailers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """One POST over an h2c prior-knowledge connection to 127.0.0.1:port: headers, the body (if any) in
    DATA frames of up to 10,000 bytes (at least two), then the trailers ending the stream. Returns (status,
    response body). The body stays within the default window of 65,535 bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", authority.encode()),
                            (b":path", b"/upload"), (b"content-type", b"application/grpc"), (b"te", b"trailers")])
    step = min(10_000, max(1, len(body) // 2))
    for i in range(0, len(body), step):
        conn.send_data(sid, body[i:i + step])
    conn.send_headers(sid, trailers, end_stream=True)
    writer.write(conn.data_to_send())
    status, answer = 0, b""
    try:
        async with asyncio.timeout(10):
            while True:
                data = await reader.read(65536)
                assert data, "the proxy closed the connection before the response ended"
                events = conn.receive_data(data)
                for ev in events:
                    if isinstance(ev, h2.events.ResponseReceived):
                        status = int(dict(ev.headers)[b":status"])
                    elif isinstance(ev, h2.events.DataReceived):
                        answer += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamReset):
                        raise AssertionError(f"stream reset: {ev.error_code}")
                writer.write(conn.data_to_send())
                if any(isinstance(ev, h2.events.StreamEnded) for ev in events):
                    return status, answer
    finally:
        writer.close()


TRAILERS = [(b"x-checksum", b"abc123"), (b"grpc-timeout-note", b"sent last")]


def _flow(rec: Recorder) -> Any:
    return [args[0] for name, args in rec.calls if name == "response"][-1]


async def test_h2_client_trailers_reach_an_h2_server_and_the_flow(make_proxy, h2_origin: H2TrailerOrigin) -> None:
    rec = Recorder(["response"])
    proxy = await make_proxy(rec, mode=f"reverse:h2c://127.0.0.1:{h2_origin.port}")
    status, answer = await h2_post_with_trailers(proxy.port, "app.test", b"\x00\x00\x00\x00\x02hi", TRAILERS)
    assert (status, answer) == (200, b"trailers: x-checksum=abc123;grpc-timeout-note=sent last")
    [(head, body, trailers)] = h2_origin.received
    assert body == b"\x00\x00\x00\x00\x02hi" and head[b":method"] == b"POST"
    assert trailers == TRAILERS
    await rec.wait_for("response")
    flow = _flow(rec)
    assert flow.request.content == b"\x00\x00\x00\x00\x02hi"
    assert list(flow.request.trailers.items(multi=True)) == [("x-checksum", "abc123"),
                                                             ("grpc-timeout-note", "sent last")]


async def test_h2_trailers_after_an_empty_body(make_proxy, h2_origin: H2TrailerOrigin) -> None:
    """HEADERS, then the trailers' HEADERS with END_STREAM: no DATA at all."""
    rec = Recorder(["response"])
    proxy = await make_proxy(rec, mode=f"reverse:h2c://127.0.0.1:{h2_origin.port}")
    status, answer = await h2_post_with_trailers(proxy.port, "app.test", b"", [(b"x-only", b"1")])
    assert (status, answer) == (200, b"trailers: x-only=1")
    assert h2_origin.received[0][1:] == (b"", [(b"x-only", b"1")])
    await rec.wait_for("response")
    assert _flow(rec).request.trailers["x-only"] == "1"


async def test_streamed_h2_request_keeps_its_trailers(make_proxy, h2_origin: H2TrailerOrigin) -> None:
    """A body above stream_large_bodies streams to the server; its trailers still end the stream there."""
    body = b"z" * 50_000
    rec = Recorder(["response"])
    proxy = await make_proxy(rec, mode=f"reverse:h2c://127.0.0.1:{h2_origin.port}", stream_large_bodies="1k")
    status, answer = await h2_post_with_trailers(proxy.port, "app.test", body, TRAILERS)
    assert status == 200 and answer.endswith(b"x-checksum=abc123;grpc-timeout-note=sent last")
    assert h2_origin.received[0][1:] == (body, TRAILERS)
    await rec.wait_for("response")
    flow = _flow(rec)
    assert flow.request.raw_content is None and flow.request.trailers["x-checksum"] == "abc123"


class Retrailer:
    def request(self, flow: Any) -> None:
        flow.request.trailers["X-Added"] = "by-addon"
        flow.request.trailers["Content-Length"] = "7"  # not a trailer field: dropped on the way
        del flow.request.trailers["grpc-timeout-note"]


async def test_addon_changes_h2_request_trailers(make_proxy, h2_origin: H2TrailerOrigin) -> None:
    proxy = await make_proxy(Retrailer(), mode=f"reverse:h2c://127.0.0.1:{h2_origin.port}")
    status, answer = await h2_post_with_trailers(proxy.port, "app.test", b"body", TRAILERS)
    assert (status, answer) == (200, b"trailers: x-checksum=abc123;x-added=by-addon")
    assert h2_origin.received[0][2] == [(b"x-checksum", b"abc123"), (b"x-added", b"by-addon")]


async def test_h2_client_trailers_reach_an_http1_server_chunked(make_proxy, raw_origin: RawOrigin) -> None:
    """An h2c client in regular mode to a plain HTTP/1 server: the trailers go out after a chunked body."""
    rec = Recorder(["response"])
    proxy = await make_proxy(rec)
    status, _ = await h2_post_with_trailers(proxy.port, f"127.0.0.1:{raw_origin.port}", b"hello world", TRAILERS)
    assert status == 200
    sent = raw_origin.requests[0]
    assert b"transfer-encoding: chunked" in sent.lower(), sent
    assert sent.endswith(b"0\r\nx-checksum: abc123\r\ngrpc-timeout-note: sent last\r\n\r\n"), sent
    await rec.wait_for("response")
    assert _flow(rec).request.trailers["x-checksum"] == "abc123"


async def test_http1_chunked_trailers_reach_an_h2_server(make_proxy, h2_origin: H2TrailerOrigin) -> None:
    proxy = await make_proxy(mode=f"reverse:h2c://127.0.0.1:{h2_origin.port}")
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    try:
        writer.write(b"POST /up HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
                     b"5\r\nhello\r\n0\r\nX-Checksum: abc123\r\n\r\n")
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            answer = await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
    finally:
        writer.close()
    assert answer == b"trailers: x-checksum=abc123"
    assert h2_origin.received[0][1:] == (b"hello", [(b"x-checksum", b"abc123")])
