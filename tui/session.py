"""The TUI's side of sessions: the temporary session it records into without `--session`, the notice about
sessions a crash left behind, and what the session keeps of the workspace: the view (filter, its history,
order) and the sticky rules with their kept responses."""
from __future__ import annotations

import contextlib
from dataclasses import asdict
from typing import Any

from interpose.runtime.master import Master
from interpose.runtime.options import Options
from interpose.store.session import temp

VIEW_KEY = "view"
STICKY_KEY = "sticky_rules"


def prepare(opts: Options, master: Master) -> list[str]:
    """Before the core starts: what to tell the user about sessions left behind by a crash; and, without
    `--session`, a new temporary session under CONFDIR/sessions (deleted at a clean exit)."""
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


def restore_view(app: Any) -> None:
    """Put back the view filter, its history and the order the session stored (when reopened)."""
    from interpose.tui.actions.search import apply_filter

    restore_sticky(app)
    view = app.master.session.restored.get(VIEW_KEY)
    if not isinstance(view, dict):
        return
    history = view.get("filter_history")
    if isinstance(history, list):
        app.filter_history[:] = [h for h in history if isinstance(h, str)]
    order = view.get("order")
    with contextlib.suppress(Exception):  # a stored value this build does not know is skipped
        if isinstance(order, str) and order != app.store.order:
            app.store.set_order(order)
        if isinstance(view.get("reverse"), bool):
            app.store.set_reverse(view["reverse"])
    expr = view.get("filter")
    if isinstance(expr, str) and expr:
        with contextlib.suppress(Exception):
            apply_filter(app, expr)


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
    state = {"filter": app.store.filter_expr, "filter_history": app.filter_history[-100:],
             "order": app.store.order, "reverse": app.store.reverse}
    app.core.post(app.master.session.set_state, VIEW_KEY, state)
    if app.sticky is not None:
        app.core.post(app.master.session.set_state, STICKY_KEY, [asdict(r) for r in app.sticky.rules])


def record(app: Any, flow: Any) -> None:
    """A flow the user changed (a mark, a comment): recorded again."""
    app.core.post(app.master.session.record, flow)
