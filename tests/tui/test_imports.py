"""The terminal UI's imports point one way: no import circle anywhere in tui/ (imports under
`if TYPE_CHECKING:` and inside functions count too), nothing imports the app, and the app has everything
the `UI` protocol promises the actions."""
from __future__ import annotations

import ast
import inspect
from collections import deque
from pathlib import Path

from interpose.runtime.master import Master
from interpose.runtime.options import Options, core_options
from interpose.tui.actions import ACTIONS
from interpose.tui.app import App
from interpose.tui.keymap import BINDINGS
from interpose.tui.ui import UI

TUI = Path(__file__).resolve().parents[2] / "tui"
PACKAGE = "interpose.tui"


def module_name(path: Path) -> str:
    parts = path.relative_to(TUI).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The tui modules `path` imports, anywhere in the file. `from pkg import sub` names the submodule
    `pkg.sub` when there is one; the implicit import of a module's parent packages is not counted."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return found & modules


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in TUI.rglob("*.py")}
    modules = set(paths)
    return {name: imports(path, name, modules) for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle (as a path back to its start) per strongly connected component bigger than one module,
    plus modules that import themselves. Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(path_within(graph, set(component), v))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def path_within(graph: dict[str, set[str]], component: set[str], start: str) -> list[str]:
    """A shortest way from `start` back to itself inside one strongly connected component."""
    queue = deque([[start]])
    seen = {start}
    while queue:
        path = queue.popleft()
        for w in sorted(graph[path[-1]] & component):
            if w == start:
                return path + [start]
            if w not in seen:
                seen.add(w)
                queue.append(path + [w])
    raise AssertionError(f"{start} is not on a circle")


def test_the_checker_finds_a_circle_through_type_checking_imports(tmp_path):
    (tmp_path / "a.py").write_text("from typing import TYPE_CHECKING\n"
                                   "if TYPE_CHECKING:\n    from interpose.tui import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from interpose.tui.a import x\n")
    (tmp_path / "c.py").write_text("from interpose.tui import a\n")
    modules = {"interpose.tui.a", "interpose.tui.b", "interpose.tui.c"}
    graph = {f"interpose.tui.{m}": imports(tmp_path / f"{m}.py", f"interpose.tui.{m}", modules) for m in "abc"}
    assert graph == {"interpose.tui.a": {"interpose.tui.b"}, "interpose.tui.b": {"interpose.tui.a"},
                     "interpose.tui.c": {"interpose.tui.a"}}
    assert cycles(graph) == [["interpose.tui.a", "interpose.tui.b", "interpose.tui.a"]]


def test_no_import_circle_in_tui():
    graph = import_graph()
    assert "interpose.tui.actions.registry" in graph and graph["interpose.tui.app"]  # the walk found the code
    assert cycles(graph) == []


def test_nothing_imports_the_app():
    graph = import_graph()
    assert [name for name, deps in graph.items() if "interpose.tui.app" in deps] == []


async def test_the_app_is_what_the_actions_take():  # async: App.core needs a running loop
    opts = Options()
    core_options(opts)
    app = App(Master(opts))
    members = set(UI.__annotations__) | {n for n in vars(UI) if not n.startswith("_")}
    assert {"layout", "push", "notify", "store", "repeater"} <= members
    missing = sorted(m for m in members if not hasattr(app, m))
    assert missing == []
    for name in members:
        if inspect.isfunction(vars(UI).get(name)):
            assert callable(getattr(app, name)), name


def test_every_bound_command_is_registered():
    from interpose.runtime.master import Master
    from interpose.tui import commands

    master = Master()
    commands.declare(master.commands)
    bound = {b.cmd.split()[0] for b in BINDINGS}
    assert bound - set(master.commands.names()) == set()
    assert ACTIONS  # every action is reachable as a command (tui/commands/base.py)
