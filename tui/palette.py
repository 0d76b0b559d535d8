"""Colours as data: the urwid palette for every attribute name the TUI and the content views use.

Readable on dark and light terminals alike: text keeps the terminal's own background ('default') and
uses mid-tone foregrounds (dark cyan/green/magenta/red, brown) that contrast with both black and
white; emphasis is bold. Only rows that must stand out (focus, search hits, status bar, active tab)
get a background, and then with an explicit foreground. Each entry also gives 256-colour values
(used when the screen is set to 256 colours) and a monochrome fallback.

Entry layout (urwid): (name, foreground, background, mono, foreground_high, background_high).
"""
from __future__ import annotations

D = "default"

PALETTE: list[tuple[str, str, str, str | None, str, str]] = [
    # plain text and structure
    ("text", D, D, None, D, D),
    ("title", "default,bold", D, "bold", "default,bold", D),
    ("header", "default,bold", D, "bold", "default,bold", D),
    ("header_name", "dark cyan,bold", D, "bold", "#08a,bold", D),
    ("header_value", D, D, None, D, D),
    ("dim", "dark gray", D, None, "#888", D),
    ("key", "dark cyan,bold", D, "bold", "#08a,bold", D),
    ("warn", "brown,bold", D, "bold", "#a60,bold", D),
    ("error", "dark red,bold", D, "bold", "#d00,bold", D),
    # flow list and request/response lines
    ("method", "dark cyan,bold", D, "bold", "#08a,bold", D),
    ("url", D, D, None, D, D),
    ("status_1xx", "dark cyan", D, None, "#08a", D),
    ("status_2xx", "dark green", D, None, "#080", D),
    ("status_3xx", "dark magenta", D, None, "#a0a", D),
    ("status_4xx", "brown,bold", D, "bold", "#a60,bold", D),
    ("status_5xx", "dark red,bold", D, "bold", "#d00,bold", D),
    ("intercepted", "brown,bold", D, "standout", "#d60,bold", D),
    ("marked", "dark magenta,bold", D, "bold", "#a0a,bold", D),
    ("flow_ws", "dark cyan,bold", D, "bold", "#08a,bold", D),
    ("flow_tcp", "dark magenta,bold", D, "bold", "#a0a,bold", D),
    # rows and bars with their own background
    ("focus", "black", "dark cyan", "standout", "#000", "#6ac"),
    ("highlight", "black", "brown", "underline", "#000", "#fc6"),
    ("statusbar", "black", "light gray", "standout", "#000", "#ccc"),
    ("statusbar_key", "dark blue,bold", "light gray", "bold,standout", "#008,bold", "#ccc"),
    ("tab", D, D, None, D, D),
    ("tab_active", "white,bold", "dark blue", "standout", "#fff,bold", "#068"),
    # diffs
    ("diff_add", "dark green", D, None, "#080", D),
    ("diff_del", "dark red", D, None, "#d00", D),
    # syntax highlighting (content views)
    ("syntax_key", "dark cyan", D, None, "#08a", D),
    ("syntax_string", "dark green", D, None, "#080", D),
    ("syntax_number", "dark magenta", D, None, "#a0a", D),
    ("syntax_keyword", "brown,bold", D, "bold", "#a60,bold", D),
    ("syntax_punct", D, D, None, D, D),
    ("syntax_comment", "dark gray", D, None, "#888", D),
    ("syntax_tag", "dark cyan,bold", D, "bold", "#08a,bold", D),
    ("syntax_attr", "brown", D, None, "#a60", D),
]

ATTRIBUTES: frozenset[str] = frozenset(entry[0] for entry in PALETTE)
"""Every attribute name defined above."""

FOCUS_MAP: dict[str | None, str] = {None: "focus", **{name: "focus" for name in ATTRIBUTES}}
"""`urwid.AttrMap(w, None, FOCUS_MAP)` paints the whole focused row, highlighted segments included."""

HIGHLIGHT_MAP: dict[str | None, str] = {None: "highlight", **{name: "highlight" for name in ATTRIBUTES}}
"""The same for rows that match a search."""
