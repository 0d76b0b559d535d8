"""What each key does: action name → function(ui, size), one module per concern. Widgets never do this
work themselves; keymap.py binds keys to the names.

    registry   the `action(name)` decorator, ACTIONS, `run(ui, name, size)`, `focused_flow`
    views      quit, back, help, event log, list cursors, tabs and scrolling in a flow view
    flowlist   moving, following, ordering, marking, deleting, duplicating, clearing
    order      the list's order (`o`, view.order.set, a session's stored order): big lists sorted off the UI thread
    search     the view filter (sliced on big stores), global search, diff of two marked flows
    intercept  the intercept filter, resume, kill, drop, header-stage breakpoints
    pending    the pending pane: everything held
    edit       edit and revert a flow
    io         export, copy, save and load flows
    addons     the addon picker and the options editor
    repeater   replay, and the repeater's HTTP and WebSocket connections
    sticky     sticky edits and kept responses

Importing this package imports every module above, so ACTIONS is complete.
"""
from __future__ import annotations

from interpose.tui.actions import (  # noqa: F401 - imported for their @action registrations
    addons,
    edit,
    flowlist,
    intercept,
    io,
    pending,
    repeater,
    search,
    sticky,
    views,
)
from interpose.tui.actions.registry import ACTIONS, action, run

__all__ = ["ACTIONS", "action", "run"]
