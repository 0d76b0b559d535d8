"""The command registry: every command the TUI, interpose-dump and addons can run, by name.

A command is a function whose annotated parameters say how the words of a command line become its
arguments (types.py). Built-in commands (core's and the TUI's) are added with `add`; addons' commands live
in the addon manager's `commands` and are read from there, so loading and unloading an addon adds and
removes them. `execute(line)` parses and runs a line; every mistake is one `CommandError` line.
"""
from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from interpose import flowfilter
from interpose.runtime.commands import lexer
from interpose.runtime.commands.lexer import CommandError
from interpose.runtime.commands.types import ArgType, CmdName, from_annotation

_UNBOUND: Any = object()


class FlowSource(Protocol):
    """What flow selectors read: the TUI's store and focus."""

    def all_flows(self) -> Iterable[Any]: ...
    def shown_flows(self) -> Iterable[Any]: ...
    def focused_flow(self) -> Any | None: ...


@dataclass
class Param:
    name: str
    type: ArgType
    rest: bool = False
    """`*args`: takes every remaining word."""
    optional: bool = False

    def usage(self) -> str:
        text = f"*{self.name}" if self.rest else self.name
        return f"[{text}]" if self.optional and not self.rest else text


@dataclass
class Command:
    name: str
    func: Callable[..., Any]
    params: list[Param]
    help: str
    returns: str = ""

    @classmethod
    def make(cls, name: str, func: Callable[..., Any], skip: int = 0) -> Command:
        """Read the parameters of `func` (after the first `skip` ones, e.g. the TUI's `app`)."""
        try:
            hints = typing.get_type_hints(func, include_extras=True)
        except Exception:
            hints = {}
        params = []
        sig = inspect.signature(func)
        for i, p in enumerate(sig.parameters.values()):
            if i < skip or p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD):
                continue
            params.append(Param(p.name, from_annotation(hints.get(p.name, str)),
                                rest=p.kind == p.VAR_POSITIONAL, optional=p.default is not p.empty))
        ret = hints.get("return")
        returns = "" if ret in (None, type(None)) else getattr(ret, "__name__", str(ret))
        doc = inspect.getdoc(func) or ""
        return cls(name, func, params, " ".join(doc.split("\n\n")[0].split()), returns)

    def usage(self) -> str:
        return " ".join([self.name, *(p.usage() for p in self.params)])

    def parse_args(self, reg: CommandRegistry, words: list[str]) -> list[Any]:
        values: list[Any] = []
        i = 0
        for p in self.params:
            if p.rest:
                values.extend(p.type.parse(reg, w) for w in words[i:])
                i = len(words)
                break
            if i >= len(words):
                if p.optional:
                    break
                raise CommandError(f"{self.name}: missing {p.name} ({p.type.display}); usage: {self.usage()}")
            try:
                values.append(p.type.parse(reg, words[i]))
            except CommandError as e:
                raise CommandError(f"{self.name}: {p.name}: {e}") from None
            i += 1
        if i < len(words):
            raise CommandError(f"{self.name}: too many arguments ({' '.join(words[i:])}); usage: {self.usage()}")
        return values

    def call(self, reg: CommandRegistry, words: list[str]) -> Any:
        return self.func(*self.parse_args(reg, words))


