"""server_replay: matching requests are answered from saved responses and never reach the server."""
from __future__ import annotations

import pytest

from interpose.errors import OptionsError
from interpose.http import HTTPFlow, Request, Response
from interpose.model.connection import Client, Server
from interpose.store.flowfile import FlowWriter
from tests.addons import client, start
from tests.conftest import Recorder, curl


def saved(method: str, url: str, status: int = 200, body: bytes | str = b"saved", req_body: bytes = b"",
          headers: dict[str, str] | None = None) -> HTTPFlow:
    """A recorded flow built by hand: the request and the response the server gave back then."""
    req = Request.make(method, url, req_body, headers)
    f = HTTPFlow(Client(address=("127.0.0.1", 50000)), Server(address=(req.host, req.port)), live=False)
    f.request = req
    f.response = Response.make(status, body, {"X-Saved": "1"})
    return f


def write(path, flows) -> str:
    with FlowWriter(str(path)) as w:
        for f in flows:
            w.add(f)
    return str(path)


async def replaying(make_proxy, tmp_path, flows, *sets: str, addons=()):
    path = write(tmp_path / "saved.interpose", flows)
    return await start(make_proxy, "server_replay", f"server_replay={path}", *sets, addons=addons)


async def test_matching_requests_get_the_saved_response_without_the_server(make_proxy, origin, tmp_path):
    rec = Recorder(["serverconnect", "response"])
    proxy = await replaying(make_proxy, tmp_path, [saved("GET", f"{origin.url}/page", body="from the file")],
                            addons=(rec,))
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/page")
    assert (r.status_code, r.text, r.headers["x-saved"]) == (200, "from the file", "1")
    assert origin.received == []
    assert "serverconnect" not in rec.names
    (flow,) = [a[0] for n, a in rec.calls if n == "response"]
    assert flow.is_replay == "response"
    assert flow.response.timestamp_start >= flow.request.timestamp_start  # fresh, not the recorded time


async def test_unmatched_requests_go_to_the_server(make_proxy, origin, tmp_path):
    proxy = await replaying(make_proxy, tmp_path, [saved("GET", f"{origin.url}/page")])
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/page?other=1")).text == "ok /page?other=1"
        assert (await c.post(f"{origin.url}/page", content=b"x")).text == "ok /page"
        assert (await c.get(f"{origin.url}/elsewhere")).text == "ok /elsewhere"
        assert (await c.get(f"{origin.url}/page")).text == "saved"
    assert [r.path for r in origin.received] == ["/page?other=1", "/page", "/elsewhere"]


async def test_responses_to_one_request_come_in_order_and_are_used_up(make_proxy, origin, tmp_path):
    proxy = await replaying(make_proxy, tmp_path, [saved("GET", f"{origin.url}/n", body=b"first"),
                                                   saved("GET", f"{origin.url}/other", body=b"other"),
                                                   saved("GET", f"{origin.url}/n", body=b"second")])
    assert proxy.master.addons.commands["replay.server.count"]() == 3
    async with client(proxy) as c:
        bodies = [(await c.get(f"{origin.url}/n")).text for _ in range(3)]
    assert bodies == ["first", "second", "ok /n"]
    assert [r.path for r in origin.received] == ["/n"]
    assert proxy.master.addons.commands["replay.server.count"]() == 1


async def test_nopop_serves_the_same_response_again(make_proxy, origin, tmp_path):
    proxy = await replaying(make_proxy, tmp_path, [saved("GET", f"{origin.url}/n", body=b"first"),
                                                   saved("GET", f"{origin.url}/n", body=b"second")],
                            "server_replay_nopop=true")
    async with client(proxy) as c:
        bodies = [(await c.get(f"{origin.url}/n")).text for _ in range(3)]
    assert bodies == ["first"] * 3
    assert origin.received == []


async def test_ignore_params(make_proxy, origin, tmp_path):
    proxy = await replaying(make_proxy, tmp_path, [saved("GET", f"{origin.url}/q?id=7&ts=111&cb=x")],
                            "server_replay_ignore_params=ts", "server_replay_ignore_params=cb",
                            "server_replay_nopop=true")
    assert proxy.options.server_replay_ignore_params == ["ts", "cb"]
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/q?id=7&ts=999")).text == "saved"
        assert (await c.get(f"{origin.url}/q?id=7")).text == "saved"
        assert (await c.get(f"{origin.url}/q?id=8&ts=111")).text == "ok /q?id=8&ts=111"
    assert [r.path for r in origin.received] == ["/q?id=8&ts=111"]


async def test_bodies_must_match_unless_ignore_content(make_proxy, origin, tmp_path):
    flows = [saved("POST", f"{origin.url}/api", req_body=b'{"a": 1}', body=b"saved")]
    proxy = await replaying(make_proxy, tmp_path, flows, "server_replay_nopop=true")
    async with client(proxy) as c:
        assert (await c.post(f"{origin.url}/api", content=b'{"a": 1}')).text == "saved"
        assert (await c.post(f"{origin.url}/api", content=b'{"a": 2}')).text == "ok /api"
        proxy.options.set("server_replay_ignore_content=true")  # the saved flows are filed anew
        assert (await c.post(f"{origin.url}/api", content=b'{"a": 2}')).text == "saved"
    assert [r.body for r in origin.received] == [b'{"a": 2}']


