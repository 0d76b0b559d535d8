"""The shape of the code, read from the source with `ast` (nothing is imported):

- no import circles among the modules of core/, tui/ and addons/ (every import counts: at the top, inside
  functions, and under `if TYPE_CHECKING:`),
- no module over 400 lines,
- no urwid in core/ (the engine runs without the terminal UI),
- each room imports only what docs/architecture.md allows it, and the flow model (interpose.http, .websocket,
  .tcp, interpose.model.*) imports nothing from the store, the
  proxy, the runtime or the TUI.
"""
from __future__ import annotations

import ast
import gc
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"core": "interpose", "tui": "interpose.tui", "addons": "interpose.addons"}
MAX_LINES = 400
FLOW_MODEL = ("interpose.http", "interpose.websocket", "interpose.tcp", "interpose.model")
NOT_FOR_THE_MODEL = ("interpose.store", "interpose.proxy", "interpose.runtime", "interpose.tui")


def modules() -> dict[str, Path]:
    """Module name (as installed) → source file, for every .py file of a package in core/, tui/, addons/."""
    found: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            if not (path.parent / "__init__.py").exists():
                continue  # not part of a package (a stray script): not installed either
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = modules()


def imports_in(name: str, source: str, is_package: bool, known: set[str] | dict[str, Path]) -> dict[str, int]:
    """The modules among `known` that module `name` imports → line of the first such import. Every import
    counts, wherever it is (under `if TYPE_CHECKING:` and in function bodies too). `from P import x`
    counts as importing P.x when that is a module, else P; relative imports are resolved."""

    def known_prefix(module: str) -> str | None:
        while module and module not in known:
            module = module.rpartition(".")[0]
        return module or None

    found: dict[str, int] = {}

    def add(target: str | None, line: int) -> None:
        if target is not None and target != name:
            found.setdefault(target, line)

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(known_prefix(alias.name), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = (name if is_package else name.rpartition(".")[0]).split(".")
                base = base[: len(base) - (node.level - 1)]
                source_module = ".".join(base + ([node.module] if node.module else []))
            else:
                source_module = node.module or ""
            for alias in node.names:
                sub = f"{source_module}.{alias.name}"
                add(sub if sub in known else known_prefix(source_module), node.lineno)
    return found


def imports_of(name: str) -> dict[str, int]:
    path = MODULES[name]
    return imports_in(name, path.read_text(encoding="utf-8"), path.name == "__init__.py", MODULES)


GRAPH = {name: imports_of(name) for name in MODULES}


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """For every import that lies on a circle, the shortest circle through it; each circle once."""
    def path(start: str, goal: str) -> list[str] | None:
        prev: dict[str, str] = {start: start}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if node == goal:
                out = [node]
                while out[-1] != start:
                    out.append(prev[out[-1]])
                return out[::-1]
            for nxt in sorted(graph[node]):
                if nxt not in prev:
                    prev[nxt] = node
                    queue.append(nxt)
        return None

    seen: set[tuple[str, ...]] = set()
    cycles = []
    for a in sorted(graph):
        for b in sorted(graph[a]):
            back = path(b, a)
            if back is None:
                continue
            cycle = [a, *back[:-1]]
            i = cycle.index(min(cycle))
            key = tuple(cycle[i:] + cycle[:i])
            if key not in seen:
                seen.add(key)
                cycles.append(list(key))
    return sorted(cycles, key=lambda c: (len(c), c))


def _show(cycle: list[str]) -> str:
    steps = [f"{a} (line {GRAPH[a][b]})" for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True)]
    return " -> ".join([*steps, cycle[0]])


@pytest.fixture(autouse=True)
def _no_collection_while_parsing() -> Iterator[None]:
    """CPython 3.11 before 3.11.8 fails `ast.parse` with "AST constructor recursion depth mismatch" when
    the garbage collector runs a finaliser (an earlier test's coroutine) in the middle of it: collect
    first, and not during the checks."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_the_sources_were_found() -> None:
    assert {"interpose", "interpose.http", "interpose.tui", "interpose.addons", "interpose.model"} <= set(MODULES)
    assert GRAPH["interpose.addons.anticache"].keys() >= {"interpose.ctx", "interpose.http"}


def test_imports_are_resolved_wherever_they_are() -> None:
    known = {"p", "p.a", "p.sub", "p.sub.b", "p.sub.c", "p.sub.d", "p.e", "p.f", "p.g"}
    source = """
from __future__ import annotations
from typing import TYPE_CHECKING
import os, p.sub
from . import c
from .d import thing
from .. import a
from ..e import E
from p import Name, g
if TYPE_CHECKING:
    from p.f import F
