"""Writing and reading flow files for real: `-w`/`+FILE`/`-r` with interpose-dump in a subprocess and curl
through it, the save addon on live HTTP/WebSocket/TCP traffic, flows passed through the hooks in order by
`Master.load_flows`, the HAR addon, and the TUI's `w`/`L`/`-r`."""
from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from interpose.http import HTTPFlow, Response
from interpose.runtime.master import Master
from interpose.store import har
from interpose.store.flowfile import FlowWriter, load
from interpose.tcp import TCPFlow
from tests.conftest import curl
from tests.core.test_flowfile import make_failed_flow, make_http_flow, make_tcp_flow, make_ws_flow, state
from tests.core.test_har import validate_har
from tests.integration.test_cli import DumpProcess, run_dump
from tests.integration.test_tcp import TcpServer, read_exactly, tcp_through_proxy
from tests.integration.test_websocket import recv, ws_client
from tests.ws_servers import WsServer

ROOT = Path(__file__).resolve().parents[2]


async def wait_for_flows(path: Path, n: int, timeout: float = 10) -> None:
    """Poll until the flow file holds `n` complete flows (header + n lines)."""
    async with asyncio.timeout(timeout):
        while not path.exists() or path.read_bytes().count(b"\n") < n + 1:
            await asyncio.sleep(0.02)


def write_flows(path: Path, flows: list[Any]) -> None:
    with FlowWriter(path) as w:
        for f in flows:
            w.add(f)


