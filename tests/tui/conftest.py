"""Fixtures of the pty end-to-end tests."""
from __future__ import annotations

import pytest

from tests.tui.pty_harness import Terminal


@pytest.fixture
async def term(tmp_path):
    """`interpose` running in a pseudo-terminal (80×24) with its own confdir."""
    t = Terminal()
    await t.start("--confdir", str(tmp_path / "conf"))
    yield t
    await t.stop()
