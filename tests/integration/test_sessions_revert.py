"""For real in a pty: the original of an edited flow is kept in the session (edit a flow, reopen the session,
`V` brings the original back), and big bodies are read back from the session instead of a spill file."""
from __future__ import annotations

from interpose.store.session import Session
from tests.conftest import curl
from tests.integration.test_sessions_workspace import PATHS, prepared, start, stored
from tests.tui.pty_harness import Terminal


def modified(path: str) -> dict[str, bool]:
    s = Session.open(path, readonly=True)
    try:
        return {f.request.path: f.modified for f in s.flows()}
    finally:
        s.close()


async def test_an_edit_survives_a_reopen_and_V_reverts_it_to_the_original(tmp_path):
    path, _ = prepared(tmp_path)
    term = await start(tmp_path, path)
    try:
        await term.wait_for("/echo")
        await term.press("g", "j", "j")
        await term.wait_until(lambda: "/charlie" in term.focused_line(), "/charlie focused")
        await term.press(":")
        term.send("flow.set @focus path /zulu")
        await term.press("enter")
        await term.wait_until(lambda: "/zulu" in term.focused_line(), "/zulu in the list")
    finally:
        assert await term.stop() == 0
    paths, _ = stored(path)
    assert paths == ["/alpha", "/bravo", "/zulu", "/delta", "/echo"]
    assert modified(path)["/zulu"] is True

    term = await start(tmp_path, path)
    try:
        await term.wait_for("/zulu")
        await term.wait_until(lambda: "/zulu" in term.focused_line(), "/zulu focused after the reopen")
        await term.press("enter")  # open the flow
        await term.wait_for("Request")
        await term.press("V")
        await term.wait_for("GET http://example.com/charlie")  # the original, in the flow view
        await term.press("q")
        await term.wait_for("/charlie")
    finally:
        assert await term.stop() == 0
    paths, _ = stored(path)
    assert paths == list(PATHS)
    assert not any(modified(path).values())


async def test_big_bodies_are_read_back_from_the_session_and_no_spill_file_is_written(tmp_path, origin):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    path = str(tmp_path / "work.session")
    term = await Terminal().start("--confdir", str(tmp_path / "conf"), "--session", path,
                                  "--set", "body_spill_threshold=1k", env={"TMPDIR": str(tmp)})
    try:
        code, _, err = await curl("-x", term.url, f"{origin.url}/bytes/200000")
        assert code == 0, err
        await term.wait_for("/bytes/200000")
        for _ in range(100):  # until the session holds the flow (a second at most)
            s = Session.open(path, readonly=True)
            n = s.count()
            s.close()
            if n == 1:
                break
            await term.settle(0.1)
        await term.settle(1)  # the TUI takes the body from the session on its next try (every 0.3 s)
        await term.press("enter", "tab")  # the flow, its response
        await term.wait_for("xxxxxxxxxxxxxxxx")
        assert [p.name for p in tmp.iterdir() if p.name.startswith("interpose-spill-")] == []
    finally:
        assert await term.stop() == 0
