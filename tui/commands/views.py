"""The command browser (`C`) and the key bindings view (`ctrl k`): one line per command or binding."""
from __future__ import annotations

from typing import Any

import urwid

from interpose.tui import keymap
from interpose.tui.widgets.common import LinesWalker


class CommandBrowser(urwid.WidgetWrap):
    context = "commands"

    def __init__(self, registry: Any) -> None:
        self.commands = registry.all()
        lines = []
        for c in self.commands:
            lines.append([("key", f"{c.usage():<44} "), ("dim", c.help)])
        self.walker = LinesWalker(lines, wrap="ellipsis")
        super().__init__(urwid.LineBox(urwid.ListBox(self.walker),
                                       title=f"Commands ({len(lines)}; enter: to the prompt)"))

    @property
    def focused(self) -> Any | None:
        return self.commands[self.walker.focus] if self.commands else None


class KeyBindings(urwid.WidgetWrap):
    context = "keybindings"

    def __init__(self) -> None:
        self.walker = LinesWalker([], wrap="ellipsis")
        self.entries: list[tuple[str, str, str]] = []
        self.reload()
        super().__init__(urwid.LineBox(urwid.ListBox(self.walker),
                                       title="Key bindings (a: add, enter: edit, d: unbind)"))

    def reload(self) -> None:
        self.entries = []
        lines = []
        for b in sorted(keymap.BINDINGS, key=lambda b: (b.context != "global", b.context)):
            for k in b.keys:
                shown = "space" if k == " " else k
                self.entries.append((b.context, k, b.cmd))
                lines.append([("dim", f"{b.context:<12} "), ("key", f"{shown:<12} "), ("text", f"{b.cmd:<40} "),
                              ("dim", b.help if b.help != b.cmd else "")])
        self.walker.lines = lines
        self.walker.focus = min(self.walker.focus, max(len(lines) - 1, 0))
        self.walker._modified()

    @property
    def focused(self) -> tuple[str, str, str] | None:
        return self.entries[self.walker.focus] if self.entries else None
