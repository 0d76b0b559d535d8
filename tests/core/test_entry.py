"""runtime.entry: the proxy core on its own thread and loop, reached only through the bus and `Core`.

The test's own loop plays the UI: it subscribes to the bus (messages arrive on this loop, from the core's
thread), holds and releases flows through `Core`, and blocks itself for a while to show that proxied
requests do not wait for it.
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from interpose.errors import OptionsError
from interpose.runtime.bus import FlowAdded, FlowIntercepted, FlowRemoved, FlowResumed, FlowUpdated
from interpose.runtime.entry import CoreThread
from interpose.runtime.master import Master
from interpose.runtime.options import Options, core_options


class CoreThreadSeen:
    """Records the thread each request hook runs on."""

    def __init__(self) -> None:
        self.threads: set[int] = set()

    def request(self, flow: Any) -> None:
        self.threads.add(threading.get_ident())


@pytest.fixture
def core(tmp_path):
    opts = Options()
    core_options(opts)
    opts.update(listen_port=0, confdir=str(tmp_path / "conf"))
    seen = CoreThreadSeen()
    master = Master(opts)
    master.add_addon(seen)
    ct = CoreThread(master)
    ct.seen = seen  # type: ignore[attr-defined]
    ct.address = ct.start()  # type: ignore[attr-defined]
    yield ct
    ct.stop()
    assert not ct.thread.is_alive()


def client(core: CoreThread) -> httpx.AsyncClient:
    host, port = core.address  # type: ignore[attr-defined]
    return httpx.AsyncClient(proxy=f"http://{host}:{port}", trust_env=False, timeout=10)


async def next_of(q: Any, cls: type, timeout: float = 10) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            ev = await q.get()
            if isinstance(ev, cls):
                return ev


async def test_the_core_serves_on_its_own_thread_and_the_bus_reaches_this_loop(core, origin):
    q = core.master.bus.subscribe()  # on this (the "UI") loop
    async with client(core) as c:
        r = await c.get(f"{origin.url}/hello")
    assert r.status_code == 200
    assert core.seen.threads == {core.thread_id} != {threading.get_ident()}  # type: ignore[attr-defined]
    added = await next_of(q, FlowAdded)
    assert added.flow.request.path == "/hello"
    updated = await next_of(q, FlowUpdated)
    assert updated.flow is added.flow


async def test_hold_and_release_through_core_with_stable_keys(core, origin):
    q = core.master.bus.subscribe()
    await core.set_options(intercept="~u /held")
    assert core.master.options.intercept == "~u /held"
    async with client(core) as c:
        task = asyncio.ensure_future(c.get(f"{origin.url}/held"))
        held = await next_of(q, FlowIntercepted)
        assert held.stage == "request" and held.key == held.flow.id
        held.flow.request.headers["x-edited"] = "by the ui"  # the UI owns a held flow
        core.resume(held.flow)
        released = await next_of(q, FlowResumed)
        assert released.key == held.key
        # held again at the response (intercept_at's default): kill it this time
        again = await next_of(q, FlowIntercepted)
        assert again.stage == "response"
        core.kill(again.flow)
        with pytest.raises(httpx.HTTPError):
            await task
    assert origin.received[-1].header("x-edited") == "by the ui"
    core.remove_flows([held.flow])
    removed = await next_of(q, FlowRemoved)
    assert removed.flow_id == held.flow.id


async def test_a_refused_option_comes_back_as_the_error(core):
    with pytest.raises(OptionsError):
        await core.set_options(intercept="~u (unclosed")
    assert core.master.options.intercept is None


async def test_requests_keep_flowing_while_this_loop_is_blocked(core, origin):
    """The UI's loop stuck for a second (CPU-bound work holds the GIL only in slices): requests sent
    from another thread all finish meanwhile."""
    host, port = core.address  # type: ignore[attr-defined]
    done: list[int] = []

    def requests() -> None:
        with httpx.Client(proxy=f"http://{host}:{port}", trust_env=False, timeout=10) as c:
            for i in range(20):
                done.append(c.get(f"{origin_url}/n{i}").status_code)

    origin_url = origin.url
    # The origin runs on this loop, which is about to be blocked: give it a loop of its own.
    other = asyncio.new_event_loop()
    from tests.servers import Origin

    side = Origin()
    t = threading.Thread(target=other.run_forever, daemon=True)
    t.start()
    asyncio.run_coroutine_threadsafe(side.start(), other).result(10)
    origin_url = side.url
    worker = threading.Thread(target=requests)
    worker.start()
    deadline = time.monotonic() + 30
    while worker.is_alive() and time.monotonic() < deadline:
        sum(i * i for i in range(200_000))  # this loop is busy and never yields
    worker.join(1)

    async def close_side() -> None:
        assert side.server is not None
        side.server.close()
        # Its connection handlers end here, on their own loop, not when that loop is gone.
        handlers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await side.server.wait_closed()
    asyncio.run_coroutine_threadsafe(close_side(), other).result(10)
    other.call_soon_threadsafe(other.stop)
    t.join(5)
    other.close()
    assert done == [200] * 20
