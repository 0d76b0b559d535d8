"""The view filter on a big store is applied in slices: the list answers keys meanwhile, the status bar
shows the progress, and the result is the same as applying it at once."""
from __future__ import annotations

import asyncio

import pytest

from interpose.flowfilter import FilterError
from interpose.http import HTTPFlow, Request, Response
from interpose.model.connection import Client, Server
from interpose.runtime.bus import FlowAdded, FlowUpdated
from interpose.runtime.master import Master
from interpose.runtime.options import Options, core_options
from interpose.tui.actions import search
from interpose.tui.app import App

N = search.SLICED_FILTER_ABOVE + 5000
SIZE = (80, 24)


def make_app() -> App:
    opts = Options()
    core_options(opts)
    app = App(Master(opts))
    events: list[object] = []
    for i in range(N):
        f = HTTPFlow(Client(address=("127.0.0.1", 1000 + i % 100)), Server(address=("h", 80)))
        f.request = Request.make("GET", f"http://{'example' if i % 4 == 0 else 'other'}.org/{i}")
        f.timestamp_created = f.request.timestamp_start = 1_750_000_000.0 + i
        f.response = Response.make(200, b"ok")
        events += (FlowAdded(f), FlowUpdated(f, "response"))
    app.apply(events)
    return app


def screen(app: App) -> str:
    canvas = app.top.render(SIZE, focus=True)
    return "\n".join(line.decode("utf-8", "replace") for line in canvas.text)


async def test_a_big_store_is_filtered_in_slices_while_keys_still_work(monkeypatch):
    monkeypatch.setattr(search, "FILTER_SLICE_S", 0.001)  # many slices even on a fast machine
    app = make_app()
    assert len(app.store) == N
    beats = 0

    async def heartbeat() -> None:  # runs only when the filter gives the loop back
        nonlocal beats
        while True:
            beats += 1
            await asyncio.sleep(0)

    search.apply_filter(app, "~d example")
    assert app.filter_task is not None and len(app.store) == N  # the old view until the new one is done
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert "filtering" in screen(app)  # the progress shows in the status bar
    app.top.keypress(SIZE, "j")  # keys are answered meanwhile
    app.top.render(SIZE, focus=True)
    beating = asyncio.create_task(heartbeat())
    await app.filter_task
    beating.cancel()
    assert beats > 2
    assert len(app.store) == N // 4 and app.store.filter_expr == "~d example"
    assert all(f.request.host == "example.org" for f in app.store)
    assert f"{N // 4:,} of {N:,} flows shown" in screen(app)


async def test_a_new_filter_overtakes_one_still_running_and_bad_ones_fail_at_once():
    app = make_app()
    search.apply_filter(app, "~d example")
    first = app.filter_task
    search.apply_filter(app, "~d other")
    assert first is not None and first.cancelling()
    await app.filter_task
    assert app.store.filter_expr == "~d other" and len(app.store) == N - N // 4
    with pytest.raises(FilterError):
        search.apply_filter(app, "~d (")  # raised at once, before anything changed
    assert app.store.filter_expr == "~d other"
    search.apply_filter(app, None)
    assert app.store.filter_expr is None and len(app.store) == N
