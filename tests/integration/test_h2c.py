"""HTTP/2 in clear text (h2c) with prior knowledge: clients that start with the connection preface, and
`--mode reverse:h2c://host:port` towards a server that speaks h2c.

A client's h2c is detected in every mode (the preface instead of an HTTP/1 request line). Towards servers
the proxy speaks HTTP/1.1 in clear text unless the mode says h2c (`reverse:h2c://`), since a plain
connection has no ALPN to ask the server with. The h2c origin is hypercorn without TLS.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import h2.config
import h2.connection
import h2.events
import pytest
from hypercorn.config import Config

from interpose.http import HTTPFlow
from tests.conftest import Recorder, curl, raw_request
from tests.tls_servers import H2Origin, TestCA, start_hypercorn


class H2cOrigin(H2Origin):
    """tests.tls_servers.H2Origin's routes, served by hypercorn in clear text (HTTP/1.1 and h2c)."""

    async def start(self) -> H2cOrigin:
        self.port, self._task = start_hypercorn(self._app, Config(), self._stop)
        return self


@pytest.fixture
async def h2c_origin(tmp_path) -> AsyncIterator[H2cOrigin]:
    o = await H2cOrigin(TestCA(tmp_path / "unused-ca")).start()
    yield o
    await o.stop()


def flows(rec: Recorder, hook: str = "response") -> list[HTTPFlow]:
    return [args[0] for name, args in rec.calls if name == hook]


async def h2c_get(port: int, requests: list[tuple[str, str, str]], preface_parts: int = 1) -> list[tuple[int, bytes]]:
    """Send requests ((scheme, authority, path) each, all at once) over one h2c prior-knowledge connection
    to 127.0.0.1:port; returns (status, body) per request, in order. `preface_parts` splits the first
    bytes into that many writes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    first = conn.data_to_send()
    step = max(1, len(first) // preface_parts)
    for i in range(0, len(first), step):
        writer.write(first[i:i + step])
        await writer.drain()
    ids = []
    for scheme, authority, path in requests:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":scheme", scheme), (":authority", authority),
                                (":path", path)], end_stream=True)
        ids.append(sid)
    writer.write(conn.data_to_send())
    status: dict[int, int] = {}
    body: dict[int, bytes] = {sid: b"" for sid in ids}
    done: set[int] = set()
    try:
        async with asyncio.timeout(10):
            while len(done) < len(ids):
                data = await reader.read(65536)
                if not data:
                    raise AssertionError(f"connection closed; done {done} of {ids}")
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.ResponseReceived):
                        status[ev.stream_id] = int(dict(ev.headers)[b":status"])
                    elif isinstance(ev, h2.events.DataReceived):
                        body[ev.stream_id] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                        done.add(ev.stream_id)
                writer.write(conn.data_to_send())
    finally:
        writer.close()
    return [(status.get(sid, 0), body[sid]) for sid in ids]


# -- reverse:h2c:// ---------------------------------------------------------------------------


async def test_curl_prior_knowledge_to_reverse_h2c_backend(make_proxy, h2c_origin):
    rec = Recorder(["response", "error"])
    proxy = await make_proxy(rec, mode=f"reverse:h2c://127.0.0.1:{h2c_origin.port}")
    code, out, err = await curl("--http2-prior-knowledge", f"{proxy.url}/echo?x=1")
    assert code == 0, err
    echoed = json.loads(out)
    assert (echoed["http_version"], echoed["scheme"], echoed["query"]) == ("2", "http", "x=1")
    await rec.wait_for("response")
    [flow] = flows(rec)
    assert flow.client_conn.alpn == "h2" and flow.server_conn.alpn == "h2"
    assert (flow.request.scheme, flow.request.http_version) == ("http", "HTTP/2.0")
    assert flow.server_conn.tls is None


async def test_http1_client_to_reverse_h2c_backend_is_translated(make_proxy, h2c_origin):
    proxy = await make_proxy(mode=f"reverse:h2c://127.0.0.1:{h2c_origin.port}")
    for path in ("/echo/a", "/echo/b"):  # two requests, one h2c connection to the server
        code, out, err = await curl("--http1.1", f"{proxy.url}{path}")
        assert code == 0, err
        assert json.loads(out)["http_version"] == "2"
    code, out, err = await curl("--http1.1", f"{proxy.url}/bytes/200000")
    assert code == 0 and out == b"x" * 200000, err


async def test_reverse_h2c_to_a_server_that_speaks_only_http1_is_a_502(make_proxy, origin):
    proxy = await make_proxy(mode=f"reverse:h2c://127.0.0.1:{origin.port}")
    for _ in range(2):
        code, out, err = await curl("-s", "-w", "\n%{http_code}", f"{proxy.url}/x")
        assert code == 0, err
        assert out.endswith(b"\n502") and b"HTTP/2 server: connection closed by peer" in out, out
    http1_proxy = await make_proxy(mode=f"reverse:{origin.url}")
    code, out, err = await curl(f"{http1_proxy.url}/x")
    assert (code, out) == (0, b"ok /x"), err


async def test_h2c_client_to_reverse_http_backend_gets_http1_towards_it(make_proxy, origin):
    rec = Recorder(["response"])
    proxy = await make_proxy(rec, mode=f"reverse:{origin.url}")
    code, out, err = await curl("--http2-prior-knowledge", f"{proxy.url}/plain")
    assert (code, out) == (0, b"ok /plain"), err
    await rec.wait_for("response")
    [flow] = flows(rec)
    assert flow.request.http_version == "HTTP/2.0" and flow.server_conn.alpn is None


# -- a client's h2c in regular and upstream mode -------------------------------------------------


async def test_h2c_client_in_regular_mode_with_absolute_urls(make_proxy, origin, h2c_origin):
    rec = Recorder(["response"])
    proxy = await make_proxy(rec)
    answers = await h2c_get(proxy.port, [("http", f"127.0.0.1:{origin.port}", "/one"),
                                         ("http", f"127.0.0.1:{h2c_origin.port}", "/two"),
                                         ("http", f"127.0.0.1:{origin.port}", "/three")])
    assert answers == [(200, b"ok /one"), (200, b"ok /two"), (200, b"ok /three")]
    await rec.wait_for("response", 3)
    urls = sorted(f.request.url for f in flows(rec))
    assert urls == sorted([f"{origin.url}/one", f"http://127.0.0.1:{h2c_origin.port}/two", f"{origin.url}/three"])
    assert all(f.request.http_version == "HTTP/2.0" and f.client_conn.alpn == "h2" for f in flows(rec))
    # Plain connections to servers speak HTTP/1.1: there is no ALPN to ask them with.
    assert h2c_origin.received[-1]["http_version"] == "1.1"


async def test_h2c_preface_split_into_small_writes_is_still_recognized(make_proxy, origin):
    proxy = await make_proxy()
    answers = await h2c_get(proxy.port, [("http", f"127.0.0.1:{origin.port}", "/split")], preface_parts=20)
    assert answers == [(200, b"ok /split")]


async def test_h2c_client_in_upstream_mode_goes_in_absolute_form(make_proxy, origin):
    back_rec = Recorder(["request"])
    back = await make_proxy(back_rec)
    front = await make_proxy(mode=f"upstream:{back.url}")
    answers = await h2c_get(front.port, [("http", f"127.0.0.1:{origin.port}", "/up")])
    assert answers == [(200, b"ok /up")]
    await back_rec.wait_for("request")
    assert flows(back_rec, "request")[0].request.url == f"{origin.url}/up"


async def send_then_half_close(port: int, data: bytes) -> bytes:
    """Send `data`, half-close, and read what comes back until the proxy closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    writer.write_eof()
    try:
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


