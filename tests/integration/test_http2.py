"""HTTP/2 through the intercepting proxy: real curl, httpx and h2 clients; real hypercorn and h11 TLS origins.

ALPN is negotiated per side and the two HTTP versions translate to each other, so every pairing is tried:
h2 ↔ h2, h2 client → HTTP/1.1 server, HTTP/1.1 client → h2-only server (the server is offered what the
client offered through CONNECT, and both versions when it refuses those or when there is no client ALPN).
"""
from __future__ import annotations

import asyncio
import json
import socket
import ssl
from typing import Any

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from interpose.http import HTTPFlow
from tests.conftest import Recorder, curl
from tests.tls_servers import (
    H2Origin,
    TestCA,
    https_url,
    tls_through_proxy,
)

MiB = 1024 * 1024


@pytest.fixture
async def tls_proxy(make_proxy, test_ca: TestCA) -> tuple[Any, Recorder]:
    """A proxy that trusts the origins' test CA, with a Recorder."""
    rec = Recorder()
    return await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path), rec


def ca_of(proxy: Any) -> str:
    return str(proxy.master.certs.ca_cert_path)


def h2_client(proxy: Any, http1: bool = True, **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(proxy=proxy.url, verify=ssl.create_default_context(cafile=ca_of(proxy)),
                             http2=True, http1=http1, trust_env=False, timeout=30, **kw)


def flows(rec: Recorder, hook: str = "response") -> list[HTTPFlow]:
    return [args[0] for name, args in rec.calls if name == hook]


# -- curl ---------------------------------------------------------------------------


async def test_curl_http2_both_sides(tls_proxy, h2_origin):
    proxy, rec = tls_proxy
    code, out, err = await curl("-v", "--http2", "--cacert", ca_of(proxy), "-x", proxy.url,
                                "-w", "\n%{http_version}", https_url(h2_origin.port, "/echo/h2?x=1"))
    assert code == 0, err
    body, version = out.rsplit(b"\n", 1)
    assert version == b"2"
    assert b"ALPN: server accepted h2" in err and b"< HTTP/2 200" in err
    seen = json.loads(body)
    assert (seen["http_version"], seen["path"], seen["query"]) == ("2", "/echo/h2", "x=1")
    assert seen["headers"]["host"] == f"localhost:{h2_origin.port}"
    await rec.wait_for("response")
    [flow] = flows(rec)
    assert flow.client_conn.alpn == "h2" and flow.client_conn.tls.alpn == "h2"
    assert flow.server_conn.alpn == "h2" and flow.server_conn.tls.alpn == "h2"
    assert flow.request.http_version == "HTTP/2.0" and flow.request.scheme == "https"
    assert flow.response is not None and flow.response.http_version == "HTTP/2.0"
    assert [args[0].kind for name, args in rec.calls if name == "next_layer"] == ["http1", "tls", "http2"]


async def test_curl_http2_to_an_http1_server_gets_http1(tls_proxy, h1_origin):
    """A client offering h2 and http/1.1 gets HTTP/2 only when the server speaks it."""
    proxy, rec = tls_proxy
    code, out, err = await curl("--http2", "--cacert", ca_of(proxy), "-x", proxy.url,
                                "-w", "\n%{http_version}", https_url(h1_origin.port, "/one"))
    assert code == 0, err
    assert out == b"ok /one\n1.1"
    await rec.wait_for("response")
    [flow] = flows(rec)
    assert flow.client_conn.alpn == "http/1.1" and flow.server_conn.alpn == "http/1.1"


async def test_http1_client_to_h2_only_server(make_proxy, h2_only_origin, test_ca):
    """A plain HTTP/1.1 client in reverse mode: the proxy offers the server both versions and translates."""
    rec = Recorder()
    proxy = await make_proxy(rec, mode=f"reverse:https://localhost:{h2_only_origin.port}",
                             ssl_verify_upstream_trusted_ca=test_ca.path)
    url = f"http://127.0.0.1:{proxy.port}"
    code, out, err = await curl("--http1.1", "-w", "\n%{http_version}", url + "/echo/a", "-d", "hello", url + "/echo/b")
    assert code == 0, err
    first, second = (json.loads(part) for part in out.split(b"\n1.1") if part)
    assert (first["http_version"], first["method"], first["path"], first["body_size"]) == ("2", "POST", "/echo/a", 5)
    assert (second["http_version"], second["path"]) == ("2", "/echo/b")
    assert first["headers"]["host"] == f"localhost:{h2_only_origin.port}"
    await rec.wait_for("response", 2)
    for flow in flows(rec):
        assert flow.server_conn.alpn == "h2"
        assert flow.request.http_version == "HTTP/1.1"


async def test_intercepted_http1_client_gets_http1_upstream(tls_proxy, h2_origin):
    """Through CONNECT, the server is offered what the client offered: no HTTP/2 towards the server for
    a client that only speaks HTTP/1.1 (and no h2 machinery per connection)."""
    proxy, rec = tls_proxy
    code, out, err = await curl("--http1.1", "--cacert", ca_of(proxy), "-x", proxy.url,
                                https_url(h2_origin.port, "/echo/one"))
    assert code == 0, err
    assert json.loads(out)["http_version"] == "1.1"
    await rec.wait_for("response")
    [flow] = flows(rec)
    assert flow.client_conn.alpn == "http/1.1" and flow.server_conn.alpn == "http/1.1"


async def test_server_refusing_the_clients_alpn_is_asked_again_with_both(tls_proxy, test_ca, tmp_path):
    """openssl s_server -alpn h2 ends the handshake with a no_application_protocol alert when offered only
    http/1.1 (as HTTP/2-only servers do); the proxy connects again offering both and gets h2."""
    proxy, rec = tls_proxy
    certfile, keyfile = test_ca.leaf_files()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = await asyncio.create_subprocess_exec(
        "openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", certfile, "-key", keyfile, "-alpn", "h2",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert server.stdout is not None
        while b"ACCEPT" not in await asyncio.wait_for(server.stdout.readline(), 10):
            pass
        client = asyncio.create_task(
            curl("--http1.1", "--cacert", ca_of(proxy), "-x", proxy.url, "-m", "10", https_url(port, "/x")))
        await rec.wait_for("requestheaders")  # the handshakes on both sides are done by now
        server.kill()  # it speaks no HTTP/2 beyond the handshake: end the client's wait
        await client
        connects = [args[0] for name, args in rec.calls if name == "serverconnect"]
        assert len(connects) == 2
        assert connects[1].alpn == "h2" and connects[1].tls is not None
    finally:
        if server.returncode is None:
            server.kill()
        await server.wait()


# -- httpx ----------------------------------------------------------------------------


async def test_a_hundred_concurrent_streams_on_one_connection(tls_proxy, h2_origin):
    proxy, rec = tls_proxy
    # One connection: httpx would open one per request while it does not yet know the proxy speaks HTTP/2.
    async with h2_client(proxy, limits=httpx.Limits(max_connections=1)) as c:
        responses = await asyncio.gather(*(c.get(https_url(h2_origin.port, f"/echo/{i}?i={i}")) for i in range(100)))
    for i, r in enumerate(responses):
        assert r.status_code == 200 and r.http_version == "HTTP/2"
        seen = r.json()
        assert (seen["path"], seen["query"], seen["http_version"]) == (f"/echo/{i}", f"i={i}", "2")
    await rec.wait_for("response", 100)
    assert rec.names.count("clientconnect") == 1
    assert rec.names.count("serverconnect") == 1  # one multiplexed connection upstream as well
    done = flows(rec)
    assert len({f.id for f in done}) == 100
    assert sorted(f.request.path for f in done) == sorted(f"/echo/{i}?i={i}" for i in range(100))
    assert all(f.response is not None and f.response.status_code == 200 for f in done)
    assert len({f.client_conn.id for f in done}) == 1


async def test_more_concurrent_streams_than_the_server_allows(make_proxy, test_ca):
    """The proxy offers the client more streams than this server allows; the excess must wait, not fail."""
    origin = await H2Origin(test_ca, max_concurrent_streams=5).start()
    try:
        rec = Recorder()
        proxy = await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path)
        async with h2_client(proxy, limits=httpx.Limits(max_connections=1)) as c:
            responses = await asyncio.gather(*(c.get(https_url(origin.port, f"/echo?i={i}")) for i in range(30)))
        assert [r.status_code for r in responses] == [200] * 30
        assert [r.json()["query"] for r in responses] == [f"i={i}" for i in range(30)]
        assert "error" not in rec.names
        assert rec.names.count("serverconnect") == 1  # they took turns on the one server connection
    finally:
        await origin.stop()


async def test_h2_client_to_http1_server(tls_proxy, h1_origin):
    proxy, rec = tls_proxy
    async with h2_client(proxy, http1=False) as c:
        r1, r2 = await asyncio.gather(c.get(https_url(h1_origin.port, "/echo/get")),
                                      c.post(https_url(h1_origin.port, "/echo/post"), content=b"body!"))
    assert r1.http_version == r2.http_version == "HTTP/2"
    assert (r1.status_code, r2.status_code) == (200, 200)
    got = {r.json()["path"]: r.json() for r in (r1, r2)}
    assert got["/echo/post"]["method"] == "POST" and got["/echo/post"]["body"] == "body!"
    for rec_ in h1_origin.received:
        assert rec_.header("host") == f"localhost:{h1_origin.port}"
    assert {r.path for r in h1_origin.received} == {"/echo/get", "/echo/post"}
    await rec.wait_for("response", 2)
    for flow in flows(rec):
        assert flow.client_conn.alpn == "h2" and flow.server_conn.alpn == "http/1.1"
        assert flow.response.http_version == "HTTP/1.1"


async def test_large_bodies_both_ways_over_h2(tls_proxy, h2_origin):
    proxy, rec = tls_proxy
    size = 20 * MiB
    async with h2_client(proxy) as c:
        down = await c.get(https_url(h2_origin.port, f"/bytes/{size}"))
        up = await c.post(https_url(h2_origin.port, "/echo/upload"), content=b"y" * size)
    assert down.status_code == 200 and down.http_version == "HTTP/2"
    assert len(down.content) == size and down.content.count(b"x") == size
    assert up.status_code == 200 and up.json()["body_size"] == size
    await rec.wait_for("response", 2)
    d, u = flows(rec)
    assert d.response.stream and u.request.stream  # above stream_large_bodies: streamed, not buffered
    assert d.server_conn.alpn == "h2"


# -- the h2 library by hand ---------------------------------------------------------------


async def test_reset_of_one_stream_leaves_its_siblings_alone(tls_proxy, h2_origin):
    proxy, rec = tls_proxy
    context = ssl.create_default_context(cafile=ca_of(proxy))
    context.set_alpn_protocols(["h2"])
    reader, writer = await tls_through_proxy(proxy.port, "localhost", h2_origin.port, context)
    assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    request = [(":method", "GET"), (":scheme", "https"), (":authority", f"localhost:{h2_origin.port}"),
               (":path", "/slow")]
    for sid in (1, 3, 5):
        conn.send_headers(sid, request, end_stream=True)
    writer.write(conn.data_to_send())
    status: dict[int, str] = {}
    bodies: dict[int, bytes] = {1: b"", 5: b""}
    ended: set[int] = set()
    pinged = False

    async def pump(done: Any) -> None:
        nonlocal pinged
        async with asyncio.timeout(10):
            while not done():
                data = await reader.read(65536)
                assert data, "proxy closed the connection"
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.ResponseReceived):
                        status[ev.stream_id] = dict(ev.headers)[":status"]
                    elif isinstance(ev, h2.events.DataReceived):
                        bodies[ev.stream_id] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        ended.add(ev.stream_id)
                    elif isinstance(ev, h2.events.PingAckReceived):
                        pinged = True
                    assert not isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)), ev
                    assert getattr(ev, "stream_id", None) != 3, ev  # nothing more on the stream we reset
                writer.write(conn.data_to_send())

    try:
        await h2_origin.wait_received(3)  # all three are waiting at the server
        conn.reset_stream(3)
        conn.ping(b"after-rs")  # its ACK proves the proxy has read the RST_STREAM before the server answers
        writer.write(conn.data_to_send())
        await pump(lambda: pinged)
        h2_origin.release.set()
        await pump(lambda: ended == {1, 5})
    finally:
        writer.close()
    assert status == {1: "200", 5: "200"}
    assert bodies == {1: b"slow", 5: b"slow"}
    await rec.wait_for("error")
    await rec.wait_for("response", 2)
    [failed] = flows(rec, "error")
    assert failed.request.path == "/slow" and failed.error is not None
    assert "reset" in failed.error.msg, failed.error.msg
    assert rec.names.count("clientconnect") == 1


