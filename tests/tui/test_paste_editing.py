"""Bracketed paste and line editing in the real `interpose`, in a pty: what the user sees."""
from __future__ import annotations

import asyncio
import re
import signal
from typing import Any

import httpx

from interpose.tui.paste import Paste, PasteScreen
from interpose.tui.widgets.grid import GridEditor
from interpose.tui.widgets.lineedit import LineEdit, paste_into
from tests.tui.pty_harness import Terminal, open_held

FILTER = "Filter (up/down: history):"


async def test_bracketed_paste_is_on_while_the_ui_runs_and_off_after(tmp_path):
    term = Terminal()
    await term.start("--confdir", str(tmp_path / "conf"))
    try:
        await term.wait_for_raw(rb"\x1b\[\?2004h")
        await term.press("Q", "y")
        async with asyncio.timeout(10):
            assert await term.proc.wait() == 0
        await term.wait_for_raw(rb"\x1b\[\?2004l")
        assert bytes(term.raw).rindex(b"\x1b[?2004l") > bytes(term.raw).rindex(b"\x1b[?2004h")
    finally:
        await term.stop()


async def test_a_paste_is_text_and_its_newlines_submit_nothing(term):
    await term.press("f")
    await term.wait_for(FILTER)
    # Each of these characters is a key in the flow list (p: pending pane, w: save, z: clear...).
    await term.paste("~u alpha\r~q\rpwz\r")
    screen = await term.wait_for(FILTER + " ~u alpha ~q pwz")
    assert "Pending" not in screen and "Save flows" not in screen
    await term.press("ctrl u", *"~u alpha", "enter")
    await term.wait_for("filter: ~u alpha")
    assert "Pending" not in await term.settle()


async def test_a_paste_with_no_text_field_is_ignored_with_a_message(term):
    await term.paste("pQ")
    await term.wait_for("paste ignored (2 characters): no text field has the focus")
    screen = await term.settle()
    assert "Pending" not in screen and "Quit?" not in screen


async def test_100kb_paste_lands_in_the_prompt_while_the_proxy_keeps_serving(term, origin):
    big = "~u " + "abcdefghij" * 10_000 + "TAIL"
    async with httpx.AsyncClient(proxy=term.url, timeout=30) as client:
        await term.press("f")
        await term.wait_for(FILTER)
        paste = asyncio.ensure_future(term.paste(big))
        r = await client.get(f"{origin.url}/json")  # answered while the UI takes the paste
        assert r.status_code == 200
        await paste
        await term.wait_for(re.compile(r"Filter.*abcdefghij.*TAIL"))
        await term.press("esc")
        await term.wait_gone("TAIL")
        r = await client.get(f"{origin.url}/json")
        assert r.status_code == 200


async def test_a_prefilled_prompt_is_replaced_by_typing_and_kept_by_a_move(term):
    await term.press("f", *"~u one", "enter")
    await term.wait_for("filter: ~u one")
    await term.press("f")
    await term.wait_for(FILTER + " ~u one")
    await term.press(*"~u two", "enter")  # the old text was selected: typing replaced it
    await term.wait_for("filter: ~u two")
    await term.press("f")
    await term.wait_for(FILTER + " ~u two")
    await term.press("end", *" | ~q", "enter")  # End keeps it, and the text goes after
    await term.wait_for("filter: ~u two | ~q")


async def test_readline_keys_in_a_prompt(term):
    await term.press("f", "end", *"~u alpha & ~d beta")
    await term.wait_for(FILTER + " ~u alpha & ~d beta")
    await term.press("ctrl w")  # the word before the cursor
    await term.wait_for(re.compile(re.escape(FILTER) + r" ~u alpha & ~d\s*$", re.M))
    await term.press("ctrl a", "meta f", "meta f", "ctrl k")  # start, two words on, delete to the end
    await term.wait_for(re.compile(re.escape(FILTER) + r" ~u alpha\s*$", re.M))
    await term.press("meta b", *"x", "ctrl e", *"2", "home", "delete", "enter")
    await term.wait_for("filter: u xalpha2")
    await term.press("f", "ctrl u", *"~q", "enter")  # ctrl u on a selected text clears it all
    await term.wait_for("filter: ~q")


