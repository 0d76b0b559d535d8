"""Line editing for every prompt and editor, and bracketed paste.

- `readline_key(edit, key)`: the readline keys on any urwid.Edit (one line or many): ctrl a/e and
  Home/End (start/end of the line), ctrl u/k (delete to the start/end of the line), ctrl w (delete the
  word before the cursor), alt b/f (a word back/forward). Plain string work, one slice per key.
- `LineEdit`: a one-line editor that draws only the part of its text around the cursor, so a 100 KB
  text costs a key press no more than a short one. A pre-filled text starts selected: typing or a paste
  replaces it, backspace/delete clears it, any movement key deselects it and keeps it.
- `paste_into(widget, text)`: insert a paste into the editor that has the focus under `widget`, as text
  in one go (a one-line editor turns line breaks into spaces); False when no editor has the focus.
"""
from __future__ import annotations

from typing import Any

import urwid

MOVES = {"ctrl a", "ctrl e", "home", "end", "meta b", "meta f", "left", "right", "ctrl b", "ctrl f"}
"""Keys that only move the cursor (they deselect a pre-filled text and keep it)."""


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def word_start(text: str, pos: int, sep: Any = _is_word) -> int:
    """Where the word before `pos` starts (skipping what is not a word first)."""
    while pos > 0 and not sep(text[pos - 1]):
        pos -= 1
    while pos > 0 and sep(text[pos - 1]):
        pos -= 1
    return pos


