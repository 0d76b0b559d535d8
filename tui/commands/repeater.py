"""The repeater's own commands (`repeater` context): what its keys do, so that keys.yaml and
console.key.bind can rebind them. They act on the repeater view (tui/repeater/view.py); `repeater.send`
(`R`) and `repeater.new` (`n`) open it."""
from __future__ import annotations

from typing import Annotated, Any

from interpose import command as api
from interpose.runtime.commands import CommandError
from interpose.tui.commands.base import tui_command
from interpose.tui.repeater.view import RepeaterView


def _view(app: Any, name: str) -> RepeaterView:
    view = app.repeater
    if view is None or not view.tabs:
        raise CommandError(f"{name}: the repeater has no tabs (R sends a flow there, n opens a new request)")
    return view


@tui_command("repeater.go")
def go(app: Any) -> None:
    """Repeater: send the tab's request; a WebSocket tab connects (closing its old connection first)."""
    _view(app, "repeater.go").go()


@tui_command("repeater.tab")
def tab(app: Any, direction: Annotated[str, api.Choice("next", "prev")]) -> None:
    """Repeater: the next or the previous tab."""
    _view(app, "repeater.tab").switch(1 if direction == "next" else -1)


@tui_command("repeater.close")
def close(app: Any) -> None:
    """Repeater: close the tab (and its WebSocket connection)."""
    _view(app, "repeater.close").close_tab()


@tui_command("repeater.history")
def history(app: Any, direction: Annotated[str, api.Choice("older", "newer")]) -> None:
    """Repeater: show an older or newer response of the tab."""
    _view(app, "repeater.history").step_history(-1 if direction == "older" else 1)


@tui_command("repeater.ws_hex")
def ws_hex(app: Any) -> None:
    """Repeater, WebSocket tab: the message line as text or as hex (binary)."""
    if not _view(app, "repeater.ws_hex").toggle_hex():
        raise CommandError("repeater.ws_hex: not a WebSocket tab")


@tui_command("repeater.ws_disconnect")
def ws_disconnect(app: Any) -> None:
    """Repeater, WebSocket tab: close the connection."""
    if not _view(app, "repeater.ws_disconnect").disconnect():
        raise CommandError("repeater.ws_disconnect: not a WebSocket tab")
