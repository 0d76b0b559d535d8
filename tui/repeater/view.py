"""The repeater: edit a whole raw request, send it, see the response; several tabs, each with a history.
A WebSocket flow gets a WebSocket tab: its handshake (editable), a connection the user opens again and
again, a message line and the live list of messages either way.

Keys (shown in the view): ctrl s sends (WebSocket: connects, closing the old connection first),
ctrl n / ctrl p switch tabs, ctrl w closes the tab, ctrl o / ctrl l step back and forth in the tab's
history, esc goes back to the flow list. WebSocket tabs: enter sends the message line, ctrl t switches
it between text and hex, tab moves between the message line and the handshake, ctrl d disconnects.
The view never touches a socket: `on_send(tab)` and `on_ws(tab, op, arg)` do (see tui/actions/repeater.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import urwid

from interpose.store import export
from interpose.tui.repeater.websocket import Entry, WsTab, entry_parts
from interpose.tui.widgets.common import LinesWalker
from interpose.tui.widgets.flowview import response_lines

HELP = "ctrl s: send   ctrl n/p: next/previous tab   ctrl w: close tab   ctrl o/l: older/newer response   esc: back"
WS_HELP = ("ctrl s: (re)connect   enter: send   ctrl t: text/hex   tab: message/handshake   ctrl d: disconnect   "
           "ctrl n/p: tabs   ctrl w: close tab   esc: back   f1: keys")
_STATE = {"new": "not connected (ctrl s connects)", "connecting": "connecting…", "open": "connected",
          "closed": "closed (ctrl s connects again)", "failed": "failed (ctrl s tries again)"}


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


def _raw_request(flow: Any) -> str:
    return export.raw_request(flow).decode("utf-8", "surrogateescape").replace("\r\n", "\n")


def tab_for(flow: Any) -> Tab | WsTab:
    """A new tab for a flow: a WebSocket tab for a WebSocket (or its handshake), else an HTTP one."""
    if flow.type == "websocket":
        flow = flow.handshake_flow
    req = flow.request
    if getattr(flow, "websocket", None) is not None:
        return WsTab(f"WS {req.path[:24]}", req.scheme, req.host, req.port, _raw_request(flow))
    return Tab(f"{req.method} {req.path[:24]}", req.scheme, req.host, req.port, _raw_request(flow))


def entry_line(entry: Entry) -> list[Any]:
    arrow, clock, size, content = entry_parts(entry)
    attr = {"sent": "key", "received": "status_2xx", "info": "dim", "error": "error"}[entry.kind]
    return [(attr, f"{arrow} "), ("dim", f"{clock} "), ("dim", f"{size:>10} " if size else ""),
            ("error" if entry.kind == "error" else "text", content)]


class RepeaterView(urwid.WidgetWrap):
    context = "repeater"

    def __init__(self, on_send: Any, on_ws: Any = None) -> None:
        self.tabs: list[Tab | WsTab] = []
        self.index = 0
        self.on_send = on_send
        self.on_ws = on_ws
        self.tabbar = urwid.Text("")
        self.editor = urwid.Edit("", "", multiline=True)
        self.response = LinesWalker([[("dim", "(not sent yet: ctrl s sends)")]])
        self.response_box = urwid.LineBox(urwid.ListBox(self.response), title="Response")
        request_box = urwid.LineBox(urwid.Filler(self.editor, valign="top"), title="Request (edit freely)")
        self.http_pile = urwid.Pile([("pack", self.tabbar), ("weight", 1, request_box),
                                     ("weight", 1, self.response_box), ("pack", urwid.Text(("dim", HELP)))])
        self.http_pile.focus_position = 1
        # WebSocket tabs share the tab bar and the editor (for the handshake)
        self.messages = LinesWalker([])
        self.messages_box = urwid.LineBox(urwid.ListBox(self.messages), title="Messages")
        self.input = urwid.Edit("text › ", "")
        handshake_box = urwid.LineBox(urwid.Filler(self.editor, valign="top"),
                                      title="WebSocket handshake (edit freely)")
        self.ws_pile = urwid.Pile([("pack", self.tabbar), ("weight", 1, handshake_box),
                                   ("weight", 2, self.messages_box), ("pack", self.input),
                                   ("pack", urwid.Text(("dim", WS_HELP)))])
        self.ws_pile.focus_position = 3
        self.body = urwid.WidgetPlaceholder(self.http_pile)
        super().__init__(self.body)

    @property
    def tab(self) -> Tab | WsTab | None:
        return self.tabs[self.index] if self.tabs else None

    def add(self, tab: Tab | WsTab) -> None:
        self._save()
        self.tabs.append(tab)
        self.index = len(self.tabs) - 1
        self._show()

    def _save(self) -> None:
        tab = self.tab
        if tab is not None:
            tab.text = self.editor.edit_text
            if isinstance(tab, WsTab):
                tab.draft = self.input.edit_text

    def _show(self) -> None:
        bar: list[Any] = []
        for i, t in enumerate(self.tabs):
            bar += [("tab_active" if i == self.index else "tab", f" {i + 1}: {t.title} "), ("text", " ")]
        self.tabbar.set_text(bar or [("dim", "no tabs: R in the flow list sends a flow here")])
        tab = self.tab
        self.editor.set_edit_text(tab.text if tab else "")
        self.editor.set_edit_pos(len(self.editor.edit_text))  # at the end of the body, ready to add to it
        if isinstance(tab, WsTab):
            self.body.original_widget = self.ws_pile
            self.input.set_edit_text(tab.draft)
            self.input.set_edit_pos(len(tab.draft))
            self.ws_pile.focus_position = 3
            self.show_messages()
        else:
            self.body.original_widget = self.http_pile
            self.show_response()

    def show_response(self) -> None:
        tab = self.tab
        if not isinstance(tab, Tab) or not tab.history:
            self.response.lines = [[("dim", "(not sent yet: ctrl s sends)")]]
            self.response_box.set_title("Response")
        else:
            i = tab.shown if tab.shown >= 0 else len(tab.history) - 1
            self.response.lines = response_lines(tab.history[i], "auto")
            self.response_box.set_title(f"Response {i + 1}/{len(tab.history)}")
        self.response.focus = 0
        self.response._modified()

    def show_messages(self) -> None:
        """Draw the current WebSocket tab's message list, following the newest line."""
        tab = self.tab
        if not isinstance(tab, WsTab):
            return
        self.input.set_caption(("key", "hex › ") if tab.hex_mode else "text › ")
        self.messages_box.set_title(f"Messages: {_STATE.get(tab.state, tab.state)}")
        lines = [entry_line(e) for e in tab.entries]
        self.messages.lines = lines or [[("dim", "(no messages yet: ctrl s connects, then type below and enter)")]]
        self.messages.focus = len(self.messages.lines) - 1
        self.messages._modified()

    def ws_changed(self, tab: WsTab) -> None:
        """Something happened on a tab's connection (a message, a state change)."""
        if tab is self.tab:
            self.show_messages()

    def record(self, tab: Tab, flow: Any) -> None:
        tab.history.append(flow)
        tab.shown = -1
        if tab is self.tab:
            self.show_response()

    def close_tab(self) -> None:
        tab = self.tab
        if tab is None:
            return
        if isinstance(tab, WsTab) and self.on_ws is not None:
            self.on_ws(tab, "close", None)
        del self.tabs[self.index]
        self.index = max(0, min(self.index, len(self.tabs) - 1))
        self._show()

    def _ws_keypress(self, size: Any, tab: WsTab, key: str) -> str | None:
        if key == "ctrl s":
            self._save()
            self.on_ws(tab, "connect", None)
            return None
        if key == "enter" and self.ws_pile.focus_position == 3:
            if self.on_ws(tab, "send", (self.input.edit_text, tab.hex_mode)):
                self.input.set_edit_text("")
            return None
        if key == "ctrl t":
            tab.hex_mode = not tab.hex_mode
            self.show_messages()
            return None
        if key == "ctrl d":
            self.on_ws(tab, "disconnect", None)
            return None
        if key == "tab":
            self._save()
            self.ws_pile.focus_position = 1 if self.ws_pile.focus_position == 3 else 3
            return None
        if key in ("page up", "page down"):
            self.messages.set_focus(self.messages.focus + (-10 if key == "page up" else 10))
            return None
        return super().keypress(size, key)

    def keypress(self, size: Any, key: str) -> str | None:
        tab = self.tab
        if key in ("ctrl n", "ctrl p") and self.tabs:
            self._save()
            self.index = (self.index + (1 if key == "ctrl n" else -1)) % len(self.tabs)
            self._show()
            return None
        if key == "ctrl w" and self.tabs:
            self.close_tab()
            return None
        if key == "esc":
            self._save()
            return key
        if isinstance(tab, WsTab) and self.on_ws is not None:
            return self._ws_keypress(size, tab, key)
        if key == "ctrl s" and tab is not None:
            self._save()
            self.on_send(tab)
            return None
        if key in ("ctrl o", "ctrl l") and isinstance(tab, Tab) and tab.history:
            cur = tab.shown if tab.shown >= 0 else len(tab.history) - 1
            tab.shown = max(0, min(cur + (-1 if key == "ctrl o" else 1), len(tab.history) - 1))
            self.show_response()
            return None
        return super().keypress(size, key)
