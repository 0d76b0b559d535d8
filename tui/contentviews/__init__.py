"""Message body → displayable, highlighted lines, in a view chosen by content type or by the user.

`render(body, content_type, view)` returns a `Rendered`: the view actually used, a title, and lines of
urwid text markup `[(attribute, text), ...]` whose attributes are defined in `tui/palette.py`.
Rendering never raises: a view that cannot parse its input falls back to raw text (or a hex dump for
binary data) and says why in `Rendered.error`. No urwid import here; the output is plain data.

This package holds the registry of views and the auto-pick; the modules beside it do the work: `text`
(decoding, terminal safety, tokens → lines, raw, hex), `json`, `markup` (HTML/XML/JS/CSS pretty-printing),
`forms` (tables, multipart), `image`, `protobuf` and `grpc` (schema-less), `msgpack`, `graphql` and `sse`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pygments.lexer import Lexer
from pygments.lexers import CssLexer, HtmlLexer, JavascriptLexer, XmlLexer

from interpose.model.contenttype import media_type
from interpose.model.encoding import BodyTooLarge
from interpose.model.units import human_size
from interpose.tui.contentviews.forms import MultipartError, multipart_lines, parse_urlencoded, table_lines
from interpose.tui.contentviews.graphql import graphql_view, is_graphql_json, json_or_graphql
from interpose.tui.contentviews.grpc import grpc_view
from interpose.tui.contentviews.image import image_info, is_image
from interpose.tui.contentviews.json import json_lines, looks_like_json
from interpose.tui.contentviews.json import parse as parse_json
from interpose.tui.contentviews.markup import (
    beautify_tokens,
    code_tokens_fast,
    markup_tokens_fast,
    needs_beautify,
    reindent_markup,
)
from interpose.tui.contentviews.msgpack import msgpack_view
from interpose.tui.contentviews.protobuf import protobuf_view
from interpose.tui.contentviews.sse import sse_view
from interpose.tui.contentviews.text import (
    Line,
    decode,
    hard_wrap,
    hex_lines,
    is_binary,
    no_gc,
    prepare,
    raw_lines,
    tokens_to_lines,
)

__all__ = ["VIEWS", "Line", "Rendered", "View", "decoded_body", "guess", "render", "too_large", "view_names"]


def too_large(e: BodyTooLarge) -> str:
    return f"body too large to decode ({human_size(e.size)}, limit {human_size(e.limit)})"


def decoded_body(message: Any) -> tuple[bytes | None, str | None]:
    """`message.content`, or `(None, "body too large to decode (N, limit M)")` past the decode_limit."""
    try:
        return message.content, None
    except BodyTooLarge as e:
        return None, too_large(e)


@dataclass
class Rendered:
    """The result of rendering a body."""

    view: str
    """Name of the view actually used ("json" when "auto" chose it, "raw" after a fallback)."""
    title: str
    """One-line description, e.g. "JSON" or "Hex dump (1.2 KiB)"."""
    lines: list[Line]
    """urwid text markup, one list of (attribute, text) segments per line."""
    error: str | None = None
    """Why the requested view could not be used, when it fell back to raw or hex."""


@dataclass(frozen=True)
class ViewInput:
    """What a view gets: the body (never empty), its Content-Type, and the query for the query view."""

    body: bytes
    content_type: str = ""
    query: list[tuple[str, str]] | None = None
    parsed_json: Any = None
    """A JSON document already parsed while sniffing, so a large body is parsed only once."""
    headers: Any = None
    """The message's headers (a mapping), for views that need more than the Content-Type (grpc-encoding)."""


class ViewError(ValueError):
    """The body does not fit the view (invalid JSON, not an image, ...); the message says why."""


ViewFn = Callable[[ViewInput], tuple[str, list[Line]]]


@dataclass(frozen=True)
class View:
    """A named way of showing a body; `fn` returns (title, lines) or raises ViewError."""

    name: str
    label: str
    fn: ViewFn


# --- the views --------------------------------------------------------------------------------