async def test_ignore_host_and_port(make_proxy, origin, tmp_path):
    proxy = await replaying(make_proxy, tmp_path, [saved("GET", "http://recorded.example:8000/x")],
                            "server_replay_nopop=true")
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/x")).text == "ok /x"
        proxy.options.set("server_replay_ignore_host=true")
        assert (await c.get(f"{origin.url}/x")).text == "ok /x"  # the port still differs
        proxy.options.set("server_replay_ignore_port=true")
        assert (await c.get(f"{origin.url}/x")).text == "saved"
    assert len(origin.received) == 2


async def test_use_headers(make_proxy, origin, tmp_path):
    flows = [saved("GET", f"{origin.url}/h", headers={"Accept-Language": "fr"}, body=b"bonjour")]
    proxy = await replaying(make_proxy, tmp_path, flows, "server_replay_use_headers=accept-language",
                            "server_replay_nopop=true")
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/h", headers={"Accept-Language": "fr"})).text == "bonjour"
        assert (await c.get(f"{origin.url}/h", headers={"Accept-Language": "de"})).text == "ok /h"
        assert (await c.get(f"{origin.url}/h")).text == "ok /h"
    assert len(origin.received) == 2


async def test_kill_extra_kills_requests_without_a_saved_response(make_proxy, origin, tmp_path):
    rec = Recorder(["error"])
    proxy = await replaying(make_proxy, tmp_path, [saved("GET", f"{origin.url}/known")],
                            "server_replay_kill_extra=true", addons=(rec,))
    code, out, err = await curl("-x", proxy.url, f"{origin.url}/unknown")
    assert code == 52, (code, out, err)  # "Empty reply from server": the proxy hung up
    code, out, err = await curl("-x", proxy.url, f"{origin.url}/known")
    assert (code, out) == (0, b"saved")
    assert origin.received == []
    (flow,) = [a[0] for n, a in rec.calls if n == "error"]
    assert flow.request.path == "/unknown" and flow.killed


async def test_saved_gzip_response_is_served_as_saved(make_proxy, origin, tmp_path):
    f = saved("GET", f"{origin.url}/z", body=b"")
    f.response.headers["content-encoding"] = "gzip"
    f.response.content = b"hello " * 100
    proxy = await replaying(make_proxy, tmp_path, [f])
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/z")
    assert r.headers["content-encoding"] == "gzip" and r.content == b"hello " * 100


async def test_recorded_through_the_proxy_then_replayed_offline(make_proxy, origin, tmp_path):
    saved_file = tmp_path / "recorded.interpose"
    recorder = await make_proxy(save_stream_file=str(saved_file))
    async with client(recorder) as c:
        first = (await c.get(f"{origin.url}/echo/x?a=1")).content
        await c.get(f"{origin.url}/json")
    await recorder.master.shutdown()
    await origin.stop()  # offline from now on
    proxy = await start(make_proxy, "server_replay", f"server_replay={saved_file}", "server_replay_kill_extra=true")
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/echo/x?a=1")).content == first
        assert (await c.get(f"{origin.url}/json")).json() == {"name": "interpose", "items": [1, 2, 3]}


async def test_a_missing_file_is_an_options_error(make_proxy, tmp_path):
    proxy = await start(make_proxy, "server_replay")
    with pytest.raises(OptionsError, match="cannot read"):
        proxy.options.set(f"server_replay={tmp_path / 'missing.interpose'}")


async def test_flows_without_a_response_are_skipped(make_proxy, origin, tmp_path):
    f = saved("GET", f"{origin.url}/e")
    f.response = None
    proxy = await replaying(make_proxy, tmp_path, [f], "server_replay_kill_extra=true")
    assert proxy.master.addons.commands["replay.server.count"]() == 0
    code, _, _ = await curl("-x", proxy.url, f"{origin.url}/e")
    assert code == 52
    assert origin.received == []


async def test_loading_the_script_logs_no_error(make_proxy, origin, tmp_path):
    """Only the addon's own hooks run: nothing the module imports is mistaken for one (`load`!)."""
    rec = Recorder(["log"])
    await replaying(make_proxy, tmp_path, [saved("GET", f"{origin.url}/x")], addons=(rec,))
    assert [a[0].msg for _, a in rec.calls if a[0].level == "error"] == []


async def test_mitmproxys_replay_server_commands(make_proxy, origin, tmp_path):
    """replay.server FLOWS / replay.server.add / replay.server.file / replay.server.stop, run as command
    lines through the registry the TUI and addons use."""
    proxy = await start(make_proxy, "server_replay")
    run = proxy.master.commands.execute
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/a")).text == "ok /a"  # nothing to replay yet
        path = write(tmp_path / "one.interpose", [saved("GET", f"{origin.url}/a", body=b"from file")])
        run(f"replay.server.file {path}")
        assert run("replay.server.count") == 1
        assert (await c.get(f"{origin.url}/a")).text == "from file"
        # replay.server / replay.server.add take flows (here picked by a filter over a flow source)
        flows = [saved("GET", f"{origin.url}/b", body=b"b1"), saved("GET", f"{origin.url}/c", body=b"c1")]

        class Source:
            def all_flows(self):
                return flows

            def shown_flows(self):
                return flows

            def focused_flow(self):
                return flows[0]

        proxy.master.commands.flow_source = Source()
        run("replay.server @focus")
        run("replay.server.add '~u /c'")
        assert run("replay.server.count") == 2
        assert (await c.get(f"{origin.url}/c")).text == "c1"
        assert (await c.get(f"{origin.url}/b")).text == "b1"
        run("replay.server.add @all")
        run("replay.server.stop")
        assert run("replay.server.count") == 0
        assert (await c.get(f"{origin.url}/b")).text == "ok /b"  # to the server again
    assert [r.path for r in origin.received] == ["/a", "/b"]
