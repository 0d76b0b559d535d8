"""`@command.command("NAME")`: make an addon's method a command that users can run and bind to a key.

    from interpose import command

    class Counter:
        @command.command("counter.reset")
        def reset(self) -> None:
            ...

When the addon is loaded, its commands join the master's registry (`ctx.master.addons.commands`);
when it is unloaded they leave it. The argument annotations say each argument's type: `str`, `int`,
`bool`, `Path` (a file path, completed from the disk), `Sequence[Flow]` (flows: `@focus`, `@all`,
`@shown`, `@hidden`, `@marked`, `@unmarked` or a filter expression), `Flow` (exactly one),
`Annotated[str, Choice("a", "b")]` (one of fixed words, completed), `Cmd` and `*args: CmdArgs` (a command
line inside a command, as `console.key.bind` takes). A `*args: str` takes the rest of the line.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

ATTRIBUTE = "interpose_command"
"""The attribute the decorator sets on the function: the command's name."""


class Path(str):
    """An argument that names a file (completed from the disk, `~` expanded)."""


class Cmd(str):
    """An argument that names a command (completed from the command names)."""


class CmdArgs(str):
    """The arguments of a `Cmd` argument: the rest of the line."""


class Choice:
    """`Annotated[str, Choice("curl", "httpie")]`: one of these words. A callable in place of the words
    gives them when asked (for choices that change)."""

    def __init__(self, *choices: str | Callable[[], list[str]]) -> None:
        self._choices = choices

    def options(self) -> list[str]:
        out: list[str] = []
        for c in self._choices:
            out.extend(c() if callable(c) else [c])
        return out


def command(name: str) -> Callable[[F], F]:
    """Declare the decorated function or method as the command `name` (dotted, e.g. `flow.resume`)."""
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"a command name is one word without spaces, not {name!r}")

    def mark(fn: F) -> F:
        setattr(fn, ATTRIBUTE, name)
        return fn
    return mark


def declared(addon: Any) -> Iterator[tuple[str, Callable[..., Any]]]:
    """The (name, bound callable) of every command an addon object or module declares. Only class and
    module dictionaries are read, so no property of the addon runs."""
    if inspect.ismodule(addon):
        spaces: list[Mapping[str, Any]] = [vars(addon)]
    else:
        spaces = [vars(k) for k in type(addon).__mro__ if k is not object]
    seen: set[str] = set()
    for space in spaces:
        for attr, value in space.items():
            name = getattr(value, ATTRIBUTE, None)
            if isinstance(name, str) and attr not in seen:
                seen.add(attr)
                yield name, getattr(addon, attr)
