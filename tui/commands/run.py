"""Running command lines for the app (keys, the prompt) and loading CONFDIR/keys.yaml."""
from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from typing import Any

from interpose.errors import InterposeError
from interpose.flowfilter import FilterError
from interpose.runtime.commands import CommandError
from interpose.tui import keymap
from interpose.tui.widgets.picker import OptionsEditor

USER_ERRORS = (CommandError, InterposeError, FilterError, ValueError)


def run_command(app: Any, line: str, echo: bool = False) -> None:
    """Run a command line. A mistake is one line in the status bar; with `echo`, a result is shown there."""
    try:
        ret = app.master.commands.execute(line)
    except USER_ERRORS as e:
        app.notify(str(e).splitlines()[0] if str(e) else type(e).__name__, "error")
        return
    if asyncio.iscoroutine(ret) or isinstance(ret, asyncio.Future):
        app.spawn(_finish(app, line, ret, echo))
    elif echo and ret is not None:
        app.notify(f"{line.split()[0]}: {ret}")
    app.redraw_soon()


async def _finish(app: Any, line: str, ret: Awaitable[Any], echo: bool) -> None:
    try:
        value = await ret
    except USER_ERRORS as e:
        app.notify(str(e).splitlines()[0], "error")
        return
    if echo and value is not None:
        app.notify(f"{line.split()[0]}: {value}")
    for view in app.views:  # an open options editor shows what `set` or `options.load` changed
        if isinstance(view, OptionsEditor):
            view.reload()
    app.refresh_status()
    app.redraw_soon()


def show_prompt(app: Any, prompt: Any) -> None:
    """Put a prompt widget in the status bar and give it the keys (its callback calls close_prompt)."""
    app.prompt = prompt
    app.statusbar.show(prompt)
    app.frame.focus_position = "footer"
    app.redraw_soon()


def close_prompt(app: Any) -> None:
    app.prompt = None
    app.statusbar.set_message("")
    app.frame.focus_position = "body"
    app.refresh_status()


def load_keys(app: Any, path: str, reset: bool = True, missing_ok: bool = False) -> None:
    """CONFDIR/keys.yaml onto the default bindings; what it has that interpose has not is reported in the
    event log and the status bar. A bad file is one message and the defaults stay."""
    if missing_ok and not os.path.exists(path):
        return
    def known(line: str) -> bool:
        try:
            app.master.commands.parse(line)
        except CommandError as e:
            return not str(e).startswith("unknown command")  # a flow selector may select nothing yet
        return True
    if reset:
        keymap.reset()
    try:
        skipped = keymap.load_keys_yaml(path, known)
    except ValueError as e:
        app.notify(f"{e}; the default keys stay", "error")
        app.core.log(str(e), "error")
        return
    if getattr(app, "repeater", None) is not None:  # its hint lines name the keys
        app.repeater.show_hints()
    if skipped:
        msg = f"keys.yaml: skipped {len(skipped)}: " + "; ".join(skipped)
        app.notify(msg, "warn")
        app.core.log(msg, "warn")