# -- Master.load_flows: the hooks in order ---------------------------------------------------------------------
class HookLog:
    """Records each flow hook with what the flow held at that moment."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def _add(self, name: str, detail: str = "") -> None:
        self.seen.append(f"{name}{detail}")

    def requestheaders(self, f: HTTPFlow) -> None:
        self._add("requestheaders", f" response={f.response is not None} error={f.error is not None}")

    def websocket_handshake(self, f: HTTPFlow) -> None:
        self._add("websocket_handshake")

    def request(self, f: HTTPFlow) -> None:
        self._add("request", f" response={f.response is not None}")

    def responseheaders(self, f: HTTPFlow) -> None:
        self._add("responseheaders")

    def response(self, f: HTTPFlow) -> None:
        self._add("response", f" {f.response.status_code}")

    def error(self, f: Any) -> None:
        self._add("error", f" {f.error.msg}")

    def websocket_start(self, f: Any) -> None:
        self._add("websocket_start", f" messages={len(f.messages)}")

    def websocket_message(self, f: Any) -> None:
        self._add("websocket_message", f" #{len(f.messages)} {f.messages[-1].content!r}")

    def websocket_end(self, f: Any) -> None:
        self._add("websocket_end", f" {f.close_code}")

    def websocket_error(self, f: Any) -> None:
        self._add("websocket_error", f" {f.error.msg}")

    def tcp_start(self, f: Any) -> None:
        self._add("tcp_start")

    def tcp_message(self, f: Any) -> None:
        self._add("tcp_message", f" #{len(f.messages)}")

    def tcp_end(self, f: Any) -> None:
        self._add("tcp_end")

    def tcp_error(self, f: Any) -> None:
        self._add("tcp_error", f" {f.error.msg}")


async def test_load_flows_passes_each_flow_through_the_hooks_in_order():
    master = Master()
    log = HookLog()
    master.add_addon(log)
    flows = [make_http_flow(), make_failed_flow(), make_ws_flow(), make_tcp_flow(error=True)]
    before = [state(f) for f in flows]
    assert await master.load_flows(flows) == 4
    assert log.seen == [
        "requestheaders response=False error=False", "request response=False", "responseheaders", "response 200",
        "requestheaders response=False error=False", "request response=False", "error connection refused",
        "requestheaders response=False error=False", "websocket_handshake", "request response=False",
        "responseheaders", "response 101", "websocket_start messages=0",
        "websocket_message #1 b'h\\xc3\\xa9llo'", "websocket_message #2 b'\\x00\\x01\\xff'",
        "websocket_message #3 b'drop me'", "websocket_message #4 b''", "websocket_end 1001",
        "tcp_start", "tcp_message #1", "tcp_message #2", "tcp_message #3", "tcp_message #4",
        "tcp_error server reset the connection",
    ]
    assert [state(f) for f in flows] == before  # afterwards every flow is as it was loaded


async def test_an_addon_answering_a_loaded_request_keeps_its_answer():
    class Answer:
        def request(self, f: HTTPFlow) -> None:
            f.response = Response.make(418, "teapot")

    master = Master()
    master.add_addon(Answer())
    flow = make_http_flow()
    await master.load_flows([flow])
    assert flow.response.status_code == 418


async def test_loaded_flows_are_not_held_by_intercept():
    master = Master()
    master.options.update(intercept="~all", intercept_at="request,response,messages")
    for a in master.addons.chain:
        master.addons.configure_all(a)
    flows = [make_http_flow(), make_ws_flow(), make_tcp_flow()]
    async with asyncio.timeout(5):
        await master.load_flows(flows)
    assert not any(f.intercepted for f in flows)
    assert not any(m.intercepted for m in flows[1].websocket.messages)


# -- the save addon on live traffic ---------------------------------------------------------------------------
async def test_w_saves_http_websocket_and_tcp_flows(make_proxy, origin, tmp_path):
    path = tmp_path / "live.interpose"
    ws_server = await WsServer().start()
    tcp_server = await TcpServer().start()
    try:
        proxy = await make_proxy(save_stream_file=str(path))
        code, _, err = await curl("-x", proxy.url, f"{origin.url}/json")
        assert code == 0, err
        await wait_for_flows(path, 1)
        async with ws_client(proxy, ws_server.url) as ws:
            await ws.send("hi")
            assert await recv(ws) == "hi"
            await ws.send(b"\x00\xff")
            assert await recv(ws) == b"\x00\xff"
        await wait_for_flows(path, 2)
        reader, writer = await tcp_through_proxy(proxy, tcp_server.port)
        writer.write(b"\x01raw")
        assert await read_exactly(reader, 4) == b"\x01raw"
        writer.close()
        await wait_for_flows(path, 3)
    finally:
        await ws_server.stop()
        await tcp_server.stop()
    flows, warning = load(path)
    assert warning is None
    http, hs, tcp = flows
    assert http.request.url == f"{origin.url}/json" and http.response.status_code == 200
    assert http.response.content and http.client_conn.address[0] == "127.0.0.1"
    assert hs.response.status_code == 101 and hs.websocket is not None  # written when the WebSocket ended
    assert [(m.from_client, m.content) for m in hs.websocket.messages] == [
        (True, b"hi"), (False, b"hi"), (True, b"\x00\xff"), (False, b"\x00\xff")]
    assert hs.websocket.close_code == 1000
    assert isinstance(tcp, TCPFlow) and [m.content for m in tcp.messages] == [b"\x01raw", b"\x01raw"]


async def test_an_edit_made_while_held_is_what_gets_saved(make_proxy, origin, tmp_path):
    path = tmp_path / "edited.interpose"
    proxy = await make_proxy(save_stream_file=str(path), intercept="~u /held", intercept_at="response")
    q = proxy.master.bus.subscribe()
    task = asyncio.ensure_future(curl("-x", proxy.url, f"{origin.url}/held"))
    from interpose.runtime.bus import FlowIntercepted
    async with asyncio.timeout(10):
        while not isinstance(ev := await q.get(), FlowIntercepted):
            pass
    await asyncio.sleep(0.5)  # a few ticks: the held flow must not be written yet
    assert path.read_bytes().count(b"\n") == 1
    ev.flow.response.headers["X-Edited"] = "yes"
    ev.flow.resume()
    code, _, err = await task
    assert code == 0, err
    await wait_for_flows(path, 1)
    (flow,) = load(path)[0]
    assert flow.response.headers["X-Edited"] == "yes"


async def test_save_addon_with_a_filter(make_proxy, origin, tmp_path):
    path = tmp_path / "only-b.interpose"
    proxy = await make_proxy(scripts=[str(ROOT / "addons" / "save.py")])
    proxy.options.update(save_filter="~u /b", save_file=str(path))
    for p in ("/a", "/b", "/c"):
        code, _, err = await curl("-x", proxy.url, f"{origin.url}{p}")
        assert code == 0, err
    await proxy.master.shutdown()
    flows, warning = load(path)
    assert warning is None and [f.request.path for f in flows] == ["/b"]


async def test_har_addon_exports_on_demand_and_at_exit(make_proxy, origin, tmp_path):
    at_exit = tmp_path / "exit.har"
    proxy = await make_proxy(scripts=[str(ROOT / "addons" / "har.py")])
    proxy.options.update(hardump=str(at_exit))
    for p in ("/one", "/two"):
        code, _, err = await curl("-x", proxy.url, f"{origin.url}{p}")
        assert code == 0, err
    code, _, _ = await curl("-x", proxy.url, "http://127.0.0.1:1/refused")
    now = tmp_path / "now.har"
    async with asyncio.timeout(10):
        while True:
            n = proxy.master.addons.commands["har.export"](str(now))
            if n == 3:
                break
            await asyncio.sleep(0.05)
    doc = json.loads(now.read_text())
    validate_har(doc)
    urls = [e["request"]["url"] for e in doc["log"]["entries"]]
    assert urls == [f"{origin.url}/one", f"{origin.url}/two", "http://127.0.0.1:1/refused"]
    assert doc["log"]["entries"][2]["response"]["status"] == 0
    assert "refused" in doc["log"]["entries"][2]["response"]["_error"]
    await proxy.master.shutdown()
    validate_har(json.loads(at_exit.read_text()))
    assert len(har.read(at_exit)) == 3


# -- the real command line ----------------------------------------------------------------------------------
async def test_w_then_r_with_the_real_cli(tmp_path, origin):
    path = tmp_path / "flows.interpose"
    dump = await DumpProcess.start("-w", str(path), tmp=tmp_path)
    for p in ("/a", "/b"):
        code, _, err = await curl("-x", dump.url, f"{origin.url}{p}")
        assert code == 0, err
        await dump.stdout_line()
    code, _, _ = await curl("-x", dump.url, "http://127.0.0.1:1/")
    await dump.stdout_line()
    assert await dump.stop(signal.SIGTERM) == 0  # `done` flushes and closes the file

    code, out, err = await run_dump("-p", "0", "--confdir", str(tmp_path / "conf"), "-r", str(path))
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    assert f"GET {origin.url}/a → 200 OK" in lines[0] and f"GET {origin.url}/b → 200 OK" in lines[1]
    assert "GET http://127.0.0.1:1/ → ✗ connection refused" in lines[2]
    assert "loaded 3 flows" in err and "Traceback" not in err


async def test_plus_file_appends(tmp_path, origin):
    path = tmp_path / "flows.interpose"
    for round_ in ("/first", "/second"):
        dump = await DumpProcess.start("-w", f"+{path}", tmp=tmp_path)
        code, _, err = await curl("-x", dump.url, f"{origin.url}{round_}")
        assert code == 0, err
        await dump.stdout_line()
        assert await dump.stop() == 0
    flows, warning = load(path)
    assert warning is None and [f.request.path for f in flows] == ["/first", "/second"]
    assert path.read_bytes().count(b"interpose-flows") == 1
    # Without + the file starts over.
    dump = await DumpProcess.start("-w", str(path), tmp=tmp_path)
    assert await dump.stop() == 0
    assert load(path) == ([], None)


async def test_r_reads_a_har_file(tmp_path):
    path = tmp_path / "browser.har"
    http = make_http_flow()
    http.request.path = "/api/v1?q=caf%C3%A9"
    har.write(path, [http, make_failed_flow(), make_ws_flow()])
    code, out, err = await run_dump("-p", "0", "--confdir", str(tmp_path / "conf"), "-r", str(path))
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    assert "POST https://example.com/api/v1?q=caf%C3%A9 " in lines[0] and "→ 200 OK text/html" in lines[0]
    assert "GET http://127.0.0.1:1/ → ✗ connection refused" in lines[1]
    assert "GET http://127.0.0.1:9000/chat → 101 Switching Protocols" in lines[2]


async def test_r_and_w_convert_a_file(tmp_path):
    src, dst = tmp_path / "in.har", tmp_path / "out.interpose"
    har.write(src, [make_http_flow(), make_ws_flow()])
    code, _, err = await run_dump("-p", "0", "-q", "--confdir", str(tmp_path / "conf"), "-r", str(src), "-w", str(dst))
    assert code == 0, err
    flows, warning = load(dst)
    assert warning is None and len(flows) == 2
    assert [m.content for m in flows[1].websocket.messages] == [m.content for m in make_ws_flow().websocket.messages]


async def test_kill_9_leaves_a_loadable_file(tmp_path, origin):
    """Each flow is handed to the OS in one write as soon as it is finished (at the latest on the next
    tick, 0.2s), so a process killed with SIGKILL loses none of them; fsync, which only matters if the
    machine itself goes down, runs every `save_stream_fsync_s` seconds (0 here: after every flow)."""
    path = tmp_path / "killed.interpose"
    dump = await DumpProcess.start("-w", str(path), "--set", "save_stream_fsync_s=0", tmp=tmp_path)
    for i in range(3):
        code, _, err = await curl("-x", dump.url, f"{origin.url}/{i}")
        assert code == 0, err
    await wait_for_flows(path, 3)
    assert await dump.stop(signal.SIGKILL) == -signal.SIGKILL
    flows, warning = load(path)
    assert warning is None and [f.request.path for f in flows] == ["/0", "/1", "/2"]


async def test_a_damaged_file_loads_what_it_can_and_exits_0(tmp_path):
    path = tmp_path / "damaged.interpose"
    write_flows(path, [make_failed_flow(), make_failed_flow(), make_failed_flow()])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # the last line cut short
    code, out, err = await run_dump("-p", "0", "--confdir", str(tmp_path / "conf"), "-r", str(path))
    assert code == 0, err
    assert len(out.splitlines()) == 2
    assert "line 4: incomplete record" in err and "the 2 flows before it were loaded" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("content, message", [
    (b"just some text\n", "line 1: not an interpose flow file"),
    (b'{"format": "interpose-flows", "version": 9}\n', "flow file version 9 is newer"),
    (None, "cannot read"),
    (b"{broken json", "not a HAR file"),  # named .har below
])
async def test_a_file_that_is_not_a_flow_file_exits_2(tmp_path, content, message):
    path = tmp_path / ("x.har" if content == b"{broken json" else "x.interpose")
    if content is not None:
        path.write_bytes(content)
    code, _, err = await run_dump("-p", "0", "--confdir", str(tmp_path / "conf"), "-r", str(path))
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


async def test_r_and_w_naming_one_file_is_refused(tmp_path):
    code, _, err = await run_dump("-p", "0", "-r", str(tmp_path / "f"), "-w", f"+{tmp_path / 'f'}")
    assert code == 2 and "-r and -w name the same file" in err


async def test_keepserving_keeps_serving_after_r(tmp_path, origin):
    path = tmp_path / "flows.interpose"
    write_flows(path, [make_failed_flow()])
    dump = await DumpProcess.start("-r", str(path), "--keepserving", tmp=tmp_path)
    assert "GET http://127.0.0.1:1/ → ✗ connection refused" in await dump.stdout_line()
    code, _, err = await curl("-x", dump.url, f"{origin.url}/still-here")
    assert code == 0, err
    assert f"{origin.url}/still-here" in await dump.stdout_line()
    assert dump.proc.returncode is None
    assert await dump.stop() == 0


# -- the TUI ----------------------------------------------------------------------------------------------
async def test_tui_shows_r_flows_and_saves_and_loads_with_w_and_L(tmp_path):
    from tests.tui.pty_harness import Terminal

    src = tmp_path / "in.interpose"
    write_flows(src, [make_failed_flow(), make_tcp_flow()])
    term = Terminal()
    await term.start("--confdir", str(tmp_path / "conf"), "-r", str(src))
    try:
        await term.wait_for("http://127.0.0.1:1/")
        await term.wait_for("flows: 2/2")
        out = tmp_path / "saved.interpose"
        await term.press("w")
        await term.wait_for("Save flows to: flows.interpose")
        await term.press(*["backspace"] * len("flows.interpose"), *str(out), "enter")
        await term.wait_for("saved 2 visible flows to")
        flows, warning = load(out)
        assert warning is None and [f.type for f in flows] == ["http", "tcp"]

        other = tmp_path / "more.interpose"
        write_flows(other, [make_ws_flow()])
        await term.press("L")
        await term.wait_for("Load flows from:")
        await term.press(*str(other), "enter")
        await term.wait_for("loaded 1 flows from")
        await term.wait_for("flows: 3/3")
        await term.wait_for("http://127.0.0.1:9000/chat")
    finally:
        await term.stop()
