"""server_reuse: idle server connections outlive their client connection and carry the next client's requests
(real sockets: the proxy, httpx and curl clients, origins that count their TCP connections)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from interpose.proxy.layers import shared
from tests.conftest import Recorder, curl
from tests.tls_servers import https_url


def client(proxy: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(proxy=proxy.url, trust_env=False, timeout=10)


async def get_once(proxy: Any, url: str, rec: Recorder, n: int, **kw: Any) -> httpx.Response:
    """One request on a client connection of its own; returns once the proxy has seen it disconnect (the n-th
    clientdisconnect), when its server connections are back in the pool."""
    async with client(proxy) as c:
        r = await c.get(url, **kw)
    await rec.wait_for("clientdisconnect", n)
    return r


class RawOrigin:
    """An HTTP/1.1 origin whose answers a test writes: `answer(n, head)` gets the connection's request count and
    the request head, and returns the bytes to send, or None to hang up without answering."""

    def __init__(self, answer: Callable[[int, bytes], bytes | None]) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[tuple[int, bytes]] = []
        """(connection number, request head) in arrival order."""
        self.server: asyncio.Server | None = None
        self.port = 0
        self.close_after_answer = False

    async def start(self) -> RawOrigin:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number, count = self.connections, 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                count += 1
                self.requests.append((number, head))
                out = self.answer(count, head)
                if out is None:
                    return
                writer.write(out)
                await writer.drain()
                if self.close_after_answer:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


@pytest.fixture
async def raw_origin() -> AsyncIterator[Callable[[Callable[[int, bytes], bytes | None]], Awaitable[RawOrigin]]]:
    started: list[RawOrigin] = []

    async def factory(answer: Callable[[int, bytes], bytes | None]) -> RawOrigin:
        o = await RawOrigin(answer).start()
        started.append(o)
        return o

    yield factory
    for o in started:
        assert o.server is not None
        o.server.close()


def ok(body: bytes = b"ok", *headers: str) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


async def test_a_second_client_connection_reuses_the_server_connection(make_proxy, origin):
    rec = Recorder()
    proxy = await make_proxy(rec)
    r1 = await get_once(proxy, f"{origin.url}/one", rec, 1)
    r2 = await get_once(proxy, f"{origin.url}/two", rec, 2)
    assert (r1.status_code, r1.content, r2.status_code, r2.content) == (200, b"ok /one", 200, b"ok /two")
    assert origin.connections == 1  # the origin saw one TCP connection for both clients
    assert rec.names.count("serverconnect") == 1 and "serverdisconnect" not in rec.names
    first, second = (args[0] for name, args in rec.calls if name == "response")
    assert first.client_conn is not second.client_conn
    assert first.server_conn is second.server_conn  # flows of both clients name the one real connection
    assert proxy.master.server.shared.reused == 1
    await proxy.master.shutdown()  # the kept connection is closed at shutdown, and announced
    assert rec.names.count("serverdisconnect") == 1


async def test_intercepted_https_reuses_the_server_connection_and_its_tls(make_proxy, h1_origin, test_ca):
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path)
    ca = str(proxy.master.certs.ca_cert_path)
    for i, path in enumerate(("/a", "/b"), 1):
        code, out, err = await curl("--cacert", ca, "-x", proxy.url, https_url(h1_origin.port, path))
        assert (code, out) == (0, f"ok {path}".encode()), err
        await rec.wait_for("clientdisconnect", i)
    assert h1_origin.connections == 1  # one TCP connection and one TLS handshake towards the origin
    assert rec.names.count("serverconnect") == 1
    flows = [args[0] for name, args in rec.calls if name == "response"]
    assert flows[1].server_conn.tls is not None and flows[1].server_conn is flows[0].server_conn
    assert flows[1].client_conn.tls is not None and flows[1].client_conn.tls.version  # a handshake of its own


async def test_server_reuse_off_gives_each_client_connection_its_own(make_proxy, origin):
    rec = Recorder()
    proxy = await make_proxy(rec, server_reuse=False)
    for i in (1, 2):
        assert (await get_once(proxy, f"{origin.url}/x", rec, i)).status_code == 200
    await rec.wait_for("serverdisconnect", 2)
    assert origin.connections == 2
    assert rec.names.count("serverconnect") == 2


async def test_no_reuse_after_connection_close_or_an_error(make_proxy, origin):
    rec = Recorder()
    proxy = await make_proxy(rec)
    assert (await get_once(proxy, f"{origin.url}/close", rec, 1)).content == b"ok"  # Connection: close
    assert (await get_once(proxy, f"{origin.url}/after-close", rec, 2)).status_code == 200
    assert origin.connections == 2
    assert (await get_once(proxy, f"{origin.url}/reset", rec, 3)).status_code == 502  # the server broke it
    assert (await get_once(proxy, f"{origin.url}/after-reset", rec, 4)).content == b"ok /after-reset"
    assert origin.connections == 4  # /after-close's connection carried /reset, then a new one for /after-reset
    assert proxy.master.server.shared.reused == 1


async def test_ntlm_pins_the_server_connection_to_its_client(make_proxy, raw_origin):
    challenge = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n"
    origin = await raw_origin(lambda n, head: challenge if b"authorization" not in head.lower() else ok())
    rec = Recorder()
    proxy = await make_proxy(rec)
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/")).status_code == 401
        r = await c.get(f"{origin.url}/", headers={"Authorization": "NTLM TlRMTVNTUAABAAAA"})
        assert r.status_code == 200
    await rec.wait_for("clientdisconnect")
    assert origin.connections == 1  # the handshake stayed on its connection
    await rec.wait_for("serverdisconnect")  # closed with its client: never handed to another one
    assert (await get_once(proxy, f"{origin.url}/", rec, 2)).status_code == 401
    assert origin.connections == 2
    assert proxy.master.server.shared.reused == 0


async def test_a_kept_connection_the_server_closed_is_replaced_without_an_error(make_proxy, raw_origin):
    # The origin hangs up on the second request of any connection without answering, as a server does that
    # closes an idle connection just as the request arrives.
    origin = await raw_origin(lambda n, head: ok(b"fine") if n == 1 else None)
    rec = Recorder()
    proxy = await make_proxy(rec)
    assert (await get_once(proxy, f"{origin.url}/1", rec, 1)).content == b"fine"
    r = await get_once(proxy, f"{origin.url}/2", rec, 2)
    assert (r.status_code, r.content) == (200, b"fine"), r.text  # retried on a new connection
    assert [number for number, _ in origin.requests] == [1, 1, 2]
    assert "error" not in rec.names


async def test_a_kept_connection_the_server_closed_while_idle_is_not_used(make_proxy, raw_origin):
    origin = await raw_origin(lambda n, head: ok(b"fine"))
    origin.close_after_answer = True  # it answers as keep-alive, then ends the connection (an idle timeout)
    rec = Recorder()
    proxy = await make_proxy(rec)
    pool = proxy.master.server.shared
    assert (await get_once(proxy, f"{origin.url}/1", rec, 1)).content == b"fine"
    await until(lambda: pool.count == 0 or not any(shared.idle_ok(h) for c in pool.idle.values() for _, h in c))
    r = await get_once(proxy, f"{origin.url}/2", rec, 2)
    assert (r.status_code, r.content) == (200, b"fine")
    assert [number for number, _ in origin.requests] == [1, 2]  # the closed one was not tried
    assert pool.reused == 0 and "error" not in rec.names
    await rec.wait_for("serverdisconnect")  # the dead one was closed and announced


async def until(cond: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.005)


async def test_a_parked_connection_is_closed_after_its_idle_time(make_proxy, origin, monkeypatch):
    monkeypatch.setattr(shared, "IDLE_S", 0.2)
    rec = Recorder()
    proxy = await make_proxy(rec)
    assert (await get_once(proxy, f"{origin.url}/x", rec, 1)).status_code == 200
    await rec.wait_for("serverdisconnect")  # fired by the pool's sweep, not by a client
    assert proxy.master.server.shared.count == 0


async def test_turning_server_reuse_off_closes_the_kept_connections(make_proxy, origin):
    rec = Recorder()
    proxy = await make_proxy(rec)
    assert (await get_once(proxy, f"{origin.url}/x", rec, 1)).status_code == 200
    assert proxy.master.server.shared.count == 1
    proxy.master.options.server_reuse = False
    await rec.wait_for("serverdisconnect")
    assert (await get_once(proxy, f"{origin.url}/y", rec, 2)).status_code == 200
    await rec.wait_for("serverdisconnect", 2)  # with its client, as mitmproxy does
    assert origin.connections == 2


async def test_only_interchangeable_connections_are_reused(make_proxy, h1_origin, test_ca):
    """A client offering other ALPN protocols, or asking under another SNI, gets a connection of its own."""
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path)
    ca = str(proxy.master.certs.ca_cert_path)
    runs = [("--http1.1", "localhost"), ("--http2", "localhost"), ("--http1.1", "127.0.0.1"),
            ("--http1.1", "localhost")]
    for i, (version, host) in enumerate(runs, 1):
        url = f"https://{host}:{h1_origin.port}/{i}"
        code, out, err = await curl(version, "--cacert", ca, "-x", proxy.url, url)
        assert (code, out) == (0, f"ok /{i}".encode()), err
        await rec.wait_for("clientdisconnect", i)
    assert h1_origin.connections == 3  # the last one reused the first one's
    assert proxy.master.server.shared.reused == 1
