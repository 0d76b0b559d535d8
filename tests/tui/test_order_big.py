"""A new order of a big list paging from a session is sorted by SQL off the UI thread, whether it comes
from `o` or from the `view.order.set` command (the `:` prompt, keys.yaml, addons): the loop keeps turning
while the sort runs, the status bar says what is going on, and the result is the order asked for."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from interpose.runtime.master import Master
from interpose.runtime.options import Options, core_options
from interpose.store.session import Session
from interpose.store.session.paging import PagedFlowStore
from interpose.tui.actions import order as ordering
from interpose.tui.app import App
from interpose.tui.commands.run import run_command
from tests.core.test_paging import make_flows, record

N = 3000
SIZE = (100, 30)


@pytest.fixture
def big_app(tmp_path, monkeypatch):
    """An App whose list pages from a recorded session of N flows, counted as big (the threshold is
    lowered, so that the test needs no 20,000 flows)."""
    monkeypatch.setattr(ordering, "SLICED_ORDER_ABOVE", 1000)
    path = str(tmp_path / "big.session")
    record(path, make_flows(N))
    session = Session.open(path)
    opts = Options()
    core_options(opts)
    app = App(Master(opts))
    app.store.attach(session)
    yield app, session
    app.store.close()
    session.close()


def screen(app: App) -> str:
    canvas = app.top.render(SIZE, focus=True)
    return "\n".join(line.decode("utf-8", "replace") for line in canvas.text)


def reference_ids(session: Session, order: str) -> list[str]:
    """The same session in a list ordered at once, for comparison."""
    ref = PagedFlowStore()
    ref.attach(session)
    ref.set_order(order)
    try:
        return [f.id for f in ref]
    finally:
        ref.close()


class LoopTurns:
    """Counts the event loop's turns (a task that yields at every turn) and notes the count at each change
    of the list, so a test sees how often the loop turned before a new order landed."""

    def __init__(self, app: App) -> None:
        self.turns = 0
        self.changes: list[tuple[int, str]] = []
        self._unsubscribe = app.store.on_change(lambda: self.changes.append((self.turns, app.store.order)))
        self._task = asyncio.get_running_loop().create_task(self._beat())

    def before(self, order: str) -> int:
        """The loop's turns before the list first had `order`."""
        return next(t for t, o in self.changes if o == order)

    async def _beat(self) -> None:
        while True:
            self.turns += 1
            await asyncio.sleep(0)

    def stop(self) -> None:
        self._task.cancel()
        self._unsubscribe()


async def _settled(app: App) -> None:
    """Wait for the app's tasks (the command, the sort) to end."""
    async with asyncio.timeout(30):
        while app.tasks:
            await asyncio.gather(*list(app.tasks))


async def test_view_order_set_on_a_big_paged_list_sorts_off_the_ui_thread(big_app) -> None:
    app, session = big_app
    assert app.store.order == "time" and len(app.store) == N
    turns = LoopTurns(app)
    run_command(app, "view.order.set size")  # what the `:` prompt and a key bound to the command run
    assert app.store.order == "time"  # not sorted on the spot
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert f"sorting {N:,} flows by size" in screen(app)
    app.top.keypress(SIZE, "j")  # keys are answered meanwhile
    await _settled(app)
    turns.stop()
    assert turns.before("size") > 2  # the loop kept turning until the new order landed
    assert app.store.order == "size"
    assert [f.id for f in app.store] == reference_ids(session, "size")
    assert "order: size (" in screen(app)


async def test_o_goes_the_same_way(big_app) -> None:
    app, session = big_app
    turns = LoopTurns(app)
    app.top.keypress(SIZE, "o")
    assert app.store.order == "time" and f"sorting {N:,} flows by method" in screen(app)
    await _settled(app)
    turns.stop()
    assert turns.before("method") > 2
    assert app.store.order == "method" and [f.id for f in app.store] == reference_ids(session, "method")


async def test_o_pressed_again_while_sorting_goes_on_from_the_order_coming(big_app) -> None:
    app, session = big_app
    app.top.keypress(SIZE, "o")  # time → method, sorting
    app.top.keypress(SIZE, "o")  # method → url, not method again
    assert f"sorting {N:,} flows by url" in screen(app)
    await _settled(app)
    assert app.store.order == "url" and [f.id for f in app.store] == reference_ids(session, "url")
    app.top.keypress(SIZE, "o")  # the sorts are done: on from the list's order
    assert f"sorting {N:,} flows by size" in screen(app)
    await _settled(app)
    assert app.store.order == "size"


async def test_a_newer_order_overtakes_one_still_sorting(big_app) -> None:
    app, session = big_app
    run_command(app, "view.order.set size")
    run_command(app, "view.order.set url")
    await _settled(app)
    assert app.store.order == "url" and [f.id for f in app.store] == reference_ids(session, "url")


async def test_an_addon_awaits_the_command_and_a_bad_order_is_refused(big_app) -> None:
    app, _ = big_app
    ret: Any = app.master.commands.execute("view.order.set status")
    await ret  # an async command: awaited, the list is in the new order
    assert app.store.order == "status"
    run_command(app, "view.order.set colour")
    assert "order_key" in app.message and "colour" in app.message
    assert app.store.order == "status"


async def test_a_small_list_is_ordered_at_once(tmp_path) -> None:
    opts = Options()
    core_options(opts)
    app = App(Master(opts))
    path = str(tmp_path / "small.session")
    record(path, make_flows(50))
    session = Session.open(path)
    try:
        app.store.attach(session)
        await app.master.commands.execute("view.order.set size")
        assert app.store.order == "size" and "sorting" not in screen(app)
        assert [f.id for f in app.store] == reference_ids(session, "size")
    finally:
        app.store.close()
        session.close()


async def test_a_reopened_big_session_gets_its_stored_order_off_the_ui_thread_then_its_filter(big_app) -> None:
    """The view a session stored (order, filter): the order is sorted as `o` does, and the filter is applied
    once it is in (applied at once, it would overtake the sort)."""
    from interpose.tui import session as tui_session

    app, session = big_app
    app.master.session.restored = {"view": {"order": "size", "filter": "~d example", "reverse": False}}
    turns = LoopTurns(app)
    tui_session.restore_view(app)
    assert app.store.order == "time" and f"sorting {N:,} flows by size" in screen(app)
    await _settled(app)
    turns.stop()
    assert turns.before("size") > 2
    assert app.store.order == "size" and app.store.filter_expr == "~d example"
    shown = [f.id for f in app.store]
    assert shown and all("example" in f.request.host for f in app.store)
    assert shown == [i for i in reference_ids(session, "size") if i in set(shown)]  # the filtered flows, by size
