"""GraphQL requests: the query pretty-printed and highlighted, variables and extensions as JSON.

Bodies come as `application/graphql` (the query text itself) or as JSON: `{"query": ..., "variables":
..., "operationName": ...}`, or a list of those (a batch). The formatter is a small indenter over the
query's tokens (https://spec.graphql.org/October2021/#sec-Language): one selection per line, two spaces
per selection set, arguments and input objects kept inline as written. It never rejects a query: what
it does not understand passes through as text. Output stops after `MAX_LINES` lines.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from interpose.tui.contentviews.json import json_lines, looks_like_json
from interpose.tui.contentviews.json import parse as parse_json
from interpose.tui.contentviews.text import Line, decode, sanitize_segment

MAX_LINES = 50_000
"""Real queries are a few hundred lines; formatting costs about 10 µs a token."""

_TOKEN = re.compile(r'''
    (?P<ws>[\s,\ufeff]+)
  | (?P<comment>\#[^\n\r]*)
  | (?P<block>"""(?:\\"""|[^"]|"(?!""))*(?:"""|$))
  | (?P<string>"(?:\\.|[^"\\\n\r])*"?)
  | (?P<spread>\.\.\.)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
  | (?P<punct>[!$&()\[\]{}:=@|])
  | (?P<other>.)
