"""What the user does in the TUI is kept in its session, for real in a pty: deleting flows (`d`, `Z`, `z`), loading
flows (`L`), the focused flow, and the repeater's tabs with their history come back when it is reopened."""
from __future__ import annotations

from interpose.http import HTTPFlow, Request, Response
from interpose.model.connection import Client, Server
from interpose.model.multidict import Headers
from interpose.store.flowfile import FlowWriter
from interpose.store.session import Session
from tests.conftest import curl
from tests.tui.pty_harness import Terminal

PATHS = ("/alpha", "/bravo", "/charlie", "/delta", "/echo")


def simple_flow(path: str, t: float) -> HTTPFlow:
    f = HTTPFlow(Client(address=("127.0.0.1", 5000)), Server(address=("example.com", 80)), live=False)
    f.request = Request("GET", "http", "example.com", 80, path, "HTTP/1.1", Headers([(b"Host", b"example.com")]), b"")
    f.response = Response(200, "OK", "HTTP/1.1", Headers([(b"Content-Type", b"text/plain")]), b"hello")
    f.timestamp_created = f.request.timestamp_start = f.response.timestamp_start = t
    f.request.timestamp_end = f.response.timestamp_end = t + 0.01
    return f


def prepared(tmp_path) -> tuple[str, list[HTTPFlow]]:
    """A session holding five flows, one per path in PATHS, oldest first."""
    path = str(tmp_path / "work.session")
    flows = [simple_flow(p, 1_700_000_000 + i) for i, p in enumerate(PATHS)]
    s = Session.open(path)
    for f in flows:
        s.put(f)
    s.close()
    return path, flows


def stored(path: str) -> tuple[list[str], dict]:
    s = Session.open(path, readonly=True)
    try:
        return [f.request.path for f in s.flows()], s.state()
    finally:
        s.close()


async def start(tmp_path, path: str) -> Terminal:
    return await Terminal().start("--confdir", str(tmp_path / "conf"), "--session", path)


async def test_flows_deleted_with_d_Z_and_z_stay_deleted_after_a_reopen(tmp_path):
    path, _ = prepared(tmp_path)
    term = await start(tmp_path, path)
    try:
        await term.wait_for("/echo")
        await term.press("g")  # the first flow
        await term.wait_until(lambda: "/alpha" in term.focused_line(), "/alpha focused")
        await term.press("d")
        await term.wait_gone("/alpha")
    finally:
        assert await term.stop() == 0
    paths, _ = stored(path)
    assert paths == list(PATHS[1:])

    term = await start(tmp_path, path)
    try:
        screen = await term.wait_for("/echo")
        assert "/bravo" in screen and "/alpha" not in screen
        await term.press("Z")  # delete every flow matching a filter
        await term.wait_for("Delete every flow matching")
        term.send("~u bravo")
        await term.press("enter")
        await term.wait_gone("/bravo")
    finally:
        assert await term.stop() == 0
    paths, _ = stored(path)
    assert paths == list(PATHS[2:])

    term = await start(tmp_path, path)
    try:
        screen = await term.wait_for("/echo")
        assert "/bravo" not in screen
        await term.press("z")  # clear the list
        await term.wait_gone("/echo")
    finally:
        assert await term.stop() == 0
    paths, _ = stored(path)
    assert paths == []


async def test_the_focused_flow_is_focused_again_after_a_reopen(tmp_path):
    path, flows = prepared(tmp_path)
    term = await start(tmp_path, path)
    try:
        await term.wait_for("/echo")
        await term.press("g", "j", "j")  # the third flow
        await term.wait_until(lambda: "/charlie" in term.focused_line(), "/charlie focused")
    finally:
        assert await term.stop() == 0
    _, state = stored(path)
    assert state["view"]["focus"] == flows[2].id and state["view"]["follow"] is False

    term = await start(tmp_path, path)
    try:
        await term.wait_for("/echo")
        await term.wait_until(lambda: "/charlie" in term.focused_line(), "/charlie focused after the reopen")
        await term.press("j")  # the list does not jump back to the newest flow: the next one is focused
        await term.wait_until(lambda: "/delta" in term.focused_line(), "/delta focused")
    finally:
        assert await term.stop() == 0


