"""WebSocket end to end: the real `websockets` client and server with the real proxy in between.

The client reaches the server the way real clients do, through a CONNECT tunnel (`proxy=`), over plain
ws:// and over wss:// with the proxy intercepting TLS; one test speaks wsproto over a raw socket to use
the absolute-form `GET http://…` upgrade instead. Each test checks what the addons saw (`Recorder`)
and what each end really received.
"""
from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from interpose import flowfilter
from interpose.http import HTTPFlow
from interpose.proxy.tls.certs import CertStore
from interpose.runtime.bus import FlowIntercepted
from interpose.websocket import WebSocketFlow, WebSocketMessage
from tests.conftest import Recorder
from tests.ws_servers import WsServer

LIFECYCLE = ("load", "start", "configure", "tick", "log", "done")
MiB = 2**20


# -- helpers ----------------------------------------------------------------------------------------
def traffic(rec: Recorder) -> list[str]:
    """Connection and flow hooks in order; next_layer carries the kind it chose (`next_layer:tls`)."""
    out = []
    for name, args in rec.calls:
        if name in LIFECYCLE:
            continue
        out.append(f"next_layer:{args[0].kind}" if name == "next_layer" else name)
    return out


def flows(rec: Recorder, hook: str) -> list[Any]:
    return [args[0] for name, args in rec.calls if name == hook]


def ws_client(proxy: Any, url: str, **kw: Any) -> connect:
    """The real websockets client, through the proxy with CONNECT; no keepalive pings to muddle counts."""
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 5)
    return connect(url, proxy=proxy.url, **kw)


async def recv(ws: ClientConnection | ServerConnection, timeout: float = 10) -> str | bytes:
    async with asyncio.timeout(timeout):
        return await ws.recv()


