"""The core's own commands (both front ends have them): `set`, `options.*`, `addon.load/unload/toggle`,
`view.flows.resolve`, `readfile.reading`, `session.save`. They set options through
`registry.apply_options`, which in the TUI goes through the core thread (it returns an awaitable there),
so each command here may be awaited."""
from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any

from interpose import command as api
from interpose.model.flow import Flow
from interpose.runtime.commands import config
from interpose.runtime.commands.bundled import bundled_addons
from interpose.runtime.commands.lexer import CommandError
from interpose.runtime.commands.registry import CommandRegistry
from interpose.runtime.commands.types import AddonSpecT, OptionNameT, OptionSpecT


async def _settle(ret: Any) -> Any:
    return await ret if inspect.isawaitable(ret) else ret


def install(reg: CommandRegistry) -> None:
    opts = reg.master.options

    async def set_(option: OptionSpecT, *value: str) -> None:
        """Set an option: `set NAME=VALUE` or `set NAME VALUE`. Without a value a bool turns on, an optional
        option is unset and a list is emptied; `toggle` flips a bool."""
        name, eq, text = option.partition("=")
        name = name.replace("-", "_")
        o = opts.option(name) if name in opts else None
        if o is None:
            raise CommandError(f"set: unknown option {name!r}")
        if not eq and value:
            text, eq = " ".join(value), "="
        if o.is_list:
            new: Any = [w for w in text.split(",") if w] if eq else []
        elif not eq:
            new = True if o.base_type is bool else None if o.optional else o.default
        elif o.base_type is bool and text == "toggle":
            new = not o.value
        else:
            new = o.parse(text, o.value)
        await _settle(reg.apply_options(**{name: new}))

    async def options_save(path: api.Path) -> None:
        """Save the options that differ from their defaults to a YAML file (config.yaml's format)."""
        n = config.save(opts, path)
        reg.master.add_log(f"saved {n} options to {path}", "info")

    async def options_load(path: api.Path) -> None:
        """Load options from a YAML file (config.yaml's format); unknown names are reported."""
        known, unknown = config.values_for(opts, config.read_yaml(path))
        await _settle(reg.apply_options(**known))
        if unknown:
            reg.master.add_log(f"{path}: unknown options ignored: {', '.join(sorted(unknown))}", "warn")

    async def options_reset() -> None:
        """Reset every option to its default."""
        await _settle(reg.apply_options(**{n: o.default for n, o in opts.items() if n not in _START_ONLY}))

    async def options_reset_one(name: OptionNameT) -> None:
        """Reset one option to its default."""
        await _settle(reg.apply_options(**{name: opts.option(name).default}))

    def _find(name: str) -> tuple[str, str | None]:
        """(path, bundled name or None) for a bundled addon's name or a script path."""
        bundled = bundled_addons()
        if name in bundled:
            return bundled[name], name
        path = os.path.abspath(os.path.expanduser(name))
        if not os.path.isfile(path):
            raise CommandError(f"no bundled addon or file {name!r} (bundled: {', '.join(bundled)})")
        return path, None

    def _loaded(path: str) -> str | None:
        for p in opts.scripts:
            if os.path.abspath(os.path.expanduser(p)) == path:
                return str(p)
        return None

    async def addon_load(name: AddonSpecT) -> None:
        """Load a bundled addon by name (or an addon script by path). A single-switch addon (anticache,
        anticomp) is on once loaded."""
        path, bundled = _find(name)
        if _loaded(path) is not None:
            raise CommandError(f"addon.load: {name} is already loaded")
        await _settle(reg.apply_options(scripts=[*opts.scripts, path]))
        if bundled and bundled in opts and opts.option(bundled).base_type is bool:
            await _settle(reg.apply_options(**{bundled: True}))
        reg.master.add_log(f"addon loaded: {name}", "info")

    async def addon_unload(name: AddonSpecT) -> None:
        """Unload a bundled addon by name (or an addon script by path)."""
        path, bundled = _find(name)
        entry = _loaded(path)
        if entry is None:
            raise CommandError(f"addon.unload: {name} is not loaded")
        if bundled and bundled in opts and opts.option(bundled).base_type is bool:
            await _settle(reg.apply_options(**{bundled: False}))
        await _settle(reg.apply_options(scripts=[p for p in opts.scripts if p != entry]))
        reg.master.add_log(f"addon unloaded: {name}", "info")

    async def addon_toggle(name: AddonSpecT) -> None:
        """Load the addon if it is not loaded, unload it if it is."""
        path, _ = _find(name)
        await (addon_unload(name) if _loaded(path) is not None else addon_load(name))

    def view_flows_resolve(flows: Sequence[Flow]) -> list[str]:
        """The ids of the flows a selector or filter picks (for trying a selector)."""
        return [f.id for f in flows]

    def readfile_reading() -> bool:
        """Whether the flows of -r (rfile) are still being loaded."""
        rf = reg.master.readfile
        return bool(rf.path) and not rf.finished.is_set()

    async def session_save(file: api.Path) -> str:
        """Copy the session being recorded (--session, or the TUI's own) to FILE, never over a file."""
        return str(await _settle(reg.on_core(reg.master.session.save, file)))

    add = reg.add
    add("session.save", session_save)
    add("set", set_)
    add("options.save", options_save)
    add("options.load", options_load)
    add("options.reset", options_reset)
    add("options.reset.one", options_reset_one)
    add("addon.load", addon_load)
    add("addon.unload", addon_unload)
    add("addon.toggle", addon_toggle)
    add("view.flows.resolve", view_flows_resolve)
    add("readfile.reading", readfile_reading)


_START_ONLY = {"listen_host", "listen_port", "mode", "confdir", "scripts"}


def describe(reg: CommandRegistry) -> str:
    """`--commands`: every command with its arguments and help."""
    lines = []
    for cmd in reg.all():
        if cmd.help:
            lines.append(f"# {cmd.help}")
        lines.append(cmd.usage() + (f" -> {cmd.returns}" if cmd.returns else ""))
        lines.append("")
    return "\n".join(lines)
