"""A small grid editor: two columns for headers, query parameters and form fields, one for the items of
a list option (`edit_items`), so an item may hold any character, commas included.

Keys: j/k or arrows move, tab or left/right switch column, enter edits the cell (enter again keeps
it, esc drops the change), a adds a row (A above), d deletes the row, q saves and closes, esc closes
without saving; e edits the cell in $EDITOR, r reads a file into it (R: a Python-escaped one), s saves
the grid as CSV. While a cell is edited, the readline keys work and a paste goes into it; while editing a name,
tab keeps it and goes on to its value; u undoes the last delete.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import urwid

from interpose.tui.widgets.lineedit import LineEdit, one_line

HELP = ("enter: edit cell   a: add row   d: delete row   tab: other column   q: save   esc: cancel   "
        "u: undo delete   ?: keys")


class _Cell(LineEdit):
    """The cell being edited: its old text starts selected (typing replaces it), with the readline keys."""

    def __init__(self, text: str) -> None:
        super().__init__("", text)


class GridEditor(urwid.WidgetWrap):
    """Its keys that act on rows and cells are commands (`console.grideditor.*`, tui/commands/grideditor.py) in
    the key context `grideditor`, so keys.yaml can rebind them; moving, q and esc are the widget's own."""

    context = "grideditor"

    def __init__(self, title: str, rows: Sequence[tuple[str, ...]], done: asyncio.Future[Any],
                 columns: tuple[str, ...] = ("name", "value")) -> None:
        self.data = [list(r) for r in rows]
        self.done = done
        self.row = 0
        self.col = 0
        self.editing: _Cell | None = None
        self.deleted: list[tuple[int, list[str]]] = []
        """Rows `d` deleted (where they were), for `u`."""
        self.columns = columns
        self.walker: urwid.SimpleFocusListWalker[urwid.Columns | urwid.Text] = urwid.SimpleFocusListWalker([])
        self.listbox = urwid.ListBox(self.walker)
        header = urwid.Columns([("weight", 1 + c, urwid.Text(("title", name))) for c, name in enumerate(columns)],
                               dividechars=1)
        help_text = HELP if len(columns) > 1 else HELP.replace("   tab: other column", "").replace("row", "item")
        frame = urwid.Frame(self.listbox, header=header, footer=urwid.Text(("dim", help_text)))
        super().__init__(urwid.LineBox(frame, title=title))
        self._build()

    def _cell(self, r: int, c: int) -> urwid.Widget:
        if self.editing is not None and (r, c) == (self.row, self.col):
            return urwid.AttrMap(self.editing, "highlight")
        text = self.data[r][c]
        attr = "focus" if (r, c) == (self.row, self.col) else ("header_name" if c == 0 else "header_value")
        return urwid.AttrMap(urwid.Text(text or " ", wrap="any"), attr)

    def _build(self) -> None:
        widgets: list[urwid.Columns | urwid.Text] = []
        for r in range(len(self.data)):
            widgets.append(urwid.Columns([("weight", 1 + c, self._cell(r, c)) for c in range(len(self.columns))],
                                         dividechars=1))
        if not widgets:
            widgets.append(urwid.Text(("dim", "(no rows: a adds one)")))
        self.walker[:] = widgets
        if self.data:
            self.walker.set_focus(min(self.row, len(self.data) - 1))

    def paste(self, text: str) -> bool:
        """A paste goes into the cell being edited (line breaks as spaces); with none, it is refused."""
        if self.editing is None:
            return False
        self.editing.insert_text(one_line(text))
        self._build()
        return True

    # -- what the grideditor commands do ---------------------------------------------------
    def add(self, before: bool = False) -> None:
        """A new empty row after the focused one (before it: `insert`), its first cell being edited."""
        n = len(self.data)
        self.row = (self.row if before else self.row + 1) if n else 0
        self.data.insert(self.row, [""] * len(self.columns))
        self.col = 0
        self.editing = _Cell("")
        self._build()

    def delete(self) -> None:
        if self.data:
            self.deleted.append((self.row, self.data.pop(self.row)))
            self.row = max(min(self.row, len(self.data) - 1), 0)
            self._build()

    def undo(self) -> bool:
        if not self.deleted:
            return False
        self.row, row = self.deleted.pop()
        self.data.insert(self.row, row)
        self._build()
        return True

    def edit_cell(self) -> None:
        if self.data:
            self.editing = _Cell(self.data[self.row][self.col])
            self._build()

    @property
    def cell(self) -> str | None:
        """The focused cell's text (None with no rows)."""
        return self.data[self.row][self.col] if self.data else None

    def set_cell(self, text: str) -> None:
        if not self.data:
            self.add()
            self.editing = None
        self.data[self.row][self.col] = text
        self._build()

    def keypress(self, size: Any, key: str) -> str | None:
        if self.editing is not None:
            if key in ("enter", "tab"):
                self.data[self.row][self.col] = self.editing.edit_text
                self.editing = None
                if key == "tab" and self.col == 0:  # from the name on to its value, still editing
                    self.col = 1
                    self.editing = _Cell(self.data[self.row][1])
            elif key == "esc":
                self.editing = None
            else:
                self.editing.keypress((max(size[0] // len(self.columns), 10),), key)
            self._build()
            return None
        n = len(self.data)
        if key in ("j", "down") and n:
            self.row = min(self.row + 1, n - 1)
        elif key in ("k", "up") and n:
            self.row = max(self.row - 1, 0)
        elif key in ("tab", "right", "l", "left", "h", "shift tab") and len(self.columns) > 1:
            self.col = 1 - self.col
        elif key == "q":
            if not self.done.done():
                self.done.set_result([tuple(r) for r in self.data if any(r)])
            return None
        elif key == "esc":
            if not self.done.done():
                self.done.set_result(None)
            return None
        else:
            return key
        self._build()
        return None


async def edit_rows(app: Any, title: str, rows: list[tuple[str, str]]) -> list[tuple[str, str]] | None:
    """Show the grid until the user saves (the new rows) or cancels (None)."""
    done: asyncio.Future[list[tuple[str, str]] | None] = asyncio.get_running_loop().create_future()
    grid = GridEditor(title, rows, done)
    app.push(grid)
    try:
        return await done
    finally:
        if app.current is grid:
            app.pop()


async def edit_items(app: Any, title: str, items: list[str]) -> list[str] | None:
    """The grid with one column, one item per row: the new items, or None if the user cancelled."""
    done: asyncio.Future[list[tuple[str, ...]] | None] = asyncio.get_running_loop().create_future()
    grid = GridEditor(title, [(item,) for item in items], done, columns=("item",))
    app.push(grid)
    try:
        rows = await done
    finally:
        if app.current is grid:
            app.pop()
    return None if rows is None else [r[0] for r in rows]
