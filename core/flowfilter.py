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
never raises; a flow that lacks what an operator reads simply does not match it.
"""
from __future__ import annotations

import difflib
import functools
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Filter", "FilterError", "OPERATORS", "match", "parse"]

Predicate = Callable[[Any], bool]

_UNOPENED = "unbalanced parenthesis: ) without a matching ("
_QUOTED = {q: re.compile(rf"((?:\\.|[^\\{q}])*){q}", re.S) for q in "\"'"}
_MAX_DEPTH = 100  # deeper nesting of ( and ! is a FilterError rather than a RecursionError
_ASSET = re.compile(r"(text|application)/(x-)?javascript|text/css|image/|font/|application/(x-)?font"
                    r"|application/x-shockwave-flash", re.I)


class FilterError(ValueError):
    """A bad filter expression: `reason` says why, `pos` where (0-based offset in `expr`). `str()` is
    "REASON (at offset POS)", then the expression, then a caret under POS."""

    def __init__(self, reason: str, expr: str, pos: int) -> None:
        self.reason, self.expr, self.pos = reason, expr, pos
        shown = "".join(" " if c.isspace() else c for c in expr)  # tabs and newlines would shift the caret
        super().__init__(f"{reason} (at offset {pos})\n  {shown}\n  {' ' * pos}^")


# -- reading flows (duck-typed, tolerant of partial objects) ------------------------------------------


class _Rx:
    """One user regex, compiled for text and, where it is valid as one, as a bytes pattern for bodies."""

    __slots__ = ("text", "raw")

    def __init__(self, source: str) -> None:
        with warnings.catch_warnings():  # a FutureWarning on stderr would garble the TUI
            warnings.simplefilter("ignore")
            self.text = re.compile(source, re.I)
            try:
                self.raw: re.Pattern[bytes] | None = re.compile(source.encode("utf-8", "surrogateescape"), re.I)
            except Exception:  # e.g. "\u00e9" is valid only in a str pattern: search decoded text instead
                self.raw = None

    def search(self, value: object) -> bool:
        if isinstance(value, str):
            return self.text.search(value) is not None
        if isinstance(value, (bytes, bytearray)):
            if self.raw is not None:
                return self.raw.search(value) is not None
            return self.text.search(bytes(value).decode("utf-8", "surrogateescape")) is not None
        return False


def _str(v: object) -> str:
    return v.decode("utf-8", "surrogateescape") if isinstance(v, (bytes, bytearray)) else str(v)


def _http(flow: Any) -> Any:
    """The HTTP flow an HTTP operator reads: the flow itself, or a WebSocketFlow's handshake flow."""
    return flow if getattr(flow, "request", None) is not None else getattr(flow, "handshake_flow", None)


def _req(flow: Any) -> Any:
    return getattr(_http(flow), "request", None)


def _resp(flow: Any) -> Any:
    return getattr(_http(flow), "response", None)


def _messages(flow: Any) -> list[Any]:
    # A WebSocketFlow or TCPFlow has its own messages; an HTTPFlow that became a WebSocket reaches them.
    return list(getattr(flow, "messages", None) or getattr(getattr(flow, "websocket", None), "messages", None) or ())


def _header_lines(msg: Any) -> Iterator[str]:
    headers = getattr(msg, "headers", None)
    for name, value in getattr(headers, "fields", None) or ():
        yield f"{_str(name)}: {_str(value)}"


def _content_type(msg: Any) -> str | None:
    headers = getattr(msg, "headers", None)
    return headers.get("content-type") if headers is not None else None


def _bodies(flow: Any, client: bool, server: bool) -> Iterator[object]:
    if client:
        yield getattr(_req(flow), "content", None)
    if server:
        yield getattr(_resp(flow), "content", None)
    for m in _messages(flow):
        if client if getattr(m, "from_client", False) else server:
            yield getattr(m, "content", None)


def _address(flow: Any, attr: str) -> str | None:
    conn = getattr(flow, attr, None) or getattr(getattr(flow, "handshake_flow", None), attr, None)
    addr = getattr(conn, "address", None) or getattr(conn, "peername", None)
    return f"{addr[0]}:{addr[1]}" if addr else None


# -- operators ------------------------------------------------------------------------------------


def _url(rx: _Rx) -> Predicate:
    return lambda f: (r := _req(f)) is not None and (rx.search(r.url) or rx.search(getattr(r, "pretty_url", None)))


def _domain(rx: _Rx) -> Predicate:
    return lambda f: (r := _req(f)) is not None and (rx.search(getattr(r, "host", None)) or rx.search(r.pretty_host))


def _headers(rx: _Rx, *sides: Callable[[Any], Any]) -> Predicate:
    return lambda f: any(rx.search(line) for side in sides for line in _header_lines(side(f)))


def _ctype(rx: _Rx, *sides: Callable[[Any], Any]) -> Predicate:
    return lambda f: any(rx.search(_content_type(side(f))) for side in sides)


def _body(rx: _Rx, client: bool, server: bool) -> Predicate:
    return lambda f: any(rx.search(b) for b in _bodies(f, client, server))


def _newest_from(flow: Any, from_client: bool) -> bool:
    """Direction of the message being delivered (the newest): what message intercepts filter on."""
    holder = getattr(flow, "websocket", None) or flow
    messages = getattr(holder, "messages", None)
    return bool(messages) and messages[-1].from_client is from_client