class CommandRegistry:
    def __init__(self, master: Any) -> None:
        """`master`: the Master (not imported: it imports this module)."""
        self.master = master
        self.builtin: dict[str, Command] = {}
        self.flow_source: FlowSource | None = None
        self._addon_cache: dict[str, Command] = {}
        self.apply_options: Callable[..., Any] = master.options.update
        """How commands set options: directly (interpose-dump), through the core thread (the TUI)."""
        self.on_core: Callable[..., Any] = lambda fn, *args: fn(*args)
        """How commands call into the core (`on_core(fn, *args)`): directly, or on the core's thread (the
        TUI: `Core.call`, which returns an awaitable)."""

    def add(self, name: str, func: Callable[..., Any], bind: Any = _UNBOUND) -> Command:
        """Add a command; with `bind`, `func`'s first parameter gets it and is not an argument."""
        if bind is _UNBOUND:
            cmd = Command.make(name, func)
        else:
            cmd = Command.make(name, func, skip=1)
            cmd.func = functools.partial(func, bind)
        self.builtin[name] = cmd
        return cmd

    def get(self, name: str) -> Command | None:
        fn = self.master.addons.commands.get(name)
        if fn is not None:
            cached = self._addon_cache.get(name)
            if cached is None or cached.func != fn:
                cached = self._addon_cache[name] = Command.make(name, fn)
            return cached
        return self.builtin.get(name)

    def names(self) -> list[str]:
        return sorted(set(self.builtin) | set(self.master.addons.commands))

    def all(self) -> list[Command]:
        return [c for c in (self.get(n) for n in self.names()) if c is not None]

    def parse(self, line: str) -> tuple[Command, list[Any]]:
        words = lexer.split(line.strip())
        if not words:
            raise CommandError("no command given")
        cmd = self.get(words[0])
        if cmd is None:
            close = [n for n in self.names() if n.startswith(words[0].split(".")[0] + ".")][:3]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise CommandError(f"unknown command {words[0]!r}{hint}")
        return cmd, cmd.parse_args(self, words[1:])

    def execute(self, line: str) -> Any:
        """Run a command line; its result (an awaitable for async commands) is returned."""
        cmd, args = self.parse(line)
        return cmd.func(*args)

    async def run(self, line: str) -> Any:
        """Run a command line and await its result if it is awaitable."""
        ret = self.execute(line)
        return await ret if inspect.isawaitable(ret) else ret

    def call(self, name: str, *words: str) -> Any:
        cmd = self.get(name)
        if cmd is None:
            raise CommandError(f"unknown command {name!r}")
        return cmd.call(self, list(words))

    # -- flows -----------------------------------------------------------------------
    def resolve_flows(self, spec: str) -> list[Any]:
        src = self.flow_source
        if src is None:
            raise CommandError("no flows here: interpose-dump keeps no flows to select")
        if spec == "@focus":
            f = src.focused_flow()
            return [] if f is None else [f]
        if spec == "@all":
            return list(src.all_flows())
        if spec == "@shown":
            return list(src.shown_flows())
        if spec == "@hidden":
            shown = {id(f) for f in src.shown_flows()}
            return [f for f in src.all_flows() if id(f) not in shown]
        if spec in ("@marked", "@unmarked"):
            want = spec == "@marked"
            return [f for f in src.all_flows() if bool(getattr(f, "marked", False)) == want]
        if spec.startswith("@"):
            raise CommandError(f"unknown flow selector {spec!r}: use @focus, @all, @shown, @hidden, @marked, "
                               "@unmarked or a filter")
        try:
            flt = flowfilter.parse(spec)
        except flowfilter.FilterError as e:
            raise CommandError(f"invalid filter {spec!r}: {e}") from None
        return [f for f in src.all_flows() if flt(f)]

    # -- completion ------------------------------------------------------------------
    def complete(self, line: str) -> tuple[int, list[str]]:
        """(offset where the word being completed starts, candidates for it)."""
        words, start, prefix = lexer.partial(line)
        if not words:
            return start, CmdName().complete(self, prefix, [])
        return start, [lexer.quote(c) if " " in c else c for c in self.complete_args(words[0], words[1:], prefix)]

    def complete_args(self, name: str, before: list[str], prefix: str) -> list[str]:
        cmd = self.get(name)
        if cmd is None or not cmd.params:
            return []
        idx = len(before)
        if idx < len(cmd.params):
            param = cmd.params[idx]
        elif cmd.params[-1].rest:
            param = cmd.params[-1]
        else:
            return []
        try:
            out = param.type.complete(self, prefix, [name, *before])
        except Exception:
            return []
        return out