def _json(inp: ViewInput) -> tuple[str, list[Line]]:
    doc = inp.parsed_json
    if doc is None:
        text = decode(inp.body, inp.content_type).lstrip("\ufeff")
        try:
            doc = parse_json(text)
        except RecursionError:
            raise ViewError("JSON nested too deeply to display") from None
        except ValueError as e:
            docs = _json_lines_docs(text)
            if docs is None:
                raise ViewError(f"Invalid JSON: {e}") from None
            lines: list[Line] = []
            for d in docs:
                lines += json_lines(d)
            return f"JSON lines ({len(docs)} documents)", lines
    try:
        return "JSON", json_lines(doc)
    except RecursionError:
        raise ViewError("JSON nested too deeply to display") from None


def _json_lines_docs(text: str) -> list[Any] | None:
    """NDJSON / JSON Lines: one document per non-blank line; None unless every line parses."""
    rows = [r for r in text.split("\n") if r.strip()]
    if len(rows) < 2:
        return None
    try:
        return [parse_json(r) for r in rows]
    except (ValueError, RecursionError):
        return None


# Pygments lexes JavaScript at roughly 4 µs a character and markup or CSS at about 1 µs; above these
# sizes a view switches to a coarse built-in tokenizer so that opening a flow stays under a second.
HIGHLIGHT_LIMIT = {"javascript": 200_000, "css": 600_000, "html": 600_000, "xml": 600_000}
_SIMPLIFIED = " (large: simplified highlighting)"


def _markup(html: bool) -> ViewFn:
    name, label = ("html", "HTML") if html else ("xml", "XML")

    def view(inp: ViewInput) -> tuple[str, list[Line]]:
        text = prepare(decode(inp.body, inp.content_type))
        pretty = reindent_markup(text, html=html)
        if len(pretty) > HIGHLIGHT_LIMIT[name]:
            return label + _SIMPLIFIED, tokens_to_lines(markup_tokens_fast(pretty))
        lexer = HtmlLexer(stripnl=False) if html else XmlLexer(stripnl=False)
        return label, tokens_to_lines(lexer.get_tokens(pretty))
    return view


def _code(name: str, label: str, lexer_cls: type[Lexer]) -> ViewFn:
    def view(inp: ViewInput) -> tuple[str, list[Line]]:
        text = prepare(decode(inp.body, inp.content_type))
        large = len(text) > HIGHLIGHT_LIMIT[name]
        tokens = code_tokens_fast(text) if large else lexer_cls(stripnl=False).get_tokens(text)
        title = label + (_SIMPLIFIED if large else "")
        if needs_beautify(text):
            return title + (" (beautified)" if not large else ""), tokens_to_lines(beautify_tokens(tokens))
        return title, tokens_to_lines(tokens)
    return view


def _urlencoded(inp: ViewInput) -> tuple[str, list[Line]]:
    if is_binary(inp.body):
        raise ViewError("not URL-encoded form data (binary body)")
    pairs = parse_urlencoded(inp.body)
    return f"URL-encoded form ({_count(len(pairs), 'field')})", table_lines(pairs)


def _query(inp: ViewInput) -> tuple[str, list[Line]]:
    if not inp.query:
        return "Query", [[("dim", "(no query string)")]]
    return f"Query ({_count(len(inp.query), 'parameter')})", table_lines(inp.query)


def _multipart(inp: ViewInput) -> tuple[str, list[Line]]:
    try:
        return multipart_lines(inp.body, inp.content_type, _part_text)
    except MultipartError as e:
        raise ViewError(str(e)) from None


def _part_text(body: bytes, content_type: str) -> list[Line]:
    """A textual multipart part: highlighted when its own Content-Type names a text view."""
    name = guess(content_type, body) if content_type else "raw"
    if name in ("json", "html", "xml", "javascript", "css", "urlencoded"):
        try:
            return VIEWS[name].fn(ViewInput(body, content_type))[1]
        except Exception:  # noqa: BLE001 - the part isn't what it claims to be; show it as text
            return raw_lines(decode(body, content_type))
    return raw_lines(decode(body, content_type))


def _image(inp: ViewInput) -> tuple[str, list[Line]]:
    info = image_info(inp.body)
    if info is None:
        raise ViewError("not a recognised image format")
    size = len(inp.body)
    facts = [("Format", info.format), ("Dimensions", info.dimensions),
             ("Size", f"{size:,} bytes ({human_size(size, long=True)})"), *info.details]
    width = max(len(k) for k, _ in facts)
    lines: list[Line] = [[("syntax_key", f"{k}:"), ("text", " " * (width - len(k) + 1) + v)] for k, v in facts]
    return f"{info.format} image, {info.dimensions} ({human_size(size, long=True)})", lines


