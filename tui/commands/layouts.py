"""Layouts (mitmproxy's `console_layout`): the flow list alone (`single`), with the focused flow's view beside
it (`horizontal`) or below it (`vertical`). The flow view follows the list's focus. `-` cycles them."""
from __future__ import annotations

from typing import Any

import urwid

from interpose.tui.commands.base import tui_command
from interpose.tui.widgets.flowview import FlowView

LAYOUTS = ("single", "horizontal", "vertical")


class Preview(urwid.WidgetPlaceholder):
    """The flow view beside or below the list: the list's focused flow (empty when there is none)."""

    def __init__(self, options: Any = None) -> None:
        self.view: FlowView | None = None
        self.options = options
        super().__init__(urwid.SolidFill(" "))

    def show(self, flow: Any | None, changed: Any = None) -> None:
        if flow is None:
            self.view = None
            self.original_widget = urwid.SolidFill(" ")
        elif self.view is None or self.view.flow is not flow:
            tab = self.view.tab if self.view is not None else 0
            self.view = FlowView(flow, self.options)
            if tab < len(self.view.tabs):
                self.view.tab = tab
            self.view.refresh()
            self.original_widget = urwid.LineBox(self.view)
        elif changed is not None and flow.id in changed:
            self.view.refresh()


def _preview(app: Any) -> Preview:
    p = getattr(app, "_preview", None)
    if p is None:
        p = app._preview = Preview(app.master.options)
    return p


def with_preview(app: Any, main: Any) -> Any:
    """The screen's main widget for the layout: the list alone, or the list and the preview."""
    layout = getattr(app.master.options, "console_layout", "single")
    if main is not app.flowlist or layout == "single":
        return main
    preview = _preview(app)
    preview.show(app.flowlist.focused_flow)
    if layout == "horizontal":
        return urwid.Columns([("weight", 1, main), ("weight", 1, preview)], dividechars=1, focus_column=0)
    return urwid.Pile([("weight", 1, main), ("weight", 1, preview)], focus_item=0)


def follow_focus(app: Any, changed: Any = None) -> None:
    """After a key or new flows: the preview shows the list's focused flow."""
    if getattr(app.master.options, "console_layout", "single") == "single" or app.current is not app.flowlist:
        return
    _preview(app).show(app.flowlist.focused_flow, changed)


def refresh_views(app: Any, changed: dict[str, Any], options: set[str]) -> None:
    """After the bus's messages: the layout follows `console_layout` (set at start, by `set`, in `O`), the
    preview follows the focus, and the flow views showing a changed flow are built again; all of them when
    an option they show changed (`showhost`: the request line's host)."""
    if "console_layout" in options:
        app.layout()
    every = "showhost" in options
    preview = getattr(app, "_preview", None)
    if every and preview is not None and preview.view is not None:
        preview.view.refresh()
    follow_focus(app, changed)
    cur = app.current
    messages = getattr(cur, "flow", None) is not None and getattr(cur.flow, "websocket", None) is not None
    if isinstance(cur, FlowView) and (every or cur.flow.id in changed or messages):
        cur.held_stage = next((stage for f, m, stage in app.held.values() if m is None and f is cur.flow), None)
        cur.refresh()


@tui_command("console.layout.cycle")
async def layout_cycle(app: Any) -> None:
    """The next layout: the list alone; list and flow side by side; stacked."""
    cur = app.master.options.console_layout
    nxt = LAYOUTS[(LAYOUTS.index(cur) + 1) % len(LAYOUTS)] if cur in LAYOUTS else "single"
    await app.core.set_options(console_layout=nxt)
    app.layout()
    app.notify(f"layout: {nxt}")


@tui_command("console.layout.options")
def layout_options(app: Any) -> list[str]:
    """The layouts there are."""
    return list(LAYOUTS)
