"""The repeater: edit a whole raw request, send it, see the response; several tabs, each with a history.

Keys (shown in the view): ctrl s sends, ctrl n / ctrl p switch tabs, ctrl w closes the tab,
ctrl o / ctrl l step back and forth in the tab's history, esc goes back to the flow list.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import urwid

from core import export
from tui.widgets.common import LinesWalker
from tui.widgets.flowview import response_lines

HELP = "ctrl s: send   ctrl n/p: next/previous tab   ctrl w: close tab   ctrl o/l: older/newer response   esc: back"


@dataclass
class Tab:
    title: str
    scheme: str
    host: str
    port: int
    text: str
    history: list[Any] = field(default_factory=list)
    shown: int = -1
    """Index into history of the response on screen (-1: the newest)."""


def tab_for(flow: Any) -> Tab:
    req = flow.request
    raw = export.raw_request(flow).decode("utf-8", "surrogateescape").replace("\r\n", "\n")
    return Tab(f"{req.method} {req.path[:24]}", req.scheme, req.host, req.port, raw)


class RepeaterView(urwid.WidgetWrap):
    context = "repeater"

    def __init__(self, on_send: Any) -> None:
        self.tabs: list[Tab] = []
        self.index = 0
        self.on_send = on_send
        self.tabbar = urwid.Text("")
        self.editor = urwid.Edit("", "", multiline=True)
        self.response = LinesWalker([[("dim", "(not sent yet: ctrl s sends)")]])
        self.response_box = urwid.LineBox(urwid.ListBox(self.response), title="Response")
        request_box = urwid.LineBox(urwid.Filler(self.editor, valign="top"), title="Request (edit freely)")
        self.pile = urwid.Pile([("pack", self.tabbar), ("weight", 1, request_box), ("weight", 1, self.response_box),
                                ("pack", urwid.Text(("dim", HELP)))])
        self.pile.focus_position = 1
        super().__init__(self.pile)

    @property
    def tab(self) -> Tab | None:
        return self.tabs[self.index] if self.tabs else None

    def add(self, tab: Tab) -> None:
        self._save()
        self.tabs.append(tab)
        self.index = len(self.tabs) - 1
        self._show()

    def _save(self) -> None:
        if self.tab is not None:
            self.tab.text = self.editor.edit_text

    def _show(self) -> None:
        bar: list[Any] = []
        for i, t in enumerate(self.tabs):
            bar += [("tab_active" if i == self.index else "tab", f" {i + 1}: {t.title} "), ("text", " ")]
        self.tabbar.set_text(bar or [("dim", "no tabs: R in the flow list sends a flow here")])
        tab = self.tab
        self.editor.set_edit_text(tab.text if tab else "")
        self.editor.set_edit_pos(len(self.editor.edit_text))  # at the end of the body, ready to add to it
        self.show_response()

    def show_response(self) -> None:
        tab = self.tab
        if tab is None or not tab.history:
            self.response.lines = [[("dim", "(not sent yet: ctrl s sends)")]]
            self.response_box.set_title("Response")
        else:
            i = tab.shown if tab.shown >= 0 else len(tab.history) - 1
            self.response.lines = response_lines(tab.history[i], "auto")
            self.response_box.set_title(f"Response {i + 1}/{len(tab.history)}")
        self.response.focus = 0
        self.response._modified()

    def record(self, tab: Tab, flow: Any) -> None:
        tab.history.append(flow)
        tab.shown = -1
        if tab is self.tab:
            self.show_response()

    def keypress(self, size: Any, key: str) -> str | None:
        tab = self.tab
        if key == "ctrl s" and tab is not None:
            self._save()
            self.on_send(tab)
            return None
        if key in ("ctrl n", "ctrl p") and self.tabs:
            self._save()
            self.index = (self.index + (1 if key == "ctrl n" else -1)) % len(self.tabs)
            self._show()
            return None
        if key == "ctrl w" and self.tabs:
            del self.tabs[self.index]
            self.index = max(0, min(self.index, len(self.tabs) - 1))
            self._show()
            return None
        if key in ("ctrl o", "ctrl l") and tab is not None and tab.history:
            cur = tab.shown if tab.shown >= 0 else len(tab.history) - 1
            tab.shown = max(0, min(cur + (-1 if key == "ctrl o" else 1), len(tab.history) - 1))
            self.show_response()
            return None
        if key == "esc":
            self._save()
            return key
        return super().keypress(size, key)
