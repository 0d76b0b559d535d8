"""The real `interpose` in a pseudo-terminal with real traffic: keys in, screen out."""
from __future__ import annotations

import asyncio
import json
import re

import httpx

from tests.conftest import curl
from tests.tui.pty_harness import Terminal, focus_header_row, open_held


async def test_request_appears_and_json_is_pretty_printed(term, origin):
    code, out, err = await curl("-x", term.url, f"{origin.url}/json")
    assert code == 0, err
    await term.wait_for(re.compile(r"GET\s+http://127\.0\.0\.1:\d+/json\s+200"))
    await term.press("enter")
    await term.wait_for("Request")
    await term.press("tab")
    screen = await term.wait_for('"name": "interpose"')
    assert '"items": [' in screen  # pretty-printed over several lines
    assert re.search(r"^\s+1,$", screen, re.M)


async def test_help_shows_the_keys(term):
    await term.press("?")
    await term.wait_for("flowlist keys")
    await term.wait_for("open the flow")
    await term.press("page down", "page down")
    await term.wait_for("quit (asks to confirm)")
    await term.press("q")
    await term.wait_gone("flowlist keys")


async def test_quit_asks_first(term):
    await term.press("Q")
    await term.wait_for("Quit? (y/n)")
    await term.press("n")
    await term.wait_gone("Quit? (y/n)")
    await term.press("Q")
    await term.wait_for("Quit? (y/n)")
    await term.press("y")
    async with asyncio.timeout(10):
        assert await term.proc.wait() == 0


async def test_intercept_edit_header_in_grid_and_body_in_editor_then_resume(tmp_path, origin):
    editor = tmp_path / "edit.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/original body/edited body/' \"$1\"\n")
    editor.chmod(0o755)
    term = Terminal()
    await term.start("--confdir", str(tmp_path / "conf"), env={"EDITOR": str(editor)})
    try:
        await term.press("i")
        await term.wait_for("Intercept filter:")
        await term.press(*"~u /hold", "enter")
        await term.wait_for("intercept: ~u /hold")
        async with httpx.AsyncClient(proxy=term.url, timeout=30) as client:
            task = asyncio.ensure_future(client.post(f"{origin.url}/echo/hold", content=b"original body",
                                                     headers={"X-Test": "before"}))
            await open_held(term, "POST")
            assert not task.done() and origin.received == []
            await term.wait_for("X-Test: before")
            # headers: the grid editor
            await focus_header_row(term, "X-Test", "before")
            assert "Request headers" in term.text()
            await term.press("tab", "enter", *["backspace"] * 6, *"after", "enter", "q")
            await term.wait_for("X-Test: after")
            # body: $EDITOR
            await term.press("e")
            await term.wait_for("Edit request:")
            await term.press("b")
            await term.wait_for("edited body")
            await term.press("a")
            # held again at the response stage (default intercept_at=request,response)
            await term.wait_for("[held at response]")
            assert not task.done()
            await term.press("a")
            resp = await asyncio.wait_for(task, 15)
        assert resp.status_code == 200
        got = origin.received[-1]
        assert got.header("x-test") == "after"
        assert got.body == b"edited body" and got.header("content-length") == "11"
        assert json.loads(resp.text)["path"] == "/echo/hold"
    finally:
        await term.stop()


async def test_addon_picker_loads_a_bundled_addon(term, origin):
    await term.press("P")
    screen = await term.wait_for("add_header")
    assert "Add a header to every response" in screen
    rows = [line for line in screen.splitlines() if "]" in line and "[" in line]
    index = next(i for i, r in enumerate(rows) if "add_header" in r)
    for _ in range(index):
        await term.press("j")
    await term.press("enter")
    await term.wait_for("loaded add_header")
    await term.wait_for("[x] add_header")
    code, out, err = await curl("-si", "-x", term.url, f"{origin.url}/after-addon")
    assert code == 0, err
    assert b"X-Interpose: 1" in out
    await term.press("q")
    await term.wait_for("addons: add_header")


