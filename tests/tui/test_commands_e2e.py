"""The real `interpose` in a pty: the `:` prompt (completion, history, ctrl r, errors), the command browser,
keys.yaml (a rebound key, `addon.toggle anticache`, a mitmproxy-only command reported, a bad file),
config.yaml in mitmproxy's format, and options save and load."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

import yaml

from tests.conftest import curl
from tests.tui.pty_harness import KEYS, Terminal, focus_header_row, grid_names, open_held

KEYS.setdefault("ctrl r", "\x12")
KEYS.setdefault("ctrl a", "\x01")
KEYS.setdefault("ctrl k", "\x0b")


async def _flow(term: Terminal, origin, path: str = "/json") -> None:
    code, _, err = await curl("-x", term.url, f"{origin.url}{path}")
    assert code == 0, err
    await term.wait_for(re.compile(r"GET\s+http://127\.0\.0\.1:\d+" + re.escape(path)))


async def test_prompt_completes_runs_keeps_history_and_reports_errors(tmp_path: Path, origin) -> None:
    term = await Terminal().start("--confdir", str(tmp_path / "conf"))
    try:
        await _flow(term, origin)
        await term.press(":")
        await term.wait_for(": ")
        await term.press(*"flow.mark.tog", "tab")
        await term.wait_for(": flow.mark.toggle")
        await term.press("@", "f", "tab")
        await term.wait_for(": flow.mark.toggle @focus")
        await term.press("enter")
        await term.wait_until(lambda: "●" in term.text() or "*" in term.focused_line() or
                              term.text().count("[m]") > 0 or "marked" in term.text(), "the flow marked")
        # option names and values complete; set takes effect
        await term.press(":", *"set intercept_a", "tab")
        await term.wait_for(": set intercept_at=")
        await term.press("esc")
        await term.wait_gone(": set intercept_at=")
        await term.press(":", *"set intercept=~q", "enter")
        await term.wait_for("intercept: ~q")
        # a mistake is one line naming what was expected
        await term.press(":", *"view.focus.go abc", "enter")
        await term.wait_for("view.focus.go: offset: expected a whole number, not 'abc'")
        await term.press(":", *"nosuch.command", "enter")
        await term.wait_for("unknown command 'nosuch.command'")
        # history: up walks back, ctrl r searches
        await term.press(":", "up")
        await term.wait_for(": nosuch.command")
        await term.press("esc")
        await term.wait_gone(": nosuch.command")
        await term.press(":", "ctrl r", *"mark")
        await term.wait_for("'mark': flow.mark.toggle @focus")
        await term.press("esc", "esc")
        hist = (tmp_path / "conf" / "command_history").read_text().splitlines()
        assert hist[0] == "flow.mark.toggle @focus" and hist[-1] == "nosuch.command"
        assert (await term.stop()) == 0
    finally:
        await term.stop()


async def test_command_browser_enter_puts_the_command_in_the_prompt(term) -> None:
    await term.press("C")
    await term.wait_for("Commands (")
    screen = await term.wait_for("addon.load name")
    assert "Load a bundled addon by name" in screen
    await term.press("j")  # addon.toggle
    await term.press("enter")
    await term.wait_for(": addon.toggle")
    await term.press("tab")
    await term.wait_for("anticache anticomp")  # the candidates are listed
    await term.press("esc")
    await term.wait_gone(": addon.toggle")
    await term.press("q")
    await term.wait_gone("Commands (")


KEYS_YAML = """\
# a mitmproxy user's keys.yaml, with a helper addon bound
- key: h
  ctx: [global]
  cmd: console.view.options
  help: options on h
- {key: ctrl a, cmd: addon.toggle anticache, ctx: [global]}
- key: x
  ctx: [flowlist]
  cmd: browser.start
