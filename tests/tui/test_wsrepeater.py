"""The WebSocket repeater without urwid: the handshake and message line parsed, and `WsSession` over real
sockets (a real proxy in-process, real `websockets` servers, TLS with a test CA)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import urwid

from interpose.tui.repeater.http import RepeaterError
from interpose.tui.repeater.view import RepeaterView, Tab, tab_for
from interpose.tui.repeater.websocket import (
    Entry,
    Route,
    WsSession,
    WsTab,
    entry_parts,
    parse_handshake,
    parse_outgoing,
    tls_context,
)
from tests.tls_servers import TestCA
from tests.tui.test_format import ws_flow

RAW = (b"GET /chat?room=1 HTTP/1.1\nHost: example.com:8080\nUpgrade: websocket\nConnection: Upgrade\n"
       b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n"
       b"Sec-WebSocket-Extensions: permessage-deflate\nSec-WebSocket-Protocol: chat, superchat\n"
       b"Origin: http://example.com\nCookie: a=1\n\n")


def test_parse_handshake_keeps_the_users_headers_and_leaves_the_handshake_to_wsproto():
    hs = parse_handshake(RAW, "http", "ignored", 1)
    assert (hs.host, hs.port, hs.tls, hs.target) == ("example.com", 8080, False, "/chat?room=1")
    assert hs.host_header == "example.com:8080"
    assert hs.extra_headers == [("Origin", "http://example.com"), ("Cookie", "a=1")]
    assert hs.subprotocols == ["chat", "superchat"]
    assert hs.url == "ws://example.com:8080/chat?room=1"
    req = hs.request()
    assert req.host == "example.com:8080" and req.target == "/chat?room=1"


def test_parse_handshake_tls_default_port_and_errors():
    hs = parse_handshake(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "https", "x", 1)
    assert (hs.tls, hs.port, hs.url) == (True, 443, "wss://example.com/")
    with pytest.raises(RepeaterError, match="GET request, not POST"):
        parse_handshake(b"POST / HTTP/1.1\nHost: a\n\n", "http", "a", 80)
    with pytest.raises(RepeaterError, match="not a valid HTTP/1.1 request"):
        parse_handshake(b"this is not http\n\n", "http", "a", 80)


def test_parse_outgoing_text_and_hex():
    assert parse_outgoing("héllo", False) == "héllo"
    assert parse_outgoing("00 ff\t41", True) == b"\x00\xffA"
    assert parse_outgoing("", True) == b""
    with pytest.raises(RepeaterError, match="not hex"):
        parse_outgoing("0g", True)


def test_entry_parts():
    ts = 1_700_000_000.25
    arrow, clock, size, content = entry_parts(Entry("sent", b"hi\nthere", True, timestamp=ts))
    assert (arrow, size, content) == ("→", "8 B", "hi\N{SYMBOL FOR NEWLINE}there")
    assert clock.endswith(".250") and len(clock) == 12
    assert entry_parts(Entry("received", b"\x00\x01", False, timestamp=ts))[::2] == ("←", "2 B bin")
    assert entry_parts(Entry("received", b"\x00\x01", False))[3] == "00 01"
    assert entry_parts(Entry("error", note="connection refused"))[::3] == ("✗", "connection refused")


def test_tab_for_a_websocket_flow_is_a_websocket_tab():
    hs, ws = ws_flow()
    for flow in (hs, ws):
        tab = tab_for(flow)
        assert isinstance(tab, WsTab)
        assert tab.title == "WS /live" and tab.text.startswith("GET /live HTTP/1.1\nHost: example.com\n")
    from tests.tui.test_format import http_flow
    assert isinstance(tab_for(http_flow()), Tab)


def test_repeater_view_websocket_tab_renders_messages_and_routes_keys():
    calls: list[tuple[str, object]] = []

    def on_ws(tab, op, arg):
        calls.append((op, arg))
        return True
    from interpose.tui import commands  # noqa: F401 - registers the repeater's commands
    from interpose.tui.commands.base import TUI_COMMANDS

    app = SimpleNamespace(repeater=None)

    def on_key(line: str) -> None:  # what the app does with a bound key's command line (keymap.py)
        name, *args = line.split()
        TUI_COMMANDS[name](app, *args)
    view = RepeaterView(lambda tab: calls.append(("http", tab)), on_ws, on_key)
    app.repeater = view
    hs, _ = ws_flow()
    tab = tab_for(hs)
    view.add(tab)
    tab.add(Entry("sent", b"ping", True, timestamp=0))
    tab.add(Entry("received", b"\x01\x02", False, timestamp=0))
    view.ws_changed(tab)
    text = "\n".join(line.decode() for line in view.render((80, 24), True).text)
    assert "WebSocket handshake (edit freely)" in text and "Messages: not connected (ctrl s connects)" in text
    assert "→ " in text and "4 B ping" in text and "2 B bin 01 02" in text
    for key in "hello":
        view.keypress((80, 24), key)
    view.keypress((80, 24), "enter")
    assert calls == [("send", ("hello", False))]
    assert view.input.edit_text == ""  # sent: the line is cleared
    view.keypress((80, 24), "ctrl t")
    assert "hex › " in "\n".join(line.decode() for line in view.render((80, 24), True).text)
    view.keypress((80, 24), "ctrl s")
    view.keypress((80, 24), "ctrl d")
    view.keypress((80, 24), "ctrl w")
    assert [c[0] for c in calls] == ["send", "connect", "disconnect", "close"]
    assert view.tabs == []


# -- WsSession over real sockets ------------------------------------------------------------------------------
class Echo:
    def __init__(self) -> None:
        self.received: list[str | bytes] = []

    async def handler(self, ws) -> None:
        async for msg in ws:
            self.received.append(msg)
            await ws.send(msg)


async def _session_roundtrip(handshake, route) -> tuple[list[Entry], WsSession]:
    entries: list[Entry] = []
    changed = asyncio.Event()

    def on_entry(entry: Entry) -> None:
        entries.append(entry)
        changed.set()

    async def until(predicate) -> None:
        async with asyncio.timeout(20):
            while not predicate():
                changed.clear()
                await changed.wait()
    session = WsSession(handshake, route, on_entry)
    task = asyncio.ensure_future(session.run())
    await until(lambda: session.state != "connecting")
    assert session.state == "open", entries
    session.send("text message")
    session.send(b"\x00binary")
    await until(lambda: sum(e.kind == "received" for e in entries) == 2)
    await session.close(task)
    assert task.done() and session.state == "closed"
    return entries, session


async def test_session_through_the_proxy_is_a_new_flow(make_proxy):
    import websockets

    from tests.conftest import Recorder

    rec = Recorder(["websocket_start", "websocket_message", "websocket_end"])
    proxy = await make_proxy(rec)
    echo = Echo()
    async with websockets.serve(echo.handler, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        hs = parse_handshake(f"GET /x HTTP/1.1\nHost: 127.0.0.1:{port}\n\n".encode(), "http", "x", 1)
        entries, _ = await _session_roundtrip(hs, Route(("127.0.0.1", proxy.port), tls_context(False)))
    assert echo.received == ["text message", b"\x00binary"]
    assert [(e.kind, e.content, e.is_text) for e in entries if e.kind in ("sent", "received")] == [
        ("sent", b"text message", True), ("sent", b"\x00binary", False),
        ("received", b"text message", True), ("received", b"\x00binary", False)]
    assert entries[-1].note == "closed: code 1000"
    await rec.wait_for("websocket_end")
    assert rec.names.count("websocket_message") == 4


async def test_session_wss_through_the_proxy_verifies_with_the_proxy_ca(make_proxy, tmp_path):
    import websockets

    ca = TestCA(tmp_path / "origin-ca")
    proxy = await make_proxy(ssl_verify_upstream_trusted_ca=ca.path)
    echo = Echo()
    async with websockets.serve(echo.handler, "127.0.0.1", 0, ssl=ca.server_context(["http/1.1"])) as srv:
        port = srv.sockets[0].getsockname()[1]
        hs = parse_handshake(f"GET /secure HTTP/1.1\nHost: 127.0.0.1:{port}\n\n".encode(), "https", "x", 1)
        assert hs.url == f"wss://127.0.0.1:{port}/secure"
        ctx = tls_context(False, proxy.master.certs.ca_cert_path)
        await _session_roundtrip(hs, Route(("127.0.0.1", proxy.port), ctx))
        assert echo.received == ["text message", b"\x00binary"]
        # without the proxy's CA, our side refuses the proxy's certificate
        failed: list[Entry] = []
        await WsSession(hs, Route(("127.0.0.1", proxy.port), tls_context(False)), failed.append).run()
        assert failed[-1].kind == "error" and "certificate verify failed" in failed[-1].note


async def test_session_direct_and_errors(make_proxy):
    import websockets

    echo = Echo()
    async with websockets.serve(echo.handler, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        hs = parse_handshake(f"GET / HTTP/1.1\nHost: 127.0.0.1:{port}\n\n".encode(), "http", "x", 1)
        await _session_roundtrip(hs, Route(None, tls_context(False)))
    # refused, directly and through the proxy
    closed = parse_handshake(f"GET / HTTP/1.1\nHost: 127.0.0.1:{port}\n\n".encode(), "http", "x", 1)
    entries: list[Entry] = []
    session = WsSession(closed, Route(None, tls_context(False)), entries.append)
    await session.run()
    assert session.state == "failed" and entries[-1].note == "connection refused"
    proxy = await make_proxy(proxyauth="user:pass")
    entries = []
    await WsSession(closed, Route(("127.0.0.1", proxy.port), tls_context(False)), entries.append).run()
    assert entries[-1].note.startswith("the proxy refused the tunnel: 407")
    entries = []
    auth = "Basic dXNlcjpwYXNz"
    await WsSession(closed, Route(("127.0.0.1", proxy.port), tls_context(False), auth), entries.append).run()
    assert entries[-1].note.startswith("handshake rejected: 502"), entries
    assert "connection refused" in entries[-1].note
    # sending without a connection is the user's error, not a crash
    with pytest.raises(RepeaterError, match="not connected"):
        session.send("x")


def test_view_module_does_not_need_a_loop():
    # widgets never touch sockets: building the view and a tab needs no running event loop
    view = RepeaterView(lambda tab: None, lambda tab, op, arg: True)
    view.add(WsTab("WS /", "http", "h", 80, "GET / HTTP/1.1\nHost: h\n\n"))
    assert isinstance(view.render((60, 20), True), urwid.Canvas)
