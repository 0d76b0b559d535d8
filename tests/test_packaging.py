"""The distribution as users get it: the wheel claims the one import name `interpose`, holds every package
of core/, tui/ and addons/, installs into a fresh venv where it imports and its console scripts run (without
a terminal); `--version`; and addon scripts given to `-s` by path or by module name.

Select these with `-m packaging`; they run by default. The wheel is built once per run, without build
isolation (setuptools from the test extra), from a copy of the sources, so nothing is written into the checkout.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import curl

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
# Where each source folder lands in the installed package.
FOLDERS = {"core": "interpose", "tui": "interpose/tui", "addons": "interpose/addons"}


def source_packages() -> dict[str, str]:
    """Every folder under core/, tui/, addons/ that has an __init__.py → its path inside the wheel."""
    found = {}
    for folder, target in FOLDERS.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / folder).as_posix()
            if "__pycache__" in rel:
                continue
            found[init.parent.relative_to(ROOT).as_posix()] = target if rel == "." else f"{target}/{rel}"
    return found


def run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a command without a terminal (stdin from /dev/null, output captured)."""
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import setuptools

    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.fail(f"setuptools {setuptools.__version__} cannot build this project: pip install -e '.[test]'")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    proc = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
               "-q", "-w", out, src, cwd=src)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels = list(out.glob("interpose-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def dist_info_file(wheel: Path, names: list[str], name: str) -> str:
    with zipfile.ZipFile(wheel) as z:
        return z.read(f"interpose-{VERSION}.dist-info/{name}").decode()


def test_the_wheel_claims_only_the_name_interpose(wheel: Path, names: list[str]) -> None:
    assert wheel.name.startswith(f"interpose-{VERSION}-")
    assert dist_info_file(wheel, names, "top_level.txt").split() == ["interpose"]
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"interpose", f"interpose-{VERSION}.dist-info"}
    assert not any(n.startswith(("core/", "tui/", "addons/", "tests/", "bench/")) for n in names)


def test_every_package_and_module_is_in_the_wheel(names: list[str]) -> None:
    missing_packages = [f"{folder} (as {target})" for folder, target in source_packages().items()
                        if f"{target}/__init__.py" not in names]
    assert not missing_packages, "add these to [tool.setuptools] packages in pyproject.toml"
    missing_modules = []
    for folder, target in source_packages().items():
        for module in sorted((ROOT / folder).glob("*.py")):
            if f"{target}/{module.name}" not in names:
                missing_modules.append(module.relative_to(ROOT).as_posix())
    assert not missing_modules


def test_the_metadata_names_the_license_and_the_scripts(wheel: Path, names: list[str]) -> None:
    metadata = dist_info_file(wheel, names, "METADATA")
    assert "License-Expression: MIT" in metadata
    assert f"interpose-{VERSION}.dist-info/licenses/LICENSE" in names
    assert "the interpose authors" in dist_info_file(wheel, names, "licenses/LICENSE")
    extras = {line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Provides-Extra:")}
    assert {"fast", "test", "bcrypt"} <= extras
    entry_points = dist_info_file(wheel, names, "entry_points.txt")
    assert "interpose = interpose.tui.app:main" in entry_points
    assert "interpose-dump = interpose.cli.dump:main" in entry_points


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new venv with the wheel installed (not editable). Its dependencies come from this venv's
    site-packages through a path line in a .pth file: a plain path adds no .pth of that folder, so the
    editable install of the checkout stays out."""
    venv = tmp_path_factory.mktemp("venv")
    proc = run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert proc.returncode == 0, proc.stderr
    python = venv / "bin" / "python"
    proc = run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "_interpose_test_deps.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    yield venv


def test_the_installed_wheel_imports_from_a_fresh_venv(fresh_venv: Path, tmp_path: Path) -> None:
    code = """
import importlib, importlib.util, pkgutil, sys
import interpose, interpose.tui, interpose.addons
print(interpose.__file__)
assert [importlib.util.find_spec(n) for n in ("core", "tui", "addons")] == [None, None, None]
for m in pkgutil.walk_packages(interpose.__path__, "interpose."):
    importlib.import_module(m.name)  # every module of the wheel imports (none needs the checkout)
print(interpose.__version__)
"""
    proc = run(fresh_venv / "bin" / "python", "-c", code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    where, version = proc.stdout.split()
    assert Path(where).is_relative_to(fresh_venv), where
    assert version == VERSION


@pytest.mark.parametrize("script", ["interpose", "interpose-dump"])
def test_installed_console_scripts_print_the_version_without_a_terminal(fresh_venv: Path, tmp_path: Path,
                                                                         script: str) -> None:
    proc = run(fresh_venv / "bin" / script, "--version", cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"interpose {VERSION}\n", "")


@pytest.mark.parametrize("module", ["interpose.tui.app", "interpose.cli.dump"])
def test_version_from_the_checkout_without_a_terminal(module: str) -> None:
    """The same through this venv's install (`python -m`), and through its console scripts when on PATH."""
    proc = run(sys.executable, "-m", module, "--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"interpose {VERSION}\n", "")
    script = {"interpose.tui.app": "interpose", "interpose.cli.dump": "interpose-dump"}[module]
    path = Path(sys.executable).parent / script
    if path.exists():
        proc = run(path, "--version")
        assert (proc.returncode, proc.stdout) == (0, f"interpose {VERSION}\n")


def test_the_tui_without_a_terminal_still_refuses_to_start() -> None:
    proc = run(sys.executable, "-m", "interpose.tui.app", "-p", "0")
    assert proc.returncode == 2
    assert "needs a terminal" in proc.stderr


def test_event_loop_switch_for_subprocesses(tmp_path: Path) -> None:
    """INTERPOSE_EVENT_LOOP (set by tests/conftest.py from INTERPOSE_TEST_LOOP) decides the loop of the
    proxies the tests start as subprocesses."""
    code = ("import asyncio; from interpose.cli.args import install_event_loop_policy; install_event_loop_policy(); "
            "print(type(asyncio.new_event_loop()).__module__)")
    env = {**os.environ, "INTERPOSE_EVENT_LOOP": "asyncio"}
    proc = run(sys.executable, "-c", code, env=env)
    assert proc.stdout.strip().startswith("asyncio"), proc.stderr
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return
    for value in ("uvloop", ""):  # asked for, or picked by itself since it is installed
        proc = run(sys.executable, "-c", code, env={**os.environ, "INTERPOSE_EVENT_LOOP": value})
        assert proc.stdout.strip().startswith("uvloop"), proc.stderr


async def _dump_with_anticache(script: str, tmp_path: Path, origin: object) -> list[str]:
    """Run interpose-dump with `-s SCRIPT --set anticache=true` (an option only the anticache addon
    declares, so the proxy refuses to start without it) and send a conditional request through it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "interpose.cli.dump", "-p", "0", "--confdir", str(tmp_path / "conf"), "-q",
        "-s", script, "--set", "anticache=true",
        cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not lines or not lines[-1].startswith("proxy listening at "):
                line = (await proc.stderr.readline()).decode()
                assert line, f"interpose-dump -s {script} exited early: {lines}"
                lines.append(line)
        port = int(lines[-1].strip().rsplit(":", 1)[1])
        code, out, err = await curl("-s", "-x", f"http://127.0.0.1:{port}", "-H", "If-None-Match: \"v1\"",
                                    f"{origin.url}/echo")
        assert code == 0, err
    finally:
        proc.terminate()
        await proc.wait()
    return lines


async def test_addon_script_by_path_from_the_checkout(tmp_path: Path, origin) -> None:
    await _dump_with_anticache("addons/anticache.py", tmp_path, origin)
    assert origin.received[-1].header("if-none-match") is None


async def test_addon_script_by_module_name(tmp_path: Path, origin) -> None:
    await _dump_with_anticache("interpose.addons.anticache", tmp_path, origin)
    assert origin.received[-1].header("if-none-match") is None
