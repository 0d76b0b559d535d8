"""Flow filter expressions (SPEC "Flow filter expressions"), compiled once into a predicate `flow -> bool`.

The language is mitmproxy's. `!` binds tightest, then `&`, then `|`; terms written side by side are and-ed:

    expr  := and ('|' and)*
    and   := unary (['&'] unary)*
    unary := '!' unary | '(' expr ')' | '~' NAME [ARG] | WORD        (a bare WORD means `~u WORD`)

An ARG or WORD is either quoted ('...' or "..."; a backslash before the quote character makes a literal
quote, every other backslash sequence is kept as it is for the regex) or a run of non-blank characters
that ends at a parenthesis it did not open, so `~u (a|b)` and `(~d example.com)` both read as meant.
Regexes are compiled once, at parse time, case-insensitively, and searched (`re.search`), never anchored.

Flows are duck-typed: HTTP operators on a `WebSocketFlow` look at its `handshake_flow`, and matching
never raises; a flow that lacks what an operator reads simply does not match it. The operators themselves
(what each one reads from a flow) are in `interpose.model.filters`; this module is the language.
"""
from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable
from typing import Any

from interpose.model.filters import FLAGS, OPERATORS, REGEX, Combine, Leaf, Predicate, Rx, status_is

__all__ = ["Filter", "FilterError", "OPERATORS", "match", "parse"]

_UNOPENED = "unbalanced parenthesis: ) without a matching ("
_QUOTED = {q: re.compile(rf"((?:\\.|[^\\{q}])*){q}", re.S) for q in "\"'"}
_MAX_DEPTH = 100  # deeper nesting of ( and ! is a FilterError rather than a RecursionError


class FilterError(ValueError):
    """A bad filter expression: `reason` says why, `pos` where (0-based offset in `expr`). `str()` is
    "REASON (at offset POS)", then the expression, then a caret under POS."""

    def __init__(self, reason: str, expr: str, pos: int) -> None:
        self.reason, self.expr, self.pos = reason, expr, pos
        shown = "".join(" " if c.isspace() else c for c in expr)  # tabs and newlines would shift the caret
        super().__init__(f"{reason} (at offset {pos})\n  {shown}\n  {' ' * pos}^")


class Filter:
    """A parsed filter: call it with a flow. `expr` is the source text."""

    __slots__ = ("expr", "_root")

    def __init__(self, expr: str, root: Predicate) -> None:
        self.expr, self._root = expr, root

    def __call__(self, flow: Any) -> bool:
        try:
            return bool(self._root(flow))
        except Exception:  # leaves already swallow errors; this is the last guard (e.g. RecursionError)
            return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Filter) and other.expr == self.expr

    def __hash__(self) -> int:
        return hash(self.expr)

    def __repr__(self) -> str:
        return f"<Filter {self.expr!r} = {self._root!r}>"


