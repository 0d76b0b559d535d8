"""Text made safe for a terminal or a log: one escaping for interpose-dump and the terminal UI.

Peers choose header values, URLs, methods and bodies; printed raw, an ESC (`\\x1b[2J`, `\\x1bc`) steers
the terminal and a CR/LF forges log lines. `sanitize` makes C0 controls (tab and newline kept), DEL, C1
controls, and line-separator and bidi characters visible (`\\x1b` → `^[`, `\\r` → `^M`, `\\x9b` →
`\\x9b`); `sanitize_segment` is for text that must stay on one line (also tab → space, newline → `^J`).
Both return their argument unchanged (no copy) when it has nothing to escape.
"""
from __future__ import annotations

import re

__all__ = ["has_unsafe", "sanitize", "sanitize_segment"]


def _build_unsafe_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for c in range(0x20):
        if c not in (0x09, 0x0A):  # tab is expanded and newline splits lines; both handled by callers
            table[c] = "^" + chr(c + 0x40)  # caret notation: \x1b → ^[, \r → ^M, \x00 → ^@
    table[0x7F] = "^?"
    for c in range(0x80, 0xA0):  # C1 controls: \x9b alone is a CSI on some terminals
        table[c] = f"\\x{c:02x}"
    # Line/paragraph separators, bidi embeddings/overrides/isolates and marks reorder or break the screen.
    for c in (0x2028, 0x2029, 0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)):
        table[c] = f"\\u{c:04x}"
    return table


_UNSAFE_TABLE = _build_unsafe_table()
_UNSAFE_RE = re.compile("[" + "".join(re.escape(chr(c)) for c in _UNSAFE_TABLE) + "]")
_UNSAFE_OR_TAB_RE = re.compile(_UNSAFE_RE.pattern[:-1] + "\t\n]")


def has_unsafe(text: str) -> bool:
    """True if `text` holds a character that `sanitize` would replace (tab and newline excluded)."""
    return _UNSAFE_RE.search(text) is not None


def sanitize(text: str) -> str:
    """Make control, C1 and bidi characters visible (`\\x1b` → `^[`); tabs and newlines are kept."""
    if _UNSAFE_RE.search(text) is None:
        return text
    return text.translate(_UNSAFE_TABLE)


def sanitize_segment(text: str) -> str:
    """Like `sanitize`, but also for text that must stay on one line (tabs → spaces, newlines → ^J)."""
    if _UNSAFE_OR_TAB_RE.search(text) is None:
        return text
    return text.replace("\t", " ").replace("\n", "^J").translate(_UNSAFE_TABLE)
