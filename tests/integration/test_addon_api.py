"""The Addon API end to end: real clients, the real in-process proxy, the real origin.

Each test drives traffic with curl or httpx through `make_proxy` to `origin` and checks what addons
saw (via `Recorder`), what the origin received and what the client got back.
"""
from __future__ import annotations

import asyncio
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from interpose import ctx
from interpose.errors import OptionsError
from interpose.http import HTTPFlow, Response
from interpose.runtime import hooks
from interpose.runtime.bus import (
    AddonsChanged,
    FlowAdded,
    FlowIntercepted,
    FlowResumed,
    FlowUpdated,
    LogRecorded,
    OptionsChanged,
)
from tests.conftest import Recorder, curl

LIFECYCLE = ("load", "start", "configure", "tick", "log", "done")
LEVELS = {"debug", "info", "warn", "error"}


def traffic(rec: Recorder) -> list[str]:
    return [n for n in rec.names if n not in LIFECYCLE]


def client(proxy: Any, **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(proxy=proxy.url, trust_env=False, timeout=10, **kw)


def logs(rec: Recorder, level: str | None = None) -> list[Any]:
    entries = [args[0] for name, args in rec.calls if name == "log"]
    return [e for e in entries if level is None or e.level == level]


async def wait_until(cond: Any, timeout: float = 5) -> None:
    """Poll a condition in small steps (for state with no event to await)."""
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.05)


async def next_bus(q: asyncio.Queue[Any], cls: type, timeout: float = 5, **match: Any) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            ev = await q.get()
            if isinstance(ev, cls) and all(getattr(ev, k) == v for k, v in match.items()):
                return ev


def echo(resp: httpx.Response) -> dict[str, Any]:
    data = json.loads(resp.content)
    data["hdrs"] = {k.lower(): v for k, v in data["headers"]}
    return data


# -- hook order and lifecycle ---------------------------------------------------


async def test_hook_order_two_requests_on_one_keepalive_connection(make_proxy, origin):
    """With server_reuse off, the server connection ends with its client connection (as in mitmproxy); with it
    on (the default) it outlives it: tests/integration/test_server_reuse.py."""
    rec = Recorder()
    proxy = await make_proxy(rec, server_reuse=False)
    async with client(proxy) as c:
        r1 = await c.get(f"{origin.url}/one")
        r2 = await c.get(f"{origin.url}/two")
    assert (r1.status_code, r1.content) == (200, b"ok /one")
    assert (r2.status_code, r2.content) == (200, b"ok /two")
    assert origin.connections == 1
    await rec.wait_for("clientdisconnect")
    await rec.wait_for("serverdisconnect")
    names = traffic(rec)
    assert names[:11] == [
        "clientconnect", "next_layer",
        "requestheaders", "request", "serverconnect", "responseheaders", "response",
        "requestheaders", "request", "responseheaders", "response",
    ]
    assert sorted(names[11:]) == ["clientdisconnect", "serverdisconnect"]


async def test_hook_order_with_curl_reusing_the_connection(make_proxy, origin):
    rec = Recorder()
    proxy = await make_proxy(rec, server_reuse=False)
    code, out, err = await curl("-x", proxy.url, f"{origin.url}/a", f"{origin.url}/b")
    assert code == 0, err
    assert out == b"ok /aok /b"
    await rec.wait_for("clientdisconnect")
    await rec.wait_for("serverdisconnect")
    names = traffic(rec)
    assert names[:11] == [
        "clientconnect", "next_layer",
        "requestheaders", "request", "serverconnect", "responseheaders", "response",
        "requestheaders", "request", "responseheaders", "response",
    ]
    assert sorted(names[11:]) == ["clientdisconnect", "serverdisconnect"]


