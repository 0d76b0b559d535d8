"""The flow list: a ListBox whose walker reads the flow store by index, so drawing costs O(visible rows)
whether the store holds ten flows or a million."""
from __future__ import annotations

from typing import Any

import urwid

from interpose.tui.format import flow_row
from interpose.tui.widgets import welcome


class FlowRow(urwid.Widget):
    """One flow as one line; formatted at render time for the width it gets."""

    _sizing = frozenset([urwid.Sizing.FLOW])
    _selectable = True

    def __init__(self, flow: Any, options: Any = None) -> None:
        super().__init__()
        self.flow = flow
        self.options = options

    def rows(self, size: tuple[int], focus: bool = False) -> int:
        return 1

    # urwid's Widget signature takes every size (its own Text.render narrows it with the same ignore):
    # a flow widget gets (maxcol,).
    def render(self, size: tuple[int], focus: bool = False) -> urwid.Canvas:  # type: ignore[override]
        (maxcol,) = size
        markup = flow_row(self.flow, maxcol, bool(getattr(self.options, "showhost", False)))
        if focus:  # the whole row in the focus colour: the cursor line stays visible in any palette
            markup = [("focus", text) for _, text in markup]
        return urwid.Text(markup, wrap="clip").render((maxcol,), focus)

    def keypress(self, size: tuple[()] | tuple[int] | tuple[int, int], key: str) -> str:
        return key


class FlowWalker(urwid.ListWalker):
    def __init__(self, store: Any, options: Any = None) -> None:
        self.store = store
        self.focus = 0
        self.options = options
        """The proxy's options, read as rows are drawn (showhost)."""

    def _clamp(self) -> None:
        n = len(self.store)
        self.focus = max(0, min(self.focus, n - 1)) if n else 0

    def get_focus(self) -> tuple[urwid.Widget | None, int | None]:
        if not len(self.store):
            return None, None
        self._clamp()
        return FlowRow(self.store[self.focus], self.options), self.focus

    def set_focus(self, position: int) -> None:
        self.focus = position
        self._clamp()
        self._modified()

    def get_next(self, position: int) -> tuple[urwid.Widget | None, int | None]:
        if position + 1 < len(self.store):
            return FlowRow(self.store[position + 1], self.options), position + 1
        return None, None

    def get_prev(self, position: int) -> tuple[urwid.Widget | None, int | None]:
        if 0 < position <= len(self.store):
            return FlowRow(self.store[position - 1], self.options), position - 1
        return None, None

    def changed(self) -> None:
        self._clamp()
        self._modified()


class FlowListBox(urwid.ListBox):
    def __init__(self, store: Any, options: Any = None) -> None:
        self.walker = FlowWalker(store, options)
        self.welcome: list[Any] = []
        """What the list shows while it is empty (how to use the proxy: widgets/welcome.py)."""
        super().__init__(self.walker)

    # ListBox.render's own signature, which urwid declares with the same ignore (narrower than Widget's).
    def render(self, size: tuple[int, int], focus: bool = False) -> urwid.Canvas:  # type: ignore[override]
        store = self.walker.store
        if len(store):
            return super().render(size, focus)
        if store.filter_expr and store.total:
            return welcome.render(welcome.filtered_markup(store.filter_expr, store.total), size, focus)
        return welcome.render(self.welcome or [("dim", "no flows")], size, focus)

    @property
    def focused_flow(self) -> Any | None:
        store = self.walker.store
        if not len(store):
            return None
        self.walker._clamp()
        return store[self.walker.focus]

    def focus_index(self, i: int) -> None:
        n = len(self.walker.store)
        if n:
            self.walker.set_focus(max(0, min(i, n - 1)))

    def page(self, direction: int, size: tuple[int, int] | None) -> None:
        rows = size[1] if size else 20
        self.focus_index(self.walker.focus + direction * max(rows - 1, 1))

    def empty(self) -> bool:
        return not len(self.walker.store)
