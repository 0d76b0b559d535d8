"""Every layer kind resolves, including the ones imported on first use (kept out of startup)."""
import subprocess
import sys

import pytest

from interpose.proxy.layer import KINDS, LAYERS


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_resolves(kind):
    cls = LAYERS[kind]
    assert cls.kind == kind
    assert LAYERS.get(kind) is cls


def test_unknown_kind():
    assert LAYERS.get("gopher") is None
    with pytest.raises(KeyError):
        LAYERS["gopher"]


def test_startup_leaves_h2_wsproto_and_flow_files_out():
    code = ("import sys, interpose.cli.dump, interpose.proxy.layers; "
            "print(sorted(m for m in ('h2', 'wsproto', 'interpose.store.flowfile', 'interpose.store.har', "
            "'interpose.runtime.builtins.replay') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_one_table_names_every_kind():
    from interpose.proxy.layer import TABLE

    assert set(TABLE) == set(KINDS)


def test_layers_package_registers_nothing_by_import():
    """The table is the registry: the package itself imports no layer module."""
    import ast
    import pathlib

    import interpose.proxy.layers as pkg

    tree = ast.parse(pathlib.Path(pkg.__file__).read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