async def wait_closed(ws: ClientConnection | ServerConnection, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        await ws.wait_closed()


async def next_held(bus: asyncio.Queue[Any], timeout: float = 10) -> WebSocketMessage:
    """The next message the bus says is held."""
    async with asyncio.timeout(timeout):
        while True:
            event = await bus.get()
            if isinstance(event, FlowIntercepted) and event.message is not None:
                assert event.stage == "messages"
                return event.message  # type: ignore[no-any-return]


def message_log(flow: WebSocketFlow) -> list[tuple[str, str | bytes]]:
    """The flow's messages as (direction, text or bytes); direction is "->" or "<-", "x" added when dropped."""
    def direction(m: WebSocketMessage) -> str:
        return ("->" if m.from_client else "<-") + ("x" if m.dropped else "")
    return [(direction(m), m.text if m.is_text else m.content) for m in flow.messages]


@pytest.fixture
def make_proxy(strict_make_proxy):
    """Every proxy in this file must log no error."""
    return strict_make_proxy


@pytest.fixture
async def ws_server() -> AsyncIterator[WsServer]:
    s = await WsServer().start()
    yield s
    await s.stop()


@pytest.fixture
def origin_ca(tmp_path) -> CertStore:
    """A CA of the test's own that signs the origin's certificate (the proxy is told to trust it)."""
    return CertStore.from_confdir(str(tmp_path / "origin-ca"))


@pytest.fixture
async def wss_server(origin_ca) -> AsyncIterator[WsServer]:
    s = await WsServer().start(ssl=origin_ca.ssl_context("localhost", alpn=("http/1.1",)))
    yield s
    await s.stop()


def trusting_proxy_ca(tmp_path) -> ssl.SSLContext:
    """A client context that trusts only the proxy's CA (make_proxy puts the confdir in tmp_path)."""
    return ssl.create_default_context(cafile=str(tmp_path / "confdir" / "interpose-ca-cert.pem"))


# -- hook order -------------------------------------------------------------------------------------
async def test_hook_order_ws_through_connect(make_proxy, ws_server):
    rec = Recorder()
    proxy = await make_proxy(rec)
    async with ws_client(proxy, ws_server.url) as ws:
        await ws.send("hi")
        assert await recv(ws) == "hi"
    await rec.wait_for("clientdisconnect")
    assert traffic(rec) == [
        "clientconnect", "next_layer:http1", "http_connect", "next_layer:http1",
        "requestheaders", "websocket_handshake", "request", "serverconnect", "responseheaders", "response",
        "next_layer:websocket", "websocket_start", "websocket_message", "websocket_message", "websocket_end",
        "serverdisconnect", "clientdisconnect",
    ]
    (hs,) = flows(rec, "websocket_handshake")
    (flow,) = flows(rec, "websocket_start")
    assert isinstance(hs, HTTPFlow) and isinstance(flow, WebSocketFlow)
    assert flow.handshake_flow is hs and hs.websocket is flow
    assert hs.response.status_code == 101
    assert hs.request.url == f"http://127.0.0.1:{ws_server.port}/"
    assert flows(rec, "websocket_end") == [flow] and flow.error is None
    assert not flow.live


async def test_hook_order_wss_with_tls_interception(make_proxy, wss_server, origin_ca, tmp_path):
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_verify_upstream_trusted_ca=origin_ca.ca_cert_path)
    async with ws_client(proxy, wss_server.url, ssl=trusting_proxy_ca(tmp_path)) as ws:
        await ws.send("over tls")
        assert await recv(ws) == "over tls"
        await ws.send(b"\x00binary\xff")
        assert await recv(ws) == b"\x00binary\xff"
    await rec.wait_for("clientdisconnect")
    # With TLS the proxy connects to the server before finishing the client's handshake.
    assert traffic(rec) == [
        "clientconnect", "next_layer:http1", "http_connect", "next_layer:tls", "serverconnect", "next_layer:http1",
        "requestheaders", "websocket_handshake", "request", "responseheaders", "response",
        "next_layer:websocket", "websocket_start",
        "websocket_message", "websocket_message", "websocket_message", "websocket_message",
        "websocket_end", "serverdisconnect", "clientdisconnect",
    ]
    (flow,) = flows(rec, "websocket_end")
    assert flow.handshake_flow.request.url == f"https://localhost:{wss_server.port}/"
    assert flow.server_conn.tls is not None
    assert message_log(flow) == [("->", "over tls"), ("<-", "over tls"),
                                 ("->", b"\x00binary\xff"), ("<-", b"\x00binary\xff")]
    assert [await wss_server.next_message(), await wss_server.next_message()] == ["over tls", b"\x00binary\xff"]


async def test_absolute_form_get_upgrade_without_connect(make_proxy, ws_server):
    """`GET http://host:port/ HTTP/1.1` with Upgrade: websocket, straight to the proxy (wsproto client)."""
    rec = Recorder()
    proxy = await make_proxy(rec)
    target = f"127.0.0.1:{ws_server.port}"
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    ws = WSConnection(ConnectionType.CLIENT)

    async def next_event() -> Any:
        async with asyncio.timeout(10):
            while True:
                for event in ws.events():
                    return event
                data = await reader.read(65536)
                assert data, "proxy closed the connection"
                ws.receive_data(data)

    try:
        writer.write(ws.send(Request(host=target, target=f"http://{target}/chat?room=1")))
        assert isinstance(await next_event(), AcceptConnection)
        writer.write(ws.send(TextMessage(data="absolute hello")))
        echo = await next_event()
        assert isinstance(echo, TextMessage) and echo.data == "absolute hello"
        writer.write(ws.send(CloseConnection(code=1000, reason="done")))
        closed = await next_event()
        assert isinstance(closed, CloseConnection) and closed.code == 1000
    finally:
        writer.close()
    await rec.wait_for("clientdisconnect")
    assert traffic(rec) == [
        "clientconnect", "next_layer:http1",
        "requestheaders", "websocket_handshake", "request", "serverconnect", "responseheaders", "response",
        "next_layer:websocket", "websocket_start", "websocket_message", "websocket_message", "websocket_end",
        "serverdisconnect", "clientdisconnect",
    ]
    (hs,) = flows(rec, "websocket_handshake")
    (flow,) = flows(rec, "websocket_end")
    assert hs.request.url == f"http://{target}/chat?room=1"
    assert hs.websocket is flow and flow.handshake_flow is hs
    assert (flow.close_code, flow.close_reason, flow.closed_by_client) == (1000, "done", True)
    is_ws = flowfilter.parse("~websocket")
    assert is_ws(hs) and is_ws(flow)
    assert not flowfilter.parse("~tcp")(flow)
    assert await ws_server.next_message() == "absolute hello"