def word_end(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and not _is_word(text[pos]):
        pos += 1
    while pos < n and _is_word(text[pos]):
        pos += 1
    return pos


def _not_space(ch: str) -> bool:
    return not ch.isspace()


def readline_key(edit: urwid.Edit, key: str) -> bool:
    """Apply a readline key to `edit`; False if `key` is not one of them."""
    text, pos = edit.edit_text, edit.edit_pos
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    end = len(text) if end < 0 else end
    if key in ("ctrl a", "home"):
        edit.set_edit_pos(start)
    elif key in ("ctrl e", "end"):
        edit.set_edit_pos(end)
    elif key == "meta b":
        edit.set_edit_pos(word_start(text, pos))
    elif key == "meta f":
        edit.set_edit_pos(word_end(text, pos))
    elif key == "ctrl u":
        _replace(edit, start, pos, "")
    elif key == "ctrl k":
        _replace(edit, pos, end, "")
    elif key == "ctrl w":
        _replace(edit, max(word_start(text, pos, _not_space), start), pos, "")
    else:
        return False
    return True


def _replace(edit: urwid.Edit, a: int, b: int, new: str) -> None:
    text = edit.edit_text
    edit.set_edit_text(text[:a] + new + text[b:])
    edit.set_edit_pos(a + len(new))


def one_line(text: str) -> str:
    """A paste for a one-line editor: line breaks and tabs become spaces (a trailing break is dropped)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    return text.replace("\n", " ").replace("\t", " ")


class LineEdit(urwid.Edit):
    """One line of text that scrolls sideways; see the module's doc."""

    def __init__(self, caption: Any = "", edit_text: str = "", select: bool = True) -> None:
        super().__init__(caption, "")
        self.caption_markup = caption
        self._edit_text = edit_text
        self._edit_pos = len(edit_text)
        self.selected = bool(edit_text) and select
        """The whole (pre-filled) text is selected: typing replaces it."""
        self._scroll = 0

    # -- text ---------------------------------------------------------------------------------
    def set_edit_text(self, text: str, **_: Any) -> None:
        self._edit_text = text
        self._edit_pos = min(self._edit_pos, len(text))
        self.selected = False
        self._invalidate()

    def set_edit_pos(self, pos: int) -> None:
        self._edit_pos = max(0, min(pos, len(self._edit_text)))
        self._invalidate()

    def insert_text(self, text: str) -> None:
        if self.selected:
            self._edit_text, self._edit_pos = "", 0
        t, p = self._edit_text, self._edit_pos
        self.set_edit_text(t[:p] + text + t[p:])
        self.set_edit_pos(p + len(text))

    def paste(self, text: str) -> bool:
        self.insert_text(one_line(text))
        return True

    # -- keys ---------------------------------------------------------------------------------
    def keypress(self, size: Any, key: str) -> str | None:
        if self.selected:
            if key in MOVES:
                self.selected = False
                self._invalidate()
                if key in ("left", "right", "ctrl b", "ctrl f"):
                    return None  # the first move only deselects, as in a browser's address bar
            elif key in ("backspace", "delete", "ctrl u", "ctrl k", "ctrl w", "ctrl d"):
                self.set_edit_text("")
                return None
        if readline_key(self, key):
            return None
        t, p = self._edit_text, self._edit_pos
        if len(key) == 1 and key.isprintable():
            self.insert_text(key)
        elif key in ("left", "ctrl b"):
            self.set_edit_pos(p - 1)
        elif key in ("right", "ctrl f"):
            self.set_edit_pos(p + 1)
        elif key == "backspace":
            if p > 0:
                self.set_edit_text(t[:p - 1] + t[p:])
                self.set_edit_pos(p - 1)
        elif key in ("delete", "ctrl d"):
            if p < len(t):
                self.set_edit_text(t[:p] + t[p + 1:])
        else:
            return key
        return None

    # -- drawing: only the window around the cursor --------------------------------------------
    def _window(self, maxcol: int) -> tuple[int, int]:
        """(caption width, offset of the first character shown), the cursor kept in view."""
        # A long caption (a question with the reason of a refusal) leaves the text at least 20 columns.
        cap = min(urwid.calc_width(self.caption, 0, len(self.caption)), max(maxcol - 20, maxcol // 2))
        room = max(maxcol - cap - 1, 0)  # the cursor may sit one past the last character
        pos = self._edit_pos
        if len(self._edit_text) <= room:
            self._scroll = 0
        elif pos < self._scroll:
            self._scroll = max(pos - room // 2, 0)
        elif pos > self._scroll + room:
            self._scroll = pos - room
        return cap, self._scroll

    def rows(self, size: Any, focus: bool = False) -> int:
        return 1

    def render(self, size: Any, focus: bool = False) -> urwid.CompositeCanvas:
        maxcol = size[0]
        cap, first = self._window(maxcol)
        shown = "".join(c if c.isprintable() else "?" for c in self._edit_text[first:first + maxcol - cap])
        text = urwid.Text(("focus", shown) if self.selected and shown else shown, wrap="clip")
        if cap:
            caption = urwid.Text(self.caption_markup, wrap="ellipsis").render((cap,))
            canvas = urwid.CanvasJoin([(caption, None, False, cap), (text.render((maxcol - cap,)), None, True,
                                                                     maxcol - cap)])
        else:
            canvas = urwid.CompositeCanvas(text.render((maxcol,)))
        if focus:
            canvas.cursor = (cap + self._edit_pos - first, 0)
        return canvas

    def get_cursor_coords(self, size: Any) -> tuple[int, int]:
        cap, first = self._window(size[0])
        return cap + self._edit_pos - first, 0

    def get_pref_col(self, size: Any) -> int:
        return self.get_cursor_coords(size)[0]

    def move_cursor_to_coords(self, size: Any, x: Any, y: int) -> bool:
        cap, first = self._window(size[0])
        col = len(self._edit_text) if x == urwid.RIGHT else 0 if x == urwid.LEFT else int(x)
        self.set_edit_pos(first + max(col - cap, 0))
        return True


def paste_into(widget: Any, text: str) -> bool:
    """Insert `text` into the editor with the focus under `widget`: the first widget on the focus path
    with a `paste(text)` method decides (it returns False to refuse), else the focused urwid.Edit.
    False when there is none."""
    w = widget
    for _ in range(64):
        if w is None:
            return False
        paste = getattr(w, "paste", None)
        if callable(paste):
            return bool(paste(text))
        if isinstance(w, urwid.Edit):
            if not w.multiline:
                text = one_line(text)
            t, p = w.edit_text, w.edit_pos
            w.set_edit_text(t[:p] + text + t[p:])
            w.set_edit_pos(p + len(text))
            return True
        if isinstance(w, urwid.WidgetWrap):
            w = w._w
        elif isinstance(w, urwid.WidgetDecoration):
            w = w.original_widget
        else:
            w = getattr(w, "focus", None)
    return False
