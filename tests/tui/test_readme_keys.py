"""The README's keys table matches the app's keymap (tui/keymap.py's defaults), both ways: every key the
table names for a view is bound there (or is one of the few keys a widget handles itself), and every
default binding of the main views appears in the table."""
from __future__ import annotations

import re

import pytest

from interpose.tui import keymap
from tests.tui.pty_harness import ROOT

ROWS = {
    "flow list": ("flowlist", "global"),
    "flow view": ("flowview", "global"),
    "intercept": ("flowlist", "flowview", "pending", "global"),
    "edit": ("flowlist", "flowview", "grideditor", "global"),
    "actions": ("flowlist", "flowview", "search", "global"),
    "repeater": ("repeater", "flowlist", "flowview"),
    "WebSocket repeater": ("repeater", "flowlist", "flowview"),
    "sticky edits": ("flowlist", "flowview", "rules", "global"),
    "commands": ("keybindings", "commands", "global"),
    "everywhere": ("options", "global"),
}
"""README row → the keymap contexts its keys are bound in."""
OWN_KEYS = {
    ("edit", "ctrl s"): "the body editor inside the UI saves with it",
    ("edit", "q"): "the grid editor's own key (save)",
    ("edit", "esc"): "the grid editor's own key (cancel)",
    ("commands", "ctrl r"): "the command prompt's own key: search its history",
    ("everywhere", "ctrl c"): "the app's own key: quitting asks what it loses",
}
"""Keys the table names that a widget handles itself rather than through the keymap, and why."""
_NAMED = {"enter", "esc", "tab", "backspace", "home", "end", "f1", "shift tab", "page up", "page down"}


def _key(token: str) -> str | None:
    """A backticked README token as the keymap spells the key, or None when it is not a key."""
    t = token.replace("\\|", "|").strip()
    if len(t) == 1:
        return t if t.isascii() and t.isprintable() else None  # arrows like → in the text are not keys
    low = t.lower().replace("-", " ")
    if low in _NAMED or re.fullmatch(r"(ctrl|alt|meta|shift) \S+", low):
        return low
    return None


def _table() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"\| ([^|`]+?) \| (.*) \|$", line)
        if m and m.group(1) in ROWS:
            cell = m.group(2).replace("\\|", "\x00")
            tokens = [t.replace("\x00", "\\|") for t in re.findall(r"`([^`]+)`", cell)]
            rows[m.group(1)] = [k for k in map(_key, tokens) if k is not None]
    return rows


def _bound(contexts: tuple[str, ...]) -> set[str]:
    return {k for b in keymap.DEFAULTS if b.context in contexts for k in b.keys}


def test_the_readme_has_a_row_for_each_view():
    assert set(_table()) == set(ROWS)


@pytest.mark.parametrize("row", sorted(ROWS))
def test_every_key_the_readme_names_is_bound_there(row):
    keys = _table()[row]
    assert keys, f"no keys read from the README's {row!r} row"
    bound = _bound(ROWS[row])
    unbound = [k for k in keys if k not in bound and (row, k) not in OWN_KEYS]
    assert unbound == [], f"the README's {row!r} row names keys the app does not bind there: {unbound}"


@pytest.mark.parametrize("context", ["flowlist", "global", "pending", "grideditor", "repeater", "keybindings"])
def test_every_default_binding_is_in_the_readme(context):
    named = {k for row, keys in _table().items() if context in ROWS[row] for k in keys}
    nav = {"j", "k", "down", "up", "g", "G", "home", "end", "page up", "page down", " "}
    missing = sorted({k for b in keymap.DEFAULTS if b.context == context for k in b.keys} - named - nav
                     - ({"?"} if context == "grideditor" else set()))
    assert missing == [], f"default {context} keys the README's table does not name: {missing}"