# -- parser ---------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent straight over the text: whether `|` ends a word depends on where we are."""

    def __init__(self, expr: str) -> None:
        self.s, self.i, self.depth = expr, 0, 0

    def error(self, reason: str, pos: int | None = None) -> FilterError:
        return FilterError(reason, self.s, self.i if pos is None else pos)

    def peek(self) -> str:
        """Skip blanks; the next character, or "" at the end."""
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1
        return self.s[self.i] if self.i < len(self.s) else ""

    def parse(self) -> Predicate:
        if not self.s.strip():
            raise self.error("empty expression", 0)
        node = self.parse_or(None)
        if self.peek():  # parse_and stops only at ")" or the end
            raise self.error(_UNOPENED)
        return node

    def parse_or(self, after: str | None) -> Predicate:
        parts = [self.parse_and(after)]
        while self.peek() == "|":
            self.i += 1
            parts.append(self.parse_and("|"))
        return parts[0] if len(parts) == 1 else Combine("|", parts)

    def parse_and(self, after: str | None) -> Predicate:
        parts = [self.parse_unary(after)]
        while (c := self.peek()) and c not in "|)":
            if c == "&":
                self.i += 1
                parts.append(self.parse_unary("&"))
            else:  # adjacent terms: implicit and
                parts.append(self.parse_unary(None))
        return parts[0] if len(parts) == 1 else Combine("&", parts)

    def nested(self, at: int, parse: Callable[[], Predicate]) -> Predicate:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(f"expression nested too deeply (more than {_MAX_DEPTH} levels of ( or !)", at)
        node = parse()
        self.depth -= 1
        return node

    def parse_unary(self, after: str | None) -> Predicate:
        c = self.peek()
        if c == "" or c in "&|)":
            if after is not None:
                raise self.error(f"expected an expression after {after}" + (f", found {c}" if c else ""))
            raise self.error(_UNOPENED if c == ")" else f"expected an expression before {c}")
        if c == "!":
            self.i += 1
            return Combine("!", [self.nested(self.i - 1, lambda: self.parse_unary("!"))])
        if c == "(":
            opened = self.i
            self.i += 1
            node = self.nested(opened, lambda: self.parse_or("("))
            if self.peek() != ")":
                raise self.error("unbalanced parenthesis: this ( is never closed", opened)
            self.i += 1
            return node
        if c == "~":
            return self.parse_operator()
        text, start, quoted = self.read_word()
        return Leaf("u", text, REGEX["u"][1](self.compile(text, start, quoted, "bare word (~u)")))

    def parse_operator(self) -> Predicate:
        start = self.i
        j = start + 1
        while j < len(self.s) and not self.s[j].isspace() and self.s[j] not in "()&|!~\"'":
            j += 1
        name = self.s[start + 1 : j]
        if not name:
            raise self.error("expected an operator name after ~", start)
        known = [*FLAGS, *REGEX, "c"]
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean ~{close[0]}?" if close else ""
            raise self.error(f"unknown operator ~{name}{hint}", start)
        self.i = j
        if name in FLAGS:
            return Leaf(name, None, FLAGS[name][1])
        if name == "c":
            text, at, _ = self.read_arg("~c expects a status code number")
            if not re.fullmatch(r"[0-9]{1,3}", text):
                raise self.error(f"~c expects a status code number, not {text!r}", at)
            code = int(text)
            return Leaf("c", code, status_is(code))
        text, at, quoted = self.read_arg(
            f"~{name} expects a regular expression (quote it if it starts with ~ & | or ))")
        return Leaf(name, text, REGEX[name][1](self.compile(text, at, quoted, f"~{name}")))

    def read_arg(self, missing: str) -> tuple[str, int, bool]:
        c = self.peek()
        if c == "" or c in "&|)~":
            raise self.error(missing)
        return self.read_word()

    def read_word(self) -> tuple[str, int, bool]:
        """A quoted string or a bare run; returns (text, offset, quoted)."""
        s, start = self.s, self.i
        q = s[start]
        if q in _QUOTED:
            if (end := _QUOTED[q].match(s, start + 1)) is None:
                raise self.error(f"unterminated quoted string: missing closing {q}", start)
            self.i = end.end()
            # Only backslash-quote is unescaped; \d, \\ and the like reach the regex as written.
            return re.sub(r"\\(.)", lambda m: q if m[1] == q else m[0], end[1], flags=re.S), start, True
        depth, j = 0, start
        while j < len(s) and not s[j].isspace():
            if s[j] == "\\":
                j += 1  # an escaped parenthesis does not count
            elif s[j] == "(":
                depth += 1
            elif s[j] == ")":
                if depth == 0:
                    break
                depth -= 1
            j += 1
        self.i = min(j, len(s))
        return s[start : self.i], start, False

    def compile(self, text: str, at: int, quoted: bool, where: str) -> Rx:
        try:
            return Rx(text)
        except Exception as e:  # re.error, and OverflowError/RecursionError for pathological patterns
            pos = getattr(e, "pos", None)
            at = at + pos if not quoted and isinstance(pos, int) else at + quoted
            raise self.error(f"invalid regular expression in {where}: {getattr(e, 'msg', None) or e}", at) from None


def parse(expr: str) -> Filter:
    """Compile a filter expression. Raises FilterError (a ValueError) saying where and why it is wrong."""
    if not isinstance(expr, str):
        raise FilterError(f"a filter expression must be a string, not {type(expr).__name__}", "", 0)
    return Filter(expr, _Parser(expr).parse())


_parse_cached = functools.lru_cache(maxsize=256)(parse)


def match(flt: str | Predicate, flow: Any) -> bool:
    """Does `flow` match `flt` (an expression, parsed and cached, or an already parsed Filter)?"""
    return bool((_parse_cached(flt) if isinstance(flt, str) else flt)(flow))
