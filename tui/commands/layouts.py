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

    def __init__(self) -> None:
        self.view: FlowView | None = None
        super().__init__(urwid.SolidFill(" "))

    def show(self, flow: Any | None, changed: Any = None) -> None:
        if flow is None:
            self.view = None
            self.original_widget = urwid.SolidFill(" ")
        elif self.view is None or self.view.flow is not flow:
            tab = self.view.tab if self.view is not None else 0
            self.view = FlowView(flow)
            if tab < len(self.view.tabs):
                self.view.tab = tab
            self.view.refresh()
            self.original_widget = urwid.LineBox(self.view)
        elif changed is not None and flow.id in changed:
            self.view.refresh()


def _preview(app: Any) -> Preview:
    p = getattr(app, "_preview", None)
    if p is None:
        p = app._preview = Preview()
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
