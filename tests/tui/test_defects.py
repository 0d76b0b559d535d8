"""Defects found by trying the TUI (issue 16, items 6 and 7), each driven through the real app in a pty."""
from __future__ import annotations

import asyncio
import base64
import re

from tests.conftest import curl
from tests.tui.pty_harness import Terminal, focus_header_row, open_held


async def test_help_opens_with_what_the_view_is_for_and_uses_columns(tmp_path):
    term = Terminal(cols=200, rows=45)
    await term.start("--confdir", str(tmp_path / "conf"))
    try:
        await term.press("?")
        await term.wait_for("flowlist keys")
        screen = await term.settle()
        lines = screen.splitlines()
        purpose = next(i for i, line in enumerate(lines) if "Every flow through the proxy. Intercept: i" in line)
        first_keys = next(i for i, line in enumerate(lines) if "flowlist keys" in line)
        assert purpose < first_keys
        # edit and resume come before navigation
        assert screen.index("edit the flow") < screen.index("next flow")
        assert screen.index("resume the flow") < screen.index("next flow")
        # a wide terminal gets columns: two bindings on one line
        assert any(re.search(r"resume the flow\s{2,}\S+\s+\S", line) for line in lines)
        assert "quit (asks to confirm)" in screen  # everything fits without scrolling at 200×45
    finally:
        await term.stop()


async def test_sort_order_in_the_status_bar_and_urls_cut_at_the_end(tmp_path, origin):
    term = Terminal(cols=60, rows=20)
    await term.start("--confdir", str(tmp_path / "conf"))
    try:
        long_path = "/echo/" + "segment/" * 8 + "the-end"
        code, _, err = await curl("-x", term.url, f"{origin.url}{long_path}")
        assert code == 0, err
        screen = await term.wait_for(re.compile(r"GET\s+http://127\.0\.0\.1:\d*…\s+200"))
        assert "the-end" not in screen  # cut at the end (the start reads on), not in the middle
        await term.press("o")
        await term.wait_for("order: method")
        status = [line for line in (await term.settle()).splitlines() if "flows:" in line][0]
        assert "order: method" in status
    finally:
        await term.stop()


async def test_y_in_search_results_copies_the_focused_results_url(tmp_path, origin):
    term = Terminal(cols=120)
    await term.start("--confdir", str(tmp_path / "conf"))
    try:
        for p in ("/echo/first-needle", "/echo/second-needle"):
            code, _, err = await curl("-x", term.url, f"{origin.url}{p}")
            assert code == 0, err
        await term.wait_for("second-needle")
        await term.press("g")  # the list's focus is on the first flow
        await term.press("ctrl f", *"second-needle", "enter")
        await term.wait_for("matches)")
        await term.press("y")
        await term.wait_for("URL copied")
        b64 = base64.b64encode(f"{origin.url}/echo/second-needle".encode())
        assert b"\x1b]52;c;" + b64 in bytes(term.raw)
    finally:
        await term.stop()


async def test_global_search_lands_on_a_match_in_minified_json(tmp_path, origin):
    term = Terminal(cols=120)
    await term.start("--confdir", str(tmp_path / "conf"))
    try:
        code, _, err = await curl("-x", term.url, "-H", "content-type: application/json",
                                  "--data-binary", '{"a":[' + ",".join([f'{{"sku":"ZX-0{i}"}}' for i in range(200)])
                                  + ']}', f"{origin.url}/echo/sku")
        assert code == 0, err
        await term.wait_for("/echo/sku")
        await term.press("ctrl f", *'"sku":"ZX-0150"', "enter")
        await term.wait_for("matches)")
        await term.press("enter")
        screen = await term.wait_for("shown raw")
        focused = term.focused_line()
        assert '"sku":"ZX-0150"' in focused or '"sku":"ZX-0150"' in screen
    finally:
        await term.stop()


async def test_ctrl_c_says_what_would_be_lost_and_asks(tmp_path, origin):
    term = Terminal(cols=120)
    await term.start("--confdir", str(tmp_path / "conf"))
    try:
        for p in ("/a", "/b"):
            code, _, err = await curl("-x", term.url, f"{origin.url}{p}")
            assert code == 0, err
        await term.wait_for("flows: 2/2")
        term.send("\x03")
        await term.wait_for("2 flows not saved (w saves them) — quit? (y/n)")
        await term.press("n")
        await term.wait_gone("quit? (y/n)")
        assert term.proc.returncode is None
        term.send("\x03")
        await term.wait_for("quit? (y/n)")
        await term.press("y")
        async with asyncio.timeout(10):
            assert await term.proc.wait() == 0
    finally:
        await term.stop()


async def test_diff_of_binary_bodies_is_a_summary_and_hex_never_raw_bytes(tmp_path, origin):
    term = Terminal(cols=120)
    await term.start("--confdir", str(tmp_path / "conf"))
    try:
        for i, tail in enumerate((b"\x1b[2J\x1b]0;pwned\x07\r\nfirst", b"\x1b[31m\rsecond\x00\xff")):
            body = tmp_path / f"b{i}.png"
            body.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + tail)
            code, _, err = await curl("-x", term.url, "-H", "content-type: image/png", "--data-binary", f"@{body}",
                                      f"{origin.url}/echo/img{i}")
            assert code == 0, err
        await term.wait_for("flows: 2/2")
        await term.press("g", "m", "j", "m", "=")
        screen = await term.wait_for("Diff of the two marked flows")
        screen = await term.wait_for("(binary body: ")
        assert "sha256" in screen and "|.PNG....." in screen
        assert ".]0;pwned." in screen  # the escape shown as dots in the dump, not sent to the terminal
        lines = term.text().splitlines()
        assert all(len(line) <= 120 for line in lines)
        assert term.screen.title in ("", None) or "pwned" not in term.screen.title
    finally:
        await term.stop()


async def test_header_grid_tab_goes_to_the_value_and_d_can_be_undone(tmp_path, origin):
    import httpx

    term = Terminal(cols=120)
    await term.start("--confdir", str(tmp_path / "conf"), "-i", "~u /hold", "--set", "intercept_at=request")
    try:
        async with httpx.AsyncClient(proxy=term.url, timeout=30) as client:
            task = asyncio.ensure_future(client.get(f"{origin.url}/echo/hold", headers={"X-Keep": "kept"}))
            await open_held(term)
            await focus_header_row(term, "X-Keep", "kept")
            await term.press("d")
            await term.wait_gone("kept")
            await term.press("u")  # undo the delete
            await term.wait_for(re.compile(r"│X-Keep\s+kept"))
            await term.press("a", *"X-Added", "tab", *"by-grid", "enter")  # tab: from the name on to the value
            await term.wait_for(re.compile(r"│X-Added\s+by-grid"))
            await term.press("q")
            await term.wait_for("X-Added: by-grid")
            await term.press("a")
            resp = await task
        headers = {k.lower(): v for k, v in resp.json()["headers"]}
        assert headers.get("x-keep") == "kept" and headers.get("x-added") == "by-grid"
    finally:
        await term.stop()
