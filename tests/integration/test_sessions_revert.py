"""The original of an edited flow is kept in the session: edit a flow, reopen the session, `V` brings the
original back (for real in a pty)."""
from __future__ import annotations

from interpose.store.session import Session
from tests.integration.test_sessions_workspace import PATHS, prepared, start, stored


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