_FLAGS: dict[str, tuple[str, Predicate]] = {
    "all": ("every flow", lambda f: True),
    "q": ("request without a response (and no error)",
          lambda f: _req(f) is not None and _resp(f) is None and getattr(f, "error", None) is None),
    "s": ("has a response", lambda f: _resp(f) is not None),
    "e": ("has an error", lambda f: getattr(f, "error", None) is not None),
    "http": ("HTTP flow", lambda f: getattr(f, "type", None) == "http"),
    "websocket": ("WebSocket flow or its handshake",
                  lambda f: getattr(f, "type", None) == "websocket" or getattr(f, "websocket", None) is not None),
    "tcp": ("raw TCP flow", lambda f: getattr(f, "type", None) == "tcp"),
    "marked": ("marked flow", lambda f: bool(getattr(f, "marked", False))),
    "replay": ("replayed flow", lambda f: bool(getattr(f, "is_replay", None))),
    "wq": ("the newest WebSocket/TCP message went client → server", lambda f: _newest_from(f, True)),
    "ws": ("the newest WebSocket/TCP message went server → client", lambda f: _newest_from(f, False)),
    "a": ("asset: JavaScript, CSS, image, font or Flash response",
          lambda f: _ASSET.match(_content_type(_resp(f)) or "") is not None),
}

_REGEX: dict[str, tuple[str, Callable[[_Rx], Predicate]]] = {
    "u": ("URL", _url),
    "d": ("domain (host or Host header)", _domain),
    "m": ("request method", lambda rx: lambda f: rx.search(getattr(_req(f), "method", None))),
    "h": ("header line 'Name: value', request or response", lambda rx: _headers(rx, _req, _resp)),
    "hq": ("request header line", lambda rx: _headers(rx, _req)),
    "hs": ("response header line", lambda rx: _headers(rx, _resp)),
    "b": ("body of request, response or any message", lambda rx: _body(rx, True, True)),
    "bq": ("request body or client message", lambda rx: _body(rx, True, False)),
    "bs": ("response body or server message", lambda rx: _body(rx, False, True)),
    "t": ("content type, request or response", lambda rx: _ctype(rx, _req, _resp)),
    "tq": ("request content type", lambda rx: _ctype(rx, _req)),
    "ts": ("response content type", lambda rx: _ctype(rx, _resp)),
    "src": ("client address host:port", lambda rx: lambda f: rx.search(_address(f, "client_conn"))),
    "dst": ("server address host:port", lambda rx: lambda f: rx.search(_address(f, "server_conn"))),
    "comment": ("flow comment", lambda rx: lambda f: rx.search(getattr(f, "comment", None))),
}

OPERATORS: dict[str, str] = {
    **{f"~{k}": h for k, (h, _) in _FLAGS.items()},
    **{f"~{k} REGEX": h for k, (h, _) in _REGEX.items()},
    "~c CODE": "response status code",
}
"""Every operator with a one-line description, for help screens."""


# -- the compiled tree ----------------------------------------------------------------------------


class _Leaf:
    __slots__ = ("code", "arg", "test")

    def __init__(self, code: str, arg: str | int | None, test: Predicate) -> None:
        self.code, self.arg, self.test = code, arg, test

    def __call__(self, flow: Any) -> bool:
        try:
            return bool(self.test(flow))
        except Exception:  # a half-built or odd flow just does not match
            return False

    def __repr__(self) -> str:
        return f"~{self.code}" if self.arg is None else f"~{self.code} {self.arg!r}"


class _Combine:
    """`!`, `&` or `|` over child predicates."""

    __slots__ = ("op", "children")

    def __init__(self, op: str, children: list[Predicate]) -> None:
        self.op, self.children = op, children

    def __call__(self, flow: Any) -> bool:
        if self.op == "!":
            return not self.children[0](flow)
        return (all if self.op == "&" else any)(c(flow) for c in self.children)

    def __repr__(self) -> str:
        if self.op == "!":
            return f"!{self.children[0]!r}"
        return "(" + f" {self.op} ".join(map(repr, self.children)) + ")"


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
        return parts[0] if len(parts) == 1 else _Combine("|", parts)

    def parse_and(self, after: str | None) -> Predicate:
        parts = [self.parse_unary(after)]
        while (c := self.peek()) and c not in "|)":
            if c == "&":
                self.i += 1
                parts.append(self.parse_unary("&"))
            else:  # adjacent terms: implicit and
                parts.append(self.parse_unary(None))
        return parts[0] if len(parts) == 1 else _Combine("&", parts)

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
            return _Combine("!", [self.nested(self.i - 1, lambda: self.parse_unary("!"))])
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
        return _Leaf("u", text, _url(self.compile(text, start, quoted, "bare word (~u)")))

    def parse_operator(self) -> Predicate:
        start = self.i
        j = start + 1
        while j < len(self.s) and not self.s[j].isspace() and self.s[j] not in "()&|!~\"'":
            j += 1
        name = self.s[start + 1 : j]
        if not name:
            raise self.error("expected an operator name after ~", start)
        known = [*_FLAGS, *_REGEX, "c"]
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean ~{close[0]}?" if close else ""
            raise self.error(f"unknown operator ~{name}{hint}", start)
        self.i = j
        if name in _FLAGS:
            return _Leaf(name, None, _FLAGS[name][1])
        if name == "c":
            text, at, _ = self.read_arg("~c expects a status code number")
            if not re.fullmatch(r"[0-9]{1,3}", text):
                raise self.error(f"~c expects a status code number, not {text!r}", at)
            code = int(text)
            return _Leaf("c", code, lambda f: getattr(_resp(f), "status_code", None) == code)
        text, at, quoted = self.read_arg(f"~{name} expects a regular expression (quote it if it starts with ~ & | or ))")
        return _Leaf(name, text, _REGEX[name][1](self.compile(text, at, quoted, f"~{name}")))

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

    def compile(self, text: str, at: int, quoted: bool, where: str) -> _Rx:
        try:
            return _Rx(text)
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