async def test_lifecycle_start_configure_tick_done(make_proxy):
    rec = Recorder()
    proxy = await make_proxy(rec)
    names = rec.names
    assert names.index("load") < names.index("start") < names.index("configure")
    first_configure = next(args for n, args in rec.calls if n == "configure")
    options, updated = first_configure
    assert options is proxy.master.options
    assert updated == proxy.master.options.keys()
    assert {"listen_port", "intercept", "scripts", "body_size_limit"} <= updated

    ticks = names.count("tick")
    await rec.wait_for("tick", count=ticks + 2, timeout=1.0)

    assert "done" not in rec.names
    await proxy.master.shutdown()
    assert rec.names.count("done") == 1
    await proxy.master.shutdown()  # a second shutdown (the fixture's) is harmless
    assert rec.names.count("done") == 1
    ticks = rec.names.count("tick")
    await asyncio.sleep(0.5)  # TICK_S is 0.2: a still-running ticker would have fired by now
    assert rec.names.count("tick") == ticks


async def test_async_lifecycle_hooks_run(make_proxy):
    events: list[str] = []

    class AsyncLifecycle:
        async def configure(self, options: Any, updated: set[str]) -> None:
            await asyncio.sleep(0.01)
            events.append(f"configure {len(updated)}")

        async def done(self) -> None:
            await asyncio.sleep(0.01)
            events.append("done")

    proxy = await make_proxy(AsyncLifecycle())
    await wait_until(lambda: events)
    assert events == [f"configure {len(proxy.master.options.keys())}"]
    await proxy.master.shutdown()
    assert events[-1] == "done"  # awaited by shutdown, not left for a loop that is about to close


async def test_hook_arguments(make_proxy, origin):
    class Logs:
        def request(self, flow: HTTPFlow) -> None:
            ctx.log.warn("addon says hello")
            ctx.log("unknown level becomes info", "shout")

    rec = Recorder()
    proxy = await make_proxy(Logs(), rec, server_reuse=False)
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/args")).status_code == 200
    await rec.wait_for("clientdisconnect")
    await rec.wait_for("serverdisconnect")
    calls = dict((n, a) for n, a in rec.calls if n not in LIFECYCLE)

    (root_layer,) = calls["clientconnect"]
    addr = root_layer.client_conn.address
    assert isinstance(addr, tuple) and len(addr) == 2
    assert addr[0] == "127.0.0.1" and isinstance(addr[1], int) and addr[1] > 0
    assert calls["clientdisconnect"][0] is root_layer

    (server_conn,) = calls["serverconnect"]
    assert server_conn.address == (origin.host, origin.port)
    assert calls["serverdisconnect"][0] is server_conn

    (layer,) = calls["next_layer"]
    assert layer.kind == "http1"
    assert layer.client_conn is root_layer.client_conn

    (flow,) = calls["response"]
    assert isinstance(flow, HTTPFlow)
    assert flow.request.url == f"{origin.url}/args"
    assert flow.response is not None and flow.response.status_code == 200
    assert flow.server_conn is server_conn

    entries = logs(rec)
    assert entries
    for e in entries:
        assert isinstance(e.msg, str)
        assert e.level in LEVELS
    by_msg = {e.msg: e.level for e in entries}
    assert by_msg["addon says hello"] == "warn"
    assert by_msg["unknown level becomes info"] == "info"


# -- answering, modifying -----------------------------------------------------


@pytest.mark.parametrize("hook", ["requestheaders", "request"])
async def test_addon_answers_without_contacting_the_server(make_proxy, origin, hook):
    class Answer:
        pass

    def answer(flow: HTTPFlow) -> None:
        flow.response = Response.make(201, b"from the addon", {"x-answered-in": hook})

    a = Answer()
    setattr(a, hook, answer)
    rec = Recorder()
    proxy = await make_proxy(a, rec)
    async with client(proxy) as c:
        r = await c.post(f"{origin.url}/echo", content=b"a request body")
        r2 = await c.get(f"{origin.url}/echo")
    assert r.status_code == 201
    assert r.content == b"from the addon"
    assert r.headers["x-answered-in"] == hook
    assert r.headers["content-length"] == str(len(b"from the addon"))
    assert r2.status_code == 201  # the connection stays usable after an addon's answer
    assert origin.received == []
    assert origin.connections == 0
    assert "serverconnect" not in rec.names
    assert rec.names.count("response") == 2