async def test_reverse_https_mode_with_an_h2_client(make_proxy, h2_origin, test_ca):
    rec = Recorder()
    proxy = await make_proxy(rec, mode=f"reverse:https://localhost:{h2_origin.port}",
                             ssl_verify_upstream_trusted_ca=test_ca.path)
    code, out, err = await curl("--http2", "--cacert", ca_of(proxy), "-w", "\n%{http_version}",
                                f"https://localhost:{proxy.port}/echo/rev")
    assert code == 0, err
    body, version = out.rsplit(b"\n", 1)
    assert version == b"2"
    seen = json.loads(body)
    assert (seen["http_version"], seen["path"]) == ("2", "/echo/rev")
    assert seen["headers"]["host"] == f"localhost:{h2_origin.port}"
    await rec.wait_for("response")
    [flow] = flows(rec)
    assert flow.client_conn.alpn == "h2" and flow.server_conn.alpn == "h2"


async def test_h2_server_that_stops_answering_times_out_with_504(make_proxy, test_ca, h2_origin):
    """read_timeout_s holds towards HTTP/2 servers too: a stream that gets no answer ends with 504 and
    `error`, while the connection and the proxy keep serving."""
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path, read_timeout_s=0.5)
    async with h2_client(proxy, http1=False) as client:
        slow = await client.get(https_url(h2_origin.port, "/slow"))
        assert slow.http_version == "HTTP/2" and slow.status_code == 504, slow.text
        assert "server sent nothing for 0.5 s" in slow.text
        await rec.wait_for("error")
        [flow] = flows(rec, "error")
        assert flow.server_conn.alpn == "h2" and "server sent nothing for 0.5 s" in flow.error.msg
        ok = await client.get(https_url(h2_origin.port, "/after"))
        assert ok.status_code == 200 and ok.text == "ok /after"
