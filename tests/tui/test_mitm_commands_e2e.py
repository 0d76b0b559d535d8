"""mitmproxy 11's commands added on top of issue 18, in the real `interpose` (pty): view.flows.create,
flow.set, cut and export returning their values, flow.encode.toggle, console.choose.cmd,
console.command.confirm, console.key.execute.focus, console.edit.focus, console.bodyview, readfile.reading
and replay.client.file."""
from __future__ import annotations

import re
from pathlib import Path

from interpose.http import HTTPFlow, Request
from interpose.model.connection import Client, Server
from interpose.store.flowfile import FlowWriter
from tests.tui.pty_harness import Terminal


async def test_create_set_cut_export_and_replay_a_flow(tmp_path: Path, origin) -> None:
    term = await Terminal().start("--confdir", str(tmp_path / "conf"))
    try:
        await term.press(":", *f"view.flows.create get {origin.url}/made", "enter")
        await term.wait_for(re.compile(r"GET\s+" + re.escape(f"{origin.url}/made")))
        await term.press(":", *"view.flows.create GET ht tp://bad", "enter")
        await term.wait_for("view.flows.create: ")
        await term.press(":", *"flow.set @focus method PUT", "enter")
        await term.wait_for(re.compile(r"PUT\s+" + re.escape(f"{origin.url}/made")))
        await term.press(":", *"flow.set @focus path /changed?x=1", "enter")
        await term.wait_for(re.compile(r"PUT\s+" + re.escape(f"{origin.url}/changed?x=1")))
        await term.press(":", *"flow.set @focus status_code abc", "enter")
        await term.wait_for("flow.set: a status code is a number from 100 to 999, not 'abc'")
        await term.press(":", *"cut @focus request.method,request.path", "enter")
        await term.wait_for("cut: [['PUT', '/changed?x=1']]")
        await term.press(":", *"export curl @focus", "enter")
        await term.wait_for(re.compile(r"export: curl .*-X PUT"))
        # the flow is sent as it now is
        await term.press(":", *"replay.client @focus", "enter")
        await term.wait_for(re.compile(r"PUT\s+" + re.escape(f"{origin.url}/changed?x=1") + r".*200"))
        assert origin.received[-1].method == "PUT" and origin.received[-1].path == "/changed?x=1"
        # flow.encode.toggle on the replay's response: deflate on, then off
        await term.press("j")
        await term.press(":", *"flow.encode.toggle @focus response", "enter")
        await term.wait_for("toggled the encoding of 1 response bodies")
        await term.press(":", *"cut @focus response.header[content-encoding]", "enter")
        await term.wait_for("cut: [['deflate']]")
        await term.press(":", *"flow.encode.toggle @focus response", "enter")
        await term.press(":", *"cut @focus response.header[content-encoding]", "enter")
        await term.wait_for("cut: [['']]")
        await term.press(":", *"flow.encode.options", "enter")
        await term.wait_for("flow.encode.options: ['gzip', 'deflate', 'br', 'zstd', 'identity']")
        await term.press(":", *"readfile.reading", "enter")
        await term.wait_for("readfile.reading: False")
    finally:
        await term.stop()


async def test_choose_confirm_and_replay_a_file(tmp_path: Path, origin) -> None:
    saved = tmp_path / "saved.interpose"
    f = HTTPFlow(Client(address=("127.0.0.1", 1)), Server(address=("127.0.0.1", origin.port)), live=False)
    f.request = Request.make("GET", f"{origin.url}/from-file")
    with FlowWriter(str(saved)) as w:
        w.add(f)
    term = await Terminal().start("--confdir", str(tmp_path / "conf"))
    try:
        await term.press(":", *f"replay.client.file {saved}", "enter")
        await term.wait_for(re.compile(r"GET\s+" + re.escape(f"{origin.url}/from-file") + r".*200"))
        assert origin.received[-1].path == "/from-file"
        # console.choose.cmd: the formats export.formats returns, one key each
        out = tmp_path / "req.sh"
        await term.press(":", *f"console.choose.cmd Format export.formats export.file {{choice}} @focus {out}",
                         "enter")
        await term.wait_for("Format: (1) curl  (2) httpie")
        await term.press("1")
        await term.wait_until(out.exists, "the exported file")
        assert out.read_text().startswith("curl ") and "/from-file" in out.read_text()
        await term.press(":", *"console.choose Pick a,b flow.comment @focus picked-{choice}", "enter")
        await term.wait_for("Pick: (1) a  (2) b")
        await term.press("2")
        await term.wait_for("# picked-b")
        # console.command.confirm: n does nothing, y runs it
        await term.press(":", *"console.command.confirm 'Delete it?' view.flows.remove @focus", "enter")
        await term.wait_for("Delete it? (y/n)")
        await term.press("n")
        await term.wait_gone("Delete it? (y/n)")
        assert "/from-file" in term.text()
        await term.press(":", *"console.command.confirm 'Delete it?' view.flows.remove @focus", "enter")
        await term.wait_for("Delete it? (y/n)")
        await term.press("y")
        await term.wait_gone("/from-file")
        # the key bindings view runs the focused binding's command (x); a new binding is listed first
        await term.press(":", *"console.key.bind global f9 view.flows.create GET http://made.test/x", "enter")
        await term.wait_for("f9 → view.flows.create GET http://made.test/x in global")
        await term.press("ctrl k")
        await term.wait_for("Key bindings (")
        await term.press("x")
        await term.wait_for("created GET http://made.test/x")
        await term.press("q")
        await term.wait_for(re.compile(r"GET\s+http://made\.test/x"))
    finally:
        await term.stop()


async def test_edit_focus_and_bodyview(tmp_path: Path, origin) -> None:
    from tests.conftest import curl

    seen = tmp_path / "viewed.json"
    pager = f"sh -c 'cat \"$0\" > {seen}'"  # a "pager" that keeps what it was shown
    term = await Terminal().start("--confdir", str(tmp_path / "conf"), env={"PAGER": pager})
    try:
        code, _, err = await curl("-x", term.url, f"{origin.url}/json")
        assert code == 0, err
        await term.wait_for(re.compile(r"GET\s+" + re.escape(f"{origin.url}/json")))
        await term.press(":", *"console.edit.focus.options", "enter")
        await term.wait_for("console.edit.focus.options: ['method', 'url', 'query'")
        await term.press(":", *"console.edit.focus method", "enter")
        await term.wait_for("Method: GET")
        await term.press(*"DELETE", "enter")
        await term.wait_for(re.compile(r"DELETE\s+" + re.escape(f"{origin.url}/json")))
        await term.press(":", *"console.edit.focus tcp-message", "enter")
        await term.wait_for("console.edit.focus: this flow has no tcp-message to edit")
        await term.press(":", *"console.bodyview @focus response", "enter")
        await term.wait_until(lambda: seen.exists() and seen.stat().st_size > 0, "the pager's copy")
        assert b'"name"' in seen.read_bytes()
        await term.wait_for(re.compile(r"DELETE\s+" + re.escape(f"{origin.url}/json")))  # the UI is back
    finally:
        await term.stop()
