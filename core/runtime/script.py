"""Addon scripts: load a Python file as an addon and reload it when it changes.

A script is named by its path (`-s addons/har.py`) or, for an installed module such as a bundled
addon, by its dotted name (`-s interpose.addons.har`): `resolve` turns the name into the module's file,
which is then loaded and watched like any other.

A script's hooks are its module-level functions, or the objects in its module-level `addons` list.
On change the old module gets `done`, the new one `load`, `start` and `configure`. A script that fails
to import is reported in the log and watched until it is fixed; the proxy keeps running.
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys
import traceback
import types
from typing import TYPE_CHECKING, Any

from interpose.errors import AddonError

if TYPE_CHECKING:
    from interpose.runtime.addonmanager import AddonManager


_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def resolve(spec: str) -> str:
    """The absolute path of the script `spec` names: a file, or else a dotted module name that can be
    imported (its source file). A name that is neither comes back as a path, for the caller to report."""
    path = os.path.abspath(os.path.expanduser(spec))
    if os.path.exists(path) or not _DOTTED.fullmatch(spec):
        return path
    try:
        found = importlib.util.find_spec(spec)
    except (ImportError, ValueError):
        found = None
    origin = getattr(found, "origin", None)
    if isinstance(origin, str) and origin.endswith(".py") and os.path.isfile(origin):
        return origin
    return path


def load_module(path: str) -> types.ModuleType:
    """Execute a script file as a fresh module. Raises AddonError with a readable message."""
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as e:
        raise AddonError(f"cannot read script {path}: {e.strerror or e}") from None
    name = "__interpose_script_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_").replace(".", "_")
    module = types.ModuleType(name)
    module.__file__ = path
    script_dir = os.path.dirname(path)
    sys.path.insert(0, script_dir)
    # Registered while it runs: dataclasses and typing look their module up in sys.modules.
    sys.modules[name] = module
    try:
        code = compile(source, path, "exec")
        exec(code, module.__dict__)
    except SyntaxError as e:
        sys.modules.pop(name, None)
        raise AddonError(f"syntax error in {path}, line {e.lineno}: {e.msg}") from None
    except Exception as e:
        sys.modules.pop(name, None)
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__)[1:])
        raise AddonError(f"error loading {path}: {e}\n{tb}") from None
    finally:
        try:
            sys.path.remove(script_dir)
        except ValueError:
            pass
    return module


class Script:
    """An addon whose hooks come from a file. Its child addon is the module (or what `start` returned)."""

    def __init__(self, path: str, manager: AddonManager, reload: bool = True) -> None:
        self.path = resolve(path)
        self.name = f"script:{path}"
        self.manager = manager
        self.reload = reload
        self.addons: list[Any] = []
        self.error: str | None = None
        self._mtime = self._stat()
        self._load(initial=True)

    def _stat(self) -> float | None:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return None

    def _load(self, initial: bool) -> None:
        try:
            module = load_module(self.path)
        except AddonError as e:
            self.error = str(e)
            self.addons = []
            self.manager.log(str(e), "error")
            return
        self.error = None
        if initial:
            self.addons = [module]  # the manager registers children when the Script itself is added
        else:
            self.addons = [self.manager.register(module)]
            self.manager.chain_changed()
            self.manager.configure_all(self.addons[0])
            self.manager.log(f"reloaded {self.path}", "info")

    def tick(self) -> None:
        if not self.reload:
            return
        mtime = self._stat()
        if mtime is None or mtime == self._mtime:
            return
        self._mtime = mtime
        for child in list(self.addons):
            self.manager.remove_child(child)
        self.addons = []
        self.manager.chain_changed()
        self._load(initial=False)

    def __repr__(self) -> str:
        return f"<Script {self.path}>"


class ScriptLoader:
    """Keeps the loaded scripts in step with the `scripts` option."""

    name = "scriptloader"

    def __init__(self, manager: AddonManager) -> None:
        self.manager = manager
        self.scripts: dict[str, Script] = {}
        self.seen: list[str] = []
        """Every script path loaded in this session, unloaded ones too (the addon picker offers them again)."""
        self.missing: dict[str, str] = {}
        """Scripts asked for that do not exist: path → the message."""

    def errors(self) -> dict[str, str]:
        """Loaded scripts that failed (to import, or are missing): path → the first line of the error."""
        out = {path: s.error.splitlines()[0] for path, s in list(self.scripts.items()) if s.error}
        out.update(self.missing)
        return out

    def configure(self, options: Any, updated: set[str]) -> None:
        if "scripts" not in updated:
            return
        wanted = [resolve(p) for p in options.scripts]
        for path in list(self.scripts):
            if path not in wanted:
                self.manager.remove(self.scripts.pop(path))
        self.missing = {p: m for p, m in self.missing.items() if p in wanted}
        for path in wanted:
            if path not in self.seen:
                self.seen.append(path)
            if path in self.scripts:
                continue
            if not os.path.isfile(path):
                self.missing[path] = f"script not found: {path}"
                self.manager.log(f"script not found: {path}", "error")
                continue
            script = Script(path, self.manager)
            self.scripts[path] = script
            self.manager.add(script)