def later():
    import p.sub.missing
"""
    assert imports_in("p.sub.b", source, False, known) == {
        "p.sub": 4, "p.sub.c": 5, "p.sub.d": 6, "p.a": 7, "p.e": 8, "p": 9, "p.g": 9, "p.f": 11}
    assert imports_in("p.sub", "from . import b\nfrom .. import a\n", True, known) == {"p.sub.b": 1, "p.a": 2}


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 2, "a": 3}, "c": {"a": 4}, "d": {"a": 5}}
    assert _cycles(graph) == [["a", "b"], ["a", "b", "c"]]
    assert _cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_import_cycles() -> None:
    cycles = _cycles(GRAPH)
    assert not cycles, f"{len(cycles)} import circles:\n" + "\n".join(_show(c) for c in cycles)


def test_no_module_over_400_lines() -> None:
    long = {str(path.relative_to(ROOT)): n for path in MODULES.values()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"


def test_no_urwid_in_core() -> None:
    found = []
    for name, path in MODULES.items():
        if name.startswith(("interpose.tui", "interpose.addons")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names if n.split(".")[0] == "urwid"]
    assert not found


def test_the_flow_model_imports_no_store_proxy_runtime_or_tui() -> None:
    model = [name for name in MODULES if name in FLOW_MODEL or name.startswith("interpose.model.")]
    assert len(model) > 4
    found = [f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
             for name in model for target, line in GRAPH[name].items()
             if any(target == p or target.startswith(p + ".") for p in NOT_FOR_THE_MODEL)]
    assert not found


# What each room may import (docs/architecture.md, "The rooms"). A module's own room is always allowed.
PUBLIC_API = ("interpose", "interpose.ctx", "interpose.command", "interpose.http", "interpose.websocket",
              "interpose.tcp", "interpose.flowfilter", "interpose.errors")
ENGINE = ("interpose.model", *PUBLIC_API, "interpose.proxy", "interpose.runtime", "interpose.store", "interpose.cli")
RUNTIME_CONTRACTS = ("interpose.runtime.hooks", "interpose.runtime.bus", "interpose.runtime.options",
                     "interpose.runtime.addonmanager")
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "interpose.model": ("interpose.errors",),
    "interpose.proxy": ("interpose.model", *PUBLIC_API, *RUNTIME_CONTRACTS),
    "interpose.store": ("interpose.model", *PUBLIC_API, "interpose.runtime.options"),
    "interpose.runtime": ENGINE,
    "interpose.cli": ENGINE,
    "interpose.tui": (*ENGINE, "interpose.tui", "interpose.addons"),  # the addon picker lists the bundled addons
    "interpose.addons": (*PUBLIC_API, "interpose.model.cookies", "interpose.store.flowfile", "interpose.store.har",
                         "interpose.runtime.builtins.save"),
}


def room_of(module: str) -> str:
    """The room a module lives in: its sub-package of interpose (the public API modules are one room)."""
    for room in MAY_IMPORT:
        if module == room or module.startswith(room + "."):
            return room
    return "public API"


def _allowed(target: str, allowed: tuple[str, ...]) -> bool:
    # `interpose` alone (the package) is allowed only as itself, not as a prefix of every module.
    return any(target == a or (a != "interpose" and target.startswith(a + ".")) for a in allowed)


def test_each_room_imports_only_what_it_may() -> None:
    broken = []
    for name, targets in GRAPH.items():
        room = room_of(name)
        allowed = (*MAY_IMPORT.get(room, ("interpose.model", *PUBLIC_API)), room)
        if room == "public API":
            allowed = ("interpose.model", *PUBLIC_API, "interpose.runtime.log", "interpose.runtime.options")
        for target, line in targets.items():
            if room_of(target) != room and not _allowed(target, allowed):
                broken.append(f"{MODULES[name].relative_to(ROOT)}:{line} ({room}) imports {target}")
    assert not broken, "imports across rooms that docs/architecture.md does not allow:\n" + "\n".join(broken)


def test_the_room_check_sees_a_bad_import() -> None:
    assert room_of("interpose.proxy.layers.http1") == "interpose.proxy"
    assert room_of("interpose.http") == "public API"
    assert not _allowed("interpose.runtime.master", MAY_IMPORT["interpose.proxy"])
    assert _allowed("interpose.runtime.hooks", MAY_IMPORT["interpose.proxy"])
    assert not _allowed("interpose.tui.app", MAY_IMPORT["interpose.addons"])