async def test_websocket_message_held_edited_and_released(tmp_path):
    import websockets

    received: list[str] = []
    got = asyncio.Event()

    async def server(ws):
        async for msg in ws:
            received.append(msg)
            got.set()

    editor = tmp_path / "edit.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/secret/public/' \"$1\"\n")
    editor.chmod(0o755)
    term = Terminal()
    await term.start("--confdir", str(tmp_path / "conf"), "--set", "intercept_at=messages",
                     "-i", "~websocket", env={"EDITOR": str(editor)})
    srv = await websockets.serve(server, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/chat", proxy=term.url) as ws:
            await ws.send("my secret message")
            await term.wait_for(re.compile(r"!\s.*GET\s+http://127\.0\.0\.1:\d+/chat"))
            assert received == []
            await term.press("enter")
            await term.press("tab", "tab")
            await term.wait_for("! held")
            await term.wait_for("my secret message")
            for _ in range(2):
                await term.press("j")
            await term.press("e")
            await term.wait_for("my public message")
            await term.press("a")
            async with asyncio.timeout(10):
                await got.wait()
        assert received == ["my public message"]
    finally:
        srv.close()
        await term.stop()


async def test_replay_filter_and_search(term, origin):
    code, _, err = await curl("-x", term.url, f"{origin.url}/json")
    assert code == 0, err
    code, _, err = await curl("-x", term.url, f"{origin.url}/other")
    assert code == 0, err
    await term.wait_for("flows: 2/2")
    # replay the focused (last) flow: a new flow marked as a replay, a second request at the origin
    await term.press("r")
    await term.wait_for("flows: 3/3")
    async with asyncio.timeout(10):
        while len(origin.received) < 3:
            origin.arrived.clear()
            await origin.arrived.wait()
    assert [r.path for r in origin.received] == ["/json", "/other", "/other"]
    await term.wait_for("↻")
    # a bad filter is asked again with the reason, the text kept; a good one narrows the list
    await term.press("f")
    await term.wait_for("Filter (up/down: history):")
    await term.press(*"~c abc", "enter")
    await term.wait_for(re.compile(r"Filter \(invalid filter: .*\): ~c abc"))
    await term.press("ctrl u", *"~u json", "enter")
    await term.wait_for("flows: 1/3")
    # search inside the flow view
    await term.press("enter", "tab")
    await term.wait_for('"name": "interpose"')
    await term.press("/")
    await term.wait_for("Search:")
    await term.press(*"items", "enter")
    await term.wait_for('"items": [')
    await term.press("/")
    await term.wait_for("Search: items")
    await term.press(*["backspace"] * 5, *"no-such-text", "enter")
    await term.wait_for("not found: no-such-text")


async def test_global_search_opens_the_flow_at_a_deep_match(term, origin):
    for path in ("/json", "/bigjson", "/other"):
        code, _, err = await curl("-x", term.url, f"{origin.url}{path}")
        assert code == 0, err
    await term.wait_for("flows: 3/3")
    await term.press("ctrl f")
    await term.wait_for("Search all flows")
    await term.press(*"NEEDLE-in-the", "enter")
    screen = await term.wait_for("1 matches")
    assert "response body" in screen and "/bigjson" in screen
    await term.press("enter")
    screen = await term.wait_for(re.compile(r'"i": 1250,\n.*"name": "needle-in-the-haystack"'))
    # the flow view, on the Response tab, scrolled deep into the body (the top of the JSON is out of sight)
    assert screen.splitlines()[0].startswith(" Request   Response")
    assert '"i": 0,' not in screen


async def test_diff_of_two_marked_flows_shows_a_changed_header(term, origin):
    for value in ("one", "two"):
        code, _, err = await curl("-x", term.url, "-H", f"X-Variant: {value}", f"{origin.url}/echo")
        assert code == 0, err
    await term.wait_for("flows: 2/2")
    await term.press("=")
    await term.wait_for("mark exactly two HTTP flows")
    await term.press("m", "k", "m", "=")
    screen = await term.wait_for("Diff of the two marked flows")
    assert "-X-Variant: one" in screen and "+X-Variant: two" in screen


async def test_copy_sends_osc52(term, origin):
    code, _, err = await curl("-x", term.url, f"{origin.url}/copied")
    assert code == 0, err
    await term.wait_for("flows: 1/1")
    await term.press("y")
    await term.wait_for("URL copied to the clipboard")
    import base64
    expected = base64.b64encode(f"{origin.url}/copied".encode())
    await term.wait_for_raw(b"\x1b]52;c;" + expected + b"\x07")


async def test_repeater_edit_changes_what_the_server_receives(term, origin):
    code, _, err = await curl("-x", term.url, "-d", "a=1", f"{origin.url}/echo/first")
    assert code == 0, err
    await term.wait_for("flows: 1/1")
    await term.press("R")
    await term.wait_for("Request (edit freely)")
    await term.wait_for("a=1")
    await term.press("ctrl s")
    await term.wait_for("Response 1/1")
    async with asyncio.timeout(10):
        while len(origin.received) < 2:
            origin.arrived.clear()
            await origin.arrived.wait()
    assert origin.received[-1].body == b"a=1"
    await term.press(*"&b=2", "ctrl s")  # the cursor waits at the end of the body
    await term.wait_for("Response 2/2")
    async with asyncio.timeout(10):
        while len(origin.received) < 3:
            origin.arrived.clear()
            await origin.arrived.wait()
    got = origin.received[-1]
    assert got.body == b"a=1&b=2" and got.header("content-length") == "7"
    await term.press("ctrl o")
    await term.wait_for("Response 1/2")
    await term.press("esc")
    await term.wait_for("flows: 3/3")


async def test_sticky_edit_applies_to_the_next_request_without_intercept(tmp_path, origin):
    term = Terminal()
    await term.start("--confdir", str(tmp_path / "conf"))
    try:
        await term.press("i")
        await term.press(*"~u /echo/sticky", "enter")
        await term.wait_for("intercept: ~u /echo/sticky")
        async with httpx.AsyncClient(proxy=term.url, timeout=30) as client:
            task = asyncio.ensure_future(client.get(f"{origin.url}/echo/sticky", headers={"X-Mode": "plain"}))
            await term.wait_for(re.compile(r"!\s.*GET\s+http://127\.0\.0\.1:\d+/echo/sticky"))
            await term.press("enter")
            await term.wait_for("X-Mode: plain")
            await term.press("e", "h")
            await term.wait_for("Request headers")
            await term.wait_for(re.compile(r"│X-Mode\s+plain"))
            rows = [line for line in term.text().splitlines() if "│" in line and line.strip("│ ")]
            names = [r.strip("│ ").split()[0] for r in rows[1:] if r.strip("│ ")]
            for _ in range(names.index("X-Mode")):
                await term.press("j")
            await term.press("tab", "enter", *["backspace"] * 5, *"sticky", "enter", "q")
            await term.wait_for("X-Mode: sticky")
            await term.press("s")
            await term.wait_for("sticky rule added")
            await term.press("A")
            await term.wait_for("[held at response]")
            await term.press("A")
            await asyncio.wait_for(task, 15)
            assert origin.received[-1].header("x-mode") == "sticky"
            # no more intercept: the rule alone changes the next request
            await term.press("q", "i", *["backspace"] * 20, "enter")
            await term.wait_gone("intercept: ~u")
            resp = await client.get(f"{origin.url}/echo/sticky", headers={"X-Mode": "plain"})
            assert resp.status_code == 200
            assert origin.received[-1].header("x-mode") == "sticky"
        await term.press("S")
        await term.wait_for("set X-Mode: sticky")
        await term.press("d")
        await term.wait_for("no rules yet")
    finally:
        await term.stop()
    assert (tmp_path / "conf" / "sticky-rules.json").read_text().strip() == "[]"


async def test_header_stage_breakpoint_buffer_then_stream(tmp_path, origin):
    term = Terminal()
    await term.start("--confdir", str(tmp_path / "conf"), "-i", "~u /echo/hdr",
                     "--set", "intercept_at=requestheaders,responseheaders")
    try:
        async with httpx.AsyncClient(proxy=term.url, timeout=30) as client:
            task = asyncio.ensure_future(client.post(f"{origin.url}/echo/hdr", content=b"payload"))
            await term.wait_for(re.compile(r"!\s.*POST\s+http://127\.0\.0\.1:\d+/echo/hdr"))
            await term.press("enter")
            await term.wait_for("[held at requestheaders]")
            await term.press("B")  # buffer the request body and stop again once it is in
            await term.wait_for("[held at request]")
            await term.wait_for("payload")  # the buffered body is now visible and editable
            await term.press("a")
            await term.wait_for("[held at responseheaders]")
            await term.press("T")  # stream the response body through
            resp = await asyncio.wait_for(task, 15)
        assert resp.status_code == 200 and json.loads(resp.text)["body"] == "payload"
        await term.press("tab")
        await term.wait_for("(body streamed through, not kept)")
    finally:
        await term.stop()


async def test_pending_pane_edit_drop_and_inject_websocket_messages(tmp_path):
    import websockets

    received: list[str] = []
    arrived = asyncio.Event()

    async def server(ws):
        async for msg in ws:
            received.append(msg)
            arrived.set()

    async def wait_received(n: int) -> None:
        async with asyncio.timeout(10):
            while len(received) < n:
                arrived.clear()
                await arrived.wait()

    editor = tmp_path / "edit.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/first/FIRST (edited)/' \"$1\"\n")
    editor.chmod(0o755)
    term = Terminal()
    await term.start("--confdir", str(tmp_path / "conf"), "--set", "intercept_at=messages", "-i", "~websocket & ~wq",
                     env={"EDITOR": str(editor)})
    srv = await websockets.serve(server, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/", proxy=term.url) as ws:
            await ws.send("first")
            await term.wait_for("held: 1")
            await term.press("p")
            await term.wait_for(re.compile(r"message →\s+first"))
            await term.press("e")
            await term.wait_for("FIRST (edited)")
            await term.press("a")
            await wait_received(1)
            assert received == ["FIRST (edited)"]
            await ws.send("second")
            await term.wait_for(re.compile(r"message →\s+second"))
            await term.press("d")  # dropped: never arrives
            await term.wait_for("nothing is held")
            await ws.send("third")
            await term.wait_for(re.compile(r"message →\s+third"))
            await term.press("n", "c")
            await term.wait_for("New message to the server")  # a multi-line editor: enter is a newline
            await term.press(*"injected!", "enter", *"line two", "ctrl s")
            await term.wait_for("injected 18 bytes to the server")
            await wait_received(2)
            assert received == ["FIRST (edited)", "injected!\nline two"]
            await term.press("a")
            await wait_received(3)
        assert received == ["FIRST (edited)", "injected!\nline two", "third"]
    finally:
        srv.close()
        await term.stop()
