"""Addons and options: the addon picker (load, unload, load a path) and the options editor."""
from __future__ import annotations

import os
from typing import Any

from interpose.errors import InterposeError
from interpose.tui.actions.registry import action, set_options, through_core
from interpose.tui.ui import UI
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
    cur = app.current
    if not isinstance(cur, OptionsEditor) or cur.focused is None:
        return
    name = cur.focused
    opt = app.master.options.option(name)

    def done(text: str | None) -> None:
        if text is None:
            return
        try:
            if opt.is_list:
                value = [t.strip() for t in text.split(",") if t.strip()]
            else:
                value = opt.parse(text.strip(), opt.value)
        except (InterposeError, ValueError) as e:
            app.notify(str(e).splitlines()[0], "error")
            return

        def shown() -> None:
            cur.reload()
            app.notify(f"{name} = {option_value_text(getattr(app.master.options, name))}")
        set_options(app, None, then=shown, **{name: value})
    hint = " (comma-separated)" if opt.is_list else ""
    app.ask(f"{name}{hint}: ", done, option_value_text(opt.value) if opt.value not in (None, []) else "")


@action("options.reset")
def options_reset(app: UI, size: Any) -> None:
    cur = app.current
    if isinstance(cur, OptionsEditor) and cur.focused is not None:
        name = cur.focused  # the option under the cursor when the key was pressed
        through_core(app, app.core.reset_option(name), then=cur.reload)
