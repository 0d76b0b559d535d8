"""The `:` command prompt: the status bar's one-line prompt (widgets/panes.Prompt, whose line editing it
keeps) plus Tab completion from the command registry, a history kept in CONFDIR/command_history
(Up/Down walk it), and ctrl r to search it backwards."""
from __future__ import annotations

import os
from typing import Any

from interpose.runtime.commands.registry import CommandRegistry
from interpose.tui.widgets.panes import Prompt

HISTORY_MAX = 1000


class CommandHistory:
    """The command lines run, oldest first, kept in a file (one per line) when a path is given."""

    def __init__(self, path: str | None) -> None:
        self.path = os.path.expanduser(path) if path else None
        self.lines: list[str] = []
        if self.path and os.path.isfile(self.path):
            try:
                with open(self.path, encoding="utf-8", errors="replace") as f:
                    self.lines = [ln.rstrip("\n") for ln in f if ln.strip()][-HISTORY_MAX:]
            except OSError:
                self.lines = []

    def add(self, line: str) -> None:
        line = line.strip()
        if not line or "\n" in line:
            return
        if self.lines and self.lines[-1] == line:
            return
        self.lines.append(line)
        del self.lines[:-HISTORY_MAX]
        self.save()

    def save(self) -> None:
        if self.path:
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                with open(self.path, "w", encoding="utf-8") as f:
                    f.write("".join(ln + "\n" for ln in self.lines))
            except OSError:
                pass  # a read-only confdir: the history lives for this run only


def _common_prefix(words: list[str]) -> str:
    return os.path.commonprefix(words) if words else ""


class CommandPrompt(Prompt):
    """`: ` then a command line. Tab completes (again: the next candidate), ctrl r searches the history."""

    def __init__(self, registry: CommandRegistry, history: CommandHistory, initial: str, on_done: Any,
                 on_hint: Any = None) -> None:
        super().__init__(": ", initial, on_done, history.lines, select=False)
        self.registry = registry
        self.on_hint = on_hint
        """Called with a line of text listing the candidates (the TUI shows it above the prompt)."""
        self._cycle: tuple[str, int, list[str], int] | None = None
        """(text after the last completion, where the word starts, candidates, index shown)."""
        self._search: str | None = None
        self._search_at = 0

    def keypress(self, size: tuple[int], key: str) -> str | None:  # type: ignore[override]
        if self._search is not None:
            return self._search_key(size, key)
        if key == "tab":
            self._complete()
            return None
        if key == "ctrl r":
            self._search, self._search_at = "", len(self.history)
            self._show_search()
            return None
        self._cycle = None
        return super().keypress(size, key)

    # -- completion ---------------------------------------------------------------------------
    def _complete(self) -> None:
        text = self.edit_text[:self.edit_pos]
        tail = self.edit_text[self.edit_pos:]
        if self._cycle is not None and self._cycle[0] == text:
            _, start, cands, i = self._cycle
            i = (i + 1) % len(cands)
            self._put(text[:start] + cands[i], tail)
            self._cycle = (self.edit_text[:self.edit_pos], start, cands, i)
            return
        start, cands = self.registry.complete(text)
        word = text[start:]
        if not cands:
            self._hint("no completions")
            return
        if len(cands) == 1:
            done = cands[0]
            end = "" if done.endswith(("/", "=")) else " "
            self._put(text[:start] + done + end, tail)
            self._hint("")
            return
        common = _common_prefix(cands)
        self._hint(" ".join(cands[:40]) + (" …" if len(cands) > 40 else ""))
        if len(common) > len(word):
            self._put(text[:start] + common, tail)
            self._cycle = (self.edit_text[:self.edit_pos], start, cands, -1)
        else:
            self._put(text[:start] + cands[0], tail)
            self._cycle = (self.edit_text[:self.edit_pos], start, cands, 0)

    def _put(self, head: str, tail: str) -> None:
        self.set_edit_text(head + tail)
        self.set_edit_pos(len(head))

    def _hint(self, text: str) -> None:
        if self.on_hint is not None:
            self.on_hint(text)

    # -- ctrl r ---------------------------------------------------------------------------------
    def _show_search(self, found: bool = True) -> None:
        label = f"(history search{'' if found else ', not found'}) '{self._search}': "
        self._set_label(label)

    def _set_label(self, label: str) -> None:
        self.caption_markup = ("key", label)  # what LineEdit draws
        self.set_caption(("key", label))

    def _find(self, before: int) -> bool:
        q = self._search or ""
        for i in range(before - 1, -1, -1):
            if q in self.history[i]:
                self._search_at = i
                self._put(self.history[i], "")
                return True
        return False

    def _search_key(self, size: tuple[int], key: str) -> str | None:
        if key == "ctrl r":
            self._show_search(self._find(self._search_at))
            return None
        if key == "backspace":
            self._search = (self._search or "")[:-1]
            self._show_search(self._find(len(self.history)))
            return None
        if len(key) == 1 and key.isprintable():
            self._search = (self._search or "") + key
            self._show_search(self._find(min(self._search_at + 1, len(self.history))))
            return None
        self._search = None
        self._set_label(": ")
        if key == "esc":
            return None  # leaves the search, keeps the line found
        return self.keypress(size, key)
