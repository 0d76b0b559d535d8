"""The real `interpose` in a pseudo-terminal with real traffic: keys in, screen out."""
from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from tests.conftest import curl
from tests.tui.pty_harness import Terminal


@pytest.fixture
async def term(tmp_path):
    t = Terminal()
    await t.start("--confdir", str(tmp_path / "conf"))
    yield t
    await t.stop()


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


async def test_intercept_edit_header_and_resume(term, origin, tmp_path):
    editor = tmp_path / "edit.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/^X-Test: before$/X-Test: after/' \"$1\"\n")
    editor.chmod(0o755)
    await term.stop()
    term2 = Terminal()
    await term2.start("--confdir", str(tmp_path / "conf2"), env={"EDITOR": str(editor)})
    try:
        await term2.press("i")
        await term2.wait_for("Intercept filter:")
        await term2.press(*"~u /hold", "enter")
        await term2.wait_for("intercept: ~u /hold")
        async with httpx.AsyncClient(proxy=term2.url, timeout=30) as client:
            task = asyncio.ensure_future(client.get(f"{origin.url}/echo/hold", headers={"X-Test": "before"}))
            await term2.wait_for(re.compile(r"!\s.*GET\s+http://127\.0\.0\.1:\d+/echo/hold"))
            assert not task.done() and origin.received == []
            await term2.press("enter")
            await term2.wait_for("X-Test: before")
            await term2.press("e")
            await term2.wait_for("Edit request:")
            await term2.press("h")
            await term2.wait_for("X-Test: after")
            await term2.wait_for("[held at request]")
            await term2.press("a")
            # held again at the response stage (default intercept_at=request,response)
            await term2.wait_for("[held at response]")
            assert not task.done()
            await term2.press("a")
            resp = await asyncio.wait_for(task, 15)
        assert resp.status_code == 200
        assert origin.received[-1].header("x-test") == "after"
        assert json.loads(resp.text)["path"] == "/echo/hold"
    finally:
        await term2.stop()