''', re.VERBOSE | re.DOTALL)

KEYWORDS = frozenset(("query", "mutation", "subscription", "fragment", "on", "true", "false", "null", "type",
                      "schema", "interface", "union", "enum", "input", "extend", "scalar", "directive",
                      "implements", "repeatable"))
_NO_SPACE_BEFORE = frozenset((")", "]", ":", ",", "!", "("))
_NO_SPACE_AFTER = frozenset(("(", "[", "$", "@", "{obj"))


class GraphQLError(ValueError):
    """The body holds no GraphQL query."""


def tokens(text: str) -> Iterator[tuple[str, str]]:
    """(kind, text) for every token but whitespace; a run of whitespace with commas is one ("comma", ",")."""
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        tok = m.group()
        if kind == "ws":
            if "," in tok:
                yield ("comma", ",")
            continue
        yield (kind, tok)


def _with_next(toks: Iterator[tuple[str, str]]) -> Iterator[tuple[str, str, str]]:
    """(kind, text, the next token's text or "" when it is a comment or there is none); lazily, so that a
    huge query stops costing once MAX_LINES lines are out."""
    cur = next(toks, None)
    for nxt in toks:
        assert cur is not None
        yield cur[0], cur[1], "" if nxt[0] == "comment" else nxt[1]
        cur = nxt
    if cur is not None:
        yield cur[0], cur[1], ""


class _Formatter:
    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.cur: Line = []
        self.stack: list[str] = []  # "sel" (selection set), "obj" (input object), "(" and "["
        self.space = False  # a space is due before the next token

    @property
    def depth(self) -> int:
        return self.stack.count("sel")

    def newline(self) -> None:
        if self.cur:
            self.lines.append(self.cur)
            if len(self.lines) >= MAX_LINES:
                raise _Full
        self.cur = []
        self.space = False

    def emit(self, attr: str, text: str, space: bool | None = None) -> None:
        if not self.cur:
            self.cur.append(("text", "  " * self.depth))
        elif self.space if space is None else space:
            self.cur.append(("text", " "))
        self.cur.append((attr, sanitize_segment(text)))
        self.space = True

    def run(self, toks: Iterator[tuple[str, str]]) -> list[Line]:
        prev: tuple[str, str] = ("", "")
        prev2: tuple[str, str] = ("", "")
        for kind, tok, nxt in _with_next(toks):
            top = self.stack[-1] if self.stack else ""
            inline = any(s in ("(", "[", "obj") for s in self.stack)
            if kind == "comma":
                if inline:
                    self.emit("syntax_punct", ",", space=False)
                continue
            if kind == "comment":
                self.newline()
                self.emit("syntax_comment", tok)
                self.newline()
                continue
            after_value = prev[0] in ("name", "string", "block", "number") or prev[1] in ("}", ")", "]", "!")
            if kind in ("name", "spread") and not inline and after_value \
                    and not (prev == ("name", "on") and prev2[0] == "spread"):
                if top == "sel":
                    self.newline()  # the next selection (or field of a type definition)
                elif not self.stack and prev[1] == "}":
                    self.newline()
                    self.lines.append([])  # a blank line between definitions
            if kind == "punct" and tok == "{":
                if inline:
                    self.emit("syntax_punct", "{")
                    self.stack.append("obj")
                    self.space = False
                else:
                    self.emit("syntax_punct", "{", space=bool(self.cur))
                    self.stack.append("sel")
                    self.newline()
            elif kind == "punct" and tok == "}":
                if top == "obj":
                    self.stack.pop()
                    self.emit("syntax_punct", "}", space=False)
                else:
                    if self.stack:
                        self.stack.pop()
                    self.newline()
                    self.emit("syntax_punct", "}")
            elif kind == "punct" and tok in "([":
                self.emit("syntax_punct", tok, space=tok == "[" and self.space and prev[1] != "(")
                self.stack.append(tok)
                self.space = False
            elif kind == "punct" and tok in ")]":
                if top == tok.replace(")", "(").replace("]", "["):
                    self.stack.pop()
                self.emit("syntax_punct", tok, space=False)
            elif kind == "punct":
                space = None if tok not in _NO_SPACE_BEFORE else False
                if prev[1] in ("$", "@"):
                    space = False
                self.emit("syntax_punct", tok, space)
                self.space = tok not in ("$", "@")
            else:
                parts = tok.replace("\r\n", "\n").split("\n") if kind == "block" else [tok]
                attr = _attr(kind, tok, prev, nxt)
                self.emit(attr, parts[0], False if prev[1] in ("$", "@") or (
                    prev[0] == "spread" and kind == "name" and tok != "on") else None)
                for part in parts[1:]:  # a block string spans lines: each as written
                    self.lines.append(self.cur)
                    self.cur = [(attr, sanitize_segment(part))]
            prev2, prev = prev, (kind, tok)
        self.newline()
        return self.lines


class _Full(Exception):
    pass


def _attr(kind: str, tok: str, prev: tuple[str, str], nxt: str) -> str:
    if kind in ("string", "block"):
        return "syntax_string"
    if kind == "number":
        return "syntax_number"
    if kind == "spread":
        return "syntax_punct"
    if kind == "name":
        if prev[1] == "$":
            return "syntax_attr"
        if prev[1] == "@":
            return "syntax_tag"
        if nxt == ":":
            return "syntax_key"
        if tok in KEYWORDS:
            return "syntax_keyword"
        return "text"
    return "text"


def query_lines(query: str) -> list[Line]:
    """A GraphQL document pretty-printed into markup lines."""
    f = _Formatter()
    try:
        return f.run(tokens(query)) or [[("dim", "(empty query)")]]
    except _Full:
        return [*f.lines, [("warn", f"… stopped after {MAX_LINES:,} lines")]]


# --- request bodies ---------------------------------------------------------------------------

def _fields(obj: Any) -> dict[str, Any] | None:
    """A JSON object parsed by json.parse (a tuple of pairs) as a dict; None for anything else."""
    if type(obj) is not tuple:
        return None
    return {k: v for k, v in obj}


def is_graphql_json(doc: Any) -> bool:
    """A JSON document (as json.parse returns it) that is a GraphQL request or a batch of them."""
    items = doc if type(doc) is list else [doc]
    if not items:
        return False
    for item in items:
        fields = _fields(item)
        if fields is None or type(fields.get("query")) is not str:
            return False
    return True


def _is_request(item: Any) -> bool:
    """An object with a "query" string, or with "extensions" (a persisted query sends only its hash)."""
    fields = _fields(item)
    return fields is not None and (type(fields.get("query")) is str or "extensions" in fields)


def json_or_graphql(body: bytes, content_type: str) -> tuple[str, Any]:
    """"json", or "graphql" for a JSON body with a "query" string (or a batch of them); and the parsed
    document, if it had to be parsed, so that the view does not parse it again."""
    if b'"query"' not in body:
        return "json", None
    try:
        doc = parse_json(decode(body, content_type).lstrip("\ufeff"))
    except (ValueError, RecursionError):
        return "json", None
    return ("graphql" if is_graphql_json(doc) else "json"), doc


def _request_lines(fields: dict[str, Any]) -> list[Line]:
    lines: list[Line] = []
    name = fields.get("operationName")
    if type(name) is str and name:
        lines.append([("dim", "operation: "), ("syntax_key", sanitize_segment(name))])
    query = fields.get("query")
    if type(query) is str:
        lines += query_lines(query)
    else:
        lines.append([("dim", "(no query: a persisted query or an unknown shape)")])
    for key in ("variables", "extensions"):
        value = fields.get(key)
        if value is not None:
            lines.append([("title", f"── {key}")])
            lines += json_lines(value)
    rest = [k for k in fields if k not in ("query", "operationName", "variables", "extensions")]
    for key in rest:
        lines.append([("title", f"── {sanitize_segment(key)}")])
        lines += json_lines(fields[key])
    return lines


def graphql_view(body: bytes, content_type: str = "", doc: Any = None) -> tuple[str, list[Line]]:
    """(title, lines) of a GraphQL request body: JSON (one request or a batch) or a bare query."""
    text = decode(body, content_type).lstrip("\ufeff")
    if doc is None and looks_like_json(text):
        try:
            doc = parse_json(text)
        except (ValueError, RecursionError):
            doc = None
    if doc is None:
        if not text.strip():
            raise GraphQLError("no GraphQL query")
        return "GraphQL query", query_lines(text)
    items = doc if type(doc) is list else [doc]
    if not items or any(not _is_request(i) for i in items):
        raise GraphQLError("JSON, but not a GraphQL request (an object with \"query\", or a list of them)")
    lines: list[Line] = []
    for n, item in enumerate(items, 1):
        if type(doc) is list:
            lines.append([("title", f"── request {n} of {len(items)}")])
        fields = _fields(item)
        assert fields is not None
        lines += _request_lines(fields)
    if type(doc) is list:
        return f"GraphQL batch ({len(items)} requests)", lines
    return "GraphQL", lines