def flow_file(file: str, paths: list[str], t0: float) -> str:
    """A flow file at `file` with a flow per path, a second apart from `t0`."""
    with open(file, "wb") as f:
        w = FlowWriter(f)
        for i, p in enumerate(paths):
            w.add(simple_flow(p, t0 + i))
    return file


async def press_L(term: Terminal, file: str) -> None:
    await term.press("L")
    await term.wait_for("Load flows from")
    term.send(file)
    await term.press("enter")


async def test_flows_loaded_with_L_are_recorded(tmp_path):
    file = flow_file(str(tmp_path / "some.flows"), ["/loaded-one", "/loaded-two"], 1_700_000_100)
    path = str(tmp_path / "new.session")
    term = await start(tmp_path, path)
    try:
        await term.wait_for("listening")
        await press_L(term, file)
        await term.wait_for("/loaded-two")
    finally:
        assert await term.stop() == 0
    paths, _ = stored(path)
    assert paths == ["/loaded-one", "/loaded-two"]


async def test_a_big_file_loaded_with_L_streams_into_the_session_and_the_list_pages_it(tmp_path):
    n = 2600  # ten batches of the loader, and more than the list keeps in memory (RESIDENT)
    file = flow_file(str(tmp_path / "big.flows"), [f"/many/{i:05d}" for i in range(n)], 1_700_000_000)
    path = str(tmp_path / "big.session")
    term = await start(tmp_path, path)
    try:
        await term.wait_for("listening")
        await press_L(term, file)
        await term.wait_for(f"loaded {n} flows from", timeout=60)
        await term.wait_for(f"flows: {n}/{n}")
        await term.press("g")  # the first ones page back from the session
        await term.wait_for("/many/00000")
        await press_L(term, file)  # again: every flow is listed once
        await term.wait_for(f"loaded 0 flows from {file} ({n} already listed)", timeout=60)
        assert f"flows: {n}/{n}" in term.text()
    finally:
        assert await term.stop() == 0
    paths, _ = stored(path)
    assert paths == [f"/many/{i:05d}" for i in range(n)]


async def test_repeater_tabs_come_back_with_their_history(tmp_path, origin):
    path = str(tmp_path / "rep.session")
    term = await start(tmp_path, path)
    try:
        code, _, err = await curl("-x", term.url, f"{origin.url}/echo/first")
        assert code == 0, err
        await term.wait_for("/echo/first")
        await term.press("R")
        await term.wait_for("Request (edit freely)")
        await term.press("ctrl s")
        await term.wait_for("Response 1/1")
        await term.press("esc")
        await term.wait_gone("Request (edit freely)")
    finally:
        assert await term.stop() == 0
    _, state = stored(path)
    (tab,) = state["repeater"]["tabs"]
    assert tab["kind"] == "http" and "GET /echo/first" in tab["text"] and len(tab["history"]) == 1
    assert tab["history"][0]["response"]["status_code"] == 200

    term = await start(tmp_path, path)
    try:
        await term.wait_for("/echo/first")
        await term.press("R")  # a second tab; the first is the one the session kept
        await term.wait_for("2: GET /echo/first")
        screen = await term.wait_for("not sent yet")  # the new tab's pane (drawn after its tab bar)
        assert "1: GET /echo/first" in screen and "2: GET /echo/first" in screen
        await term.press("ctrl p")
        await term.wait_for("Response 1/1")
    finally:
        assert await term.stop() == 0


async def test_flows_read_with_r_into_the_tui_are_recorded_in_its_session(tmp_path):
    file = str(tmp_path / "read.flows")
    with open(file, "wb") as f:
        w = FlowWriter(f)
        for i, p in enumerate(("/read-one", "/read-two")):
            w.add(simple_flow(p, 1_700_000_200 + i))
    path = str(tmp_path / "r.session")
    term = await Terminal().start("--confdir", str(tmp_path / "conf"), "--session", path, "-r", file)
    try:
        await term.wait_for("/read-two")
    finally:
        assert await term.stop() == 0
    paths, _ = stored(path)
    assert paths == ["/read-one", "/read-two"]
