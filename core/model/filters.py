"""The operators of the flow filter language (`interpose.flowfilter` parses it): what each `~x` reads
from a flow, and the nodes (`Leaf`, `Combine`) a parsed expression is made of.

Flows are duck-typed: HTTP operators on a `WebSocketFlow` look at its `handshake_flow`, and matching
never raises; a flow that lacks what an operator reads simply does not match it.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from interpose.errors import InterposeError

__all__ = ["FLAGS", "OPERATORS", "REGEX", "Combine", "Leaf", "Predicate", "Rx", "status_is"]

Predicate = Callable[[Any], bool]

_ASSET = re.compile(r"(text|application)/(x-)?javascript|text/css|image/|font/|application/(x-)?font"
                    r"|application/x-shockwave-flash", re.I)


# -- reading flows (duck-typed, tolerant of partial objects) ------------------------------------------


class Rx:
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


def _content(obj: Any) -> object:
    """A body, or None when there is none or it cannot be read (e.g. too large to decode: no match)."""
    try:
        return getattr(obj, "content", None)
    except InterposeError:
        return None


def _bodies(flow: Any, client: bool, server: bool) -> Iterator[object]:
    if client:
        yield _content(_req(flow))
    if server:
        yield _content(_resp(flow))
    for m in _messages(flow):
        if client if getattr(m, "from_client", False) else server:
            yield _content(m)


def _address(flow: Any, attr: str) -> str | None:
    conn = getattr(flow, attr, None) or getattr(getattr(flow, "handshake_flow", None), attr, None)
    addr = getattr(conn, "address", None) or getattr(conn, "peername", None)
    return f"{addr[0]}:{addr[1]}" if addr else None


# -- operators ------------------------------------------------------------------------------------


def _url(rx: Rx) -> Predicate:
    return lambda f: (r := _req(f)) is not None and (rx.search(r.url) or rx.search(getattr(r, "pretty_url", None)))


def _domain(rx: Rx) -> Predicate:
    return lambda f: (r := _req(f)) is not None and (rx.search(getattr(r, "host", None)) or rx.search(r.pretty_host))


def _headers(rx: Rx, *sides: Callable[[Any], Any]) -> Predicate:
    return lambda f: any(rx.search(line) for side in sides for line in _header_lines(side(f)))


def _ctype(rx: Rx, *sides: Callable[[Any], Any]) -> Predicate:
    return lambda f: any(rx.search(_content_type(side(f))) for side in sides)


def _body(rx: Rx, client: bool, server: bool) -> Predicate:
    return lambda f: any(rx.search(b) for b in _bodies(f, client, server))


def _newest_from(flow: Any, from_client: bool) -> bool:
    """Direction of the message being delivered (the newest): what message intercepts filter on."""
    holder = getattr(flow, "websocket", None) or flow
    messages = getattr(holder, "messages", None)
    if not messages:
        return False
    return messages[-1].from_client is from_client


FLAGS: dict[str, tuple[str, Predicate]] = {
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

REGEX: dict[str, tuple[str, Callable[[Rx], Predicate]]] = {
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
    "comment": ("flow comment", lambda rx: lambda f: rx.search(getattr(f, "comment", None) or "")),
}

def status_is(code: int) -> Predicate:
    """`~c CODE`: the response's status code is `code`."""
    return lambda f: getattr(_resp(f), "status_code", None) == code


OPERATORS: dict[str, str] = {
    **{f"~{k}": h for k, (h, _) in FLAGS.items()},
    **{f"~{k} REGEX": h for k, (h, _) in REGEX.items()},
    "~c CODE": "response status code",
}
"""Every operator with a one-line description, for help screens."""


# -- the compiled tree ----------------------------------------------------------------------------


class Leaf:
    """One operator (`~CODE ARG`) and its predicate; a flow it cannot read does not match."""

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


class Combine:
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