async def test_request_and_response_modified_by_addon(make_proxy, origin):
    class Modify:
        def request(self, flow: HTTPFlow) -> None:
            flow.request.headers["X-Added"] = "by-addon"
            del flow.request.headers["x-remove-me"]
            flow.request.content = b"a much longer replacement body"

        def response(self, flow: HTTPFlow) -> None:
            assert flow.response is not None
            flow.response.headers["X-Resp"] = "changed"
            flow.response.content = b"new body"

    proxy = await make_proxy(Modify())
    async with client(proxy) as c:
        r = await c.post(f"{origin.url}/echo", content=b"short", headers={"X-Remove-Me": "1"})
    assert r.status_code == 200
    assert r.headers["x-resp"] == "changed"
    assert r.content == b"new body"
    assert r.headers["content-length"] == "8"

    (got,) = origin.received
    assert got.body == b"a much longer replacement body"
    assert got.header("content-length") == str(len(got.body))
    assert got.header("x-added") == "by-addon"
    assert got.header("x-remove-me") is None


async def test_response_content_edit_keeps_content_encoding(make_proxy, origin):
    class Edit:
        def response(self, flow: HTTPFlow) -> None:
            assert flow.response is not None
            assert flow.response.text.startswith("hello compressed world")
            flow.response.text = "rewritten"

    proxy = await make_proxy(Edit())
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/gzip")
    assert r.headers["content-encoding"] == "gzip"
    assert r.text == "rewritten"  # httpx decoded the gzip the proxy re-encoded


async def test_async_hooks_are_awaited(make_proxy, origin):
    class Slow:
        async def request(self, flow: HTTPFlow) -> None:
            await asyncio.sleep(0)
            await asyncio.sleep(0.01)
            flow.request.headers["x-async"] = "yes"

        async def response(self, flow: HTTPFlow) -> None:
            await asyncio.sleep(0)
            assert flow.response is not None
            flow.response.headers["x-async-response"] = "yes"

    proxy = await make_proxy(Slow())
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/echo")
    assert echo(r)["hdrs"]["x-async"] == "yes"
    assert r.headers["x-async-response"] == "yes"


async def test_hook_exception_is_logged_and_flow_continues(make_proxy, origin):
    class Exploder:
        def request(self, flow: HTTPFlow) -> None:
            raise ValueError("kaboom in request")

        async def response(self, flow: HTTPFlow) -> None:
            raise RuntimeError("kaboom in async response")

    rec = Recorder()
    proxy = await make_proxy(Exploder(), rec)
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/fine")
        r2 = await c.get(f"{origin.url}/still-fine")
    assert (r.status_code, r.content) == (200, b"ok /fine")
    assert (r2.status_code, r2.content) == (200, b"ok /still-fine")
    errors = [e.msg for e in logs(rec, "error")]
    req_err = [m for m in errors if "kaboom in request" in m]
    resp_err = [m for m in errors if "kaboom in async response" in m]
    assert len(req_err) == 2 and len(resp_err) == 2
    for m in req_err + resp_err:
        assert "exploder" in m
        assert "Traceback" in m
    assert "ValueError" in req_err[0] and "request" in req_err[0]
    assert "RuntimeError" in resp_err[0] and "test_addon_api.py" in resp_err[0]


# -- intercept ------------------------------------------------------------------


class HoldAt:
    """Intercepts every flow at one hook and tells the test."""

    def __init__(self, hook: str = "request") -> None:
        self.held: asyncio.Queue[HTTPFlow] = asyncio.Queue()
        setattr(self, hook, self._hold)

    def _hold(self, flow: HTTPFlow) -> None:
        flow.intercept()
        self.held.put_nowait(flow)

    async def next(self) -> HTTPFlow:
        async with asyncio.timeout(5):
            return await self.held.get()


