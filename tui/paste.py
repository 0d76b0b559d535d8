"""Bracketed paste. Once the app sends ESC[?2004h, the terminal wraps what the user pastes in ESC[200~ …
ESC[201~; ESC[?2004l (at exit, and whenever the screen stops: an external editor, a suspend) turns that
off again. `PasteScreen` takes the pasted bytes out of the input before urwid decodes it into keys (its
decoder takes time quadratic in the size of one read: 100 KB took seconds) and hands the paste on as
one key, a `Paste` (the string "paste" with the pasted `text`). The app inserts that text into the
focused editor in one go, so nothing of a paste is ever run as keys and a pasted newline submits nothing.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import urwid

START, END = b"\x1b[200~", b"\x1b[201~"
ENABLE, DISABLE = "\x1b[?2004h", "\x1b[?2004l"
MAX_PASTE = 64 * 1024 * 1024
"""A paste that never ends (a terminal that lost the end marker) is cut here and delivered."""


class Paste(str):
    """The key a paste arrives as: equal to "paste", the pasted text in `text`."""

    text: str

    def __new__(cls, text: str) -> Paste:
        key = super().__new__(cls, "paste")
        key.text = text
        return key


def decode(data: bytes) -> str:
    """The pasted bytes as text, line breaks as "\\n" (a terminal sends CR for Enter)."""
    return data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


class PasteScreen(urwid.display.raw.Screen):
    """urwid's terminal screen with bracketed paste, see the module's doc."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._paste: bytearray | None = None
        """The paste read so far, while one is arriving."""

    def _start(self, *args: Any, **kwargs: Any) -> None:
        super()._start(*args, **kwargs)
        self.write(ENABLE)
        self.flush()

    def _stop(self) -> None:
        try:
            self.write(DISABLE)
            self.flush()
        except OSError:
            pass  # a terminal that hung up has nothing to turn off; urwid's own restore says what went wrong
        super()._stop()

    def parse_input(self, event_loop: Any, callback: Callable[[list[Any], list[int]], Any] | None,
                    codes: list[int], wait_for_more: bool = True) -> Any:
        if callback is None:
            return super().parse_input(event_loop, callback, codes, wait_for_more)
        if self._paste is None:
            data = bytes(codes)
            i = data.find(START)
            if i < 0:
                return super().parse_input(event_loop, callback, codes, wait_for_more)
            if i:
                super().parse_input(event_loop, callback, codes[:i], False)  # keys typed before the paste
            self._paste = bytearray()
            codes = codes[i + len(START):]
        if self._input_timeout is not None and event_loop is not None:
            event_loop.remove_alarm(self._input_timeout)  # urwid's wait for the rest of an escape sequence
            self._input_timeout = None
        self._partial_codes = []
        seen = max(len(self._paste) - len(END), 0)
        self._paste += bytes(codes)
        j = self._paste.find(END, seen)
        if j < 0 and len(self._paste) < MAX_PASTE:
            return None  # the rest of the paste comes with the next read
        end = len(self._paste) if j < 0 else j
        text, rest = decode(bytes(self._paste[:end])), bytes(self._paste[end + len(END):]) if j >= 0 else b""
        self._paste = None
        callback([Paste(text)], [])
        if rest:
            self.parse_input(event_loop, callback, list(rest), wait_for_more)
        return None
