"""What the TUI says is what happened: replays, scripts, messages, exports, WebSocket rows (real app in a pty)."""
from __future__ import annotations

import asyncio
import re

from interpose.tui.widgets.picker import bundled_addons
from tests.conftest import curl
from tests.tls_servers import TestCA, start_h1_origin
from tests.tui.pty_harness import Terminal


async def test_a_replay_has_its_own_duration(term, origin):
    code, _, err = await curl("-x", term.url, f"{origin.url}/json")
    assert code == 0, err
    await term.wait_for(re.compile(r"GET\s+http://127\.0\.0\.1:\d+/json\s+200"))
    await asyncio.sleep(1.5)  # the original is now 1.5 s old: a replay measured from it would say "1.5s"
    await term.press("r")
    # the row once the replay is complete (its duration shown): milliseconds, not the original's age
    screen = await term.wait_for(re.compile(r"↻ GET\s+http://127\.0\.0\.1:\d+/json\s+200.*\d(ms|s)\s*$", re.M))
    row = next(line for line in screen.splitlines() if "↻ GET" in line)
    assert re.search(r"\d+ms$", row.rstrip()), row


async def test_a_broken_script_shows_as_failed_and_an_unloaded_one_stays_in_the_picker(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def request(flow:\n")
    good = tmp_path / "withopt.py"
    good.write_text('"""declares an option"""\n'
                    "def load(loader):\n    loader.add_option('aaa_withopt_level', int, 3, 'an addon option')\n")
    term = Terminal(cols=160, rows=40)
    await term.start("--confdir", str(tmp_path / "conf"), "-s", str(broken), "-s", str(good))
    try:
        screen = await term.wait_for("broken failed: syntax error")
        status = next(line for line in screen.splitlines() if "addons:" in line)
        assert " withopt " in status and "withopt failed" not in status  # the good one is loaded, not failed
        await term.press("O")
        await term.wait_for("aaa_withopt_level")
        await term.press("q", "P")
        screen = await term.wait_for("[!] broken.py")
        assert re.search(r"\[!\] broken\.py\s+failed: syntax error in .*broken\.py, line 1", screen)
        # unload withopt.py: it stays in the picker, unticked, and its option leaves O
        for _ in range(len(bundled_addons()) + 1):  # bundled addons first, then broken.py, withopt.py
            await term.press("j")
        await term.press("enter")
        screen = await term.wait_for(re.compile(r"\[ \] withopt\.py\s+declares an option"))
        await term.wait_for("unloaded withopt.py")
        await term.press("q", "O")
        await term.wait_for("listen_port")
        assert "aaa_withopt_level" not in await term.settle()
        # and it can be loaded again from the picker
        await term.press("q", "P")
        for _ in range(len(bundled_addons()) + 1):
            await term.press("j")
        await term.press("enter")
        await term.wait_for(re.compile(r"\[x\] withopt\.py"))
    finally:
        await term.stop()


async def test_har_save_says_what_it_skipped_and_why(tmp_path, origin):
    tls_origin = await start_h1_origin(TestCA(tmp_path / "origin-ca"))
    term = Terminal(cols=160, rows=30)
    await term.start("--confdir", str(tmp_path / "conf"))
    try:
        code, _, err = await curl("-x", term.url, f"{origin.url}/json")
        assert code == 0, err
        code, _, _ = await curl("-x", term.url, f"https://localhost:{tls_origin.port}/")  # no --cacert: refused
        await term.wait_for("CONNECT localhost")
        await term.press("w")
        await term.wait_for("Save flows to:")
        await term.press(*["backspace"] * len("flows.interpose"), *str(tmp_path / "out.har"), "enter")
        screen = await term.wait_for("skipped")
        assert (f"saved 1 of 2 visible flows to {tmp_path / 'out.har'}; skipped 1 CONNECT flow "
                "(failed TLS handshakes: no request)") in screen
    finally:
        await term.stop()
        await tls_origin.stop()


async def test_websocket_rows_edits_and_stale_messages(tmp_path):
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
    term = Terminal(cols=120)
    await term.start("--confdir", str(tmp_path / "conf"), "--set", "intercept_at=messages",
                     "-i", "~websocket", env={"EDITOR": str(editor)})
    srv = await websockets.serve(server, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/chat", proxy=term.url) as ws:
            await ws.send("my secret message")
            await term.wait_for(re.compile(r"GET\s+http://127\.0\.0\.1:\d+/chat\s+101\s+.*1 msgs\s+17b"))
            await term.press("enter", "tab", "tab")
            await term.wait_for("! held")
            await term.press("j", "j", "e")
            await term.wait_for("message edited (text); a resumes it")
            await term.press("a")
            screen = await term.wait_for("message resumed")
            assert "a resumes it" not in screen
            await term.wait_for("✎ edited")
            async with asyncio.timeout(10):
                await got.wait()
        assert received == ["my public message"]
    finally:
        srv.close()
        await term.stop()