async def test_intercept_edit_resume(make_proxy, origin):
    hold = HoldAt("request")
    proxy = await make_proxy(hold)
    q = proxy.master.bus.subscribe()
    async with client(proxy) as c:
        task = asyncio.create_task(c.get(f"{origin.url}/echo", headers={"x-edit": "original"}))
        flow = await hold.next()
        ev = await next_bus(q, FlowIntercepted)
        assert ev.flow is flow and ev.stage == "request"
        assert flow.intercepted
        await asyncio.sleep(0.1)  # give a wrongly unheld flow the chance to reach the origin
        assert not task.done()
        assert origin.received == []

        flow.request.headers["x-edit"] = "edited"
        flow.request.headers["x-new"] = "added while held"
        flow.resume()
        assert not flow.intercepted
        r = await task
        await next_bus(q, FlowResumed)
    assert r.status_code == 200
    hdrs = echo(r)["hdrs"]
    assert hdrs["x-edit"] == "edited"
    assert hdrs["x-new"] == "added while held"
    assert origin.received[0].header("x-edit") == "edited"


async def test_intercept_at_response_edit_resume(make_proxy, origin):
    hold = HoldAt("response")
    proxy = await make_proxy(hold)
    async with client(proxy) as c:
        task = asyncio.create_task(c.get(f"{origin.url}/held-response"))
        flow = await hold.next()
        assert len(origin.received) == 1  # the server answered, the client has not been told
        await asyncio.sleep(0.05)
        assert not task.done()
        assert flow.response is not None
        flow.response.content = b"edited while held"
        flow.resume()
        r = await task
    assert r.content == b"edited while held"


async def test_intercept_option_holds_at_request_and_response(make_proxy, origin):
    proxy = await make_proxy(intercept="~u /hold")
    q = proxy.master.bus.subscribe()
    async with client(proxy) as c:
        # A flow the filter does not match passes untouched.
        free = await c.get(f"{origin.url}/free")
        assert free.content == b"ok /free"

        task = asyncio.create_task(c.get(f"{origin.url}/hold/me"))
        ev = await next_bus(q, FlowIntercepted)
        assert ev.stage == "request"
        flow = ev.flow
        assert flow.intercepted and flow.request.path == "/hold/me"
        await asyncio.sleep(0.05)
        assert not task.done()
        assert [r.path for r in origin.received] == ["/free"]
        flow.request.headers["x-held"] = "once"
        flow.resume()

        ev2 = await next_bus(q, FlowIntercepted)
        assert ev2.flow is flow and ev2.stage == "response"
        assert flow.intercepted
        assert [r.path for r in origin.received] == ["/free", "/hold/me"]
        assert origin.received[1].header("x-held") == "once"
        assert not task.done()
        assert flow.response is not None
        flow.response.headers["x-held"] = "twice"
        flow.resume()
        r = await task
    assert r.content == b"ok /hold/me"
    assert r.headers["x-held"] == "twice"
    held = []
    while not q.empty():
        ev = q.get_nowait()
        if isinstance(ev, FlowIntercepted):
            held.append(ev)
    assert held == []  # exactly two holds for the matching flow, none for the other


async def test_intercept_at_option_selects_stages(make_proxy, origin):
    proxy = await make_proxy(intercept="~u /hold", intercept_at="responseheaders")
    q = proxy.master.bus.subscribe()
    async with client(proxy) as c:
        task = asyncio.create_task(c.get(f"{origin.url}/hold"))
        ev = await next_bus(q, FlowIntercepted)
        assert ev.stage == "responseheaders"
        ev.flow.resume()
        r = await task
    assert r.content == b"ok /hold"
    assert not any(isinstance(e, FlowIntercepted) for e in _drain(q))


def _drain(q: asyncio.Queue[Any]) -> list[Any]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


async def test_intercept_kill_closes_client_and_fires_error(make_proxy, origin):
    hold = HoldAt("request")
    rec = Recorder()
    proxy = await make_proxy(hold, rec)
    async with client(proxy) as c:
        task = asyncio.create_task(c.get(f"{origin.url}/doomed"))
        flow = await hold.next()
        assert not task.done()
        flow.kill()
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await task
    await rec.wait_for("error")
    (err_flow,) = [a[0] for n, a in rec.calls if n == "error"]
    assert err_flow is flow
    assert flow.error is not None and "killed" in flow.error.msg.lower()
    assert flow.killed and not flow.live
    assert origin.received == []
    assert "response" not in rec.names

    # The proxy keeps serving: the next flow is held too, and resuming it answers normally.
    async with client(proxy) as c:
        task = asyncio.create_task(c.get(f"{origin.url}/after"))
        (await hold.next()).resume()
        r = await task
    assert (r.status_code, r.content) == (200, b"ok /after")


