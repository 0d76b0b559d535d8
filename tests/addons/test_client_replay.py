"""client_replay: the requests of a flow file go to the server again, in order, through every hook."""
from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from interpose.errors import OptionsError
from interpose.http import HTTPFlow, Request, Response
from interpose.model.connection import Client, Server
from interpose.runtime.master import Master
from interpose.runtime.options import Options, core_options
from interpose.store.flowfile import FlowWriter
from interpose.tcp import TCPFlow
from tests.addons import script, start
from tests.conftest import Recorder


def make_flow(method: str, url: str, body: bytes = b"") -> HTTPFlow:
    """A finished flow built by hand, as if it had been recorded."""
    req = Request.make(method, url, body)
    f = HTTPFlow(Client(address=("127.0.0.1", 50000)), Server(address=(req.host, req.port)), live=False)
    f.request = req
    f.response = Response.make(200, b"recorded")
    return f


def write(path, flows) -> str:
    with FlowWriter(str(path)) as w:
        for f in flows:
            w.add(f)
    return str(path)


async def wait_until(pred, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.01)


async def test_replays_the_saved_requests_in_order(make_proxy, origin, tmp_path):
    path = write(tmp_path / "flows.interpose", [
        make_flow("GET", f"{origin.url}/first"),
        make_flow("POST", f"{origin.url}/echo/second", b"payload"),
        make_flow("GET", f"{origin.url}/third?x=1"),
    ])
    rec = Recorder(["request", "response", "log"])
    proxy = await start(make_proxy, "client_replay", addons=(rec,))
    proxy.options.set(f"client_replay={path}")
    await rec.wait_for("response", 3)
    assert [r.path for r in origin.received] == ["/first", "/echo/second", "/third?x=1"]
    assert [r.method for r in origin.received] == ["GET", "POST", "GET"]
    assert origin.received[1].body == b"payload"
    # The replays passed through the hooks like live flows, one after the other.
    responses = [a[0] for n, a in rec.calls if n == "response"]
    assert [f.response.status_code for f in responses] == [200, 200, 200]
    assert all(f.is_replay == "request" for f in responses)
    assert rec.names.count("request") == 3
    hooks = [n for n in rec.names if n != "log"]
    assert hooks == ["request", "response"] * 3  # each awaited the previous one
    await wait_until(lambda: any("finished, 3 requests replayed" in a[0].msg for n, a in rec.calls if n == "log"))
    progress = [a[0].msg for n, a in rec.calls if n == "log" and "client_replay: " in a[0].msg]
    assert any("1/3 GET" in m and "/first → 200" in m for m in progress), progress


async def test_loaded_at_startup_from_the_command_line(origin, tmp_path):
    """`-s addons/client_replay.py --set client_replay=FILE`: the replay starts as the proxy starts."""
    path = write(tmp_path / "flows.interpose", [make_flow("GET", f"{origin.url}/{i}") for i in range(3)])
    opts = Options()
    core_options(opts)
    opts.update(listen_port=0, confdir=str(tmp_path / "conf"), scripts=[script("client_replay")])
    opts.set(f"client_replay={path}", defer=True)  # what --set does before the script declares it
    master = Master(opts)
    rec = Recorder(["response"])
    master.add_addon(rec)
    await master.start()
    try:
        await rec.wait_for("response", 3)
    finally:
        await master.shutdown()
    assert [r.path for r in origin.received] == ["/0", "/1", "/2"]


