"""The flow list: moving, following new flows, ordering (tui/actions/order.py), marking, deleting,
duplicating, clearing."""
from __future__ import annotations

from typing import Any

from interpose.tui import session as tui_session
from interpose.tui.actions.order import ORDERS, change_order, order_coming
from interpose.tui.actions.registry import action, focused_flow
from interpose.tui.ui import UI
from interpose.tui.widgets.flowview import FlowView


def _move(app: UI, delta: int | None = None, to: int | None = None) -> None:
    lb = app.flowlist
    if lb.empty():
        return
    target = to if to is not None else lb.walker.focus + (delta or 0)
    lb.focus_index(target)
    app.follow = lb.walker.focus == len(app.store) - 1 and app.follow


@action("list.down")
def list_down(app: UI, size: Any) -> None:
    _move(app, 1)


@action("list.up")
def list_up(app: UI, size: Any) -> None:
    _move(app, -1)
    app.follow = False


@action("list.page_down")
def list_page_down(app: UI, size: Any) -> None:
    app.flowlist.page(1, size)


@action("list.page_up")
def list_page_up(app: UI, size: Any) -> None:
    app.flowlist.page(-1, size)
    app.follow = False


@action("list.first")
def list_first(app: UI, size: Any) -> None:
    _move(app, to=0)
    app.follow = False


@action("list.last")
def list_last(app: UI, size: Any) -> None:
    _move(app, to=len(app.store) - 1)


@action("list.follow")
def list_follow(app: UI, size: Any) -> None:
    app.follow = not app.follow
    if app.follow:
        _move(app, to=len(app.store) - 1)
    app.notify(f"follow new flows: {'on' if app.follow else 'off'}")
    app.refresh_status()


@action("list.order")
def list_order(app: UI, size: Any) -> None:
    cur = order_coming(app)  # pressed again while sorting: the order after the one coming
    change_order(app, ORDERS[(ORDERS.index(cur) + 1) % len(ORDERS)] if cur in ORDERS else "time")


@action("list.reverse")
def list_reverse(app: UI, size: Any) -> None:
    app.store.set_reverse(not app.store.reverse)
    app.flowlist.walker.changed()
    app.notify(f"order reversed: {'yes' if app.store.reverse else 'no'}")
    app.refresh_status()


@action("list.marked_only")
def list_marked_only(app: UI, size: Any) -> None:
    app.store.set_marked_only(not app.store.show_marked_only)
    app.flowlist.walker.changed()
    app.notify(f"only marked flows: {'on' if app.store.show_marked_only else 'off'}")


@action("list.clear")
def list_clear(app: UI, size: Any) -> None:
    tui_session.deleted(app, app.store.all_flows())
    app.store.clear()
    app.flowlist.walker.changed()
    app.refresh_status()


@action("list.delete_matching")
def list_delete_matching(app: UI, size: Any) -> None:
    def done(text: str | None) -> None:
        if not text or not text.strip():
            return
        before = list(app.store.all_flows())
        n = app.store.delete_matching(text.strip())
        if n:
            tui_session.deleted(app, [f for f in before if app.store.get(f.id) is None])
        app.flowlist.walker.changed()
        app.notify(f"deleted {n} flows matching {text.strip()}")
    app.ask("Delete every flow matching: ", done)


@action("flow.mark")
def flow_mark(app: UI, size: Any) -> None:
    flow = focused_flow(app)
    if flow is not None:
        flow.marked = not flow.marked
        app.store.update(flow)
        app.flowlist.walker.changed()
        tui_session.record(app, flow)


@action("flow.delete")
def flow_delete(app: UI, size: Any) -> None:
    flow = focused_flow(app)
    if flow is None:
        return
    if flow.intercepted:
        app.core.remove_flows([flow])  # a held one is killed; other viewers hear FlowRemoved
    else:
        tui_session.deleted(app, [flow])
    app.store.remove(flow)
    app.flowlist.walker.changed()
    if isinstance(app.current, FlowView):
        app.pop()
    app.refresh_status()


@action("flow.duplicate")
def flow_duplicate(app: UI, size: Any) -> None:
    flow = focused_flow(app)
    if flow is not None:
        copy = flow.copy()
        app.store.add(copy)
        tui_session.added(app, [copy])
        app.flowlist.walker.changed()
        app.refresh_status()