async def test_kill_from_hook_without_intercept(make_proxy, origin):
    class Killer:
        def request(self, flow: HTTPFlow) -> None:
            if "kill" in flow.request.path:
                flow.kill()

    rec = Recorder()
    proxy = await make_proxy(Killer(), rec)
    async with client(proxy) as c:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await c.get(f"{origin.url}/kill")
        r = await c.get(f"{origin.url}/live")
    assert r.content == b"ok /live"
    await rec.wait_for("error")
    assert [r.path for r in origin.received] == ["/live"]


async def test_intercept_kill_at_response(make_proxy, origin):
    hold = HoldAt("response")
    rec = Recorder()
    proxy = await make_proxy(hold, rec)
    async with client(proxy) as c:
        task = asyncio.create_task(c.get(f"{origin.url}/answered-but-killed"))
        flow = await hold.next()
        flow.kill()
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await task
    await rec.wait_for("error")
    assert len(origin.received) == 1
    assert "killed" in flow.error.msg.lower()


async def test_responseheaders_may_replace_the_response(make_proxy, origin):
    class Replace:
        def responseheaders(self, flow: HTTPFlow) -> None:
            flow.response = Response.make(418, b"short and stout", {"x-replaced": "1"})

    rec = Recorder()
    proxy = await make_proxy(Replace(), rec)
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/bytes/100000")
        r2 = await c.get(f"{origin.url}/bytes/10")
    assert (r.status_code, r.content, r.headers["x-replaced"]) == (418, b"short and stout", "1")
    assert r2.status_code == 418
    assert rec.names.count("response") == 2


async def test_log_hook_that_logs_does_not_recurse(make_proxy, origin):
    class Echoer:
        def __init__(self) -> None:
            self.count = 0

        def log(self, entry: Any) -> None:
            self.count += 1
            ctx.log.info(f"echo of: {entry.msg}")

        def request(self, flow: HTTPFlow) -> None:
            ctx.log.info("from request")

    e = Echoer()
    proxy = await make_proxy(e)
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/")).status_code == 200
    assert 1 <= e.count < 10


# -- CONNECT and layers ---------------------------------------------------------


async def test_http_connect_refused_with_403(make_proxy, origin):
    class Refuse:
        def http_connect(self, flow: HTTPFlow) -> None:
            assert flow.request.method == "CONNECT"
            assert (flow.request.host, flow.request.port) == (origin.host, origin.port)
            flow.response = Response.make(403, b"no tunnels here")

    rec = Recorder()
    proxy = await make_proxy(Refuse(), rec)
    code, out, err = await curl("-p", "-x", proxy.url, f"{origin.url}/")
    assert code != 0
    assert b"403" in err and b"CONNECT" in err, err
    assert origin.received == []
    assert origin.connections == 0
    assert "serverconnect" not in rec.names
    assert "requestheaders" not in rec.names


async def test_http_connect_allowed_tunnels_http(make_proxy, origin):
    rec = Recorder()
    proxy = await make_proxy(rec)
    code, out, err = await curl("-p", "-x", proxy.url, f"{origin.url}/echo")
    assert code == 0, err
    assert json.loads(out)["path"] == "/echo"
    await rec.wait_for("clientdisconnect")
    names = traffic(rec)
    assert names.count("http_connect") == 1
    assert names.count("next_layer") == 2
    assert "requestheaders" in names  # the tunnelled request is an HTTP flow of its own