def _wire(fn: Callable[[ViewInput], tuple[str, list[Line]]]) -> ViewFn:
    """A view of the modules beside this one: their ValueError says why the body does not fit."""
    def view(inp: ViewInput) -> tuple[str, list[Line]]:
        try:
            return fn(inp)
        except RecursionError:
            raise ViewError("nested too deeply to display") from None
        except ValueError as e:
            raise ViewError(str(e)) from None
    return view


def _hex(inp: ViewInput) -> tuple[str, list[Line]]:
    return f"Hex dump ({human_size(len(inp.body), long=True)})", hex_lines(inp.body)


def _raw(inp: ViewInput) -> tuple[str, list[Line]]:
    return f"Raw ({human_size(len(inp.body), long=True)})", raw_lines(decode(inp.body, inp.content_type))


def _auto(inp: ViewInput) -> tuple[str, list[Line]]:
    name, doc = _guess(inp.content_type, inp.body)
    return VIEWS[name].fn(ViewInput(inp.body, inp.content_type, inp.query, doc, inp.headers))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


VIEWS: dict[str, View] = {v.name: v for v in (
    View("auto", "Auto", _auto),
    View("json", "JSON", _json),
    View("html", "HTML", _markup(html=True)),
    View("xml", "XML", _markup(html=False)),
    View("javascript", "JavaScript", _code("javascript", "JavaScript", JavascriptLexer)),
    View("css", "CSS", _code("css", "CSS", CssLexer)),
    View("urlencoded", "URL-encoded form", _urlencoded),
    View("multipart", "Multipart form", _multipart),
    View("query", "Query", _query),
    View("graphql", "GraphQL", _wire(lambda i: graphql_view(i.body, i.content_type, i.parsed_json))),
    View("protobuf", "Protobuf", _wire(lambda i: protobuf_view(i.body))),
    View("grpc", "gRPC", _wire(lambda i: grpc_view(i.body, i.content_type, i.headers))),
    View("msgpack", "MessagePack", _wire(lambda i: msgpack_view(i.body))),
    View("sse", "Server-sent events", _wire(lambda i: sse_view(i.body, i.content_type))),
    View("image", "Image", _image),
    View("hex", "Hex dump", _hex),
    View("raw", "Raw", _raw),
)}


def view_names() -> list[str]:
    """All view names in the order a user cycles through them, "auto" first."""
    return list(VIEWS)


# --- choosing a view --------------------------------------------------------------------------

JSON_TYPES = frozenset(("application/json", "text/json", "application/x-json", "application/jsonl",
                        "application/x-ndjson", "application/ndjson", "application/json-seq"))
XML_TYPES = frozenset(("application/xml", "text/xml", "image/svg+xml"))
JS_TYPES = frozenset(("application/javascript", "text/javascript", "application/x-javascript",
                      "application/ecmascript", "text/ecmascript"))
PROTOBUF_TYPES = frozenset(("application/x-protobuf", "application/protobuf", "application/x-google-protobuf",
                            "application/vnd.google.protobuf"))
MSGPACK_TYPES = frozenset(("application/msgpack", "application/x-msgpack", "application/vnd.msgpack"))
_BY_TYPE = {**{t: "json" for t in JSON_TYPES}, **{t: "xml" for t in XML_TYPES}, **{t: "javascript" for t in JS_TYPES},
            **{t: "protobuf" for t in PROTOBUF_TYPES}, **{t: "msgpack" for t in MSGPACK_TYPES},
            "application/graphql": "graphql", "application/graphql+json": "graphql", "text/event-stream": "sse",
            "text/html": "html", "text/css": "css", "application/x-www-form-urlencoded": "urlencoded"}
_UNTYPED = frozenset(("", "application/octet-stream", "binary/octet-stream", "application/unknown"))


def guess(content_type: str, body: bytes) -> str:
    """The view "auto" picks for this Content-Type and body."""
    return _guess(content_type, body)[0]


