"""The grid editor's commands (mitmproxy's `console.grideditor.*`, plus edit and undo): the keys of the
context `grideditor` run them, so keys.yaml can bind them like any other key."""
from __future__ import annotations

import codecs
import csv
import os
from typing import Any

from interpose import command as api
from interpose.runtime.commands import CommandError
from interpose.tui.commands.base import tui_command
from interpose.tui.editing import edit_text
from interpose.tui.widgets.grid import GridEditor


def _grid(app: Any, name: str) -> GridEditor:
    cur = app.current
    if not isinstance(cur, GridEditor):
        raise CommandError(f"console.grideditor.{name}: only in the grid editor (headers, query, form, list options)")
    return cur


@tui_command("console.grideditor.add")
def add(app: Any) -> None:
    """Add a row after the cursor (its first cell is edited at once)."""
    _grid(app, "add").add()


@tui_command("console.grideditor.insert")
def insert(app: Any) -> None:
    """Insert a row before the cursor."""
    _grid(app, "insert").add(before=True)


@tui_command("console.grideditor.delete")
def delete(app: Any) -> None:
    """Delete the row at the cursor (console.grideditor.undo brings it back)."""
    _grid(app, "delete").delete()


@tui_command("console.grideditor.undo")
def undo(app: Any) -> None:
    """Bring back the last deleted row."""
    if not _grid(app, "undo").undo():
        app.notify("nothing to undo")


@tui_command("console.grideditor.edit")
def edit(app: Any) -> None:
    """Edit the cell at the cursor in place (enter keeps it, esc drops the change)."""
    _grid(app, "edit").edit_cell()


@tui_command("console.grideditor.editor")
async def editor(app: Any) -> None:
    """Edit the cell at the cursor in $VISUAL / $EDITOR (one line: line breaks become spaces)."""
    grid = _grid(app, "editor")
    text = await edit_text(app, grid.cell or "")
    if text is not None:
        grid.set_cell(" ".join(text.splitlines()))
        app.redraw_soon()


def _read(path: str, name: str) -> bytes:
    try:
        with open(os.path.expanduser(path), "rb") as f:
            return f.read()
    except OSError as e:
        raise CommandError(f"console.grideditor.{name}: cannot read {path}: {e.strerror or e}") from None


@tui_command("console.grideditor.load")
def load(app: Any, path: api.Path) -> None:
    """Read a file into the cell at the cursor (as UTF-8 text; a final line break is dropped)."""
    grid = _grid(app, "load")
    grid.set_cell(_read(str(path), "load").decode("utf-8", "surrogateescape").removesuffix("\n"))
    app.notify(f"cell read from {path}")


@tui_command("console.grideditor.load_escaped")
def load_escaped(app: Any, path: api.Path) -> None:
    """Read a file holding a Python-escaped string (\\n, \\x00, \\u00e9 ...) into the cell at the cursor."""
    grid = _grid(app, "load_escaped")
    raw = _read(str(path), "load_escaped").strip()
    try:
        text = codecs.escape_decode(raw)[0].decode("utf-8", "surrogateescape")
    except ValueError as e:
        raise CommandError(f"console.grideditor.load_escaped: {path}: {e}") from None
    grid.set_cell(text)
    app.notify(f"cell read from {path} (escapes decoded)")


@tui_command("console.grideditor.save")
def save(app: Any, path: api.Path) -> None:
    """Save the grid's rows to a file as CSV (an existing file is replaced)."""
    grid = _grid(app, "save")
    target = os.path.expanduser(str(path))
    try:
        with open(target, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
            csv.writer(f).writerows(grid.data)
    except OSError as e:
        raise CommandError(f"console.grideditor.save: cannot write {path}: {e.strerror or e}") from None
    app.notify(f"saved {len(grid.data)} rows to {path}")
