"""Status bar, help overlay, event log and pending pane."""
from __future__ import annotations

import textwrap
import time
from collections import deque
from typing import Any

import urwid

from interpose.tui import keymap
from interpose.tui.contentviews.text import sanitize_segment
from interpose.tui.widgets.common import LinesWalker
from interpose.tui.widgets.lineedit import LineEdit

LEVEL_ATTR = {"debug": "dim", "info": "text", "warn": "warn", "error": "error"}


def safe_markup(markup: Any) -> Any:
    """urwid text markup with every string made one-line and terminal-safe (attributes kept)."""
    if isinstance(markup, str):
        return sanitize_segment(markup)
    if isinstance(markup, tuple):
        return (markup[0], safe_markup(markup[1]))
    if isinstance(markup, list):
        return [safe_markup(m) for m in markup]
    return markup


class StatusBar(urwid.WidgetWrap):
    """Two lines: what the proxy is doing, then messages or a prompt."""

    def __init__(self) -> None:
        self.info = urwid.Text("", wrap="clip")
        self.message = urwid.Text("", wrap="clip")
        self.line2: urwid.Widget = self.message
        self.pile = urwid.Pile([urwid.AttrMap(self.info, "statusbar"), self.message])
        super().__init__(self.pile)

    def set_info(self, markup: Any) -> None:
        self.info.set_text(safe_markup(markup))

    def set_message(self, text: Any) -> None:
        self.message.set_text(safe_markup(text))
        self.show(self.message)

    def show(self, widget: urwid.Widget) -> None:
        self.pile.contents[1] = (widget, self.pile.options())
        self.pile.focus_position = 1 if widget is not self.message else 0


class Prompt(LineEdit):
    """A one-line question in the status bar. Enter answers, Esc cancels; the readline keys edit
    (widgets/lineedit.py), and a pre-filled answer starts selected, so typing replaces it."""

    def __init__(self, label: str, initial: str, on_done: Any, history: list[str] | None = None,
                 select: bool = True) -> None:
        super().__init__(("key", label), initial, select)
        self.on_done = on_done
        self.history = history or []
        self.back = len(self.history)

    # urwid's Widget signature takes every size (its own Edit.keypress narrows it with the same ignore):
    # a flow widget gets (maxcol,).
    def keypress(self, size: tuple[int], key: str) -> str | None:  # type: ignore[override]
        if key in ("up", "down") and self.history:
            self.back = max(0, min(self.back + (-1 if key == "up" else 1), len(self.history)))
            text = self.history[self.back] if self.back < len(self.history) else ""
            self.set_edit_text(text)
            self.set_edit_pos(len(text))
            return None
        if key == "enter":
            self.on_done(self.edit_text)
            return None
        if key == "esc":
            self.on_done(None)
            return None
        return super().keypress(size, key)


PURPOSE: dict[str, str] = {
    "flowlist": "Every flow through the proxy. Intercept: i holds matching flows (!). Edit: Enter opens a "
                "flow, e edits it. Resume: a sends it on, A everything held, X kills it.",
    "flowview": "One flow. Edit: e changes the request or response while it is held. Resume: a sends it on "
                "(in Messages: the held message), X kills it, s keeps the edit as a rule.",
    "pending": "Everything held. Resume: a forwards it; e edits, d drops a message, X kills the flow.",
    "picker": "Addons: Enter loads or unloads one; a failed one shows [!] and why.",
    "options": "Options: Enter edits, r resets to the default.",
    "search": "Matches of the global search: Enter opens the flow at the match, y copies its URL.",
    "repeater": "Edit the request and send it again. The editor keeps the keys a text needs; the keys below "
                "are bindings (keys.yaml, context repeater). A WebSocket tab's own: enter sends the message "
                "line, tab moves between it and the handshake, page up/down scroll the messages.",
}
"""What each view is for, shown first in its help."""
FIRST = ("intercept.set", "flow.edit", "flow.resume.focus", "flow.resume_all", "flow.kill.focus", "console.view.flow",
         "pending.resume", "pending.edit", "message.drop")
"""Actions the help lists before navigation: what the proxy is for."""


