"""The action registry: action name → function(ui, size). keymap.py binds keys to these names; the
modules beside this one register the functions with `@action(name)`, and `run` calls one by name.

An action gets the app as a `UI` (tui/ui.py), never the app itself, and the size of the screen area the
key was pressed in (for paging). A user error it raises ends up in the status bar, not on the screen.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from interpose.errors import InterposeError
from interpose.flowfilter import FilterError
from interpose.tui.ui import UI
from interpose.tui.widgets.flowview import FlowView
from interpose.tui.widgets.panes import PendingPane

Action = Callable[[UI, Any], None]
ACTIONS: dict[str, Action] = {}
"""Every action by name. Complete once `interpose.tui.actions` is imported (it imports every module)."""


def action(name: str) -> Callable[[Action], Action]:
    """Register the decorated function as the action `name`."""
    def register(fn: Action) -> Action:
        ACTIONS[name] = fn
        return fn
    return register


def run(app: UI, name: str, size: Any) -> None:
    fn = ACTIONS.get(name)
    if fn is None:
        app.notify(f"{name}: not available yet", "warn")
        return
    try:
        fn(app, size)
    except (InterposeError, FilterError, ValueError) as e:
        app.notify(str(e).splitlines()[0], "error")


def focused_flow(app: UI) -> Any | None:
    """The flow an action is about: the one shown, the pending pane's focused one, or the list's."""
    cur = app.current
    if isinstance(cur, FlowView):
        return cur.flow
    if isinstance(cur, PendingPane):
        item = cur.focused
        return item[0] if item else None
    return app.flowlist.focused_flow


def set_options(app: UI, done: str | None, then: Callable[[], None] | None = None, **values: Any) -> None:
    """Set options through the core (on its thread). Afterwards `then()` runs and `done` goes to the status
    bar; a refused value (nothing changed) goes to the status bar as an error instead."""
    through_core(app, app.core.set_options(**values), done, then)


def through_core(app: UI, request: Awaitable[Any], done: str | None = None,
                 then: Callable[[], None] | None = None) -> None:
    """Await a `Core` request for the UI: then `then()`, `done` in the status bar and a redraw; a refusal
    (InterposeError, ValueError) goes to the status bar instead."""
    async def wait() -> None:
        try:
            await request
        except (InterposeError, ValueError) as e:
            app.notify(str(e).splitlines()[0], "error")
            return
        if then is not None:
            then()
        if done is not None:
            app.notify(done)
        app.refresh_status()
        app.redraw_soon()
    app.spawn(wait())
