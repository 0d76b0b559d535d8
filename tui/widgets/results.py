"""Global search results and the diff of two flows."""
from __future__ import annotations

import difflib
from typing import Any

import urwid

from interpose.tui import contentviews
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


def _body_lines(message: Any) -> list[str]:
    body, too_large = contentviews.decoded_body(message)
    return [too_large] if too_large is not None else (body or b"").decode("utf-8", "replace").splitlines()


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