@pytest.mark.parametrize("return_it", [True, False], ids=["returned", "replace-only"])
async def test_next_layer_replaces_tunnel_layer_with_tcp(make_proxy, origin, return_it):
    seen: list[tuple[str, Any]] = []

    class ToTcp:
        def next_layer(self, layer: Any) -> Any:
            seen.append((layer.kind, layer.ctx.tunnel))
            if layer.kind == "http1" and layer.ctx.tunnel is not None:
                new = layer.replace("tcp")
                assert new.kind == "tcp"
                return new if return_it else None
            return None

    rec = Recorder()
    proxy = await make_proxy(ToTcp(), rec)
    code, out, err = await curl("-p", "-x", proxy.url, f"{origin.url}/echo")
    assert code == 0, err
    body = json.loads(out)
    assert body["path"] == "/echo"  # the client's bytes reached the origin as they were
    assert seen == [("http1", None), ("http1", (origin.host, origin.port))]
    await rec.wait_for("clientdisconnect")
    names = traffic(rec)
    assert "requestheaders" not in names
    assert "request" not in names
    assert "response" not in names
    assert "serverconnect" in names
    assert len(origin.received) == 1


async def test_next_layer_replace_rejects_unknown_kind(make_proxy, origin):
    errors: list[Exception] = []

    class Bad:
        def next_layer(self, layer: Any) -> Any:
            try:
                return layer.replace("carrier-pigeon")
            except ValueError as e:
                errors.append(e)
                raise

    rec = Recorder()
    proxy = await make_proxy(Bad(), rec)
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/x")
    assert r.content == b"ok /x"  # the addon's error is logged; the proxy's own choice stands
    assert "carrier-pigeon" in str(errors[0])
    assert any("carrier-pigeon" in e.msg for e in logs(rec, "error"))


# -- scripts -----------------------------------------------------------------------


def write_script(path: Path, source: str, bump: float = 0) -> None:
    path.write_text(textwrap.dedent(source))
    if bump:
        st = path.stat()
        os.utime(path, (st.st_atime + bump, st.st_mtime + bump))


async def wait_for_log(rec: Recorder, needle: str, level: str | None = None, count: int = 1,
                       timeout: float = 5) -> list[Any]:
    async with asyncio.timeout(timeout):
        while True:
            found = [e for e in logs(rec, level) if needle in e.msg]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)


SCRIPT = """
    MARKER = {marker!r}

    def response(flow):
        flow.response.headers["x-script"] = {value!r}

    def done():
        with open(MARKER, "a") as f:
            f.write({value!r} + " done\\n")
"""


async def test_script_hot_reload(make_proxy, origin, tmp_path):
    path = tmp_path / "addheader.py"
    marker = tmp_path / "done.txt"
    write_script(path, SCRIPT.format(marker=str(marker), value="v1"))
    rec = Recorder()
    proxy = await make_proxy(rec, scripts=[str(path)])
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/s")
    assert r.headers["x-script"] == "v1"
    assert not marker.exists()

    write_script(path, SCRIPT.format(marker=str(marker), value="v2"), bump=10)
    await wait_for_log(rec, "reloaded")
    assert marker.read_text() == "v1 done\n"  # the old module was told it is done
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/s")
    assert r.headers["x-script"] == "v2"
    assert r.headers.get_list("x-script") == ["v2"]  # the old module's hook is gone

    await proxy.master.shutdown()
    assert marker.read_text() == "v1 done\nv2 done\n"


async def test_script_syntax_error_at_start_and_on_reload(make_proxy, origin, tmp_path):
    path = tmp_path / "broken.py"
    write_script(path, """
        x = 1

        def response(flow:
            pass
    """)
    rec = Recorder()
    proxy = await make_proxy(rec, scripts=[str(path)])
    (entry,) = await wait_for_log(rec, "broken.py", "error")
    assert "line 4" in entry.msg and "syntax" in entry.msg.lower()
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/still-serving")
    assert r.content == b"ok /still-serving"

    # Fixed: it is picked up on the next change.
    write_script(path, SCRIPT.format(marker=str(tmp_path / "m"), value="fixed"), bump=10)
    await wait_for_log(rec, "reloaded")
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/s")
    assert r.headers["x-script"] == "fixed"

    # Broken again on reload: logged with its line, the old hooks are gone, the proxy keeps serving.
    write_script(path, "def response(flow):\n    pass\n\n\nthis is not python\n", bump=20)
    entries = await wait_for_log(rec, "broken.py", "error", count=2)
    assert "line 5" in entries[-1].msg
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/after-break")
    assert r.content == b"ok /after-break"
    assert "x-script" not in r.headers


