"""The TUI and sessions, for real in a pty: the temporary session it records into, deleted at a clean exit
and reported after a kill -9 with the command that reopens it; reopening shows the flows, their marks,
and the view filter it stored."""
from __future__ import annotations

import signal

from interpose.store.session import Session
from tests.conftest import curl
from tests.tui.pty_harness import Terminal


def sessions_in(conf):
    d = conf / "sessions"
    return sorted(p for p in d.glob("*.session")) if d.exists() else []


async def kill9(term: Terminal) -> None:
    assert term.proc is not None
    term.proc.send_signal(signal.SIGKILL)
    await term.proc.wait()
    await term.stop()


async def test_temporary_session_is_deleted_at_a_clean_exit(tmp_path, origin):
    conf = tmp_path / "conf"
    term = await Terminal().start("--confdir", str(conf))
    try:
        code, _, err = await curl("-x", term.url, f"{origin.url}/json")
        assert code == 0, err
        await term.wait_for("/json")
        assert len(sessions_in(conf)) == 1
    finally:
        assert await term.stop() == 0
    assert sessions_in(conf) == []


async def test_a_crash_leaves_the_session_behind_and_it_reopens_with_its_flows_marks_and_filter(tmp_path, origin):
    conf = tmp_path / "conf"
    term = await Terminal().start("--confdir", str(conf))
    for p in ("/json", "/bytes/10"):
        code, _, err = await curl("-x", term.url, f"{origin.url}{p}")
        assert code == 0, err
        await term.wait_for(p)
    (left,) = sessions_in(conf)
    # Wait until the writer committed both flows (a second at most), then crash.
    for _ in range(100):
        s = Session.open(str(left), readonly=True)
        n = s.count()
        s.close()
        if n == 2:
            break
        await term.settle(0.1)
    await kill9(term)

    term = await Terminal().start("--confdir", str(conf))
    try:
        screen = await term.wait_for("left behind")
        assert f"interpose --session {left}" in term.raw.decode(errors="replace")
        assert "Traceback" not in screen
    finally:
        await term.stop()

    term = await Terminal().start("--confdir", str(conf), "--session", str(left))
    try:
        await term.wait_for("/json")
        await term.wait_for("/bytes/10")
        await term.press("m")  # mark the focused flow
        await term.press("f")
        await term.wait_for("Filter")
        term.send("~u json")
        await term.press("enter")
        await term.wait_gone("/bytes/10")
    finally:
        assert await term.stop() == 0
    s = Session.open(str(left), readonly=True)
    try:
        flows = list(s.flows())
        assert len(flows) == 2 and sum(f.marked for f in flows) == 1
        assert s.state()["view"]["filter"] == "~u json"
    finally:
        s.close()
    assert left.exists()  # a session opened with --session is never deleted

    term = await Terminal().start("--confdir", str(conf), "--session", str(left))
    try:
        await term.wait_for("/json")
        await term.settle()
        assert "/bytes/10" not in term.text()  # the view filter came back with the session
    finally:
        await term.stop()


async def test_sticky_rules_and_kept_responses_come_back_with_the_session(tmp_path):
    from interpose.runtime.master import Master
    from interpose.runtime.options import Options, core_options
    from interpose.tui import session as tui_session
    from interpose.tui.app import App
    from interpose.tui.sticky import Rule, StickyRules

    path = str(tmp_path / "work.session")

    async def app_with(confdir: str) -> App:
        opts = Options()
        core_options(opts)
        opts.update(listen_port=0, confdir=confdir, session=path)
        master = Master(opts)
        sticky = StickyRules(confdir)
        master.add_addon(sticky)
        await master.start()
        app = App(master)
        app.sticky = sticky
        tui_session.restore_view(app)
        return app

    first = await app_with(str(tmp_path / "conf1"))
    kept = Rule("~u /api", "saved_response", status_code=200, reason="OK", headers=[("x", "1")], body_b64="aGk=")
    first.sticky.add(Rule("~u /x", "request", set_headers=[("a", "b")]))
    first.sticky.add(kept)
    tui_session.save_view(first)
    await first.master.shutdown()

    # Another confdir, whose sticky-rules.json has a rule of its own: it is still read, the session's join it.
    other = tmp_path / "conf2"
    StickyRules(str(other)).add(Rule("~u /own", "response", remove_headers=["server"]))
    second = await app_with(str(other))
    try:
        filters = [r.filter for r in second.sticky.rules]
        assert filters == ["~u /own", "~u /x", "~u /api"]
        restored = second.sticky.rules[2]
        assert restored.part == "saved_response" and restored.make_response().content == b"hi"
    finally:
        await second.master.shutdown()


async def test_a_big_session_pages_into_the_list_and_its_flows_open_with_their_bodies(tmp_path):
    """Reopened, the list pages from the session (store/session/paging.py): no flow is loaded until it is
    drawn; moving to the first flow and opening it loads it with its body; sorting and filtering work."""
    from interpose.http import Response
    from tests.core.test_store import http_flow

    path = tmp_path / "big.session"
    s = Session.open(str(path))
    for i in range(3000):
        f = http_flow(f"http://h{i % 3}.example/item{i}")
        f.response = Response.make(404 if i % 2 else 200, f"body-of-item-{i}".encode(), {"content-type": "text/plain"})
        f.live = False
        s.put(f)
    assert s.sync()
    s.close()
    term = await Terminal().start("--confdir", str(tmp_path / "conf"), "--session", str(path))
    try:
        await term.wait_for("/item2999")
        await term.press("g")
        await term.wait_for("/item0")
        await term.press("enter")
        await term.press("tab")
        await term.wait_for("body-of-item-0")
        await term.press("q")
        await term.press("f")
        await term.wait_for("Filter")
        term.send("~d h1 & ~c 404")
        await term.press("enter")
        await term.wait_gone("/item0")
        await term.press("G")
        await term.wait_for("/item2995")  # the last flow of h1 (i % 3 == 1) with status 404 (odd i)
        assert "/item2999" not in term.text()
    finally:
        assert await term.stop() == 0


async def test_r_session_pages_from_the_file_and_follows_what_another_process_records(tmp_path, origin):
    """`-r SESSION` in the TUI: the list pages from that file (nothing of it is copied into the TUI's own
    temporary session through the hooks) and the flows a running `interpose-dump --session` adds appear."""
    from tests.integration.test_cli import DumpProcess

    path = tmp_path / "live.session"
    conf = tmp_path / "conf"
    recorder = await DumpProcess.start("--session", str(path), tmp=tmp_path)
    try:
        code, _, err = await curl("-x", recorder.url, f"{origin.url}/before")
        assert code == 0, err
        await recorder.stdout_line()
        term = await Terminal().start("--confdir", str(conf), "-r", str(path))
        try:
            await term.wait_for("/before")
            for p in ("/live1", "/live2"):
                code, _, err = await curl("-x", recorder.url, f"{origin.url}{p}")
                assert code == 0, err
                await recorder.stdout_line()
                await term.wait_for(p)
            [own] = sessions_in(conf)
            s = Session.open(str(own), readonly=True)
            try:
                assert s.count() == 0  # shown from the file, not loaded into this run's session
            finally:
                s.close()
        finally:
            assert await term.stop() == 0
    finally:
        assert await recorder.stop() == 0
