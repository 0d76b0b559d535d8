"""More of mitmproxy's commands: the view's properties, the event store, loading flows, injecting
WebSocket/TCP messages, the flow view's content mode and tabs, the command history, keymap files."""
from __future__ import annotations

from typing import Annotated, Any

from interpose import command as api
from interpose.errors import InterposeError
from interpose.model.flow import Flow
from interpose.runtime.builtins import readfile
from interpose.runtime.commands import CommandError
from interpose.store import export
from interpose.tui import actions, contentviews, keymap
from interpose.tui import session as tui_session
from interpose.tui.actions.order import ORDERS
from interpose.tui.commands.base import tui_command
from interpose.tui.widgets.flowview import FlowView


@tui_command("view.clear_unmarked")
def clear_unmarked(app: Any) -> None:
    """Delete every flow that is not marked."""
    gone = [f for f in app.store.all_flows() if not f.marked]
    for f in gone:
        app.store.remove(f)
    tui_session.deleted(app, gone)
    app.flowlist.walker.changed()
    app.refresh_status()


@tui_command("view.flows.load")
def flows_load(app: Any, path: api.Path) -> None:
    """Add the flows of a flow file or HAR file to the list."""
    try:
        preloaded = readfile.check(path)
    except InterposeError as e:
        raise CommandError(str(e)) from None
    app.spawn(tui_session.load_file(app, path, preloaded))


@tui_command("eventstore.clear")
def eventstore_clear(app: Any) -> None:
    """Empty the event log."""
    app.eventlog.entries.clear()
    app.eventlog.dirty = True
    app.eventlog.refresh()


@tui_command("view.order")
def view_order(app: Any) -> str:
    """The order of the list now."""
    return str(app.store.order)


@tui_command("view.order.options")
def view_order_options(app: Any) -> list[str]:
    """The orders the list can take."""
    return list(ORDERS)


@tui_command("view.properties.length")
def view_length(app: Any) -> int:
    """How many flows the list shows."""
    return len(app.store)


@tui_command("view.properties.marked")
def view_marked(app: Any) -> bool:
    """Whether the list shows only marked flows."""
    return bool(app.store.show_marked_only)


@tui_command("view.properties.inbounds")
def view_inbounds(app: Any, index: int) -> bool:
    """Whether a position is inside the list."""
    return 0 <= index < len(app.store)


@tui_command("export.formats")
def export_formats(app: Any) -> list[str]:
    """The formats export.clip and export.file take."""
    return sorted(export.FORMATS)


@tui_command("console.key.contexts")
def key_contexts(app: Any) -> list[str]:
    """The contexts keys can be bound in."""
    return list(keymap.CONTEXTS)


@tui_command("console.keymap.load")
def keymap_load(app: Any, path: api.Path) -> None:
    """Add the bindings of a keys.yaml file (mitmproxy's format)."""
    from interpose.tui.commands.run import load_keys
    load_keys(app, path, reset=False)


@tui_command("commands.history.get")
def history_get(app: Any) -> list[str]:
    """The command history, oldest first."""
    return list(app.command_history.lines)


@tui_command("commands.history.clear")
def history_clear(app: Any) -> None:
    """Forget the command history (the file too)."""
    app.command_history.lines.clear()
    app.command_history.save()


@tui_command("commands.history.add")
def history_add(app: Any, command: str) -> None:
    """Add a line to the command history."""
    app.command_history.add(command)


def _inject(app: Any, flow: Flow, to_client: bool, message: str | bytes, kind: str) -> None:
    target = getattr(flow, "websocket", None) if kind == "websocket" else flow
    if target is None or getattr(target, "type", None) != kind:
        raise CommandError(f"inject.{kind}: the flow is not a {'WebSocket' if kind == 'websocket' else 'TCP'} flow")
    app.spawn(app.core.inject(target, message, from_client=not to_client))
    app.notify(f"injected to the {'client' if to_client else 'server'}")


@tui_command("inject.websocket")
def inject_websocket(app: Any, flow: Flow, to_client: bool, message: str, is_text: bool = True) -> None:
    """Send a message into a WebSocket flow, to the client (true) or the server (false)."""
    _inject(app, flow, to_client, message if is_text else message.encode(), "websocket")


@tui_command("inject.tcp")
def inject_tcp(app: Any, flow: Flow, to_client: bool, message: str) -> None:
    """Send data into a raw TCP flow, to the client (true) or the server (false)."""
    _inject(app, flow, to_client, message, "tcp")


@tui_command("console.flowview.mode.set")
def flowview_mode_set(app: Any, mode: Annotated[str, api.Choice(lambda: list(contentviews.view_names()))]) -> None:
    """The content view of the flow view (auto, json, hex, ...)."""
    cur = app.current
    if not isinstance(cur, FlowView):
        raise CommandError("console.flowview.mode.set: no flow is open")
    cur.mode = mode
    cur.refresh()


@tui_command("console.flowview.mode")
def flowview_mode(app: Any) -> str:
    """The content view of the flow view now."""
    cur = app.current
    return str(cur.mode) if isinstance(cur, FlowView) else "auto"


@tui_command("console.flowview.mode.options")
def flowview_mode_options(app: Any) -> list[str]:
    """The content views there are."""
    return list(contentviews.view_names())


@tui_command("console.nav.right")
def nav_right(app: Any) -> None:
    """Flow view: the next tab."""
    actions.run(app, "view.next_tab", getattr(app, "last_size", None))


@tui_command("console.nav.left")
def nav_left(app: Any) -> None:
    """Flow view: the previous tab."""
    actions.run(app, "view.prev_tab", getattr(app, "last_size", None))


@tui_command("console.nav.next")
def nav_next(app: Any) -> None:
    """Flow view: the next tab (mitmproxy's Tab)."""
    nav_right(app)


@tui_command("console.nav.select")
def nav_select(app: Any) -> None:
    """Enter on the focused line of the current view."""
    cur = app.current
    if cur is app.flowlist:
        flow = app.flowlist.focused_flow
        if flow is not None:
            app.push(FlowView(flow, app.master.options))
