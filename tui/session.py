"""The TUI's side of sessions: the temporary session it records into without `--session`, the notice about
sessions a crash left behind, what the user did to flows (`record`, `added`, `deleted`), and what the
session keeps of the workspace: the view (filter, its history, order, the focused flow), the sticky rules
with their kept responses, and the repeater's tabs with their history."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sqlite3
from dataclasses import asdict
from typing import Any

from interpose.errors import FlowFileError
from interpose.runtime.builtins import readfile
from interpose.runtime.builtins.readfile import FOLLOW_S
from interpose.runtime.master import Master
from interpose.runtime.options import Options
from interpose.store.session import temp

VIEW_KEY = "view"
STICKY_KEY = "sticky_rules"
REPEATER_KEY = "repeater"
HISTORY_MAX = 20
"""Responses kept per repeater tab (the newest)."""


def prepare(opts: Options, master: Master) -> list[str]:
    """Before the core starts: what to tell the user about sessions left behind by a crash; and, without
    `--session`, a new temporary session under CONFDIR/sessions (deleted at a clean exit)."""
    master.readfile.pages_sessions = True  # -r SESSION: the list pages from it (attach_store)
    notes = [f"a session was left behind by a run that did not exit cleanly: {path}; "
             f"reopen it with: interpose --session {path}" for path in temp.left_behind(opts.confdir)]
    if not opts.session:
        try:
            path = temp.new_path(opts.confdir)
        except OSError as e:
            notes.append(f"not recording a session: cannot create {temp.directory(opts.confdir)}: {e.strerror or e}")
            return notes
        opts.update(session=path)
        master.session.temporary = True
    return notes


def attach_store(app: Any) -> None:
    """The list pages from the session this run records into; with `-r SESSION`, from that file instead
    (read-only), followed live: what another process records into it appears within a second."""
    from interpose.store import session as sessions

    rfile = app.master.options.rfile
    path = os.path.expanduser(rfile) if rfile else None
    if path and sessions.is_session_file(path):
        try:
            app.store.attach(path)
        except sqlite3.Error as e:  # damaged: load what can be read (readfile steps over bad rows)
            app.store.attach(app.master.session.session)
            _load_damaged(app, path, e)
            return
        app.spawn(_follow(app, path))
    else:
        app.store.attach(app.master.session.session)


def _load_damaged(app: Any, path: str, e: Exception) -> None:
    try:
        flows, warning = readfile.load(path)
    except Exception as err:  # not even that: say why, keep running
        app.master.add_log(f"{path}: {err}", "error")
        return
    for flow in flows:
        app.store.add(flow)
    added(app, flows)
    app.master.add_log(f"{path} cannot be paged ({e}); loaded {len(flows)} flows"
                       + (f"; {warning}" if warning else ""), "warn")


async def _follow(app: Any, path: str) -> None:
    while True:
        await asyncio.sleep(FOLLOW_S)
        try:
            changed = app.store.poll()
        except sqlite3.Error as e:  # removed or damaged meanwhile: stop following, say why
            app.master.add_log(f"stopped following {path}: {e}", "warn")
            return
        if changed:
            if app.follow and len(app.store):
                app.flowlist.focus_index(len(app.store) - 1)
            app.flowlist.walker.changed()
            app.refresh_status()
            app.redraw_soon()


def restore_view(app: Any) -> None:
    """Lay the screen out for console_layout (config.yaml, --set); put back the view filter, its history and
    the order the session stored (when reopened). A big list is sorted off the UI thread, as `o` does; the
    filter and the focus follow once the order is in (a filter change would overtake the sort)."""
    from interpose.tui.actions.order import change_order
    from interpose.tui.actions.search import apply_filter

    app.layout()
    restore_sticky(app)
    with contextlib.suppress(Exception):  # a tab this build cannot rebuild is not worth failing the start
        restore_repeater(app, app.master.session.restored.get(REPEATER_KEY))
    view = app.master.session.restored.get(VIEW_KEY)
    if not isinstance(view, dict):
        return
    history = view.get("filter_history")
    if isinstance(history, list):
        app.filter_history[:] = [h for h in history if isinstance(h, str)]
    order = view.get("order")
    sorting: Any = None
    with contextlib.suppress(Exception):  # a stored value this build does not know is skipped
        if isinstance(order, str) and order != app.store.order:
            sorting = change_order(app, order)
        if isinstance(view.get("reverse"), bool):
            app.store.set_reverse(view["reverse"])
    expr, focus = view.get("filter"), view.get("focus")

    def rest(done: Any = None) -> None:
        if done is not None and done.cancelled():
            return
        if isinstance(expr, str) and expr:
            with contextlib.suppress(Exception):
                apply_filter(app, expr)
        if isinstance(focus, str) and view.get("follow") is False:
            restore_focus(app, focus)
    if sorting is None:
        rest()
    else:
        sorting.add_done_callback(rest)


def restore_focus(app: Any, flow_id: str) -> None:
    """Focus the flow that had the focus at exit: now if the list holds it, else as soon as it arrives (the
    session's flows reach the list through the bus, after the core started)."""
    def focus() -> bool:
        flow = app.store.get(flow_id)
        i = app.store.index(flow) if flow is not None else None
        if i is None:
            return False
        app.follow = False  # the list does not jump to the newest flow
        app.flowlist.focus_index(i)
        return True

    if focus():
        return
    expected = 0
    with contextlib.suppress(Exception):
        session = app.master.session.session
        expected = session.count() if session is not None else 0
    unsubscribe: Any = None

    def changed() -> None:
        # Done once it is focused, or once every flow of the session is in the list without it.
        if (focus() or app.store.total >= expected) and unsubscribe is not None:
            unsubscribe()

    unsubscribe = app.store.on_change(changed)


def restore_sticky(app: Any) -> None:
    """Sticky rules and kept responses the session holds join those of CONFDIR/sticky-rules.json (which is
    still read, and is not rewritten by this)."""
    from interpose.tui.sticky import Rule

    stored = app.master.session.restored.get(STICKY_KEY)
    if app.sticky is None or not isinstance(stored, list):
        return
    have = [asdict(r) for r in app.sticky.rules]
    extra = []
    for d in stored:
        if isinstance(d, dict) and d not in have:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                extra.append(Rule.from_dict(d))
    if extra:
        app.sticky.rules = [*app.sticky.rules, *extra]
        app.sticky._compile()


def save_view(app: Any) -> None:
    """Store the view state and the sticky rules in the session (on the core's loop, before it stops)."""
    from interpose.tui.actions.registry import focused_flow

    flow = focused_flow(app)
    state = {"filter": app.store.filter_expr, "filter_history": app.filter_history[-100:],
             "order": app.store.order, "reverse": app.store.reverse,
             "focus": flow.id if flow is not None else None, "follow": bool(app.follow)}
    app.core.post(app.master.session.set_state, VIEW_KEY, state)
    if app.repeater is not None:
        app.core.post(app.master.session.set_state, REPEATER_KEY, repeater_state(app.repeater))
    if app.sticky is not None:
        app.core.post(app.master.session.set_state, STICKY_KEY, [asdict(r) for r in app.sticky.rules])


def record(app: Any, flow: Any) -> None:
    """A flow the user changed (a mark, a comment): recorded again."""
    app.core.post(app.master.session.record, flow)


def added(app: Any, flows: Any) -> None:
    """Flows the user added to the list (loaded with `L` or `view.flows.load`, duplicated): recorded."""
    flows = list(flows)
    if flows:
        app.core.post(app.master.session.record_all, flows)


LOAD_BATCH = 256
"""Flows `load_file` reads on a worker thread before it lists them (and how far the session may lag behind)."""
LOAD_BYTES = 32 << 20
"""A batch of `load_file` ends early once its flows' bodies reach this many bytes."""


def _take(flows: Any, n: int) -> list[Any]:
    """The next flows of `flows`: `n`, or fewer once their bodies reach `LOAD_BYTES`."""
    out: list[Any] = []
    size = 0
    for flow in flows:
        out.append(flow)
        for part in (getattr(flow, "request", None), getattr(flow, "response", None)):
            size += len(getattr(part, "raw_content", None) or b"") if part is not None else 0
        if len(out) >= n or size >= LOAD_BYTES:
            break
    return out


async def load_file(app: Any, path: str, preloaded: list[Any] | None = None) -> None:
    """`L` and `view.flows.load`: add the flows of a file to the list, read on a worker thread a batch at a
    time and recorded into the session as they come, so a big file streams through (the list keeps the
    newest few hundred in memory; the others page from the session) and the UI keeps answering keys. A flow
    already listed is not added twice. Says what it loaded when done (`readfile.check` first: a file that
    cannot be read at all is refused before this)."""
    warnings: list[str] = []
    flows = iter(preloaded) if preloaded is not None else readfile.stream(path, warnings)
    loop = asyncio.get_running_loop()
    new = seen = 0
    recorder = app.master.session
    try:
        while batch := await loop.run_in_executor(None, _take, flows, LOAD_BATCH):
            fresh = [f for f in batch if app.store.get(f.id) is None]  # loading a file twice keeps one copy
            for flow in fresh:
                app.store.add(flow)
                app.spill.keep(flow)  # a big body leaves memory once the session holds it
            added(app, fresh)
            new, seen = new + len(fresh), seen + len(batch)
            app.flowlist.walker.changed()
            app.refresh_status()
            while recorder.backlog() > LOAD_BATCH:  # the session's writer keeps up: memory stays bounded
                await asyncio.sleep(0.02)
    except FlowFileError as e:  # could not be read at all after all (it changed since the check)
        app.notify(f"{path}: {e}", "error")
        return
    msg = f"loaded {new} flows from {path}"
    if new != seen:
        msg += f" ({seen - new} already listed)"
    if warnings:
        app.notify(f"{msg}; {'; '.join(warnings)}", "warn")
    else:
        app.notify(msg)


def deleted(app: Any, flows: Any) -> None:
    """Flows the user deleted (`d`, `z`, `Z`, `view.clear_unmarked`, ...): marked deleted in the session."""
    flows = list(flows)
    if flows:
        app.core.post(app.master.session.delete, flows)


def repeater_state(view: Any) -> dict[str, Any]:
    """The repeater's tabs as JSON: HTTP tabs with their request text and their newest responses (flow
    records, bodies included), WebSocket tabs with their handshake and message log (not the connection)."""
    from interpose.store import flowcodec
    from interpose.tui.repeater.view import Tab

    view._save()  # what the editor holds now belongs to the tab on screen
    tabs = []
    for tab in view.tabs:
        d: dict[str, Any] = {"title": tab.title, "scheme": tab.scheme, "host": tab.host, "port": tab.port,
                             "text": tab.text}
        if isinstance(tab, Tab):
            history = tab.history[-HISTORY_MAX:]
            d.update(kind="http", shown=tab.shown if tab.shown < len(history) else -1,
                     history=[flowcodec.dump(f) for f in history])
        else:
            d.update(kind="websocket", draft=tab.draft, hex_mode=tab.hex_mode,
                     entries=[{"kind": e.kind, "content": base64.b64encode(e.content).decode("ascii"),
                               "is_text": e.is_text, "note": e.note, "timestamp": e.timestamp}
                              for e in tab.entries])
        tabs.append(d)
    return {"tabs": tabs, "index": view.index}


def restore_repeater(app: Any, state: Any) -> None:
    """Open the repeater's tabs the session stored (the view opens when the user goes to it)."""
    from interpose.store import flowcodec
    from interpose.tui.actions.repeater import repeater_view
    from interpose.tui.repeater.view import Tab
    from interpose.tui.repeater.websocket import Entry, WsTab

    if not isinstance(state, dict) or not isinstance(state.get("tabs"), list) or not state["tabs"]:
        return
    tabs: list[Any] = []
    for d in state["tabs"]:
        with contextlib.suppress(Exception):  # one tab that does not parse is left out
            head = (str(d["title"]), str(d["scheme"]), str(d["host"]), int(d["port"]), str(d["text"]))
            if d.get("kind") == "websocket":
                ws = WsTab(*head, draft=str(d.get("draft", "")), hex_mode=bool(d.get("hex_mode")))
                ws.entries = [Entry(str(e["kind"]), base64.b64decode(e["content"]), bool(e["is_text"]),
                                    str(e.get("note", "")), float(e["timestamp"])) for e in d.get("entries", [])]
                tabs.append(ws)
            else:
                tab = Tab(*head, history=[flowcodec.load(r) for r in d.get("history", [])])
                tab.shown = int(d.get("shown", -1))
                tabs.append(tab)
    if not tabs:
        return
    view = repeater_view(app)
    for tab in tabs:
        view.add(tab)
    index = state.get("index")
    if isinstance(index, int) and 0 <= index < len(view.tabs) and index != view.index:
        view.index = index
        view._show()