async def test_script_import_error_is_logged_with_traceback(make_proxy, origin, tmp_path):
    path = tmp_path / "raises.py"
    write_script(path, """
        def helper():
            raise RuntimeError("module-level failure")

        helper()
    """)
    rec = Recorder()
    proxy = await make_proxy(rec, scripts=[str(path)])
    (entry,) = await wait_for_log(rec, "module-level failure", "error")
    assert "raises.py" in entry.msg and "line 3" in entry.msg
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/ok")).status_code == 200


async def test_script_start_return_value_replaces_addon(make_proxy, origin, tmp_path):
    path = tmp_path / "booted.py"
    write_script(path, """
        class MyAddon:
            def __init__(self):
                self.seen = []

            def configure(self, options, updated):
                self.configured = True

            def request(self, flow):
                self.seen.append(flow.request.path)
                flow.request.headers["x-booted"] = "instance"

        def start():
            return MyAddon()

        def request(flow):
            flow.request.headers["x-module"] = "module hook must not run"
    """)
    proxy = await make_proxy(scripts=[str(path)])
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/echo")
    hdrs = echo(r)["hdrs"]
    assert hdrs["x-booted"] == "instance"
    assert "x-module" not in hdrs
    inst = next(a for a in _all_addons(proxy) if type(a).__name__ == "MyAddon")
    assert inst.seen == ["/echo"]
    assert inst.configured


def _all_addons(proxy: Any) -> list[Any]:
    from interpose.runtime.addonmanager import traverse

    return list(traverse(proxy.master.addons.chain))


async def test_script_module_level_addons_list(make_proxy, origin, tmp_path):
    path = tmp_path / "listed.py"
    write_script(path, """
        class Tag:
            def __init__(self, name):
                self.name = name

            def request(self, flow):
                flow.request.headers.add("x-tag", self.name)

        addons = [Tag("first"), Tag("second")]
    """)
    proxy = await make_proxy(scripts=[str(path)])
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/echo")
    tags = [v for k, v in echo(r)["headers"] if k.lower() == "x-tag"]
    assert tags == ["first", "second"]


async def test_scripts_option_changed_at_runtime(make_proxy, origin, tmp_path):
    path = tmp_path / "late.py"
    marker = tmp_path / "late-done.txt"
    write_script(path, SCRIPT.format(marker=str(marker), value="late"))
    rec = Recorder()
    proxy = await make_proxy(rec)
    async with client(proxy) as c:
        assert "x-script" not in (await c.get(f"{origin.url}/before")).headers

        proxy.master.options.scripts = [str(path)]
        r = await c.get(f"{origin.url}/loaded")
        assert r.headers["x-script"] == "late"

        proxy.master.options.scripts = []
        assert marker.read_text() == "late done\n"
        r = await c.get(f"{origin.url}/unloaded")
        assert "x-script" not in r.headers
    configures = [a[1] for n, a in rec.calls if n == "configure"]
    assert configures[1:] == [{"scripts"}, {"scripts"}]


async def test_script_reload_keeps_declared_option(make_proxy, origin, tmp_path):
    path = tmp_path / "withopt.py"
    source = """
        from interpose import ctx

        def load(loader):
            loader.add_option("greeting", str, "hello", "What to say.")

        def response(flow):
            flow.response.headers["x-greeting"] = ctx.options.greeting + {suffix!r}
    """
    write_script(path, source.format(suffix=""))
    rec = Recorder()
    proxy = await make_proxy(rec, scripts=[str(path)])
    proxy.master.options.greeting = "hi"
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/")).headers["x-greeting"] == "hi"
        write_script(path, source.format(suffix="!"), bump=10)
        await wait_for_log(rec, "reloaded")
        assert (await c.get(f"{origin.url}/")).headers["x-greeting"] == "hi!"  # the value set survives a reload