"""


async def test_keys_yaml_rebinds_binds_an_addon_and_reports_the_rest(tmp_path: Path, origin) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "keys.yaml").write_text(KEYS_YAML)
    term = await Terminal().start("--confdir", str(conf))
    try:
        await term.wait_for("skipped 1: line 7: browser.start (not an interpose command)")
        await term.press("h")
        await term.wait_for("Options (")
        await term.press("q")
        await term.wait_gone("Options (")
        await term.press("ctrl a")
        await term.wait_for("addons: anticache")
        code, _, err = await curl("-x", term.url, "-H", "If-None-Match: abc", f"{origin.url}/json")
        assert code == 0, err
        assert "if-none-match" not in {k.lower() for k, _ in origin.received[-1].headers}
        await term.press("?")
        await term.wait_for("flowlist keys")
        await term.press("page down", "page down", "page down")
        await term.wait_for("global keys")
        screen = await term.wait_for("addon.toggle anticache")
        assert re.search(r"ctrl a\s+addon.toggle anticache", screen) and "options on h" in screen
        await term.press("q")
        await term.wait_gone("global keys")
        await term.press("ctrl a")
        await term.wait_gone("addons: anticache")
        # console.key.bind at run time, and the key bindings view
        await term.press(":", *"console.key.bind flowlist Y console.view.commands", "enter")
        await term.press("Y")
        await term.wait_for("Commands (")
        await term.press("q", "ctrl k")
        await term.wait_for("Key bindings (")
        await term.wait_for("console.view.commands")
        # the view lists the user's bindings first within their context; d unbinds the focused one
        assert re.search(r"global\s+ctrl a\s+addon.toggle anticache", term.text())
        await term.press("d")
        await term.wait_for("ctrl a unbound in global")
        await term.wait_gone("addon.toggle anticache")
    finally:
        await term.stop()


async def test_key_bindings_view_adds_and_edits_a_binding_at_once(term) -> None:
    """`ctrl k`: `a` opens the prompt with `console.key.bind CONTEXT ` (the focused binding's context); the new
    binding works at once and is listed; Enter on it puts its whole binding in the prompt to change it."""
    await term.press("ctrl k")
    await term.wait_for("Key bindings (")
    await term.press("a")
    await term.wait_for(": console.key.bind global")
    await term.press(*"W console.view.commands", "enter")
    await term.wait_for("W → console.view.commands in global")
    screen = await term.wait_for(re.compile(r"global\s+W\s+console\.view\.commands"))
    assert screen.index("console.view.commands") < screen.index("console.view.help")  # the user's first
    await term.press("enter")  # the focused binding: the new one, first in its context
    await term.wait_for(": console.key.bind global W console.view.commands")
    for _ in "console.view.commands":
        await term.press("backspace")
    await term.press(*"console.view.eventlog", "enter")
    await term.wait_for(re.compile(r"global\s+W\s+console\.view\.eventlog"))
    assert not re.search(r"W\s+console\.view\.commands", term.text())  # changed, not added
    await term.press("q")
    await term.wait_gone("Key bindings (")
    await term.press("W")  # the edited binding takes effect at once
    await term.wait_for("Event log")


async def test_keys_yaml_rebinds_the_repeaters_keys(tmp_path: Path, origin) -> None:
    """The repeater's keys are bindings of its context: keys.yaml adds one (f5 sends) and takes another
    key over (ctrl n closes the tab instead of switching); the hint line and F1 show the keys as bound."""
    KEYS.setdefault("f5", "\x1b[15~")
    KEYS.setdefault("f1", "\x1bOP")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "keys.yaml").write_text("- {key: f5, cmd: repeater.go, ctx: [repeater]}\n"
                                    "- {key: ctrl n, cmd: repeater.close, ctx: [repeater], help: close it}\n")
    term = await Terminal().start("--confdir", str(conf))
    try:
        await _flow(term, origin, "/json")
        await term.press("R")
        await term.wait_for("Request (edit freely)")
        screen = await term.wait_for("f5/ctrl s: send")
        assert "f5/ctrl s: send" in screen and "ctrl n/ctrl w: close tab" in screen
        assert "next tab" not in screen  # ctrl n was its only key
        await term.press("f5")
        await term.wait_for("Response 1/1")
        await term.press("f1")
        screen = await term.wait_for("repeater keys")
        assert re.search(r"f5\s+repeater\.go", screen) and re.search(r"ctrl n\s+close it", screen)
        await term.press("esc")
        await term.wait_gone("repeater keys")
        await term.press("ctrl n")
        await term.wait_for("no tabs: R in the flow list sends a flow here")
    finally:
        await term.stop()


async def test_a_bad_keys_yaml_is_one_message_and_the_defaults_stay(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "keys.yaml").write_text("- {key: h, cmd: console.view.options}\n- key: [\n")
    term = await Terminal().start("--confdir", str(conf))
    try:
        await term.wait_for(re.compile(r"keys\.yaml line \d+: not valid YAML.*the default keys stay"))
        await term.press("O")
        await term.wait_for("Options (")
    finally:
        await term.stop()


async def test_mitmproxy_config_yaml_and_options_save_and_load(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text(
        "# ~/.mitmproxy/config.yaml\nintercept: '~u /api'\nssl_insecure: true\nconsole_mouse: false\n")
    term = await Terminal().start("--confdir", str(conf))
    try:
        await term.wait_for("intercept: ~u /api")
        await term.press("E")
        await term.wait_for("unknown option 'console_mouse' ignored")
        await term.press("E", "O")
        await term.wait_for("Options (")
        await term.press("w")
        await term.wait_for(f": options.save {conf}/config.yaml")
        for _ in range(len(f"{conf}/config.yaml")):
            await term.press("backspace")
        await term.press(*f"{tmp_path}/saved.yaml", "enter")
        await term.wait_until(lambda: (tmp_path / "saved.yaml").exists(), "the options file")
        saved = yaml.safe_load((tmp_path / "saved.yaml").read_text())
        assert saved["intercept"] == "~u /api" and saved["ssl_insecure"] is True
        await term.press(":", *"set intercept", "enter")
        await term.wait_gone("intercept: ~u /api")
        await term.press("L")
        await term.wait_for(f": options.load {conf}/config.yaml")
        await term.press("enter")
        await term.wait_for("intercept: ~u /api")
        await term.wait_for(re.compile(r"intercept\s+~u /api"))  # the open options editor shows it
    finally:
        await term.stop()


async def test_comments_show_in_the_list_filter_and_search_and_U_unmarks_all(tmp_path: Path, origin) -> None:
    term = await Terminal().start("--confdir", str(tmp_path / "conf"))
    try:
        await _flow(term, origin, "/json")
        await _flow(term, origin, "/text")
        await term.press("m", "k", "m")  # both marked
        await term.press(";")
        await term.wait_for(": flow.comment @focus")
        await term.press(*"login token leaks", "enter")
        await term.wait_for("# login token leaks")
        await term.press("f", *"~comment token", "enter")
        screen = await term.wait_for("filter: ~comment token")
        assert "/json" in screen and "/text" not in screen.split("filter:")[0]
        await term.press(":", *"view.filter.set", "enter")
        await term.wait_gone("filter: ~comment")
        await term.press("ctrl f", *"leaks", "enter")
        await term.wait_for("comment")
        await term.press("q")
        await term.press(":", *"view.flows.resolve @marked", "enter")
        await term.wait_for(re.compile(r"view\.flows\.resolve: \['[\w-]+', '[\w-]+'\]"))
        await term.press("U")
        await term.wait_for("unmarked 2")
        await term.press(":", *"view.flows.resolve @marked", "enter")
        await term.wait_for("view.flows.resolve: []")
    finally:
        await term.stop()


async def test_cut_b_encode_and_n(tmp_path: Path, origin) -> None:
    import base64
    import gzip
    term = await Terminal().start("--confdir", str(tmp_path / "conf"))
    try:
        await _flow(term, origin, "/json")
        out = tmp_path / "cut.csv"
        await term.press(":", *f"cut.save @focus request.url,response.status_code,response.header[content-type] {out}",
                         "enter")
        await term.wait_until(out.exists, "the cut file")
        assert out.read_text() == f"{origin.url}/json,200,application/json\n"
        await term.press(":", *"cut.clip @focus request.url", "enter")
        await term.wait_for("copied")
        assert base64.b64encode(f"{origin.url}/json".encode()) in bytes(term.raw)
        await term.press(":", *"cut.save @focus nosuch.field /tmp/x", "enter")
        await term.wait_for("cut 'nosuch.field': no field 'nosuch'")
        # b: the body in view, decoded
        await term.press("enter")
        await term.wait_for("Request")
        await term.press("tab")
        await term.wait_for('"name": "interpose"')
        await term.press("b")
        await term.wait_for(": cut.save @focus response.content")
        body = tmp_path / "body.json"
        await term.press(*str(body), "enter")
        await term.wait_until(body.exists, "the body file")
        assert b'"name": "interpose"' in body.read_bytes() or b'"name":"interpose"' in body.read_bytes()
        # flow.encode / flow.decode
        await term.press(":", *"flow.encode @focus response gzip", "enter")
        await term.wait_for("encoded 1 response bodies as gzip")
        # b, raw: `content` changed to `raw_content` in its prompt saves the bytes as sent (gzip now)
        await term.press("b")
        await term.wait_for(": cut.save @focus response.content")
        await term.press(*["backspace"] * len("content "))
        raw = tmp_path / "body.gz"
        await term.press(*f"raw_content {raw}", "enter")
        await term.wait_until(raw.exists, "the raw body file")
        assert raw.read_bytes().startswith(b"\x1f\x8b") and gzip.decompress(raw.read_bytes()) == body.read_bytes()
        await term.press(":", *"flow.decode @focus response", "enter")
        await term.wait_for("decoded 1 response bodies")
        await term.press("q")
        await term.wait_gone('"name": "interpose"')
        # n: a new request in the repeater
        await term.press("n")
        await term.wait_for(": repeater.new http://")
        await term.press(*f"127.0.0.1:{origin.port}/text", "enter")
        await term.wait_for("GET /text HTTP/1.1")
        await term.press("ctrl s")
        await term.wait_for(re.compile(r"HTTP/1\.1 200"))
    finally:
        await term.stop()


async def test_layouts_cycle_and_the_flow_view_follows_the_focus(tmp_path: Path, origin) -> None:
    term = await Terminal().start("--confdir", str(tmp_path / "conf"))
    try:
        await _flow(term, origin, "/json")
        await _flow(term, origin, "/text")
        assert "Response" not in term.text()
        await term.press("-")
        await term.wait_for("layout: horizontal")
        screen = await term.wait_for("/text HTTP/1.1")
        rows = [ln for ln in screen.splitlines() if "/text HTTP/1.1" in ln]
        assert rows and rows[0].index("/text HTTP/1.1") > 40  # beside the list, on the right
        await term.press("k")
        await term.wait_for("/json HTTP/1.1")  # the flow view follows the focus
        await term.press("-")
        await term.wait_for("layout: vertical")
        screen = await term.wait_for("/json HTTP/1.1")
        lines = screen.splitlines()
        list_row = next(i for i, ln in enumerate(lines) if re.search(r"GET\s+http://127\.0\.0\.1:\d+/json", ln))
        view_row = next(i for i, ln in enumerate(lines) if "/json HTTP/1.1" in ln)
        assert view_row > list_row and lines[view_row].index("GET http") < 10  # below the list
        await term.press("-")
        await term.wait_for("layout: single")
        await term.wait_gone("/json HTTP/1.1")
    finally:
        await term.stop()


async def test_console_layout_from_config_yaml_and_set(tmp_path: Path, origin) -> None:
    """mitmproxy's `console_layout` in config.yaml lays the screen out at start; `set` changes it at once."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text("console_layout: horizontal\n")
    term = await Terminal().start("--confdir", str(conf))
    try:
        await _flow(term, origin, "/json")
        screen = await term.wait_for("/json HTTP/1.1")  # the flow view beside the list
        assert [ln for ln in screen.splitlines() if "/json HTTP/1.1" in ln][0].index("/json HTTP/1.1") > 40
        await term.press(":", *"set console_layout=single", "enter")
        await term.wait_gone("/json HTTP/1.1")
        await term.press(":", *"set console_layout=vertical", "enter")
        screen = await term.wait_for("/json HTTP/1.1")
        assert [ln for ln in screen.splitlines() if "/json HTTP/1.1" in ln][0].index("GET http") < 10  # below
    finally:
        await term.stop()


async def test_script_run_runs_a_scripts_hooks_once_on_flows(tmp_path: Path, origin) -> None:
    script = tmp_path / "tagger.py"
    script.write_text("def response(flow):\n    flow.response.headers['x-scripted'] = 'yes'\n")
    term = await Terminal().start("--confdir", str(tmp_path / "conf"))
    try:
        await _flow(term, origin, "/json")
        await term.press(":", *f"script.run @focus {script}", "enter")
        await term.wait_for("ran tagger.py on 1 flow")
        out = tmp_path / "h.txt"
        await term.press(":", *f"cut.save @focus response.header[x-scripted] {out}", "enter")
        await term.wait_until(out.exists, "the cut file")
        assert out.read_text() == "yes"
        await term.press(":", *f"script.run @focus {tmp_path}/missing.py", "enter")
        await term.wait_for("script.run: no such file")
    finally:
        await term.stop()


async def test_session_save_copies_the_recorded_session(tmp_path: Path, origin) -> None:
    term = await Terminal().start("--confdir", str(tmp_path / "conf"))
    try:
        await _flow(term, origin, "/json")
        target = tmp_path / "copy.session"
        await term.press(":", *f"session.save {target}", "enter")
        await term.wait_until(target.exists, "the session copy")
        await term.press(":", *f"session.save {target}", "enter")  # never over an existing file
        await term.wait_for(re.compile(r"exists|already"))
    finally:
        await term.stop()


async def test_grid_editor_keys_are_bindings_and_cells_load_and_save(tmp_path: Path, origin) -> None:
    import httpx

    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "keys.yaml").write_text("- {key: D, cmd: console.grideditor.delete, ctx: [grideditor]}\n"
                                    "- {key: d, cmd: console.grideditor.undo, ctx: [grideditor]}\n")
    cell = tmp_path / "cell.txt"
    cell.write_text("from-a-file\n")
    escaped = tmp_path / "escaped.txt"
    escaped.write_text("caf\\xc3\\xa9\\x21\n")
    csv_out = tmp_path / "grid.csv"
    term = await Terminal(cols=120).start("--confdir", str(conf), "-i", "~u /hold", "--set", "intercept_at=request")
    try:
        assert "skipped" not in await term.settle()  # grideditor bindings are taken, not reported
        async with httpx.AsyncClient(proxy=term.url, timeout=30) as client:
            task = asyncio.ensure_future(client.get(f"{origin.url}/echo/hold",
                                                    headers={"X-Gone": "gone", "X-File": "old"}))
            await open_held(term)
            await focus_header_row(term, "X-Gone", "gone")
            await term.press("d")  # rebound to undo: nothing to undo yet, the row stays
            await term.wait_for("nothing to undo")
            await term.press("D")  # the user's key for delete
            await term.wait_gone("X-Gone")
            await term.press("g")
            for _ in range(grid_names(term).index("X-File")):
                await term.press("j")
            await term.press("tab", "r")  # the value cell, then read a file into it
            await term.wait_for(": console.grideditor.load")
            await term.press(*str(cell), "enter")
            await term.wait_for(re.compile(r"│X-File\s+from-a-file"))
            await term.press("A", *"X-Esc", "tab", "enter", "R")  # a row above, its value from escapes
            await term.wait_for(": console.grideditor.load_escaped")
            await term.press(*str(escaped), "enter")
            await term.wait_for(re.compile(r"│X-Esc\s+café!"))
            await term.press("s", *str(csv_out), "enter")
            await term.wait_for(f"rows to {csv_out}")
            await term.press("q")
            await term.wait_for("X-File: from-a-file")
            await term.press("a")
            resp = await task
        headers = {k.lower(): v for k, v in resp.json()["headers"]}
        assert "x-gone" not in headers and headers["x-file"] == "from-a-file"
        assert headers["x-esc"] == "café!"
        rows = csv_out.read_text().splitlines()
        assert "X-File,from-a-file" in rows and "X-Esc,café!" in rows and not any("X-Gone" in r for r in rows)
    finally:
        await term.stop()
