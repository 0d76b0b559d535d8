"""The sticky-rules view: every standing rule made from an edit or a kept (saved) response; d removes one."""
from __future__ import annotations

from typing import Any

import urwid

from interpose.tui.widgets.common import LinesWalker


class RulesView(urwid.WidgetWrap):
    context = "rules"

    def __init__(self, sticky: Any) -> None:
        self.sticky = sticky
        self.walker = LinesWalker([])
        self.reload()
        super().__init__(urwid.LineBox(urwid.ListBox(self.walker), title="Sticky rules (d: delete)"))

    def reload(self) -> None:
        lines = [[("key", f"{i + 1:>3} "), ("text", r.describe())] for i, r in enumerate(self.sticky.rules)]
        self.walker.lines = lines or [[("dim", ("no rules yet: edit a held flow, then s makes the edit stick; "
                                                "K keeps a response to answer matching requests"))]]
        self.walker.focus = min(self.walker.focus, max(len(lines) - 1, 0))
        self.walker._modified()
