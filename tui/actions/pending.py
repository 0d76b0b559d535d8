"""The pending pane (`p`): everything held, flows and single messages across all flows, and what can be
done to the focused one (open, forward, kill, drop, edit, inject a new message beside it)."""
from __future__ import annotations

from typing import Any

from interpose.tui import editing
from interpose.tui.actions.intercept import resume_item
from interpose.tui.actions.registry import action
from interpose.tui.format import shown_flow
from interpose.tui.ui import UI
from interpose.tui.widgets.flowview import FlowView
from interpose.tui.widgets.panes import PendingPane


@action("pending.show")
def pending_show(app: UI, size: Any) -> None:
    if isinstance(app.current, PendingPane):
        app.pop()
        return
    app.push(PendingPane(list(app.held.values())))


def _pending(app: UI) -> tuple[Any, Any, str] | None:
    cur = app.current
    return cur.focused if isinstance(cur, PendingPane) else None


@action("pending.open")
def pending_open(app: UI, size: Any) -> None:
    item = _pending(app)
    if item is None:
        return
    flow, msg, _ = item
    view = FlowView(shown_flow(flow), app.master.options)
    if msg is not None:
        view.show_tab("Messages")
    app.push(view)


@action("pending.resume")
def pending_resume(app: UI, size: Any) -> None:
    item = _pending(app)
    if item is not None:
        resume_item(app, item[0], item[1])


@action("pending.kill")
def pending_kill(app: UI, size: Any) -> None:
    item = _pending(app)
    if item is not None:
        app.core.kill(item[0])


@action("pending.drop")
def pending_drop(app: UI, size: Any) -> None:
    item = _pending(app)
    if item is not None and item[1] is not None:
        app.core.drop(item[1])
    elif item is not None:
        app.notify("only a held message can be dropped; X kills a flow")


@action("pending.edit")
def pending_edit(app: UI, size: Any) -> None:
    item = _pending(app)
    if item is None:
        return
    flow, msg, _ = item
    if msg is None:
        pending_open(app, size)
        app.notify("e edits; a forwards")
        return
    app.spawn(editing.edit_message(app, msg))


@action("pending.inject")
def pending_inject(app: UI, size: Any) -> None:
    item = _pending(app)
    flow = item[0] if item is not None else None
    target = getattr(flow, "websocket", None) or flow
    if target is None or not hasattr(target, "inject") or not target.live:
        app.notify("inject needs a live WebSocket or TCP flow")
        return

    def direction(key: str | None) -> None:
        if key not in ("c", "s"):
            return

        async def inject() -> None:
            towards = "to the server" if key == "c" else "to the client"
            text = await editing.compose(app, f"New message {towards} (several lines allowed)", "send")
            if text is None:
                return
            try:
                await app.core.inject(target, text, from_client=(key == "c"))
            except RuntimeError as e:
                app.notify(str(e), "error")
                return
            app.notify(f"injected {len(text.encode())} bytes {towards}")
        app.spawn(inject())
    app.ask_key("Inject as if from the (c)lient (to the server) or the (s)erver (to the client)? ", direction)
