"""Addon chain: register addons, dispatch hooks in order, isolate their errors.

An addon is any object; its hooks are attributes named after SPEC's hook names, sync or async.
Objects listed in an addon's `addons` attribute are addons too (after their parent, in order).
Dispatch builds, per hook name, the list of callables once and reuses it until the chain changes,
so an addon without a hook costs nothing on the hot path.
"""
from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from interpose import command
from interpose.errors import AddonError, OptionsError
from interpose.runtime import hooks
from interpose.runtime.bus import AddonsChanged

if TYPE_CHECKING:
    from interpose.runtime.bus import EventBus
    from interpose.runtime.options import Options

LogFn = Callable[[str, str], None]


def addon_name(addon: Any) -> str:
    n = getattr(addon, "name", None)
    if isinstance(n, str):
        return n
    if isinstance(addon, ModuleType):
        return getattr(addon, "__file__", None) or addon.__name__
    return type(addon).__name__.lower()


def traverse(addons: list[Any]) -> Iterator[Any]:
    for a in addons:
        yield a
        children = getattr(a, "addons", None)
        if children and not isinstance(a, type):
            yield from traverse(list(children))


class Loader:
    """Handed to `load(loader)`: lets an addon declare options and commands."""

    def __init__(self, options: Options, commands: dict[str, Callable[..., Any]]) -> None:
        self._options = options
        self._commands = commands
        self.declared: list[str] = []
        """The options this addon declared that were new (they leave when it is unloaded)."""
        self.names: list[str] = []
        """Every option it declared, new or not."""

    def add_option(self, name: str, typespec: Any, default: Any, help: str, choices: Any = None) -> None:
        new = name not in self._options.keys()
        self._options.add_option(name, typespec, default, help, choices)
        if new:
            self.declared.append(name)
        self.names.append(name)

    def add_command(self, path: str, func: Callable[..., Any]) -> None:
        self._commands[path] = func


