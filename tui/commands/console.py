"""mitmproxy's console.* commands: moving the cursor of any view, opening views, the `:` prompt, key
bindings at run time; and ours for the command browser and the key bindings view."""
from __future__ import annotations

import os
from typing import Annotated, Any

from interpose import command as api
from interpose.model.flow import Flow
from interpose.runtime.commands import CommandError
from interpose.runtime.commands.lexer import quote
from interpose.runtime.commands.types import OptionNameT
from interpose.tui import actions, keymap
from interpose.tui.commands.base import tui_command
from interpose.tui.commands.prompt import CommandPrompt
from interpose.tui.commands.views import CommandBrowser, KeyBindings
from interpose.tui.widgets.flowview import FlowView

_NAV = {
    # console.nav.X → the action per context (the flow list, a flow view, any line list)
    "down": ("list.down", "scroll.down", "cursor.down"),
    "up": ("list.up", "scroll.up", "cursor.up"),
    "pagedown": ("list.page_down", "scroll.page_down", "page down"),
    "pageup": ("list.page_up", "scroll.page_up", "page up"),
    "start": ("list.first", "scroll.top", "home"),
    "end": ("list.last", "scroll.bottom", "end"),
}


def _nav(where: str) -> Any:
    in_list, in_view, other = _NAV[where]

    def nav(app: Any) -> None:
        size = getattr(app, "last_size", None)
        ctx = app.context
        if ctx == "flowlist":
            actions.run(app, in_list, size)
        elif ctx == "flowview":
            actions.run(app, in_view, size)
        elif other in actions.ACTIONS:
            actions.run(app, other, size)
        else:
            walker = getattr(app.current, "walker", None)
            if walker is not None and getattr(walker, "lines", None):
                walker.set_focus(0 if other == "home" else len(walker.lines) - 1 if other == "end" else
                                 walker.focus + (20 if other == "page down" else -20))
    nav.__doc__ = f"Move the cursor of the current view: {where}."
    return nav


for _where in _NAV:
    tui_command(f"console.nav.{_where}")(_nav(_where))


@tui_command("console.view.flow")
def view_flow(app: Any, flow: Flow) -> None:
    """Open a flow in the flow view."""
    app.push(FlowView(flow, app.master.options))


@tui_command("console.view.commands")
def view_commands(app: Any) -> None:
    """The command browser: every command with its help."""
    app.push(CommandBrowser(app.master.commands))


@tui_command("console.view.keybindings")
def view_keybindings(app: Any) -> None:
    """The key bindings as they are now: list, add, edit, unbind."""
    app.push(KeyBindings())


@tui_command("console.command")
def console_command(app: Any, *partial: str) -> None:
    """Open the command prompt, with these words already typed (and a space, unless the last word ends
    in `/`, `=` or `:`, which the user goes on typing: `repeater.new http://`)."""
    text = " ".join(partial)
    open_prompt(app, text + (" " if text and not text.endswith(("/", "=", ":")) else ""))


@tui_command("console.command.set")
def console_command_set(app: Any, option_name: OptionNameT) -> None:
    """Open the command prompt with `set NAME=CURRENT` in it."""
    value = getattr(app.master.options, option_name)
    text = ",".join(value) if isinstance(value, list) else "" if value is None else str(value).lower() \
        if isinstance(value, bool) else str(value)
    open_prompt(app, f"set {option_name}={quote(text) if text else ''}")


@tui_command("console.command.focus")
def command_focus(app: Any) -> None:
    """Command browser: put the focused command in the prompt."""
    cur = app.current
    if isinstance(cur, CommandBrowser) and cur.focused is not None:
        open_prompt(app, cur.focused.name + " ")


@tui_command("console.options.file")
def options_file(app: Any, action: Annotated[str, api.Choice("save", "load")]) -> None:
    """Options editor: open the prompt with `options.save` or `options.load` of CONFDIR/config.yaml."""
    path = os.path.join(app.master.options.confdir, "config.yaml")
    open_prompt(app, f"options.{action} {quote(path)}")


def _contexts(text: str) -> list[str]:
    ctxs = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in ctxs if c not in keymap.CONTEXTS]
    if bad or not ctxs:
        raise CommandError(f"unknown context {bad[0] if bad else text!r}: use {', '.join(keymap.CONTEXTS)}")
    return ctxs


@tui_command("console.key.bind")
def key_bind(app: Any, contexts: str, key: str, cmd: api.Cmd, *args: api.CmdArgs) -> None:
    """Bind a key in contexts (comma separated) to a command line (the rest of the line), at once."""
    line = " ".join([cmd, *(quote(a) for a in args)])
    app.master.commands.parse(line)  # refuses a command that cannot run, before binding it
    keymap.bind(_contexts(contexts), key, line)
    _refresh_bindings(app)
    app.notify(f"{key} → {line} in {contexts}")


@tui_command("console.key.unbind")
def key_unbind(app: Any, contexts: str, key: str) -> None:
    """Take a key off in contexts (comma separated)."""
    if not keymap.unbind(_contexts(contexts), key):
        raise CommandError(f"console.key.unbind: {key} is not bound in {contexts}")
    _refresh_bindings(app)
    app.notify(f"{key} unbound in {contexts}")


@tui_command("console.key.unbind.focus")
def key_unbind_focus(app: Any) -> None:
    """Key bindings view: unbind the focused key."""
    cur = app.current
    if isinstance(cur, KeyBindings) and cur.focused is not None:
        ctx, key, _ = cur.focused
        key_unbind(app, ctx, key)


@tui_command("console.key.edit.focus")
def key_edit_focus(app: Any) -> None:
    """Key bindings view: change the command of the focused binding (in the prompt)."""
    cur = app.current
    if isinstance(cur, KeyBindings) and cur.focused is not None:
        ctx, key, cmd = cur.focused
        open_prompt(app, f"console.key.bind {ctx} {quote(key)} {cmd}")


@tui_command("console.key.add")
def key_add(app: Any) -> None:
    """Key bindings view: add a binding (in the prompt)."""
    cur = app.current
    ctx = cur.focused[0] if isinstance(cur, KeyBindings) and cur.focused else "global"
    open_prompt(app, f"console.key.bind {ctx} ")


def _refresh_bindings(app: Any) -> None:
    for view in app.views:
        if isinstance(view, KeyBindings):
            view.reload()
    if getattr(app, "repeater", None) is not None:  # its hint lines name the keys
        app.repeater.show_hints()


def open_prompt(app: Any, initial: str = "") -> None:
    """The `:` prompt in the status bar. Enter runs the line (and keeps it in the history)."""
    from interpose.tui.commands.run import close_prompt, run_command, show_prompt

    def done(text: str | None) -> None:
        close_prompt(app)
        if text and text.strip():
            app.command_history.add(text)
            run_command(app, text, echo=True)

    def hint(text: str) -> None:
        app.statusbar.set_info([("text", text)] if text else "")
        if not text:
            app.refresh_status()
    prompt = CommandPrompt(app.master.commands, app.command_history, initial, done, hint)
    show_prompt(app, prompt)
