"""mitmproxy's commands that ask before they run another command: `console.choose` (pick one of some
words), `console.choose.cmd` (one of the words a command returns), `console.command.confirm` (y/n);
and `console.key.execute.focus` (the key bindings view runs the focused binding's command).

A choice of up to nine words is one key press (its number); more are typed (a unique start will do).
`{choice}` in the arguments of the command run is replaced by the word chosen, as in mitmproxy:

    console.choose.cmd Format export.formats export.clip {choice} @focus
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from interpose import command as api
from interpose.runtime.commands import CommandError
from interpose.runtime.commands.lexer import quote
from interpose.tui.commands.base import tui_command
from interpose.tui.commands.views import KeyBindings

KEYED = 9
"""Up to this many choices are picked with one key (1-9)."""


def _choose(app: Any, prompt: str, choices: list[str], then: Callable[[str], None]) -> None:
    if not choices:
        raise CommandError(f"{prompt}: nothing to choose from")
    if len(choices) <= KEYED:
        def on_key(key: str | None) -> None:
            if key is not None and key.isdigit() and 1 <= int(key) <= len(choices):
                then(choices[int(key) - 1])
            elif key is not None:
                app.notify(f"{prompt}: {key!r} is not one of 1-{len(choices)}", "error")
        words = "  ".join(f"({i}) {c}" for i, c in enumerate(choices, 1))
        app.ask_key(f"{prompt}: {words} ", on_key)
        return

    def done(text: str | None) -> None:
        if text is None:
            return
        picked = [c for c in choices if c == text] or [c for c in choices if c.startswith(text)]
        if len(picked) == 1:
            then(picked[0])
        else:
            app.notify(f"{prompt}: {text!r} is not one of {', '.join(choices)}", "error")
    app.ask(f"{prompt} ({', '.join(choices)}): ", done)


def _run_with(app: Any, cmd: str, args: tuple[str, ...], choice: str | None = None) -> None:
    from interpose.tui.commands.run import run_command

    words = [a.replace("{choice}", choice) if choice is not None else a for a in args]
    run_command(app, " ".join([cmd, *(quote(w) for w in words)]), echo=True)


@tui_command("console.choose")
def console_choose(app: Any, prompt: str, choices: str, cmd: api.Cmd, *args: api.CmdArgs) -> None:
    """Ask for one of CHOICES (comma separated), then run the command with `{choice}` in its arguments
    replaced by it."""
    words = [c.strip() for c in choices.split(",") if c.strip()]
    _choose(app, prompt, words, lambda choice: _run_with(app, cmd, args, choice))


@tui_command("console.choose.cmd")
def console_choose_cmd(app: Any, prompt: str, choicecmd: api.Cmd, subcmd: api.Cmd, *args: api.CmdArgs) -> None:
    """Ask for one of the words CHOICECMD returns (export.formats, flow.set.options, ...), then run SUBCMD
    with `{choice}` in its arguments replaced by it."""
    got = app.master.commands.execute(choicecmd)
    if inspect.isawaitable(got) or not isinstance(got, (list, tuple)):
        if inspect.iscoroutine(got):
            got.close()
        raise CommandError(f"console.choose.cmd: {choicecmd} does not return a list of words")
    _choose(app, prompt, [str(w) for w in got], lambda choice: _run_with(app, subcmd, args, choice))


@tui_command("console.command.confirm")
def console_command_confirm(app: Any, prompt: str, cmd: api.Cmd, *args: api.CmdArgs) -> None:
    """Ask PROMPT (y/n); on y, run the command."""
    def on_key(key: str | None) -> None:
        if key in ("y", "Y"):
            _run_with(app, cmd, args)
    app.ask_key(f"{prompt} (y/n) ", on_key)


@tui_command("console.key.execute.focus")
def key_execute_focus(app: Any) -> None:
    """Key bindings view: run the focused binding's command."""
    from interpose.tui.commands.run import run_command

    cur = app.current
    if isinstance(cur, KeyBindings) and cur.focused is not None:
        run_command(app, cur.focused[2], echo=True)
