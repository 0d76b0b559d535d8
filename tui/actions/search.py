"""Finding flows: the view filter (applied in slices on a big store) and its toggle, the global search
across flows and its results, and the diff of two marked flows."""
from __future__ import annotations

import re
import time
from typing import Any

from interpose.flowfilter import FilterError
from interpose.flowfilter import parse as parse_filter
from interpose.tui.actions.registry import action
from interpose.tui.format import shown_flow
from interpose.tui.search import compile_query
from interpose.tui.search import search as search_flows
from interpose.tui.ui import UI
from interpose.tui.widgets.flowview import FlowView
from interpose.tui.widgets.results import DiffView, SearchResults

SLICED_FILTER_ABOVE = 20_000
"""Above this many flows a view filter is applied in slices: the list keeps answering keys meanwhile."""
FILTER_SLICE_S = 0.01
"""Work per slice. A key that arrives during a slice waits for it and, the loop being first come first
served, at most one more: 20 ms."""


def apply_filter(app: UI, expr: str | None, announce: str | None = None) -> None:
    """Set the view filter (None: show all). A bad expression raises FilterError before anything changes.
    A big store is refiltered in slices with the progress in the status bar; the list shows the old view
    until the new one is complete."""
    if app.filter_task is not None:
        app.filter_task.cancel()
        app.filter_task = None
    if app.store.total <= SLICED_FILTER_ABOVE or (expr is None and not app.store.marked_only):
        app.store.set_filter(expr)
        app.flowlist.walker.changed()
        if announce:
            app.notify(announce)
        return
    if expr:
        parse_filter(expr)  # a bad expression fails here, not in the task
    shown = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - shown[0] >= 0.1:  # each notice costs a redraw
            shown[0] = now
            app.notify(f"filtering {total:,} flows… {100 * done // total}%")

    async def run() -> None:
        seconds = await app.store.set_filter_sliced(expr, progress, FILTER_SLICE_S)
        app.filter_task = None
        app.flowlist.walker.changed()
        app.notify(announce or f"{len(app.store):,} of {app.store.total:,} flows shown ({seconds:.1f} s)")
        app.refresh_status()

    app.filter_task = app.spawn(run())


@action("list.filter")
def list_filter(app: UI, size: Any) -> None:
    _ask_filter(app)


def _ask_filter(app: UI, typed: str | None = None, error: str = "") -> None:
    """The view filter prompt; the filter is parsed once, on Enter. A bad one is asked again with the
    reason and the typed text."""
    def done(text: str | None) -> None:
        if text is None:
            return
        try:
            apply_filter(app, text.strip() or None)
            if text.strip():
                app.filter_history.append(text.strip())
        except FilterError as e:
            _ask_filter(app, text, f"invalid filter: {str(e).splitlines()[0]}")
    label = f"Filter ({error}): " if error else "Filter (up/down: history): "
    app.ask(label, done, (app.store.filter_expr or "") if typed is None else typed, history=app.filter_history,
            select=typed is None)


@action("list.filter_toggle")
def list_filter_toggle(app: UI, size: Any) -> None:
    if app.store.filter_expr:
        app.filter_off = app.store.filter_expr
        apply_filter(app, None, "view filter off (| turns it back on)")
    elif app.filter_off:
        apply_filter(app, app.filter_off, f"view filter on: {app.filter_off}")
    else:
        app.notify("no view filter to toggle (f sets one)")


@action("search.global")
def search_global(app: UI, size: Any) -> None:
    def done(text: str | None) -> None:
        if not text:
            return
        regex = text.startswith("/") and text.endswith("/") and len(text) > 2
        try:
            pattern = compile_query(text[1:-1] if regex else text, regex)
        except re.error as e:
            app.notify(f"invalid regular expression: {e}", "error")
            return
        view = SearchResults(text)
        app.push(view)
        flows = _candidates(app, text, regex)
        app.spawn(_run_search(app, view, flows, pattern))
    app.ask("Search all flows (/regex/ for a regular expression): ", done)


class _Lazy:
    """The visible flows of a list that pages from a session, loaded one at a time as the search walks."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    def __iter__(self) -> Any:
        return iter(self.store)


def _candidates(app: UI, text: str, regex: bool) -> Any:
    """What to search: a list paging from a session asks its search index (FTS5) first."""
    store = app.store
    if not getattr(store, "paging", False):
        return list(store)
    found = None if regex else store.search_candidates(text)  # type: ignore[attr-defined]
    return found if found is not None else _Lazy(store)


async def _run_search(app: UI, view: SearchResults, flows: Any, pattern: Any) -> None:
    total = len(flows)

    def progress(done: int) -> None:
        view.progress(done, total)
        app.redraw_soon()
    matches = await search_flows(flows, pattern, progress)
    view.pattern = pattern  # type: ignore[attr-defined]
    view.set_matches(matches)
    app.redraw_soon()


@action("search.open")
def search_open(app: UI, size: Any) -> None:
    cur = app.current
    if not isinstance(cur, SearchResults) or cur.focused is None:
        return
    m = cur.focused
    view = FlowView(shown_flow(m.flow), app.master.options)
    view.show_tab(m.tab)
    app.push(view)
    pattern = getattr(cur, "pattern", None)
    if not view.find(cur.query, start=0, pattern=pattern) and view.mode != "raw":
        # The pretty view spaces the text differently from the body (minified JSON): land on it in raw.
        view.mode = "raw"
        view.refresh()
        if view.find(cur.query, start=0, pattern=pattern):
            app.notify("shown raw: the match is not in the pretty view's text (m changes the view)")


@action("flows.diff")
def flows_diff(app: UI, size: Any) -> None:
    marked = [f for f in app.store.marked() if f.type == "http"]
    if len(marked) != 2:
        app.notify(f"mark exactly two HTTP flows to diff them (m marks; {len(marked)} marked)", "warn")
        return
    app.push(DiffView(marked[0], marked[1]))
