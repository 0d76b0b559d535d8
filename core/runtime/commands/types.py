"""Argument types of commands: each turns a word into a value (or a one-line error saying what it expected)
and completes a prefix. `from_annotation` picks the type for a parameter's annotation."""
from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import Annotated, Any, get_args, get_origin

from interpose import command as api
from interpose.model.flow import Flow
from interpose.runtime.commands.bundled import bundled_addons
from interpose.runtime.commands.lexer import CommandError

CommandRegistry = Any
"""The registry (registry.py imports this module, so its type is not imported here)."""

SELECTORS = ("@focus", "@all", "@shown", "@hidden", "@marked", "@unmarked")


class ArgType:
    display = "text"

    def parse(self, reg: CommandRegistry, text: str) -> Any:
        return text

    def complete(self, reg: CommandRegistry, prefix: str, before: list[str]) -> list[str]:
        return []


class Str(ArgType):
    pass


class Int(ArgType):
    display = "a whole number"

    def parse(self, reg: CommandRegistry, text: str) -> Any:
        try:
            return int(text)
        except ValueError:
            raise CommandError(f"expected a whole number, not {text!r}") from None


class Bool(ArgType):
    display = "true or false"

    def parse(self, reg: CommandRegistry, text: str) -> Any:
        low = text.lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise CommandError(f"expected true or false, not {text!r}")

    def complete(self, reg: CommandRegistry, prefix: str, before: list[str]) -> list[str]:
        return [w for w in ("true", "false") if w.startswith(prefix)]


class PathType(ArgType):
    display = "a file path"

    def parse(self, reg: CommandRegistry, text: str) -> Any:
        return os.path.expanduser(text)

    def complete(self, reg: CommandRegistry, prefix: str, before: list[str]) -> list[str]:
        out = []
        for p in sorted(glob.glob(os.path.expanduser(prefix) + "*"))[:200]:
            shown = prefix + p[len(os.path.expanduser(prefix)):] if prefix.startswith("~") else p
            out.append(shown + "/" if os.path.isdir(p) else shown)
        return out


class ChoiceType(ArgType):
    def __init__(self, choice: api.Choice) -> None:
        self.choice = choice

    @property
    def display(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(self.choice.options())

    def parse(self, reg: CommandRegistry, text: str) -> Any:
        opts = self.choice.options()
        if text not in opts:
            raise CommandError(f"expected one of {', '.join(opts)}, not {text!r}")
        return text

    def complete(self, reg: CommandRegistry, prefix: str, before: list[str]) -> list[str]:
        return [w for w in self.choice.options() if w.startswith(prefix)]


class Flows(ArgType):
    display = "flows (@focus, @all, @shown, @hidden, @marked, @unmarked or a filter)"

    def parse(self, reg: CommandRegistry, text: str) -> Any:
        return reg.resolve_flows(text)

    def complete(self, reg: CommandRegistry, prefix: str, before: list[str]) -> list[str]:
        return [s for s in SELECTORS if s.startswith(prefix)]


class OneFlow(Flows):
    display = "one flow (@focus or a filter matching one)"

    def parse(self, reg: CommandRegistry, text: str) -> Any:
        flows = reg.resolve_flows(text)
        if len(flows) != 1:
            raise CommandError(f"expected one flow, {text!r} selects {len(flows)}")
        return flows[0]


class CmdName(ArgType):
    display = "a command name"

    def parse(self, reg: CommandRegistry, text: str) -> Any:
        if reg.get(text) is None:
            raise CommandError(f"unknown command {text!r}")
        return text

    def complete(self, reg: CommandRegistry, prefix: str, before: list[str]) -> list[str]:
        return [n for n in reg.names() if n.startswith(prefix)]


class CmdArgsType(ArgType):
    display = "the command's arguments"

    def complete(self, reg: CommandRegistry, prefix: str, before: list[str]) -> list[str]:
        # The words after the Cmd argument: complete them as that command's own arguments.
        for i, w in enumerate(before):
            if reg.get(w) is not None and i > 0:
                return reg.complete_args(w, before[i + 1:], prefix)
        return []


class OptionSpec(ArgType):
    """`set`'s argument: NAME=VALUE (or NAME alone, which resets): completes names, then values."""
    display = "NAME=VALUE"

    def complete(self, reg: CommandRegistry, prefix: str, before: list[str]) -> list[str]:
        opts = reg.master.options
        name, eq, value = prefix.partition("=")
        if not eq:
            return [n + "=" for n in opts if n.startswith(prefix)]
        if name not in opts:
            return []
        opt = opts.option(name)
        if opt.choices:
            words = list(opt.choices)
        elif opt.base_type is bool:
            words = ["true", "false"]
        else:
            cur = opt.value
            words = [] if cur is None or isinstance(cur, list) else [str(cur)]
        return [f"{name}={w}" for w in words if w.startswith(value)]


class OptionName(ArgType):
    display = "an option name"

    def parse(self, reg: CommandRegistry, text: str) -> Any:
        if text not in reg.master.options:
            raise CommandError(f"unknown option {text!r}")
        return text

    def complete(self, reg: CommandRegistry, prefix: str, before: list[str]) -> list[str]:
        return [n for n in reg.master.options if n.startswith(prefix)]


class AddonSpec(PathType):
    display = "a bundled addon's name or a script path"

    def parse(self, reg: CommandRegistry, text: str) -> Any:
        return text

    def complete(self, reg: CommandRegistry, prefix: str, before: list[str]) -> list[str]:
        names = [n for n in bundled_addons() if n.startswith(prefix)]
        return names + (super().complete(reg, prefix, before) if prefix else [])


class CutSpecs(ArgType):
    display = "cut specs, comma separated (request.url,response.status_code,...)"

    def parse(self, reg: CommandRegistry, text: str) -> Any:
        specs = [s.strip() for s in text.split(",") if s.strip()]
        if not specs:
            raise CommandError("expected at least one cut spec, e.g. request.url")
        return specs

    def complete(self, reg: CommandRegistry, prefix: str, before: list[str]) -> list[str]:
        from interpose.store.cut import SPECS
        head, _, last = prefix.rpartition(",")
        lead = head + "," if head else ""
        return [lead + s for s in SPECS if s.startswith(last)]


class CutSpecsT(str):
    """Annotation marker: comma-separated cut specs (a list)."""


class AddonSpecT(str):
    """Annotation marker: a bundled addon's name or a script path."""


class OptionNameT(str):
    """Annotation marker: an option name."""


class OptionSpecT(str):
    """Annotation marker: NAME=VALUE."""


def from_annotation(ann: Any) -> ArgType:
    if get_origin(ann) is Annotated:
        base, *extra = get_args(ann)
        for e in extra:
            if isinstance(e, api.Choice):
                return ChoiceType(e)
        return from_annotation(base)
    if ann is int:
        return Int()
    if ann is bool:
        return Bool()
    if ann is api.Path:
        return PathType()
    if ann is api.Cmd:
        return CmdName()
    if ann is api.CmdArgs:
        return CmdArgsType()
    if ann is CutSpecsT:
        return CutSpecs()
    if ann is AddonSpecT:
        return AddonSpec()
    if ann is OptionNameT:
        return OptionName()
    if ann is OptionSpecT:
        return OptionSpec()
    if isinstance(ann, type) and issubclass(ann, Flow):
        return OneFlow()
    if get_origin(ann) in (Sequence, list) and get_args(ann):
        inner = get_args(ann)[0]
        if isinstance(inner, type) and issubclass(inner, Flow):
            return Flows()
    return Str()