async def _held_request(term, origin, client):
    await term.press("i", *"~u /hold & ~q", "enter")
    await term.wait_for("intercept: ~u /hold & ~q")
    task = asyncio.ensure_future(client.get(f"{origin.url}/echo/hold"))
    await open_held(term)
    return task


async def test_a_bad_url_edit_says_why_and_keeps_the_text(term, origin):
    async with httpx.AsyncClient(proxy=term.url, timeout=30) as client:
        task = await _held_request(term, origin, client)
        await term.press("e")
        await term.wait_for("Edit request:")
        await term.press("u")
        await term.wait_for("URL: http://127.0.0.1")
        await term.press("ctrl u", *"http://127.0.0.1:80echo/x", "enter")
        screen = await term.wait_for("URL (port must be a number: '80echo'): http://127.0.0.1:80echo/x")
        assert "Traceback" not in screen and "could not be cast" not in screen
        # the typed text is kept and not selected: fix it in place
        await term.press("meta b", "meta b", "ctrl k", *f"{origin.port}/echo/fixed", "enter")
        await term.wait_for("URL set")
        await term.press("a")
        r = await task
        assert r.status_code == 200
        assert origin.received[-1].path == "/echo/fixed"


async def test_an_empty_method_is_refused(term, origin):
    async with httpx.AsyncClient(proxy=term.url, timeout=30) as client:
        task = await _held_request(term, origin, client)
        await term.press("e")
        await term.wait_for("Edit request:")
        await term.press("m")
        await term.wait_for("Method: GET")
        await term.press("backspace", "enter")
        await term.wait_for("Method (a method may not be empty):")
        await term.press(*"PUT", "enter")
        await term.wait_for("Method set")
        await term.press("a")
        assert (await task).status_code == 200
        assert origin.received[-1].method == "PUT"


async def test_paste_into_the_body_editor_keeps_its_lines(tmp_path, origin):
    term = Terminal()
    await term.start("--confdir", str(tmp_path / "conf"), env={"EDITOR": "", "VISUAL": ""})
    try:
        async with httpx.AsyncClient(proxy=term.url, timeout=30) as client:
            task = await _held_request(term, origin, client)
            await term.press("e")
            await term.wait_for("Edit request:")
            await term.press("b")
            await term.wait_for("ctrl s: save")
            await term.paste("line one\rline two\r")  # a terminal sends CR for each line break
            await term.wait_for("line two")
            await term.press("ctrl s")
            await term.wait_for("edited")
            await term.press("a")
            assert (await task).status_code == 200
            assert origin.received[-1].body == b"line one\nline two\n"
    finally:
        await term.stop()


# -- the pieces, without a terminal ------------------------------------------------------------------------

def _parse(screen: PasteScreen, *reads: bytes) -> list[Any]:
    keys: list[Any] = []
    for data in reads:  # as urwid's get_available_raw_input hands each read on
        codes, screen._partial_codes = [*screen._partial_codes, *data], []
        screen.parse_input(None, lambda k, raw: keys.extend(k), codes)
    return keys


def test_a_paste_split_over_reads_is_one_key_and_keys_around_it_stay_keys():
    screen = PasteScreen()
    keys = _parse(screen, b"x\x1b[20", b"0~one\rtw", b"o\x1b[2", b"01~y")
    # urwid keeps an incomplete escape sequence for the next read; the paste is cut out around it
    pastes = [k for k in keys if isinstance(k, Paste)]
    assert [p.text for p in pastes] == ["one\ntwo"]
    assert [k for k in keys if not isinstance(k, Paste)] == ["x", "y"]
    assert keys.index(pastes[0]) == 1


