"""Split a command line into words: whitespace separates, '…' and "…" quote (a backslash escapes the next
character inside double quotes and outside quotes). `split` is strict (an open quote is an error); `partial`
is for completion: it tolerates an open quote and tells whether the line ends inside a word.
"""
from __future__ import annotations

from interpose.errors import InterposeError


class CommandError(InterposeError):
    """A command line that cannot run: unknown command, wrong or missing argument. One line, for the status bar."""


def _scan(line: str) -> tuple[list[str], list[int], bool, str | None]:
    """(words, start offset of each word, ends inside a word, open quote char or None)."""
    words: list[str] = []
    starts: list[int] = []
    cur: list[str] = []
    in_word = False
    quote: str | None = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote is not None:
            if c == quote:
                quote = None
            elif c == "\\" and quote == '"' and i + 1 < len(line):
                i += 1
                cur.append(line[i])
            else:
                cur.append(c)
        elif c.isspace():
            if in_word:
                words.append("".join(cur))
                cur = []
                in_word = False
        else:
            if not in_word:
                in_word = True
                starts.append(i)
            if c in "'\"":
                quote = c
            elif c == "\\" and i + 1 < len(line):
                i += 1
                cur.append(line[i])
            else:
                cur.append(c)
        i += 1
    if in_word:
        words.append("".join(cur))
    return words, starts, in_word, quote


def split(line: str) -> list[str]:
    words, _, _, quote = _scan(line)
    if quote is not None:
        raise CommandError(f"unclosed {quote} quote in: {line}")
    return words


def partial(line: str) -> tuple[list[str], int, str]:
    """For completion: (complete words before the cursor, offset where the last word starts, that word)."""
    words, starts, in_word, _ = _scan(line)
    if in_word:
        return words[:-1], starts[-1], words[-1]
    return words, len(line), ""


def quote(word: str) -> str:
    """A word as it must be typed to come back unchanged from `split`."""
    if word and not any(c.isspace() or c in "'\"\\" for c in word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