def help_widget(contexts: list[str], width: int = 80) -> urwid.Widget:
    """The keys of `contexts`, the view's purpose first, laid out in as many columns as `width` holds."""
    lines: list[Any] = []
    purpose = PURPOSE.get(contexts[0])
    if purpose:
        lines += [[("text", part)] for part in textwrap.wrap(purpose, max(width - 2, 20))]
        lines.append([])
    inner = max(width - 2, 20)
    cols = max(1, min(3, inner // 60))
    colw = inner // cols
    for ctx, bindings in keymap.help_for(contexts):
        lines.append([("title", f"{ctx} keys")])
        def rank(b: Any) -> tuple[bool, int]:
            name = b.cmd.split(" ", 1)[0]  # the command, without its arguments
            return name not in FIRST, FIRST.index(name) if name in FIRST else 0
        ordered = sorted(bindings, key=rank)
        cells = []
        for b in ordered:
            keys = ", ".join("space" if k == " " else k for k in b.keys)
            text = f"{b.help}"[:max(colw - 19, 8)]
            cells.append([("key", f"  {keys:<16} "), ("text", f"{text:<{max(colw - 19, 8)}}")])
        rows = (len(cells) + cols - 1) // cols
        for r in range(rows):  # down the first column, then the next
            line: list[Any] = []
            for c in range(cols):
                i = c * rows + r
                if i < len(cells):
                    line += cells[i]
            lines.append(line)
        lines.append([])
    lines.append([("dim", "j/k, arrows and page up/down scroll; q, esc or ? closes this help")])
    return urwid.LineBox(_HelpBox(LinesWalker(lines, wrap="ellipsis")), title="Keys (j/k scroll)")


class _HelpBox(urwid.ListBox):
    # ListBox.keypress's own signature, which urwid declares with the same ignore (narrower than Widget's).
    def keypress(self, size: tuple[int] | tuple[int, int], key: str) -> str | None:  # type: ignore[override]
        key = {"j": "down", "k": "up", " ": "page down"}.get(key, key)
        return super().keypress(size, key)


class EventLog(urwid.WidgetWrap):
    """The last log entries, newest at the bottom."""

    context = "eventlog"

    def __init__(self, size: int = 2000) -> None:
        self.entries: deque[Any] = deque(maxlen=size)
        self.lines: list[Any] = []
        self.walker = LinesWalker(self.lines)
        super().__init__(urwid.LineBox(urwid.ListBox(self.walker), title="Event log"))
        self.dirty = False

    def add(self, entry: Any) -> None:
        self.entries.append(entry)
        self.dirty = True

    def refresh(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        lines = []
        for e in self.entries:
            stamp = time.strftime("%H:%M:%S", time.localtime(e.timestamp))
            first = e.msg.splitlines()[0] if e.msg else ""
            text = sanitize_segment(f"{e.level:<5} {first}")
            lines.append([("dim", f"{stamp} "), (LEVEL_ATTR.get(e.level, "text"), text)])
        self.walker.lines = lines
        self.walker.focus = max(len(lines) - 1, 0)
        self.walker._modified()


class PendingPane(urwid.WidgetWrap):
    """Everything held right now: flows at any stage, and single WebSocket/TCP messages."""

    context = "pending"

    def __init__(self, items: list[tuple[Any, Any, str]]) -> None:
        self.items = items
        self.walker = LinesWalker([])
        self.set_items(items)
        super().__init__(urwid.LineBox(urwid.ListBox(self.walker), title="Pending"))

    def set_items(self, items: list[tuple[Any, Any, str]]) -> None:
        self.items = items
        lines: list[Any] = []
        for flow, msg, stage in items:
            if msg is None:
                req = getattr(flow, "request", None)
                what = f"{req.method} {req.pretty_url}" if req is not None else repr(flow)
                lines.append([("intercepted", "! "), ("dim", f"{stage:<16}"), ("text", sanitize_segment(what))])
            else:
                arrow = "→" if msg.from_client else "←"
                preview = msg.text[:60].replace("\n", " ") if msg.is_text else msg.content[:24].hex(" ")
                lines.append([("intercepted", "! "), ("dim", f"{'message ' + arrow:<16}"),
                              ("text", sanitize_segment(preview))])
        if not lines:
            lines = [[("dim", "nothing is held")]]
        self.walker.lines = lines
        self.walker.focus = min(self.walker.focus, max(len(lines) - 1, 0))
        self.walker._modified()

    @property
    def focused(self) -> tuple[Any, Any, str] | None:
        if not self.items:
            return None
        return self.items[min(self.walker.focus, len(self.items) - 1)]
