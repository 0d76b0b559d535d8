"""mitmproxy's flow commands, on the flows a selector picks: marking, resuming, killing, reverting,
removing, duplicating, replaying, exporting, saving; the view's filter, order and focus."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Annotated

from interpose import command as api
from interpose.errors import InterposeError
from interpose.model.flow import Flow
from interpose.runtime.builtins.save import parse_target
from interpose.runtime.commands import CommandError
from interpose.store import export, har
from interpose.store.flowfile import FlowWriter
from interpose.tui import clipboard
from interpose.tui import session as tui_session
from interpose.tui.actions.order import ORDERS, change_order
from interpose.tui.actions.search import apply_filter
from interpose.tui.commands.base import tui_command
from interpose.tui.ui import UI
from interpose.tui.widgets.flowview import FlowView

EXPORT_FORMATS = api.Choice(lambda: sorted(export.FORMATS))


def _changed(app: UI, flows: Sequence[Flow]) -> None:
    for f in flows:
        if app.store.get(f.id) is not None:
            app.store.update(f)
            tui_session.record(app, f)  # a mark or a comment is kept in the session too
    app.flowlist.walker.changed()
    if isinstance(app.current, FlowView):
        app.current.refresh()
    app.refresh_status()


@tui_command("flow.mark.toggle")
def mark_toggle(app: UI, flows: Sequence[Flow]) -> None:
    """Mark the flows that are not marked, unmark those that are."""
    for f in flows:
        f.marked = not f.marked
    _changed(app, flows)


@tui_command("flow.comment")
def comment(app: UI, flow: Flow, *comment: str) -> None:
    """Set the flow's comment (the rest of the line; empty removes it). It shows in the list and
    `~comment REGEX` matches it."""
    flow.comment = " ".join(comment)
    _changed(app, [flow])


@tui_command("flow.mark")
def mark(app: UI, flows: Sequence[Flow], marker: str) -> None:
    """Mark the flows (`true`, or any mark) or unmark them (`false` or an empty mark)."""
    on = marker.lower() not in ("", "false", "no", "off", "0")
    for f in flows:
        f.marked = on
    _changed(app, flows)
    app.notify(f"{'marked' if on else 'unmarked'} {len(flows)}")


@tui_command("flow.resume")
def resume(app: UI, flows: Sequence[Flow]) -> None:
    """Resume the flows that are held (and their held messages)."""
    ids = {f.id for f in flows}
    n = 0
    for flow, message, _stage in list(app.held.values()):
        if flow.id in ids:
            app.core.resume(flow, message)
            n += 1
    app.notify(f"resumed {n}")


@tui_command("flow.kill")
def kill(app: UI, flows: Sequence[Flow]) -> None:
    """Kill the flows that are still going (held or not)."""
    live = [f for f in flows if getattr(f, "killable", False) or f.intercepted]
    for f in live:
        app.core.kill(f)
    app.notify(f"killed {len(live)}")


@tui_command("flow.revert")
def revert(app: UI, flows: Sequence[Flow]) -> None:
    """Undo the edits made to the flows."""
    edited = [f for f in flows if f.modified]
    for f in edited:
        f.revert()
    _changed(app, edited)
    app.notify(f"reverted {len(edited)}" if edited else "nothing to revert")


@tui_command("view.flows.remove")
def remove(app: UI, flows: Sequence[Flow]) -> None:
    """Delete the flows from the list (held ones are killed)."""
    held = [f for f in flows if f.intercepted]
    if held:
        app.core.remove_flows(held)
    for f in flows:
        if app.store.get(f.id) is not None:
            app.store.remove(f)
    tui_session.deleted(app, [f for f in flows if not f.intercepted])  # held ones: by remove_flows
    if isinstance(app.current, FlowView) and app.current.flow in flows:
        app.pop()
    _changed(app, [])


@tui_command("view.flows.duplicate")
def duplicate(app: UI, flows: Sequence[Flow]) -> None:
    """Add a copy of each flow to the list."""
    copies = [f.copy() for f in flows]
    for f in copies:
        app.store.add(f)
    tui_session.added(app, copies)
    _changed(app, [])


@tui_command("replay.client")
def replay_client(app: UI, flows: Sequence[Flow]) -> None:
    """Send the requests of the flows again, each as a new flow."""
    http = [f for f in flows if f.type == "http"]
    for f in http:
        app.spawn(app.core.replay(f))
    app.notify(f"replaying {len(http)} request{'s' if len(http) != 1 else ''}")


@tui_command("view.filter.set")
def filter_set(app: UI, filter_expr: str = "") -> None:
    """Show only the flows matching a filter expression (empty: all)."""
    apply_filter(app, filter_expr.strip() or None)
    _changed(app, [])


@tui_command("view.order.set")
async def order_set(app: UI, order_key: Annotated[str, api.Choice(*ORDERS)]) -> None:
    """Order the list by time, method, url, size, duration or status."""
    sorting = change_order(app, order_key)  # as `o` does: a big paged list is sorted off the UI thread
    if sorting is not None:
        await sorting


@tui_command("view.order.reverse")
def order_reverse(app: UI, boolean: bool) -> None:
    """Reverse the order of the list (true) or not (false)."""
    app.store.set_reverse(boolean)
    _changed(app, [])


@tui_command("view.focus.go")
def focus_go(app: UI, offset: int) -> None:
    """Focus the flow at this position in the list (0 the first, -1 the last)."""
    n = len(app.store)
    if not n:
        raise CommandError("view.focus.go: no flows")
    app.flowlist.focus_index(offset if offset >= 0 else n + offset)
    app.follow = False
    _changed(app, [])


@tui_command("view.focus.next")
def focus_next(app: UI) -> None:
    """Focus the next flow."""
    app.flowlist.focus_index(app.flowlist.walker.focus + 1)
    _changed(app, [])


@tui_command("view.focus.prev")
def focus_prev(app: UI) -> None:
    """Focus the previous flow."""
    app.flowlist.focus_index(app.flowlist.walker.focus - 1)
    _changed(app, [])


def _export(format: str, flow: Flow) -> str | bytes:
    if flow.type != "http":
        raise CommandError("only HTTP flows can be exported")
    return export.FORMATS[format](flow)


@tui_command("export.clip")
def export_clip(app: UI, format: Annotated[str, EXPORT_FORMATS], flow: Flow) -> None:
    """Copy a flow as curl, httpie or raw HTTP to the clipboard (OSC 52)."""
    data = _export(format, flow)
    clipboard.copy(app, data if isinstance(data, str) else data.decode("utf-8", "replace"))
    app.notify(f"{format} copied to the clipboard")


@tui_command("export.file")
def export_file(app: UI, format: Annotated[str, EXPORT_FORMATS], flow: Flow, path: api.Path) -> None:
    """Write a flow as curl, httpie or raw HTTP to a file."""
    data = _export(format, flow)
    with open(path, "w" if isinstance(data, str) else "wb") as f:
        f.write(data)
    app.notify(f"{format} written to {path}")


@tui_command("save.file")
def save_file(app: UI, flows: Sequence[Flow], path: api.Path) -> None:
    """Save the flows to a flow file (`+PATH` appends)."""
    target, append = parse_target(path)
    try:
        with FlowWriter(os.path.expanduser(target), append=append) as writer:
            for f in flows:
                writer.add(f)
    except (InterposeError, OSError) as e:
        raise CommandError(f"cannot save to {target}: {getattr(e, 'strerror', None) or e}") from None
    app.notify(f"saved {len(flows)} flows to {target}")


@tui_command("save.har")
def save_har(app: UI, flows: Sequence[Flow], path: api.Path) -> None:
    """Save the flows to a HAR file."""
    try:
        har.write(path, list(flows))
    except (InterposeError, OSError) as e:
        raise CommandError(f"cannot save to {path}: {getattr(e, 'strerror', None) or e}") from None
    app.notify(f"saved {len(flows)} flows to {path}")
