"""Sticky edits: `s` turns the edit of a held flow into a standing rule, `K` keeps a response to answer
matching requests with, `S` lists the rules (`d` deletes one). The rules themselves are tui/sticky.py."""
from __future__ import annotations

from typing import Any

from interpose.flowfilter import FilterError
from interpose.tui.actions.registry import action, focused_flow
from interpose.tui.sticky import default_filter, rule_from_edit, rule_from_response
from interpose.tui.ui import UI
from interpose.tui.widgets.flowview import FlowView
from interpose.tui.widgets.rules import RulesView


@action("sticky.make")
def sticky_make(app: UI, size: Any) -> None:
    view = app.current
    if not isinstance(view, FlowView) or view.flow.type != "http" or app.sticky is None:
        return
    flow = view.flow
    original = flow._backup
    if original is None:
        app.notify("edit the flow first (e), then s makes the edit stick")
        return
    part = "response" if view.tab_name == "Response" else "request"
    rule = rule_from_edit(original, flow, part)
    if rule is None:
        app.notify(f"the {part} was not changed")
        return
    app.sticky.add(rule)
    app.notify(f"sticky rule added: {rule.describe()[:80]}")


@action("sticky.respond")
def sticky_respond(app: UI, size: Any) -> None:
    """`K`: keep the flow's response (as edited) and answer matching requests with it from now on."""
    flow = focused_flow(app)
    if flow is not None and flow.type == "websocket":
        flow = flow.handshake_flow
    if flow is None or flow.type != "http" or app.sticky is None:
        app.notify("K keeps the response of an HTTP flow")
        return
    if flow.response is None:
        app.notify("this flow has no response (yet) to keep", "warn")
        return
    sticky = app.sticky

    def done(text: str | None) -> None:
        if text is None or not text.strip():
            return
        try:
            rule = rule_from_response(flow, text.strip())
        except ValueError as e:
            what = "invalid filter: " if isinstance(e, FilterError) else ""
            app.notify(f"{what}{str(e).splitlines()[0]}", "error")
            return
        sticky.add(rule)
        app.notify(f"saved response rule added: {rule.describe()[:80]}")
    app.ask("Answer requests matching (with this response): ", done, default_filter(flow))


@action("sticky.show")
def sticky_show(app: UI, size: Any) -> None:
    if app.sticky is not None:
        app.push(RulesView(app.sticky))


@action("sticky.delete")
def sticky_delete(app: UI, size: Any) -> None:
    cur = app.current
    if isinstance(cur, RulesView) and app.sticky is not None and app.sticky.rules:
        app.sticky.remove(min(cur.walker.focus, len(app.sticky.rules) - 1))
        cur.reload()
        app.notify("rule deleted")