# -- messages -----------------------------------------------------------------------------------------
async def test_echo_round_trip_records_messages(make_proxy, ws_server):
    rec = Recorder()
    proxy = await make_proxy(rec)
    async with ws_client(proxy, ws_server.url) as ws:
        await ws.send("héllo")
        assert await recv(ws) == "héllo"
        await ws.send(b"\x00\x01\x02")
        assert await recv(ws) == b"\x00\x01\x02"
        await ws.send(["frag", "mented"])  # one message in two frames: the proxy joins them
        assert await recv(ws) == "fragmented"
    await rec.wait_for("websocket_end")
    (flow,) = flows(rec, "websocket_end")
    assert message_log(flow) == [("->", "héllo"), ("<-", "héllo"), ("->", b"\x00\x01\x02"), ("<-", b"\x00\x01\x02"),
                                 ("->", "fragmented"), ("<-", "fragmented")]
    first = flow.messages[0]
    assert first.is_text and first.type == "text" and first.content == "héllo".encode()
    assert flow.messages[2].type == "binary"
    assert flow.message_count == 6
    assert flow.bytes_from_client == flow.bytes_from_server == len("héllo".encode()) + 3 + 10


async def test_addon_rewrites_client_text_and_drops_a_server_message(make_proxy, ws_server):
    class Rewrite:
        def websocket_message(self, flow: WebSocketFlow) -> None:
            msg = flow.messages[-1]
            if msg.from_client:
                msg.text = msg.text.upper()
            elif msg.text == "SECRET":
                msg.drop()

    rec = Recorder()
    proxy = await make_proxy(Rewrite(), rec)
    async with ws_client(proxy, ws_server.url) as ws:
        for word in ("hello", "secret", "after"):
            await ws.send(word)
        # The echo of "SECRET" is dropped: the client gets the next one instead.
        assert await recv(ws) == "HELLO"
        assert await recv(ws) == "AFTER"
    assert [await ws_server.next_message() for _ in range(3)] == ["HELLO", "SECRET", "AFTER"]
    await rec.wait_for("websocket_end")
    (flow,) = flows(rec, "websocket_end")
    log = message_log(flow)  # the two directions interleave as they happen to
    assert [m for m in log if m[0].startswith("->")] == [("->", "HELLO"), ("->", "SECRET"), ("->", "AFTER")]
    assert [m for m in log if m[0].startswith("<-")] == [("<-", "HELLO"), ("<-x", "SECRET"), ("<-", "AFTER")]


async def test_inject_both_ways(make_proxy, ws_server):
    rec = Recorder()
    proxy = await make_proxy(rec)
    async with ws_client(proxy, ws_server.url) as ws:
        await rec.wait_for("websocket_start")
        (flow,) = flows(rec, "websocket_start")
        to_client = flow.inject("y", from_client=False)
        assert await recv(ws) == "y"
        assert ws_server.received.empty()
        to_server = flow.inject("x")
        assert await ws_server.next_message() == "x"
        assert await recv(ws) == "x"  # the server's echo of the injected message
        flow.inject(b"\x01\x02", from_client=False)
        assert await recv(ws) == b"\x01\x02"
    await rec.wait_for("websocket_end")
    assert to_client.injected and to_server.injected
    assert not to_client.from_client and to_server.from_client
    assert message_log(flow) == [("<-", "y"), ("->", "x"), ("<-", "x"), ("<-", b"\x01\x02")]
    with pytest.raises(RuntimeError):
        flow.inject("too late")


