"""Shared fixtures: a real proxy (in-process, port 0), a real origin server, and helpers to drive them.

The event loop: INTERPOSE_TEST_LOOP=uvloop runs the tests on uvloop (pip install 'interpose[fast]'),
both the in-process proxies (through the policy pytest-asyncio's `event_loop_policy` fixture hands out)
and the `interpose`/`interpose-dump` subprocesses (through INTERPOSE_EVENT_LOOP, which they obey).
Unset or `asyncio`, everything runs on asyncio's own loop, even where uvloop is installed.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from interpose.runtime.master import Master
from interpose.runtime.options import Options, core_options
from tests.servers import Origin

TEST_LOOP = os.environ.get("INTERPOSE_TEST_LOOP", "").strip().lower() or "asyncio"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "packaging: builds the wheel, installs it in a fresh venv (-m packaging)")
    if TEST_LOOP not in ("asyncio", "uvloop"):
        raise pytest.UsageError(f"INTERPOSE_TEST_LOOP={TEST_LOOP!r}: use asyncio or uvloop")
    if TEST_LOOP == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise pytest.UsageError("INTERPOSE_TEST_LOOP=uvloop needs uvloop: pip install -e '.[test,fast]'") from None
        # pytest-asyncio's default `event_loop_policy` fixture returns the policy in force, so every test
        # loop (any pytest-asyncio from 0.24 on) is a uvloop one, without overriding that fixture.
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # Subprocess proxies pick uvloop by themselves when it is installed: make them follow the switch.
    os.environ["INTERPOSE_EVENT_LOOP"] = TEST_LOOP


def pytest_report_header(config: pytest.Config) -> str:
    return f"event loop: {TEST_LOOP} (INTERPOSE_TEST_LOOP)"


def loop_kind(loop: asyncio.AbstractEventLoop) -> str:
    """`uvloop` or `asyncio`: which implementation a loop is."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


class Recorder:
    """An addon that records every hook it sees as (name, args), in order, and lets tests wait for one."""

    def __init__(self, names: list[str] | None = None) -> None:
        from interpose.runtime.hooks import ALL

        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._waiters: list[tuple[str, asyncio.Future[Any]]] = []
        for name in names or list(ALL):
            setattr(self, name, self._make(name))

    def _make(self, name: str) -> Callable[..., None]:
        def hook(*args: Any) -> None:
            self.calls.append((name, args))
            for w in list(self._waiters):
                if w[0] == name and not w[1].done():
                    w[1].set_result(args)
                    self._waiters.remove(w)
        return hook

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    async def wait_for(self, name: str, count: int = 1, timeout: float = 10) -> None:
        """Wait until the hook `name` has been seen `count` times."""
        async with asyncio.timeout(timeout):
            while self.names.count(name) < count:
                fut = asyncio.get_running_loop().create_future()
                self._waiters.append((name, fut))
                await fut


class RunningProxy:
    def __init__(self, master: Master, host: str, port: int) -> None:
        self.master = master
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def options(self) -> Options:
        return self.master.options


ProxyFactory = Callable[..., Any]


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    o = await Origin().start()
    yield o
    await o.stop()


@pytest.fixture
async def make_proxy(tmp_path) -> AsyncIterator[ProxyFactory]:
    """`proxy = await make_proxy(addon, ..., mode="reverse:http://...", **options)`"""
    masters: list[Master] = []

    async def factory(*addons: Any, **opts: Any) -> RunningProxy:
        assert loop_kind(asyncio.get_running_loop()) == TEST_LOOP, "the test runs on another loop than asked"
        options = Options()
        core_options(options)
        options.update(listen_port=0, confdir=str(tmp_path / "confdir"), **opts)
        master = Master(options)
        for a in addons:
            master.add_addon(a)
        host, port = await master.start()
        masters.append(master)
        return RunningProxy(master, host, port)

    yield factory
    for m in masters:
        await m.shutdown()


@pytest.fixture
async def proxy(make_proxy) -> RunningProxy:
    return await make_proxy()


async def curl(*args: str, timeout: float = 30) -> tuple[int, bytes, bytes]:
    """Run the real curl; returns (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--noproxy", "", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    return proc.returncode or 0, out, err


async def raw_request(host: str, port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes, read until the peer closes (or timeout); returns everything received."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    await writer.drain()
    chunks = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                c = await reader.read(65536)
                if not c:
                    break
                chunks.append(c)
    except TimeoutError:
        pass
    writer.close()
    return b"".join(chunks)


PYTHON = sys.executable
