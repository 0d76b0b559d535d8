"""WebSocket through `--mode reverse:h2c://`: the client's HTTP/1.1 upgrade reaches the h2c server over
HTTP/1.1 (a connection of its own), while ordinary requests keep going over HTTP/2.

The origin is hypercorn in clear text serving one ASGI app for both: HTTP requests (answered with the
HTTP version they came in) and WebSockets (echoed, the handshake's HTTP version recorded). The client is
the real `websockets` package, connecting to the reverse proxy as if it were the server.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import h2.config
import h2.connection
import h2.exceptions
import pytest
from hypercorn.config import Config
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from interpose.http import HTTPFlow
from interpose.websocket import WebSocketFlow
from tests.conftest import Recorder, curl
from tests.tls_servers import start_hypercorn


class H2cWsOrigin:
    """hypercorn without TLS (HTTP/1.1 and h2c with prior knowledge) with WebSocket echo at /ws."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.port = 0
        self.handshakes: list[str] = []
        """The HTTP version of each WebSocket handshake the server saw ("1.1", or "2" for RFC 8441)."""
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "websocket":
            self.handshakes.append(scope["http_version"])
            await receive()  # websocket.connect
            if self.refuse:
                await send({"type": "websocket.close", "code": 1008})
                return
            await send({"type": "websocket.accept"})
            while True:
                event = await receive()
                if event["type"] == "websocket.disconnect":
                    return
                await send({"type": "websocket.send", "text": event.get("text"), "bytes": event.get("bytes")})
        body = json.dumps({"http_version": scope["http_version"], "path": scope["path"]}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def start(self) -> H2cWsOrigin:
        self.port, self._task = start_hypercorn(self._app, Config(), self._stop)
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)


@pytest.fixture
async def h2c_ws_origin() -> AsyncIterator[H2cWsOrigin]:
    o = await H2cWsOrigin().start()
    yield o
    await o.stop()


def ws_connect(url: str) -> connect:
    return connect(url, ping_interval=None, open_timeout=10, close_timeout=5)


async def test_websocket_through_reverse_h2c_goes_over_http1_and_echoes(make_proxy, h2c_ws_origin):
    rec = Recorder(["websocket_start", "websocket_message", "websocket_end", "websocket_error", "error"])
    proxy = await make_proxy(rec, mode=f"reverse:h2c://127.0.0.1:{h2c_ws_origin.port}")
    async with ws_connect(f"ws://127.0.0.1:{proxy.port}/ws") as ws:
        await ws.send("hello")
        async with asyncio.timeout(10):
            assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01binary")
        async with asyncio.timeout(10):
            assert await ws.recv() == b"\x00\x01binary"
    await rec.wait_for("websocket_end")
    assert h2c_ws_origin.handshakes == ["1.1"]
    [ws_flow] = [a[0] for n, a in rec.calls if n == "websocket_end"]
    assert isinstance(ws_flow, WebSocketFlow)
    flow = ws_flow.handshake_flow
    assert isinstance(flow, HTTPFlow) and flow.websocket is ws_flow
    assert flow.response is not None and flow.response.status_code == 101
    assert flow.server_conn.address[:2] == ("127.0.0.1", h2c_ws_origin.port)
    assert flow.server_conn.alpn != "h2" and flow.server_conn.tls is None
    assert [(m.from_client, m.content) for m in ws_flow.messages] == [
        (True, b"hello"), (False, b"hello"), (True, b"\x00\x01binary"), (False, b"\x00\x01binary")]
    assert not [n for n, _ in rec.calls if n in ("websocket_error", "error")]


async def test_plain_requests_on_the_same_client_connection_stay_http2(make_proxy, h2c_ws_origin):
    """A WebSocket and ordinary requests, interleaved: requests go over h2c, upgrades over HTTP/1.1, and the
    HTTP/1.1 connection an upgrade the server ignored left behind (kept alive) is not used for requests."""
    proxy = await make_proxy(mode=f"reverse:h2c://127.0.0.1:{h2c_ws_origin.port}")
    code, out, err = await curl("--http1.1", f"{proxy.url}/before")
    assert code == 0 and json.loads(out) == {"http_version": "2", "path": "/before"}, err
    async with ws_connect(f"ws://127.0.0.1:{proxy.port}/ws") as ws:
        await ws.send("x")
        async with asyncio.timeout(10):
            assert await ws.recv() == "x"
    # One client connection: an upgrade to a protocol the server does not know (it answers 200 over
    # HTTP/1.1 and keeps the connection), then ordinary requests (HTTP/2 again), then the upgrade again.
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    upgrade = b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: something/1\r\n\r\n"
    try:
        for request in (upgrade, b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n", upgrade):
            writer.write(request)
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head
                length = [int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")]
                answer = json.loads(await reader.readexactly(length[0]))
            assert answer["http_version"] == ("1.1" if request is upgrade else "2"), (request, answer)
    finally:
        writer.close()
    assert h2c_ws_origin.handshakes == ["1.1"]


async def test_a_refused_upgrade_reaches_the_websocket_client_as_its_status(make_proxy):
    origin = await H2cWsOrigin(refuse=True).start()
    try:
        proxy = await make_proxy(mode=f"reverse:h2c://127.0.0.1:{origin.port}")
        with pytest.raises(InvalidStatus) as exc:
            async with ws_connect(f"ws://127.0.0.1:{proxy.port}/ws"):
                pass
        assert exc.value.response.status_code == 403
        code, out, err = await curl(f"{proxy.url}/still")
        assert code == 0 and json.loads(out)["http_version"] == "2", err
    finally:
        await origin.stop()


async def test_a_server_that_speaks_only_http2_gives_the_upgrade_a_502(make_proxy):
    """h2 itself as the server: the HTTP/1.1 request is no connection preface, so it answers GOAWAY and
    closes. The client gets a 502 naming the server's answer; the proxy keeps serving."""
    async def h2_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        try:
            conn.receive_data(await reader.read(65536))
        except h2.exceptions.ProtocolError:
            pass
        writer.write(conn.data_to_send())
        writer.close()

    server = await asyncio.start_server(h2_only, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rec = Recorder(["error"])
    try:
        proxy = await make_proxy(rec, mode=f"reverse:h2c://127.0.0.1:{port}")
        for _ in range(2):
            with pytest.raises(InvalidStatus) as exc:
                async with ws_connect(f"ws://127.0.0.1:{proxy.port}/ws"):
                    pass
            assert exc.value.response.status_code == 502
            assert b"interpose: " in exc.value.response.body
    finally:
        server.close()
    await rec.wait_for("error", 2)
    assert all(a[0].error is not None for n, a in rec.calls if n == "error")
