"""Decompression bombs through a real interpose-dump: a gzip body inflating to 256 MiB, and a double-gzip
one, served by a real origin on loopback. Decoding stops at `decode_limit`: the dump process's peak RSS
(VmHWM) stays far below the inflated size, the outcome is a clear "too large to decode" message, and the
proxy keeps serving."""
from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import curl
from tests.integration.test_cli import DumpProcess

INFLATED = 256 * 1024 * 1024
HWM_LIMIT_KIB = 200 * 1024


def _gzip_zeros(size: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    parts = [c.compress(chunk) for _ in range(size // len(chunk))]
    parts.append(c.flush())
    return b"".join(parts)


BOMB = _gzip_zeros(INFLATED)  # ~254 KiB
DOUBLE = gzip.compress(BOMB, 9)  # a few KiB: gzip, gzip inflates 256 MiB from it


class BombOrigin:
    """A raw HTTP/1.1 origin: /bomb, /double, anything else answers "hello"."""

    async def start(self) -> BombOrigin:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                if path.endswith(b"/bomb"):
                    body, ce = BOMB, b"gzip"
                elif path.endswith(b"/double"):
                    body, ce = DOUBLE, b"gzip, gzip"
                else:
                    body, ce = b"hello", b""
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" % len(body)
                             + (b"Content-Encoding: " + ce + b"\r\n" if ce else b"") + b"\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        self.server.close()


@pytest.fixture
async def bomb_origin() -> AsyncIterator[BombOrigin]:
    o = await BombOrigin().start()
    yield o
    await o.stop()


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


async def read_until(stream: asyncio.StreamReader, needle: str, timeout: float = 20) -> str:
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            line = (await stream.readline()).decode("utf-8", "replace")
            assert line, f"stream ended before {needle!r}: {''.join(seen)[-2000:]}"
            seen.append(line)
            if needle in line:
                return "".join(seen)


async def fetch(proxy: DumpProcess, url: str) -> bytes:
    code, out, err = await curl("-x", proxy.url, url)
    assert code == 0, err
    return out


async def serves_normal_request(proxy: DumpProcess, origin: BombOrigin, wait_line: bool = True) -> None:
    assert await fetch(proxy, f"http://127.0.0.1:{origin.port}/ok") == b"hello"
    if wait_line:
        await read_until(proxy.proc.stdout, "/ok")


@pytest.mark.parametrize("path", ["bomb", "double"])
async def test_dump_flow_detail_3_says_too_large(tmp_path, bomb_origin, path):
    proxy = await DumpProcess.start("--set", "flow_detail=3", tmp=tmp_path)
    try:
        body = await fetch(proxy, f"http://127.0.0.1:{bomb_origin.port}/{path}")
        assert body == (BOMB if path == "bomb" else DOUBLE)  # forwarded untouched
        out = await read_until(proxy.proc.stdout, "too large to decode")
        assert "decode_limit of 32m" in out
        assert vm_hwm_kib(proxy.proc.pid) < HWM_LIMIT_KIB
        await serves_normal_request(proxy, bomb_origin)
        assert vm_hwm_kib(proxy.proc.pid) < HWM_LIMIT_KIB
    finally:
        assert await proxy.stop() == 0


@pytest.mark.parametrize("path", ["bomb", "double"])
async def test_modify_body_leaves_a_bomb_unchanged_and_warns(tmp_path, bomb_origin, path):
    proxy = await DumpProcess.start("-s", "interpose.addons.modify_body", "--set", "modify_body=/hello/HELLO",
                                    tmp=tmp_path)
    try:
        body = await fetch(proxy, f"http://127.0.0.1:{bomb_origin.port}/{path}")
        assert body == (BOMB if path == "bomb" else DOUBLE)
        warning = await read_until(proxy.proc.stderr, "modify_body")
        assert "[warn]" in warning and "too large to decode" in warning and "left unchanged" in warning
        assert vm_hwm_kib(proxy.proc.pid) < HWM_LIMIT_KIB
        # The rule still works on a normal body.
        assert await fetch(proxy, f"http://127.0.0.1:{bomb_origin.port}/ok") == b"HELLO"
    finally:
        assert await proxy.stop() == 0


async def test_addon_reading_text_gets_the_clear_error(tmp_path, bomb_origin):
    script = tmp_path / "reader.py"
    script.write_text(
        "from interpose import ctx\n"
        "from interpose.http import BodyTooLarge\n"
        "def response(flow):\n"
        "    try:\n"
        "        n = len(flow.response.text)\n"
        "    except BodyTooLarge as e:\n"
        "        ctx.log.warn(f'reader: BodyTooLarge: {e}')\n"
        "    else:\n"
        "        ctx.log.warn(f'reader: {n} characters')\n"
    )
    proxy = await DumpProcess.start("-s", str(script), tmp=tmp_path)
    try:
        for path in ("bomb", "double"):
            await fetch(proxy, f"http://127.0.0.1:{bomb_origin.port}/{path}")
            line = await read_until(proxy.proc.stderr, "reader:")
            assert "BodyTooLarge: body too large to decode" in line and "32m" in line
            assert vm_hwm_kib(proxy.proc.pid) < HWM_LIMIT_KIB
        await fetch(proxy, f"http://127.0.0.1:{bomb_origin.port}/ok")
        assert "reader: 5 characters" in await read_until(proxy.proc.stderr, "reader:")
    finally:
        assert await proxy.stop() == 0


async def test_a_raised_decode_limit_decodes_the_bomb_and_a_filter_never_crashes(tmp_path, bomb_origin):
    # ~b on a body past the limit simply does not match; with the limit raised it decodes.
    proxy = await DumpProcess.start("--set", "decode_limit=1k", "-s", "interpose.addons.modify_body",
                                    "--set", r"modify_body=/~b \x00/x/y", tmp=tmp_path)
    try:
        assert await fetch(proxy, f"http://127.0.0.1:{bomb_origin.port}/double") == DOUBLE
        await read_until(proxy.proc.stdout, "/double")
        await serves_normal_request(proxy, bomb_origin)
    finally:
        assert await proxy.stop() == 0