async def test_a_broken_h2c_client_is_dropped_and_the_proxy_keeps_serving(make_proxy, origin):
    rec = Recorder(["log"])
    proxy = await make_proxy(rec)
    # A DATA frame on a stream never opened: a connection error, answered with GOAWAY.
    answer = await send_then_half_close(proxy.port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                        b"\x00\x00\x04\x00\x01\x00\x00\x00\x01abcd")
    assert b"\x07\x00\x00\x00\x00\x00" in answer  # a GOAWAY frame (type 7, stream 0)
    # The preface cut short, then EOF: not HTTP/2 after all; HTTP/1 says what is wrong with it.
    assert (await send_then_half_close(proxy.port, b"PRI * H")).startswith(b"HTTP/1.1 400")
    msgs = [a[0].msg for n, a in rec.calls if n == "log"]
    assert any("HTTP/2 protocol error from the client" in m for m in msgs), msgs
    assert not [a[0].msg for n, a in rec.calls if n == "log" and a[0].level == "error"]
    code, out, err = await curl("-x", proxy.url, f"{origin.url}/after")
    assert (code, out) == (0, b"ok /after"), err
    answers = await h2c_get(proxy.port, [("http", f"127.0.0.1:{origin.port}", "/after2")])
    assert answers == [(200, b"ok /after2")]


async def test_http1_clients_are_unaffected_by_the_h2c_check(make_proxy, origin):
    proxy = await make_proxy()
    out = await raw_request(proxy.host, proxy.port,
                            f"GET {origin.url}/p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"ok /p"), out
    # "PRI" with another target is an HTTP/1 request like any other (the proxy answers it, no h2).
    out = await raw_request(proxy.host, proxy.port, b"PRIX / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    assert out.startswith(b"HTTP/1.1 4"), out


