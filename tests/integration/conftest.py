"""Fixtures shared by the integration tests: TLS origins with their own test CA, and a strict proxy."""
from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import Origin
from tests.tls_servers import H2Origin, TestCA, start_h1_origin


@pytest.fixture
def test_ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "origin-ca")


@pytest.fixture
async def h1_origin(test_ca: TestCA) -> AsyncIterator[Origin]:
    o = await start_h1_origin(test_ca)
    yield o
    await o.stop()


@pytest.fixture
async def h2_origin(test_ca: TestCA) -> AsyncIterator[H2Origin]:
    o = await H2Origin(test_ca).start()
    yield o
    await o.stop()


@pytest.fixture
async def h2_only_origin(test_ca: TestCA) -> AsyncIterator[H2Origin]:
    o = await H2Origin(test_ca, alpn=("h2",)).start()
    yield o
    await o.stop()


class ErrorLogs:
    """Collects error-level log entries: a proxy in the strict tests should never log one."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def log(self, entry: Any) -> None:
        if entry.level == "error":
            self.entries.append(entry.msg)


@pytest.fixture
async def strict_make_proxy(make_proxy) -> AsyncIterator[Any]:
    """conftest's make_proxy, failing the test if the proxy logged an error."""
    errors = ErrorLogs()

    async def factory(*addons: Any, **opts: Any) -> Any:
        return await make_proxy(errors, *addons, **opts)

    yield factory
    assert errors.entries == []
