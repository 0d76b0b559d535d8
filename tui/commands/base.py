"""`@tui_command(NAME)`: a command of the terminal UI, a function whose first parameter is the app (a `UI`)
and whose other annotated parameters are the command's arguments. `install` adds them all to the master's
registry bound to the app; `declare` adds them unbound (for `interpose --commands`)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interpose.runtime.commands.registry import Command, CommandRegistry
from interpose.tui import actions
from interpose.tui.keymap import DEFAULTS

TuiCommand = Callable[..., Any]
TUI_COMMANDS: dict[str, TuiCommand] = {}

ACTION_COMMANDS = {
    "help.show": "console.view.help",
    "app.quit": "console.exit",
    "view.back": "console.view.pop",
    "eventlog.toggle": "console.view.eventlog",
    "options.editor": "console.view.options",
    "addons.picker": "console.view.addons",
    "list.marked_only": "view.properties.marked.toggle",
    "list.clear": "view.clear",
    "flow.resume": "flow.resume.focus",
    "flow.kill": "flow.kill.focus",
    "options.reset": "console.options.reset.focus",
}
"""Actions (tui/actions) whose command has another name: mitmproxy's where it has the same thing, else
`.focus` where mitmproxy's name takes flows (ours acts on what has the focus, held messages included)."""
REPLACED = {"flow.open", "flow.mark", "flow.delete", "flow.replay", "flow.duplicate", "flow.revert",
            "list.down", "list.up", "list.page_down", "list.page_up", "list.first", "list.last",
            "scroll.down", "scroll.up", "scroll.page_down", "scroll.page_up", "scroll.top", "scroll.bottom",
            "cursor.down", "cursor.up", "pending.down", "pending.up"}
"""Actions reached through a command with arguments (flow.mark.toggle @focus, console.nav.down, ...)."""


class AppFlows:
    """The flows that selectors pick, from the TUI: the store (all, shown) and the focused flow."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def all_flows(self) -> Any:
        return list(self.app.store.all_flows())

    def shown_flows(self) -> Any:
        return list(self.app.store)

    def focused_flow(self) -> Any | None:
        return actions.registry.focused_flow(self.app)


def tui_command(name: str) -> Callable[[TuiCommand], TuiCommand]:
    def register(fn: TuiCommand) -> TuiCommand:
        TUI_COMMANDS[name] = fn
        return fn
    return register


def _action_help(action: str) -> str:
    for b in DEFAULTS:
        if b.cmd in (action, ACTION_COMMANDS.get(action)):
            return b.help
    return action.replace("_", " ").replace(".", ": ")


def _register(reg: CommandRegistry, app: Any) -> None:
    for action in actions.ACTIONS:
        if action in REPLACED:
            continue
        name = ACTION_COMMANDS.get(action, action)

        def run(action: str = action) -> None:
            actions.run(app, action, getattr(app, "last_size", None))
        reg.builtin[name] = Command(name, run, [], _action_help(action))
    for name, fn in TUI_COMMANDS.items():
        reg.add(name, fn, bind=app)


def install(reg: CommandRegistry, app: Any) -> None:
    """Every TUI command, bound to `app`."""
    _register(reg, app)


def attach(app: Any) -> Any:
    """Give the app its commands: the TUI's bound to it, flow selectors reading its list, options set
    through the core thread. Returns the command history (CONFDIR/command_history)."""
    import os

    from interpose.tui.commands.prompt import CommandHistory

    reg = app.master.commands
    install(reg, app)
    reg.flow_source = AppFlows(app)
    reg.apply_options = lambda **values: app.core.set_options(**values)
    reg.on_core = lambda fn, *args: app.core.call(fn, *args)
    return CommandHistory(os.path.join(os.path.expanduser(app.master.options.confdir), "command_history"))


def declare(reg: CommandRegistry) -> None:
    """Every TUI command, for listing (`interpose --commands`): running one does nothing useful."""
    _register(reg, None)
