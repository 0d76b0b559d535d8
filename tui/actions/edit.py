"""Changing a flow: `e` edits the part in view (tui/editing.py does the work), `V` brings back the original."""
from __future__ import annotations

from typing import Any

from interpose.tui import editing
from interpose.tui import session as tui_session
from interpose.tui.actions.registry import action, focused_flow
from interpose.tui.ui import UI
from interpose.tui.widgets.flowview import FlowView


@action("flow.edit")
def flow_edit(app: UI, size: Any) -> None:
    editing.start(app, focused_flow(app))


@action("flow.revert")
def flow_revert(app: UI, size: Any) -> None:
    flow = focused_flow(app)
    if flow is not None and flow.modified:
        flow.revert()
        app.store.update(flow)
        if not flow.intercepted:
            tui_session.record(app, flow)  # the session holds the original again, and no backup
        if isinstance(app.current, FlowView):
            app.current.refresh()
        app.notify("edits reverted")
    else:
        app.notify("nothing to revert")
