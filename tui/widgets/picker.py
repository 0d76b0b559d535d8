"""The addon picker (`P`) and the options editor (`O`)."""
from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass
from typing import Any

import urwid

import interpose.addons as bundled_package
from interpose.tui.widgets.common import LinesWalker


@dataclass
class AddonEntry:
    name: str
    path: str | None
    """None for the 'load a path' row."""
    summary: str
    loaded: bool
    error: str | None = None
    """Loaded but failed: the first line of its error."""


def script_state(master: Any) -> tuple[list[str], dict[str, str]]:
    """(every script path loaded in this session, failed ones: path → the first line of the error), read
    from the core's script loader."""
    loader = master.addons.get("scriptloader")
    if loader is None:
        return [], {}
    return list(loader.seen), loader.errors()


def first_doc_line(path: str) -> str:
    """The first line of a module's docstring, read without running the module."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = ast.get_docstring(ast.parse(f.read()))
    except (OSError, SyntaxError, ValueError):
        return "(unreadable)"
    return doc.strip().splitlines()[0] if doc else ""


def bundled_addons() -> list[tuple[str, str]]:
    """(name, path) of every addon in the `addons/` package."""
    folder = os.path.dirname(os.path.abspath(bundled_package.__file__))
    return sorted((f[:-3], os.path.join(folder, f)) for f in os.listdir(folder)
                  if f.endswith(".py") and not f.startswith("_"))


def addon_entries(loaded_scripts: list[str], seen: list[str] | None = None,
                  errors: dict[str, str] | None = None) -> list[AddonEntry]:
    """The bundled addons, then the other scripts loaded in this session (`seen`, unloaded ones too, so
    they can be loaded again), then the 'load a path' row."""
    loaded = {os.path.abspath(os.path.expanduser(p)) for p in loaded_scripts}
    errors = errors or {}
    out = [AddonEntry(name, path, first_doc_line(path), os.path.abspath(path) in loaded)
           for name, path in bundled_addons()]
    known = {e.path for e in out}
    others = [p for p in [*(seen or []), *sorted(loaded)] if p not in known]
    for p in dict.fromkeys(others):
        out.append(AddonEntry(os.path.basename(p), p, first_doc_line(p), p in loaded))
    for e in out:
        e.error = errors.get(os.path.abspath(e.path)) if e.loaded and e.path else None
    out.append(AddonEntry("…", None, "load a script from a path", False))
    return out


class AddonPicker(urwid.WidgetWrap):
    context = "picker"

    def __init__(self, master: Any) -> None:
        self.master = master
        self.walker = LinesWalker([], wrap="ellipsis")
        self.entries: list[AddonEntry] = []
        self.reload()
        super().__init__(urwid.LineBox(urwid.ListBox(self.walker), title="Addons (enter: load/unload)"))

    def reload(self) -> None:
        seen, errors = script_state(self.master)
        self.entries = addon_entries(list(self.master.options.scripts), seen, errors)
        lines = []
        for e in self.entries:
            mark = ("marked", "[x] ") if e.loaded else ("text", "[ ] ")
            if e.path is None:
                mark = ("text", "    ")
            if e.error:
                lines.append([("error", "[!] "), ("key", f"{e.name:<18} "), ("error", f"failed: {e.error}")])
                continue
            lines.append([mark, ("key", f"{e.name:<18} "), ("text", e.summary)])
        self.walker.lines = lines
        self.walker.focus = min(self.walker.focus, len(lines) - 1)
        self.walker._modified()

    @property
    def focused(self) -> AddonEntry:
        return self.entries[self.walker.focus]

    def keypress(self, size: Any, key: str) -> str | None:
        return super().keypress(size, key)


def option_value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        if any("," in item or '"' in item for item in value):
            return json.dumps(value, ensure_ascii=False)  # an item holds a comma: show where each ends
        return ", ".join(value) if value else "[]"
    return "" if value is None else str(value)


class OptionsEditor(urwid.WidgetWrap):
    context = "options"

    def __init__(self, options: Any) -> None:
        self.options = options
        self.walker = LinesWalker([], wrap="ellipsis")
        self.names: list[str] = []
        self.reload()
        super().__init__(urwid.LineBox(urwid.ListBox(self.walker), title="Options (enter: edit or toggle, r: reset)"))

    def reload(self) -> None:
        lines = []
        self.names = []
        for name, opt in self.options.items():
            changed = opt.value != opt.default
            lines.append([("key" if changed else "text", f"{name:<32} "),
                          ("header_value", f"{option_value_text(opt.value):<24} "), ("dim", opt.help)])
            self.names.append(name)
        self.walker.lines = lines
        self.walker.focus = min(self.walker.focus, max(len(lines) - 1, 0))
        self.walker._modified()

    @property
    def focused(self) -> str | None:
        return self.names[self.walker.focus] if self.names else None