async def test_a_failing_request_does_not_stop_the_rest(make_proxy, origin, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed_port = s.getsockname()[1]
    s.close()
    path = write(tmp_path / "flows.interpose", [
        make_flow("GET", f"{origin.url}/a"),
        make_flow("GET", f"http://127.0.0.1:{closed_port}/nobody"),
        make_flow("GET", f"{origin.url}/b"),
    ])
    rec = Recorder(["response", "error"])
    proxy = await start(make_proxy, "client_replay", addons=(rec,))
    proxy.options.set(f"client_replay={path}")
    await wait_until(lambda: len(rec.calls) == 3)
    assert rec.names == ["response", "error", "response"]
    assert "connection refused" in rec.calls[1][1][0].error.msg
    assert [r.path for r in origin.received] == ["/a", "/b"]


async def test_tcp_flows_are_skipped_and_several_files_queue_up(make_proxy, origin, tmp_path):
    tcp = TCPFlow(Client(address=("127.0.0.1", 1)), Server(address=("127.0.0.1", 2)), live=False)
    one = write(tmp_path / "one.interpose", [make_flow("GET", f"{origin.url}/1"), tcp])
    two = write(tmp_path / "two.interpose", [make_flow("GET", f"{origin.url}/2")])
    rec = Recorder(["response"])
    proxy = await start(make_proxy, "client_replay", addons=(rec,))
    proxy.options.set(f"client_replay={one}", f"client_replay={two}")
    await rec.wait_for("response", 2)
    assert [r.path for r in origin.received] == ["/1", "/2"]


async def test_concurrency_runs_several_at_once(make_proxy, origin, tmp_path):
    """With client_replay_concurrency=3, a request that hangs does not hold back the others."""
    path = write(tmp_path / "flows.interpose", [make_flow("GET", f"{origin.url}/hang")]
                 + [make_flow("GET", f"{origin.url}/{i}") for i in range(2)])
    rec = Recorder(["response"])
    proxy = await start(make_proxy, "client_replay", "client_replay_concurrency=3", addons=(rec,))
    proxy.options.set(f"client_replay={path}")
    await rec.wait_for("response", 2)
    assert sorted(r.path for r in origin.received) == ["/0", "/1", "/hang"]
    proxy.master.addons.commands["replay.client.stop"]()


async def test_count_and_stop_commands(make_proxy, origin, tmp_path):
    path = write(tmp_path / "flows.interpose", [make_flow("GET", f"{origin.url}/hang"),
                                                make_flow("GET", f"{origin.url}/never")])
    proxy = await start(make_proxy, "client_replay")
    proxy.options.set(f"client_replay={path}")
    await wait_until(lambda: origin.received)
    commands = proxy.master.addons.commands
    assert commands["replay.client.count"]() == 2
    commands["replay.client.stop"]()
    await wait_until(lambda: commands["replay.client.count"]() == 0)
    await asyncio.sleep(0.1)
    assert [r.path for r in origin.received] == ["/hang"]


async def test_a_missing_or_bad_file_is_an_options_error(make_proxy, tmp_path):
    proxy = await start(make_proxy, "client_replay")
    with pytest.raises(OptionsError, match="cannot read"):
        proxy.options.set(f"client_replay={tmp_path / 'missing.interpose'}")
    bad = tmp_path / "bad.interpose"
    bad.write_text("hello\n")
    with pytest.raises(OptionsError, match="not an interpose flow file"):
        proxy.options.set(f"client_replay={bad}")
    with pytest.raises(OptionsError, match="concurrency"):
        proxy.options.client_replay_concurrency = 0


async def test_replays_flows_recorded_through_the_proxy(make_proxy, origin, tmp_path):
    """Record with -w (save_stream_file), then replay that file: the origin sees the requests twice."""
    saved = tmp_path / "recorded.interpose"
    recorder = await make_proxy(save_stream_file=str(saved))
    async with httpx.AsyncClient(proxy=recorder.url, trust_env=False, timeout=10) as c:
        for path in ("/one", "/two?q=2", "/echo/three"):
            assert (await c.get(f"{origin.url}{path}", headers={"X-Recorded": "yes"})).status_code == 200
    await recorder.master.shutdown()  # flushes and closes the flow file
    rec = Recorder(["response"])
    proxy = await start(make_proxy, "client_replay", addons=(rec,))
    proxy.options.set(f"client_replay={saved}")
    await rec.wait_for("response", 3)
    assert [r.path for r in origin.received] == ["/one", "/two?q=2", "/echo/three"] * 2
    assert all(r.header("x-recorded") == "yes" for r in origin.received[3:])


async def test_loading_the_script_logs_no_error(make_proxy, origin, tmp_path):
    """Only the addon's own hooks run: nothing the module imports is mistaken for one (`load`!)."""
    rec = Recorder(["log", "response"])
    proxy = await start(make_proxy, "client_replay", addons=(rec,))
    proxy.options.set(f"client_replay={write(tmp_path / 'f.interpose', [make_flow('GET', f'{origin.url}/x')])}")
    await rec.wait_for("response")
    assert [a[0].msg for n, a in rec.calls if n == "log" and a[0].level == "error"] == []