def _guess(content_type: str, body: bytes) -> tuple[str, Any]:
    """Like `guess`, plus the parsed JSON document when sniffing had to parse it."""
    mime = media_type(content_type)
    if mime in _BY_TYPE:
        name = _BY_TYPE[mime]
        return json_or_graphql(body, content_type) if name == "json" else (name, None)
    if mime.startswith("application/grpc"):  # grpc, grpc+proto, grpc-web, grpc-web+proto, grpc-web-text
        return "grpc", None
    if mime.endswith("+json"):
        return json_or_graphql(body, content_type)
    if mime.endswith("+xml"):
        return "xml", None
    if mime.startswith("multipart/"):
        return "multipart", None
    if mime.startswith("image/"):
        return "image", None
    binary = is_binary(body)
    if not binary and body:
        text = body.decode("utf-8").lstrip("\ufeff")
        if looks_like_json(text):
            try:
                doc = parse_json(text)
                return ("graphql" if b'"query"' in body and is_graphql_json(doc) else "json"), doc
            except (ValueError, RecursionError):
                pass
        if mime in _UNTYPED:
            head = text[:512].lstrip().lower()
            if head.startswith(("<!doctype html", "<html")):
                return "html", None
            if head.startswith(("<?xml", "<svg")):
                return "xml", None
    if mime.startswith("text/"):
        return "raw", None
    if binary:
        return ("image" if is_image(body) else "hex"), None
    return "raw", None


# --- rendering --------------------------------------------------------------------------------

def render(body: bytes | None, content_type: str = "", view: str = "auto", *,
           query: list[tuple[str, str]] | None = None, max_lines: int | None = None,
           wrap_at: int | None = None, headers: Any = None) -> Rendered:
    """Render `body` with `view` ("auto" guesses from content type and body). Never raises.

    `query` feeds the "query" view (auto picks it for an empty body with a query); `headers` (the message's)
    the views that need more than the Content-Type (grpc: grpc-encoding). With `max_lines`,
    longer output is cut and a last line says how many lines were left out. `wrap_at` splits lines
    longer than that many characters into several (a 5 MB one-line body is slow for a Text widget).
    """
    body = bytes(body) if body is not None else b""
    content_type = content_type or ""
    query = [(str(k), str(v)) for k, v in query] if query is not None else None
    error = None
    if view not in VIEWS:
        error, view = f"unknown view {view!r}; showing auto", "auto"
    doc = None
    if view == "auto":
        view, doc = ("query", None) if not body and query else _guess(content_type, body)
    if not body and view != "query":
        result = Rendered(view, VIEWS[view].label, [[("dim", "(no content)")]], error)
    else:
        result = _run(view, ViewInput(body, content_type, query, doc, headers), error)
    if wrap_at is not None and wrap_at > 0:
        result.lines = hard_wrap(result.lines, wrap_at)
    if max_lines is not None and len(result.lines) > max_lines:
        keep = max(max_lines, 0)
        omitted = len(result.lines) - keep
        result.lines = result.lines[:keep]
        result.lines.append([("dim", f"… {omitted} line{'s' if omitted != 1 else ''} omitted")])
    return result


def _run(view: str, inp: ViewInput, error: str | None) -> Rendered:
    try:
        with no_gc():
            title, lines = VIEWS[view].fn(inp)
        return Rendered(view, title, lines, error)
    except Exception as e:  # noqa: BLE001 - never let a body break the UI; fall back and say why
        reason = str(e) if isinstance(e, ViewError) else f"{VIEWS[view].label} view failed: {type(e).__name__}: {e}"
    fallback = "hex" if view in ("protobuf", "grpc", "msgpack") or is_binary(inp.body) else "raw"
    if fallback == view:  # pragma: no cover - raw and hex don't fail on bytes
        return Rendered(view, VIEWS[view].label, [[("error", reason)]], reason)
    try:
        with no_gc():
            title, lines = VIEWS[fallback].fn(inp)
    except Exception as e:  # noqa: BLE001  # pragma: no cover
        return Rendered(fallback, VIEWS[fallback].label, [[("error", f"cannot display body: {e}")]], reason)
    return Rendered(fallback, title, lines, reason)