@pytest.mark.parametrize("by_client", [True, False], ids=["client-closes", "server-closes"])
async def test_close_code_and_reason_recorded(make_proxy, ws_server, by_client):
    rec = Recorder()
    proxy = await make_proxy(rec)
    reason = "client says bye" if by_client else "server says bye"
    async with ws_client(proxy, ws_server.url) as ws:
        srv = await ws_server.next_connection()
        await ws.send("before close")
        assert await recv(ws) == "before close"
        if by_client:
            await ws.close(4000, reason)
        else:
            await srv.close(4000, reason)
        await wait_closed(ws)
        await wait_closed(srv)
    await rec.wait_for("websocket_end")
    (flow,) = flows(rec, "websocket_end")
    assert (flow.close_code, flow.close_reason, flow.closed_by_client) == (4000, reason, by_client)
    assert flow.error is None
    assert "websocket_error" not in rec.names
    # Each end got the close frame the other sent, code and reason intact.
    receiver = srv if by_client else ws
    assert receiver.close_code == 4000 and receiver.close_reason == reason


async def test_server_killed_without_close_frame_is_websocket_error(make_proxy):
    async def abort_on_first_message(server: WsServer, ws: ServerConnection) -> None:
        server.received.put_nowait(await ws.recv())
        ws.transport.abort()

    server = await WsServer(abort_on_first_message).start()
    rec = Recorder()
    proxy = await make_proxy(rec)
    try:
        async with ws_client(proxy, server.url) as ws:
            await ws.send("boom")
            assert await server.next_message() == "boom"
            with pytest.raises(ConnectionClosedError):
                await recv(ws)
            assert ws.close_code == 1006  # no close frame reached the client either
    finally:
        await server.stop()
    await rec.wait_for("websocket_error")
    await rec.wait_for("clientdisconnect")
    (flow,) = flows(rec, "websocket_error")
    assert "websocket_end" not in rec.names
    assert flow.error is not None
    assert flow.error.msg.startswith("server "), flow.error.msg
    assert "close frame" in flow.error.msg or "lost" in flow.error.msg, flow.error.msg
    assert flow.close_code is None


async def test_client_gone_without_close_frame_is_websocket_error(make_proxy, ws_server):
    rec = Recorder()
    proxy = await make_proxy(rec)
    async with ws_client(proxy, ws_server.url) as ws:
        srv = await ws_server.next_connection()
        await ws.send("bye")
        assert await recv(ws) == "bye"
        ws.transport.abort()
        await wait_closed(srv)
    await rec.wait_for("websocket_error")
    (flow,) = flows(rec, "websocket_error")
    assert flow.error.msg.startswith("client "), flow.error.msg
    assert srv.close_code == 1006
    assert "websocket_end" not in rec.names


async def test_server_speaks_first_right_after_the_handshake(make_proxy):
    """A message the server sends at once may arrive with the 101 response: it must not be lost."""
    async def greet(server: WsServer, ws: ServerConnection) -> None:
        await ws.send("welcome")
        async for message in ws:
            await ws.send(f"you said {message}")

    server = await WsServer(greet).start()
    rec = Recorder()
    proxy = await make_proxy(rec)
    try:
        async with ws_client(proxy, server.url, subprotocols=["chat.v2", "chat.v1"]) as ws:
            assert await recv(ws) == "welcome"
            assert ws.subprotocol is None  # the server offered none: nothing was made up on the way
            await ws.send("hi")
            assert await recv(ws) == "you said hi"
    finally:
        await server.stop()
    await rec.wait_for("websocket_end")
    (flow,) = flows(rec, "websocket_end")
    assert message_log(flow) == [("<-", "welcome"), ("->", "hi"), ("<-", "you said hi")]