class AddonManager:
    def __init__(self, options: Options, bus: EventBus, log: LogFn) -> None:
        self.options = options
        self.bus = bus
        self.log = log
        self.chain: list[Any] = []
        self.commands: dict[str, Callable[..., Any]] = {}
        self._dispatch: dict[str, list[tuple[Any, Callable[..., Any]]]] = {}
        self._in_log = False
        self._pending: set[asyncio.Task[Any]] = set()
        """Async hooks started from sync code (configure, log, done); kept so they are not lost."""
        self._declared: dict[int, list[str]] = {}
        """id(addon) → the options it brought: they leave the options (and `O`) when it is unloaded."""
        self._reloaded: set[str] = set()
        """Options of a script's module being reloaded: the new module takes them over (values kept)."""
        options.subscribe(self._options_changed)

    # -- chain -----------------------------------------------------------
    def chain_changed(self) -> None:
        """The chain or an addon's `addons` list changed (a script reload): rebuild dispatch tables, tell the bus."""
        self._dispatch.clear()
        if self.bus.active:
            self.bus.publish(AddonsChanged(tuple(addon_name(a) for a in self.chain)))

    def handlers(self, name: str) -> list[tuple[Any, Callable[..., Any]]]:
        hs = self._dispatch.get(name)
        if hs is None:
            hs = []
            for a in traverse(self.chain):
                fn = getattr(a, name, None)
                if fn is not None and callable(fn) and not isinstance(a, type):
                    hs.append((a, fn))
            self._dispatch[name] = hs
        return hs

    def has(self, name: str) -> bool:
        return bool(self.handlers(name))

    def register(self, addon: Any) -> Any:
        """Run load and start for an addon (and its children). Returns what should stand in the chain."""
        for a in list(traverse([addon])):
            loader = Loader(self.options, self.commands)
            self._call_sync(a, "load", loader)
            mine = loader.declared + [n for n in loader.names if n in self._reloaded]
            self._reloaded -= set(mine)
            if mine:
                self._declared.setdefault(id(a), []).extend(mine)
            self.commands.update(command.declared(a))
        return self._start(addon)

    def _start(self, addon: Any) -> Any:
        fn = getattr(addon, "start", None)
        if callable(fn):
            ret = self._call_sync(addon, "start")
            if ret is not None:
                return self.register(ret)
        children = getattr(addon, "addons", None)
        if isinstance(children, list):
            children[:] = [self._start(c) for c in children]
        return addon

    def add(self, *addons: Any, configure: bool = True) -> list[Any]:
        """Append addons to the chain: load, start, then configure with every option."""
        added = []
        for addon in addons:
            if self.get(addon_name(addon)) is addon:
                raise AddonError(f"addon {addon_name(addon)} is already loaded")
            a = self.register(addon)
            self.chain.append(a)
            added.append(a)
            self.chain_changed()
        if configure:
            for a in added:
                self.configure_all(a)
        return added

    def configure_all(self, addon: Any) -> None:
        for a in traverse([addon]):
            self._call_sync(a, "configure", self.options, self.options.keys())

    def remove(self, addon: Any) -> None:
        """Unload: `done` fires for the addon and its children, then it leaves the chain (its commands too)."""
        dropped: list[str] = []
        for a in traverse([addon]):
            self._call_sync(a, "done")
            for name, _ in command.declared(a):
                self.commands.pop(name, None)
            dropped += self._declared.pop(id(a), [])
        if addon in self.chain:
            self.chain.remove(addon)
        for name in dropped:  # its options go too (a reload keeps them: remove_child does not drop them)
            self.options.remove_option(name)
        self.chain_changed()

    def remove_child(self, addon: Any) -> None:
        """`done` for an addon that lives inside another one's `addons` list (a reloaded script)."""
        for a in traverse([addon]):
            self._call_sync(a, "done")
            self._reloaded.update(self._declared.pop(id(a), []))
        self.chain_changed()

    def get(self, name: str) -> Any | None:
        for a in traverse(self.chain):
            if addon_name(a) == name:
                return a
        return None

    # -- dispatch --------------------------------------------------------
    def _error(self, addon: Any, hook: str, exc: BaseException) -> None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.log(f"Addon error in {addon_name(addon)} ({hook}): {exc}\n{tb}", "error")

    def _call_sync(self, addon: Any, name: str, *args: Any) -> Any:
        fn = getattr(addon, name, None)
        if fn is None or not callable(fn):
            return None
        try:
            ret = fn(*args)
            if inspect.isawaitable(ret):
                task = asyncio.ensure_future(ret)
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
                task.add_done_callback(lambda t: self._async_done(addon, name, t))
                return None
            return ret
        except OptionsError as e:
            if name == "configure":
                raise  # a rejected value: Options.update rolls it back and reports it
            self._error(addon, name, e)
            return None
        except Exception as e:
            self._error(addon, name, e)
            return None

    async def wait_pending(self) -> None:
        """Let async hooks that sync code started (an async `done`, say) run to completion."""
        while pending := [t for t in self._pending if not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    def _async_done(self, addon: Any, name: str, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._error(addon, name, task.exception())  # type: ignore[arg-type]

    async def trigger(self, hook: hooks.Hook) -> None:
        """Call the hook on every addon that has it, in chain order, awaiting async ones; then tell the
        bus what changed (hooks.bus_message)."""
        hs = self._dispatch.get(hook.name)
        if hs is None:
            hs = self.handlers(hook.name)
        if hs:  # the loop is inline, not a helper coroutine: this runs for every hook of every flow
            args = hook.args()
            for addon, fn in hs:
                try:
                    ret = fn(*args)
                    if ret is not None and inspect.isawaitable(ret):
                        ret = await ret
                    if hook.name == "next_layer" and ret is not None:
                        args[0].replacement = ret
                except Exception as e:
                    self._error(addon, hook.name, e)
        if self.bus.active:  # checked here, not in _announce: no call per hook while nobody listens
            self._announce(hook)

    def _announce(self, hook: hooks.Hook) -> None:
        """Tell the bus what `hook` changed, as its typed message (hooks.bus_message), if it changed anything."""
        msg = hooks.bus_message(hook)
        if msg is not None:
            self.bus.publish(msg)

    def trigger_sync(self, hook: hooks.Hook) -> None:
        """For hooks fired outside a coroutine (configure, log, done). Async handlers are scheduled."""
        if self.bus.active:  # checked here, not in _announce: no call per hook while nobody listens
            self._announce(hook)
        if hook.name == "log":
            if self._in_log:
                return  # a log hook that logs must not recurse
            self._in_log = True
        try:
            args = hook.args()
            for addon, _ in self.handlers(hook.name):
                self._call_sync(addon, hook.name, *args)
        finally:
            if hook.name == "log":
                self._in_log = False

    def _options_changed(self, updated: set[str]) -> None:
        self.trigger_sync(hooks.ConfigureHook(self.options, updated))