def test_a_paste_of_escape_sequences_runs_none_of_them():
    keys = _parse(PasteScreen(), b"\x1b[200~\x1b[A\x1bOP\x03q\x1b[201~")
    assert len(keys) == 1 and isinstance(keys[0], Paste) and keys[0] == "paste"
    assert keys[0].text == "\x1b[A\x1bOP\x03q"


def test_line_edit_draws_the_window_around_the_cursor():
    e = LineEdit(("key", "F: "), "")
    e.paste("a" * 50_000 + "\n" + "b" * 50_000 + "END")
    assert "a b" in e.edit_text and "\n" not in e.edit_text
    canvas = e.render((20,), focus=True)
    assert canvas.text[0].decode().startswith("F: ") and canvas.text[0].decode().rstrip().endswith("END")
    assert canvas.cursor == (19, 0)
    e.keypress((20,), "home")
    assert e.render((20,), focus=True).text[0].decode() == "F: " + "a" * 17
    e.keypress((20,), "meta f")
    assert e.edit_pos == 50_000


def test_a_paste_goes_into_the_grid_cell_being_edited_only():
    done: asyncio.Future[Any] = asyncio.Future(loop=asyncio.new_event_loop())
    grid = GridEditor("Headers", [("Host", "a")], done)
    assert not paste_into(grid, "x")  # no cell is edited
    grid.keypress((60, 10), "tab")
    grid.edit_cell()  # what enter runs (console.grideditor.edit)
    assert paste_into(grid, "one\ntwo")  # the selected old value is replaced
    grid.keypress((60, 10), "enter")
    assert grid.data == [["Host", "one two"]]


async def test_a_bad_intercept_filter_says_why_and_keeps_the_text(term):
    await term.press("i", *"~u /x & ~bogus", "enter")
    await term.wait_for("Intercept filter (option intercept: invalid filter: unknown operator ~bogus (at offset 8)): "
                        "~u /x & ~bogus")
    assert "intercept:" not in term.text().splitlines()[-2]  # nothing shown as if in effect
    await term.press("ctrl w", "backspace", "backspace", "enter")
    await term.wait_for("intercept: ~u /x @ request,response")


async def _written_after(term: Terminal, mark: int, seq: bytes) -> int:
    """Wait until the app wrote `seq` after offset `mark` of its output; where it did."""
    async with asyncio.timeout(15):
        while (i := bytes(term.raw).find(seq, mark)) < 0:
            term._changed.clear()
            await term._changed.wait()
    return i


async def test_bracketed_paste_is_off_while_suspended_and_on_again_after(term):
    await term.wait_for_raw(rb"\x1b\[\?2004h")
    mark = len(term.raw)
    term.proc.send_signal(signal.SIGTSTP)  # what ctrl z sends
    off = await _written_after(term, mark, b"\x1b[?2004l")
    term.proc.send_signal(signal.SIGCONT)
    await _written_after(term, off, b"\x1b[?2004h")
    await term.press("f")
    await term.wait_for(FILTER)
    await term.paste("~u after")
    await term.wait_for(FILTER + " ~u after")


async def test_a_paste_into_the_repeater_is_sent_as_pasted(term, origin):
    async with httpx.AsyncClient(proxy=term.url, timeout=30) as client:
        await client.post(f"{origin.url}/echo/r", content=b"a=1")
    await term.wait_for("flows: 1/1")
    await term.press("R")
    await term.wait_for("a=1")
    await term.paste("&b=2\r&c=3")  # the cursor waits at the end of the body; the line break stays one
    await term.wait_for("&c=3")
    await term.press("ctrl s")
    await term.wait_for("Response 1/1")
    async with asyncio.timeout(10):
        while len(origin.received) < 2:
            origin.arrived.clear()
            await origin.arrived.wait()
    assert origin.received[-1].body == b"a=1&b=2\n&c=3"


def test_a_long_question_leaves_room_for_the_answer():
    e = LineEdit(("key", "URL (port must be a number: '80echo'): "), "http://127.0.0.1:80echo/x", select=False)
    line = e.render((40,), focus=True).text[0].decode()
    assert line.startswith("URL (port must be a…") and line.rstrip().endswith("80echo/x")
