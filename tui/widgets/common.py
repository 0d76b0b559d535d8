"""Small building blocks: a lazily built list of text lines, and a one-line flow row."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import urwid

from interpose.tui.palette import FOCUS_MAP, HIGHLIGHT_MAP

Markup = Any



class LinesWalker(urwid.ListWalker):
    """A ListWalker over a list of markup lines; Text widgets are made only for the lines shown."""

    def __init__(self, lines: Sequence[Markup], highlight: Callable[[int], bool] | None = None,
                 wrap: Literal["any", "ellipsis"] = "any") -> None:
        self.lines = lines
        self.focus = 0
        self.highlight = highlight
        self.wrap = wrap
        """"any" for content (nothing may be lost); "ellipsis" for one-line-per-item lists."""

    def _widget(self, i: int) -> urwid.Widget:
        w = urwid.Text(self.lines[i] if self.lines[i] else "", wrap=self.wrap)
        if self.highlight is not None and self.highlight(i):
            return urwid.AttrMap(w, HIGHLIGHT_MAP)
        return urwid.AttrMap(w, None, FOCUS_MAP)

    def get_focus(self) -> tuple[urwid.Widget | None, int | None]:
        if not self.lines:
            return None, None
        self.focus = min(self.focus, len(self.lines) - 1)
        return self._widget(self.focus), self.focus

    def set_focus(self, position: int) -> None:
        self.focus = max(0, min(position, len(self.lines) - 1))
        self._modified()

    def get_next(self, position: int) -> tuple[urwid.Widget | None, int | None]:
        if position + 1 < len(self.lines):
            return self._widget(position + 1), position + 1
        return None, None

    def get_prev(self, position: int) -> tuple[urwid.Widget | None, int | None]:
        if position > 0:
            return self._widget(position - 1), position - 1
        return None, None

    def positions(self, reverse: bool = False) -> Iterable[int]:
        r = range(len(self.lines))
        return reversed(r) if reverse else r


class SelectableText(urwid.Text):
    def selectable(self) -> bool:
        return True

    def keypress(self, size: tuple[()] | tuple[int] | tuple[int, int], key: str) -> str:
        return key


def text_lines(markup_lines: Sequence[Markup]) -> list[str]:
    """Plain text of markup lines (for search)."""
    out = []
    for line in markup_lines:
        if isinstance(line, str):
            out.append(line)
        elif isinstance(line, tuple):
            out.append(line[1] if isinstance(line[1], str) else "")
        else:
            out.append("".join(seg[1] if isinstance(seg, tuple) else seg for seg in line))
    return out