async def test_subprotocol_negotiation_passes_through(make_proxy):
    server = await WsServer(subprotocols=["chat.v1"]).start()
    rec = Recorder()
    proxy = await make_proxy(rec)
    try:
        async with ws_client(proxy, server.url, subprotocols=["chat.v2", "chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v1"
            await ws.send("hi")
            assert await recv(ws) == "hi"
    finally:
        await server.stop()
    await rec.wait_for("websocket_end")
    (flow,) = flows(rec, "websocket_end")
    assert flow.handshake_flow.response.headers["sec-websocket-protocol"] == "chat.v1"


async def test_server_refusing_the_upgrade_is_plain_http(make_proxy):
    server = await WsServer(process_request=lambda conn, request: conn.respond(403, "no websockets for you\n")).start()
    rec = Recorder()
    proxy = await make_proxy(rec)
    try:
        with pytest.raises(InvalidStatus) as refused:
            async with ws_client(proxy, server.url):
                pass
        assert refused.value.response.status_code == 403
        assert refused.value.response.body == b"no websockets for you\n"
    finally:
        await server.stop()
    await rec.wait_for("clientdisconnect")
    names = traffic(rec)
    assert names.count("websocket_handshake") == 1 and names.count("response") == 1
    assert not {"websocket_start", "websocket_end", "websocket_error", "next_layer:websocket"} & set(names)
    (hs,) = flows(rec, "response")
    assert hs.response.status_code == 403 and getattr(hs, "websocket", None) is None


async def test_handshake_hook_may_edit_the_upgrade_headers(make_proxy, ws_server):
    """Removing the extension offer in websocket_handshake turns compression off for both ends."""
    class NoCompression:
        def websocket_handshake(self, flow: HTTPFlow) -> None:
            del flow.request.headers["sec-websocket-extensions"]
            flow.request.headers["x-seen-by"] = "interpose"

    rec = Recorder()
    proxy = await make_proxy(NoCompression(), rec)
    async with ws_client(proxy, ws_server.url) as ws:
        assert ws.protocol.extensions == []
        srv = await ws_server.next_connection()
        assert srv.request.headers["x-seen-by"] == "interpose"
        assert "sec-websocket-extensions" not in srv.request.headers
        await ws.send("plain " * 100)
        assert await recv(ws) == "plain " * 100
    await rec.wait_for("websocket_end")
    (flow,) = flows(rec, "websocket_end")
    assert "sec-websocket-extensions" not in flow.handshake_flow.response.headers


async def test_one_mib_binary_message_intact(make_proxy):
    server = await WsServer(max_size=4 * MiB).start()
    rec = Recorder()
    proxy = await make_proxy(rec)
    payload = os.urandom(MiB)
    try:
        async with ws_client(proxy, server.url, max_size=4 * MiB) as ws:
            await ws.send(payload)
            assert await server.next_message() == payload
            assert await recv(ws) == payload
    finally:
        await server.stop()
    await rec.wait_for("websocket_end")
    (flow,) = flows(rec, "websocket_end")
    assert [(m.from_client, m.content == payload) for m in flow.messages] == [(True, True), (False, True)]


async def test_permessage_deflate_negotiated_end_to_end(make_proxy, ws_server):
    rec = Recorder()
    proxy = await make_proxy(rec)
    text = "compress me please " * 2000
    blob = bytes(range(256)) * 64
    async with ws_client(proxy, ws_server.url) as ws:
        assert [type(e).__name__ for e in ws.protocol.extensions] == ["PerMessageDeflate"]
        await ws.send(text)
        assert await recv(ws) == text
        await ws.send(blob)
        assert await recv(ws) == blob
    await rec.wait_for("websocket_end")
    (flow,) = flows(rec, "websocket_end")
    hs = flow.handshake_flow
    assert "permessage-deflate" in hs.request.headers["sec-websocket-extensions"]
    assert "permessage-deflate" in hs.response.headers["sec-websocket-extensions"]
    # Addons see the decompressed payloads.
    assert [m.content for m in flow.messages] == [text.encode(), text.encode(), blob, blob]
    assert [await ws_server.next_message(), await ws_server.next_message()] == [text, blob]


async def test_ping_and_pong_pass_through(make_proxy, ws_server):
    rec = Recorder()
    proxy = await make_proxy(rec)
    async with ws_client(proxy, ws_server.url) as ws:
        srv = await ws_server.next_connection()
        async with asyncio.timeout(10):
            await (await ws.ping(b"client ping"))  # the server's pong came back through the proxy
            await (await srv.ping(b"server ping"))  # and the other way round
        await ws.send("still open")
        assert await recv(ws) == "still open"
    await rec.wait_for("websocket_end")
    (flow,) = flows(rec, "websocket_end")
    assert message_log(flow) == [("->", "still open"), ("<-", "still open")]  # control frames are not messages


# -- intercept, kill, limits -------------------------------------------------------------------------
async def test_held_client_message_blocks_only_its_own_direction(make_proxy):
    server = await WsServer(echo=False).start()
    rec = Recorder()
    proxy = await make_proxy(rec, intercept="~websocket", intercept_at="messages")
    bus = proxy.master.bus.subscribe()
    try:
        async with ws_client(proxy, server.url) as ws:
            srv = await server.next_connection()
            await ws.send("one")
            one = await next_held(bus)
            assert (one.from_client, one.text) == (True, "one")
            await ws.send("two")
            await ws.send("three")

            # The server's direction keeps flowing while "one" is held (its message is held on its own).
            await srv.send("push")
            push = await next_held(bus)
            assert (push.from_client, push.text) == (False, "push")
            push.resume()
            assert await recv(ws) == "push"
            assert server.received.empty()
            (flow,) = flows(rec, "websocket_start")
            assert [m.text for m in flow.messages if m.from_client] == ["one"]  # two and three wait behind it
            assert flow.held_messages == [one]

            one.text = "one (edited)"
            one.resume()
            assert await server.next_message() == "one (edited)"
            for word in ("two", "three"):
                held = await next_held(bus)
                assert (held.from_client, held.text) == (True, word)
                held.resume()
                assert await server.next_message() == word
    finally:
        proxy.master.bus.unsubscribe(bus)
        await server.stop()
    await rec.wait_for("websocket_end")
    assert message_log(flow) == [("->", "one (edited)"), ("<-", "push"), ("->", "two"), ("->", "three")]


async def test_kill_websocket_flow_closes_both_ends(make_proxy, ws_server):
    rec = Recorder()
    proxy = await make_proxy(rec)
    async with ws_client(proxy, ws_server.url) as ws:
        srv = await ws_server.next_connection()
        await ws.send("alive")
        assert await recv(ws) == "alive"
        (flow,) = flows(rec, "websocket_start")
        flow.kill()
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        await wait_closed(srv)
    await rec.wait_for("websocket_error")
    assert flows(rec, "websocket_error") == [flow]
    assert "websocket_end" not in rec.names
    assert flow.killed and "killed" in flow.error.msg.lower()
    assert not flow.live


async def test_kill_with_a_held_message_drops_it(make_proxy):
    server = await WsServer(echo=False).start()
    rec = Recorder()
    proxy = await make_proxy(rec, intercept="~websocket", intercept_at="messages")
    bus = proxy.master.bus.subscribe()
    try:
        async with ws_client(proxy, server.url) as ws:
            srv = await server.next_connection()
            await ws.send("never delivered")
            held = await next_held(bus)
            (flow,) = flows(rec, "websocket_start")
            flow.kill()
            with pytest.raises(ConnectionClosed):
                await recv(ws)
            await wait_closed(srv)
    finally:
        proxy.master.bus.unsubscribe(bus)
        await server.stop()
    await rec.wait_for("websocket_error")
    assert held.dropped and not held.intercepted
    assert server.received.empty()
    assert "killed" in flow.error.msg.lower()


async def test_max_messages_keeps_newest_and_counts_all(make_proxy):
    server = await WsServer(echo=False).start()
    rec = Recorder()
    proxy = await make_proxy(rec, max_messages=3)
    try:
        async with ws_client(proxy, server.url) as ws:
            for i in range(10):
                await ws.send(f"m{i}")
            assert [await server.next_message() for _ in range(10)] == [f"m{i}" for i in range(10)]
    finally:
        await server.stop()
    await rec.wait_for("websocket_end")
    (flow,) = flows(rec, "websocket_end")
    assert [m.text for m in flow.messages] == ["m7", "m8", "m9"]
    assert flow.message_count == 10
    assert rec.names.count("websocket_message") == 10
