"""Addons and options: the addon picker (load, unload, load a path) and the options editor."""
from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from interpose.errors import InterposeError
from interpose.runtime.master import LISTENER
from interpose.tui.actions.registry import action, set_options
from interpose.tui.ui import UI
from interpose.tui.widgets.grid import edit_items
from interpose.tui.widgets.picker import AddonPicker, OptionsEditor, option_value_text, script_state


def _scripts_changed(app: UI, scripts: list[str], done: str, path: str | None = None) -> None:
    """Set `scripts`; then say `done`, or, when the script at `path` failed to load, that it failed and why."""
    def changed() -> None:
        cur = app.current
        if isinstance(cur, AddonPicker):
            cur.reload()
        error = script_state(app.master)[1].get(path) if path else None
        if error:
            app.notify(f"{os.path.basename(path or '')} failed: {error}", "error")
        else:
            app.notify(done)
        app.refresh_status()
    set_options(app, None, then=changed, scripts=scripts)


@action("addons.picker")
def addons_picker(app: UI, size: Any) -> None:
    app.push(AddonPicker(app.master))


@action("picker.toggle")
def picker_toggle(app: UI, size: Any) -> None:
    cur = app.current
    if not isinstance(cur, AddonPicker):
        return
    entry = cur.focused
    scripts = list(app.master.options.scripts)
    if entry.path is None:
        def done(text: str | None) -> None:
            if not text:
                return
            path = os.path.abspath(os.path.expanduser(text.strip()))
            if not os.path.isfile(path):
                app.notify(f"no such file: {path}", "error")
                return
            _scripts_changed(app, scripts + [path], f"loaded {path}", path)
        app.ask("Load script: ", done)
        return
    full = {os.path.abspath(os.path.expanduser(p)): p for p in scripts}
    target = os.path.abspath(entry.path)
    if target in full:
        scripts.remove(full[target])
        _scripts_changed(app, scripts, f"unloaded {entry.name}")
    else:
        _scripts_changed(app, scripts + [target], f"loaded {entry.name}", target)


@action("options.editor")
def options_editor(app: UI, size: Any) -> None:
    app.push(OptionsEditor(app.master.options))


@action("options.edit")
def options_edit(app: UI, size: Any) -> None:
    """Enter in the options editor: a boolean toggles, a list opens the grid (one item per row, so an item
    may hold commas), anything else a prompt. Every value goes to the core, which checks it as `--set`
    does; the editor shows it only once the core took it, and a refused one is asked again with the reason."""
    cur = app.current
    if not isinstance(cur, OptionsEditor) or cur.focused is None:
        return
    name = cur.focused
    opt = app.master.options.option(name)
    if opt.base_type is bool and not opt.is_list:
        _apply(app, cur, name, app.core.set_options(**{name: not opt.value}))
    elif opt.is_list:
        app.spawn(_edit_list(app, cur, name, list(opt.value or [])))
    else:
        _ask_option(app, cur, name, option_value_text(opt.value) if opt.value is not None else "")


def _ask_option(app: UI, editor: OptionsEditor, name: str, text: str, error: str = "") -> None:
    def done(typed: str | None) -> None:
        if typed is not None:
            _apply(app, editor, name, app.core.set_option_text(name, typed.strip()),
                   lambda reason: _ask_option(app, editor, name, typed, reason))
    label = f"{name} ({error}): " if error else f"{name}: "
    app.ask(label, done, text, select=not error)


async def _edit_list(app: UI, editor: OptionsEditor, name: str, items: list[str]) -> None:
    new = await edit_items(app, f"{name} (one item per row)", items)
    if new is None or new == items:
        app.notify(f"{name} unchanged")
        return
    _apply(app, editor, name, app.core.set_options(**{name: new}))


def _apply(app: UI, editor: OptionsEditor, name: str, request: Awaitable[Any],
           refused: Callable[[str], None] | None = None) -> None:
    """Wait for the core to take (or refuse) a new value, then show what is in effect."""
    async def wait() -> None:
        try:
            address = await request
        except (InterposeError, ValueError) as e:
            reason = str(e).splitlines()[0]
            if refused is not None:
                refused(reason)
                app.redraw_soon()
            else:
                app.notify(f"refused: {reason}", "error")
            return
        if name in LISTENER and address is not None:
            app.set_address(tuple(address))
        editor.reload()
        app.notify(f"{name} = {option_value_text(getattr(app.master.options, name))}"
                   + (f"; proxy listening at {address[0]}:{address[1]}" if name in LISTENER and address else ""))
        app.refresh_status()
        app.redraw_soon()
    app.spawn(wait())


@action("options.reset")
def options_reset(app: UI, size: Any) -> None:
    cur = app.current
    if isinstance(cur, OptionsEditor) and cur.focused is not None:
        name = cur.focused  # the option under the cursor when the key was pressed
        _apply(app, cur, name, app.core.reset_option(name))
