"""Global search results and the diff of two flows."""
from __future__ import annotations

import difflib
import hashlib
from typing import Any

import urwid

from interpose.model.units import human_size
from interpose.tui import contentviews
from interpose.tui.contentviews.text import sanitize_segment
from interpose.tui.search import Match
from interpose.tui.widgets.common import LinesWalker


class SearchResults(urwid.WidgetWrap):
    context = "search"

    def __init__(self, query: str) -> None:
        self.query = query
        self.matches: list[Match] = []
        self.walker = LinesWalker([[("dim", "searching…")]])
        self.box = urwid.LineBox(urwid.ListBox(self.walker), title=f"Search: {query}")
        super().__init__(self.box)

    def progress(self, done: int, total: int) -> None:
        self.walker.lines = [[("dim", f"searching… {done}/{total} flows")]]
        self.walker._modified()

    def set_matches(self, matches: list[Match]) -> None:
        self.matches = matches
        lines: list[Any] = []
        for m in matches:
            req = getattr(m.flow, "request", None)
            where = req.pretty_url if req is not None else repr(m.flow)
            lines.append([("method", f"{(req.method if req is not None else 'TCP'):<7} "), ("url", where[:50] + " "),
                          ("dim", f"{m.part}: "), ("text", m.snippet)])
        self.walker.lines = lines or [[("dim", f"no match for {self.query!r}")]]
        self.walker.focus = 0
        self.walker._modified()
        self.box.set_title(f"Search: {self.query} ({len(matches)} matches)")

    @property
    def focused(self) -> Match | None:
        if not self.matches:
            return None
        return self.matches[min(self.walker.focus, len(self.matches) - 1)]


HEX_DIFF_BYTES = 4096
"""A binary body is diffed as a hex dump of this many bytes at most, after a size and hash line."""


def _is_binary(data: bytes) -> bool:
    if b"\0" in data[:8192]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _body_lines(message: Any) -> list[str]:
    """A body as lines to diff: text made terminal-safe, a binary body as its size, hash and a hex dump."""
    body, too_large = contentviews.decoded_body(message)
    if too_large is not None:
        return [too_large]
    data = body or b""
    if not _is_binary(data):
        return [sanitize_segment(line) for line in data.decode("utf-8").splitlines()]
    lines = [f"(binary body: {human_size(len(data))}, sha256 {hashlib.sha256(data).hexdigest()[:16]})"]
    for off in range(0, min(len(data), HEX_DIFF_BYTES), 16):
        chunk = data[off:off + 16]
        shown = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}  {chunk.hex(' '):<47}  |{shown}|")
    if len(data) > HEX_DIFF_BYTES:
        lines.append(f"(the first {HEX_DIFF_BYTES} bytes of {len(data)})")
    return lines


def flow_text(flow: Any) -> tuple[list[str], list[str]]:
    """Request and response of a flow as lines of text, for diffing."""
    req = flow.request
    a = [f"{req.method} {req.pretty_url} {req.http_version}"] + [f"{k}: {v}" for k, v in req.headers.items(multi=True)]
    a += [""] + _body_lines(req)
    resp = flow.response
    if resp is None:
        b = ["(no response)"] if flow.error is None else [f"(error: {flow.error.msg})"]
    else:
        b = [f"{resp.http_version} {resp.status_code} {resp.reason}"]
        b += [f"{k}: {v}" for k, v in resp.headers.items(multi=True)]
        b += [""] + _body_lines(resp)
    return a, b


def diff_lines(left: Any, right: Any) -> list[Any]:
    """A unified diff of two flows' requests and responses, coloured."""
    out: list[Any] = []
    (la, lb), (ra, rb) = flow_text(left), flow_text(right)
    for title, x, y in (("request", la, ra), ("response", lb, rb)):
        out.append([("title", f"── {title} ")])
        diff = list(difflib.unified_diff(x, y, "first", "second", lineterm="", n=3))
        if not diff:
            out.append([("dim", "(identical)")])
        for line in diff[2:]:
            attr = "diff_add" if line.startswith("+") else "diff_del" if line.startswith("-") else \
                "dim" if line.startswith("@@") else "text"
            out.append([(attr, line)])
        out.append([])
    return out


class DiffView(urwid.WidgetWrap):
    context = "diff"

    def __init__(self, left: Any, right: Any) -> None:
        self.walker = LinesWalker(diff_lines(left, right))
        super().__init__(urwid.LineBox(urwid.ListBox(self.walker), title="Diff of the two marked flows"))