# -- options ------------------------------------------------------------------


async def test_addon_option_declared_in_load_and_set_at_runtime(make_proxy):
    class WithOption:
        def __init__(self) -> None:
            self.configured: list[set[str]] = []

        def load(self, loader: Any) -> None:
            loader.add_option("myopt", str, "a", "An option this addon declares.")

        def configure(self, options: Any, updated: set[str]) -> None:
            self.configured.append(set(updated))
            self.value = options.myopt

    addon = WithOption()
    proxy = await make_proxy(addon)
    assert "myopt" in addon.configured[0]
    assert addon.configured[0] == proxy.master.options.keys()
    assert addon.value == "a"

    proxy.master.options.myopt = "b"
    assert addon.configured[-1] == {"myopt"}
    assert addon.value == "b"

    n = len(addon.configured)
    ctx.options.myopt = "c"
    assert addon.configured[n:] == [{"myopt"}]
    assert addon.value == "c"

    ctx.options.myopt = "c"  # not a change: nobody is told
    assert len(addon.configured) == n + 1

    with pytest.raises(OptionsError):
        proxy.master.options.myopt = 3
    assert proxy.master.options.myopt == "c"


async def test_invalid_intercept_filter_is_rejected_and_old_value_kept(make_proxy, origin):
    proxy = await make_proxy(intercept="~u /hold")
    with pytest.raises(OptionsError) as exc:
        proxy.master.options.intercept = "~u ("
    assert "intercept" in str(exc.value)
    assert proxy.master.options.intercept == "~u /hold"

    # The old filter is still in force.
    q = proxy.master.bus.subscribe()
    async with client(proxy) as c:
        task = asyncio.create_task(c.get(f"{origin.url}/hold"))
        ev = await next_bus(q, FlowIntercepted)
        ev.flow.resume()
        ev = await next_bus(q, FlowIntercepted)
        ev.flow.resume()
        assert (await task).status_code == 200


# -- the event bus --------------------------------------------------------------


async def test_bus_carries_typed_messages_in_hook_order(make_proxy, origin):
    """The bus says what changed, as typed messages, never hook objects: each flow is added once, then
    updated by each hook that changed it, in the order the addons saw the hooks."""
    rec = Recorder()
    proxy = await make_proxy(rec, server_reuse=False)
    q = proxy.master.bus.subscribe()
    start = len(rec.calls)
    async with client(proxy) as c:
        await c.get(f"{origin.url}/one")
        await c.post(f"{origin.url}/two", content=b"body")
    await rec.wait_for("clientdisconnect")
    await rec.wait_for("serverdisconnect")
    # Both are filled synchronously by the same dispatch: take both snapshots without awaiting.
    events = _drain(q)
    assert events and not any(isinstance(e, hooks.Hook) for e in events)
    flow_hooks = [(n, args[0]) for n, args in rec.calls[start:]
                  if n in ("requestheaders", "request", "responseheaders", "response")]
    seen = [("requestheaders" if isinstance(e, FlowAdded) else e.cause, e.flow)
            for e in events if isinstance(e, FlowAdded | FlowUpdated)]
    assert seen == flow_hooks
    assert [type(e) for e in events if isinstance(e, FlowAdded)] == [FlowAdded, FlowAdded]
    assert [e.flow.request.path for e in events if isinstance(e, FlowAdded)] == ["/one", "/two"]


async def test_bus_tells_of_logs_options_and_addons(make_proxy):
    class Quiet:
        name = "quiet"

    proxy = await make_proxy()
    q = proxy.master.bus.subscribe()
    proxy.master.log.info("hello bus")
    proxy.master.options.update(flow_detail=3)
    proxy.master.add_addon(Quiet())
    events = _drain(q)
    logs = [e.entry.msg for e in events if isinstance(e, LogRecorded)]
    assert "hello bus" in logs
    assert any(isinstance(e, OptionsChanged) and e.updated == {"flow_detail"} for e in events)
    assert any(isinstance(e, AddonsChanged) and e.names[-1] == "quiet" for e in events)
