"""End to end, in a pseudo-terminal: the WebSocket repeater and saved-response rules, with real servers."""
from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from tests.conftest import curl
from tests.tui.pty_harness import Terminal

WAIT = 30  # generous: two cores under load
CTRL_T, CTRL_D, F1 = "\x14", "\x04", "\x1bOP"


class EchoServer:
    """A real `websockets` server that records every message and connection, and echoes messages back."""

    def __init__(self) -> None:
        self.received: list[str | bytes] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.closed = 0
        self.changed = asyncio.Event()
        self.server = None
        self.port = 0

    async def handler(self, ws) -> None:
        self.paths.append(ws.request.path)
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        self.changed.set()
        try:
            async for msg in ws:
                self.received.append(msg)
                self.changed.set()
                await ws.send(f"echo: {msg}" if isinstance(msg, str) else b"echo:" + msg)
        finally:
            self.closed += 1
            self.changed.set()

    async def start(self) -> EchoServer:
        import websockets

        self.server = await websockets.serve(self.handler, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def wait(self, predicate, timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def echo():
    s = await EchoServer().start()
    yield s
    s.server.close()


async def test_websocket_repeater_connects_sends_and_reconnects(term, echo):
    import websockets

    async with websockets.connect(f"ws://127.0.0.1:{echo.port}/chat", proxy=term.url) as ws:
        await ws.send("from the client")
        assert await ws.recv() == "echo: from the client"
    await echo.wait(lambda: echo.closed == 1)
    await term.wait_for(re.compile(r"GET\s+http://127\.0\.0\.1:\d+/chat"), WAIT)
    await term.press("R")
    screen = await term.wait_for("WebSocket handshake (edit freely)", WAIT)
    assert "GET /chat HTTP/1.1" in screen and "not connected (ctrl s connects)" in screen
    assert "WS /chat" in screen
    await term.press("ctrl s")
    await term.wait_for("Messages: connected", WAIT)
    await echo.wait(lambda: len(echo.paths) == 2)
    assert echo.paths == ["/chat", "/chat"]
    await term.press(*"hello from the repeater", "enter")
    await echo.wait(lambda: "hello from the repeater" in echo.received)
    screen = await term.wait_for("echo: hello from the repeater", WAIT)
    assert re.search(r"→ \d\d:\d\d:\d\d\.\d{3}\s+23 B hello from the repeater", screen), screen
    assert re.search(r"← \d\d:\d\d:\d\d\.\d{3}\s+29 B echo: hello from the repeater", screen), screen
    # binary, written as hex
    await term.press(CTRL_T)
    await term.wait_for("hex ›", WAIT)
    await term.press(*"00 ff 41", "enter")
    await echo.wait(lambda: b"\x00\xffA" in echo.received)
    await term.wait_for("65 63 68 6f 3a 00 ff 41", WAIT)  # b"echo:" + the bytes, shown in hex
    await term.press(*"zz", "enter")
    await term.wait_for("not hex", WAIT)
    await term.press("backspace", "backspace", CTRL_T)
    await term.wait_for("text ›", WAIT)
    # reconnect: the old connection closes cleanly, a new one opens and works
    await term.press("ctrl s")
    await echo.wait(lambda: len(echo.paths) == 3 and echo.closed == 2)
    await term.wait_for("closed: code 1000", WAIT)
    await term.wait_for("Messages: connected", WAIT)
    await term.press(*"again", "enter")
    await echo.wait(lambda: "again" in echo.received)
    await term.wait_for("echo: again", WAIT)
    # the repeater's connections went through the proxy: each is a flow of its own
    await term.press("esc")
    await term.wait_gone("WebSocket handshake", WAIT)
    await term.wait_for("flows: 3/3", WAIT)
    # closing the tab closes its connection
    await term.press("R")
    await term.wait_for(" 2: WS /chat", WAIT)
    await term.press("ctrl p")
    await term.wait_for("echo: again", WAIT)
    await term.press("ctrl w")
    await echo.wait(lambda: echo.closed == 3)
    screen = await term.wait_for(" 1: WS /chat", WAIT)
    assert " 2: WS" not in screen
    assert len(echo.paths) == 3


async def test_websocket_repeater_shows_errors_and_sends_the_edited_handshake(term, echo, origin):
    import websockets

    async with websockets.connect(f"ws://127.0.0.1:{echo.port}/one", proxy=term.url) as ws:
        await ws.send("x")
        await ws.recv()
    await term.wait_for(re.compile(r"GET\s+http://127\.0\.0\.1:\d+/one"), WAIT)
    await term.press("R")
    await term.wait_for("WebSocket handshake (edit freely)", WAIT)
    # f1 shows the repeater's keys (? is text there)
    await term.press(F1)
    await term.wait_for("repeater keys", WAIT)
    await term.wait_for("message line as text or as hex", WAIT)
    await term.press("esc")
    await term.wait_gone("repeater keys", WAIT)

    async def handshake(*lines: str) -> None:
        """Replace the handshake text (the cursor waits at its end) and connect."""
        await term.press(*["backspace"] * 600)
        for line in lines:
            await term.press(*line, "enter")
        await term.press("ctrl s")

    # tab: from the message line to the handshake. Nothing listens on port 1: the proxy says why.
    await term.press("tab")
    await handshake("GET /two HTTP/1.1", "Host: 127.0.0.1:1")
    await term.wait_for("handshake rejected: 502", WAIT)
    await term.wait_for("connection refused", WAIT)
    await term.wait_for("Messages: failed (ctrl s tries again)", WAIT)
    # a plain HTTP server answers the handshake with a 200: rejected too
    await handshake("GET /plain HTTP/1.1", f"Host: 127.0.0.1:{origin.port}")
    await term.wait_for("handshake rejected: 200: ok /plain", WAIT)
    # the edited handshake is what the server gets
    await handshake("GET /three?q=1 HTTP/1.1", f"Host: 127.0.0.1:{echo.port}", "X-Repeater: yes")
    await echo.wait(lambda: "/three?q=1" in echo.paths)
    assert echo.headers[-1].get("x-repeater") == "yes"
    await term.wait_for(f"connected to ws://127.0.0.1:{echo.port}/three?q=1", WAIT)
    # ctrl d disconnects; the message line keeps its text when there is nothing to send it on
    await term.press("tab", CTRL_D)
    await term.wait_for("Messages: closed", WAIT)
    await term.press(*"late", "enter")
    await term.wait_for("not connected: ctrl s connects", WAIT)
    assert "text › late" in term.text()


async def test_saved_response_answers_matching_requests_until_removed(tmp_path, origin):
    term = Terminal()
    await term.start("--confdir", str(tmp_path / "conf"))
    try:
        code, out, err = await curl("-x", term.url, f"{origin.url}/echo/kept")
        assert code == 0, err
        assert len(origin.received) == 1
        original = json.loads(out)
        await term.wait_for(re.compile(r"GET\s+http://127\.0\.0\.1:\d+/echo/kept\s+200"), WAIT)
        await term.press("K")
        screen = await term.wait_for("Answer requests matching (with this response):", WAIT)
        assert f"~m ^GET$ & ~u ^http://127\\.0\\.0\\.1:{origin.port}/echo/kept$" in screen
        await term.press("enter")
        await term.wait_for("saved response rule added", WAIT)
        # the same request again: the saved response, and the origin hears nothing
        async with httpx.AsyncClient(proxy=term.url, timeout=30) as client:
            resp = await client.get(f"{origin.url}/echo/kept")
            assert resp.status_code == 200
            assert resp.json() == original
            assert resp.headers["content-type"] == "application/json"
            other = await client.get(f"{origin.url}/echo/other")
            assert other.status_code == 200 and other.json()["path"] == "/echo/other"
            assert [r.path for r in origin.received] == ["/echo/kept", "/echo/other"]
            code, out, err = await curl("-x", term.url, f"{origin.url}/echo/kept")
            assert code == 0, err
            assert json.loads(out) == original
            assert len(origin.received) == 2
            rules = json.loads((tmp_path / "conf" / "sticky-rules.json").read_text())
            assert rules[0]["part"] == "saved_response" and rules[0]["status_code"] == 200
            # listed, and removable
            await term.press("S")
            await term.wait_for("saved response 200 OK", WAIT)
            await term.press("d")
            await term.wait_for("no rules yet", WAIT)
            resp = await client.get(f"{origin.url}/echo/kept")
            assert resp.status_code == 200
            assert len(origin.received) == 3
        assert json.loads((tmp_path / "conf" / "sticky-rules.json").read_text()) == []
    finally:
        await term.stop()


async def test_saved_response_from_an_edited_held_response_with_an_edited_filter(tmp_path, origin):
    editor = tmp_path / "edit.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/ok \\/status-page/maintenance/' \"$1\"\n")
    editor.chmod(0o755)
    term = Terminal()
    await term.start("--confdir", str(tmp_path / "conf"), "-i", "~u /status-page & ~s", env={"EDITOR": str(editor)})
    try:
        async with httpx.AsyncClient(proxy=term.url, timeout=30) as client:
            task = asyncio.ensure_future(client.get(f"{origin.url}/status-page"))
            await term.wait_for(re.compile(r"!\s.*GET\s+http://127\.0\.0\.1:\d+/status-page"), WAIT)
            await term.press("enter", "tab")
            await term.wait_for("[held at response]", WAIT)
            await term.press("e")
            await term.wait_for("Edit response:", WAIT)
            await term.press("b")
            await term.wait_for("maintenance", WAIT)
            await term.press("K")
            await term.wait_for("Answer requests matching", WAIT)
            await term.press(*["backspace"] * 200, *"~u /status-page", "enter")
            await term.wait_for("saved response rule added", WAIT)
            await term.press("a")
            resp = await asyncio.wait_for(task, WAIT)
            assert resp.text == "maintenance"
            assert len(origin.received) == 1
            # the intercept would hold the answered flow at its response stage too: turn it off, then
            # any method and query match the edited filter, and the origin still hears nothing
            await term.press("q", "i", *["backspace"] * 40, "enter")
            await term.wait_gone("intercept: ~u", WAIT)
            resp = await client.post(f"{origin.url}/status-page?x=1", content=b"ignored")
            assert resp.status_code == 200 and resp.text == "maintenance"
            assert resp.headers["content-length"] == str(len("maintenance"))
            assert len(origin.received) == 1
    finally:
        await term.stop()
