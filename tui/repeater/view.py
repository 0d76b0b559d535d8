"""The repeater: edit a whole raw request, send it, see the response; several tabs, each with a history.
A WebSocket flow gets a WebSocket tab: its handshake (editable), a connection the user opens again and
again, a message line and the live list of messages either way.

Keys: the editor takes what it needs (text, Enter, arrows, Backspace, ...); a key it leaves runs the
command bound to it in the `repeater` context of the keymap (ctrl s `repeater.go`: send, or connect a
WebSocket tab; ctrl n / ctrl p `repeater.tab`; ctrl w `repeater.close`; ctrl o / ctrl l
`repeater.history`; ctrl t / ctrl d the WebSocket tab's hex switch and disconnect; esc back), so
keys.yaml and console.key.bind rebind them. A WebSocket tab's own keys stay the view's: enter on the
message line sends it, tab moves between the message line and the handshake, page up/down scroll the
messages. The view never touches a socket: `on_send(tab)` and `on_ws(tab, op, arg)` do (see
tui/actions/repeater.py); `on_key(line)` runs a command line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import urwid

from interpose.store import export
from interpose.tui import keymap
from interpose.tui.repeater.websocket import Entry, WsTab, entry_parts
from interpose.tui.widgets.common import LinesWalker
from interpose.tui.widgets.flowview import response_lines

HELP = (("repeater.go", "send"), ("repeater.tab next", "next tab"), ("repeater.tab prev", "previous tab"),
        ("repeater.close", "close tab"), ("repeater.history older", "older response"),
        ("repeater.history newer", "newer response"), ("console.view.pop", "back"))
WS_HELP = (("repeater.go", "(re)connect"), ("", "enter: send"), ("repeater.ws_hex", "text/hex"),
           ("", "tab: message/handshake"), ("repeater.ws_disconnect", "disconnect"), ("repeater.tab next", "next tab"),
           ("repeater.close", "close tab"), ("console.view.pop", "back"), ("console.view.help", "keys"))
"""The hint line under each kind of tab: (command, label), each shown with the keys bound to it now (a
command bound to no key is left out); an empty command: the view's own key, as it is."""
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


def hint(pairs: tuple[tuple[str, str], ...]) -> str:
    """The hint line, with the keys as bound now in the `repeater` context."""
    parts = []
    for cmd, label in pairs:
        if not cmd:
            parts.append(label)
            continue
        keys = [k for b in keymap.BINDINGS if b.context == "repeater" and b.cmd == cmd for k in b.keys]
        if keys:
            parts.append(f"{'/'.join(keys)}: {label}")
    return "   ".join(parts)


def entry_line(entry: Entry) -> list[Any]:
    arrow, clock, size, content = entry_parts(entry)
    attr = {"sent": "key", "received": "status_2xx", "info": "dim", "error": "error"}[entry.kind]
    return [(attr, f"{arrow} "), ("dim", f"{clock} "), ("dim", f"{size:>10} " if size else ""),
            ("error" if entry.kind == "error" else "text", content)]


class RepeaterView(urwid.WidgetWrap):
    context = "repeater"

    def __init__(self, on_send: Any, on_ws: Any = None, on_key: Any = None) -> None:
        self.tabs: list[Tab | WsTab] = []
        self.index = 0
        self.on_send = on_send
        self.on_ws = on_ws
        self.on_key = on_key
        self.tabbar = urwid.Text("")
        self.editor = urwid.Edit("", "", multiline=True)
        self.response = LinesWalker([[("dim", "(not sent yet: ctrl s sends)")]])
        self.response_box = urwid.LineBox(urwid.ListBox(self.response), title="Response")
        request_box = urwid.LineBox(urwid.Filler(self.editor, valign="top"), title="Request (edit freely)")
        self.http_hint, self.ws_hint = urwid.Text(""), urwid.Text("")
        self.http_pile = urwid.Pile([("pack", self.tabbar), ("weight", 1, request_box),
                                     ("weight", 1, self.response_box), ("pack", self.http_hint)])
        self.http_pile.focus_position = 1
        # WebSocket tabs share the tab bar and the editor (for the handshake)
        self.messages = LinesWalker([])
        self.messages_box = urwid.LineBox(urwid.ListBox(self.messages), title="Messages")
        self.input = urwid.Edit("text › ", "")
        handshake_box = urwid.LineBox(urwid.Filler(self.editor, valign="top"),
                                      title="WebSocket handshake (edit freely)")
        self.ws_pile = urwid.Pile([("pack", self.tabbar), ("weight", 1, handshake_box),
                                   ("weight", 2, self.messages_box), ("pack", self.input),
                                   ("pack", self.ws_hint)])
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

    def show_hints(self) -> None:
        """The hint lines with the keys as bound now (after keys.yaml, console.key.bind)."""
        self.http_hint.set_text(("dim", hint(HELP)))
        self.ws_hint.set_text(("dim", hint(WS_HELP)))

    def _show(self) -> None:
        self.show_hints()
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

    # -- what the repeater's commands do (tui/commands/repeater.py) -------------------------------------------
    def go(self) -> None:
        """Send the tab's request; a WebSocket tab connects (closing its old connection first)."""
        tab = self.tab
        self._save()
        if isinstance(tab, WsTab) and self.on_ws is not None:
            self.on_ws(tab, "connect", None)
        elif isinstance(tab, Tab):
            self.on_send(tab)

    def switch(self, step: int) -> None:
        if self.tabs:
            self._save()
            self.index = (self.index + step) % len(self.tabs)
            self._show()

    def step_history(self, step: int) -> None:
        """Show an older (-1) or newer (+1) response of the tab."""
        tab = self.tab
        if isinstance(tab, Tab) and tab.history:
            cur = tab.shown if tab.shown >= 0 else len(tab.history) - 1
            tab.shown = max(0, min(cur + step, len(tab.history) - 1))
            self.show_response()

    def toggle_hex(self) -> bool:
        """A WebSocket tab's message line: text or hex (binary). False on an HTTP tab."""
        tab = self.tab
        if not isinstance(tab, WsTab):
            return False
        tab.hex_mode = not tab.hex_mode
        self.show_messages()
        return True

    def disconnect(self) -> bool:
        tab = self.tab
        if not isinstance(tab, WsTab) or self.on_ws is None:
            return False
        self.on_ws(tab, "disconnect", None)
        return True

    # -- keys ------------------------------------------------------------------------------------------------
    def _ws_own_key(self, tab: WsTab, key: str) -> bool:
        """A WebSocket tab's own keys (not rebindable: they depend on where the cursor is)."""
        if key == "enter" and self.ws_pile.focus_position == 3:
            if self.on_ws(tab, "send", (self.input.edit_text, tab.hex_mode)):
                self.input.set_edit_text("")
            return True
        if key == "tab":
            self._save()
            self.ws_pile.focus_position = 1 if self.ws_pile.focus_position == 3 else 3
            return True
        if key in ("page up", "page down"):
            self.messages.set_focus(self.messages.focus + (-10 if key == "page up" else 10))
            return True
        return False

    def keypress(self, size: Any, key: str) -> str | None:
        tab = self.tab
        if isinstance(tab, WsTab) and self.on_ws is not None and self._ws_own_key(tab, key):
            return None
        rest = super().keypress(size, key)  # the editor first: the keys a text needs are its own
        if rest is None:
            return None
        self._save()  # whatever the key does next (a command, esc), the edited text stays in its tab
        line = keymap.lookup(["repeater"], rest) if self.on_key is not None else None
        if line is None:
            return rest
        self.on_key(line)
        return None
