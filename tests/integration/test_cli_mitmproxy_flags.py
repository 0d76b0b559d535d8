"""mitmproxy's flag spellings on interpose-dump: --anticache / --anticomp load their addon switched on,
--save-stream-file / --flow-detail / --showhost are accepted, -v shows debug lines and -vv headers."""
from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import curl
from tests.integration.test_cli import DumpProcess


async def test_anticache_flag_loads_the_addon_switched_on(tmp_path: Path, origin) -> None:
    dump = await DumpProcess.start("--anticache", "--showhost", "--save-stream-file", str(tmp_path / "f.flows"),
                                   tmp=tmp_path)
    try:
        code, _, err = await curl("-x", dump.url, "-H", "If-None-Match: abc", f"{origin.url}/json")
        assert code == 0, err
        assert origin.received[-1].header("if-none-match") is None
        assert "/json" in await dump.stdout_line()
    finally:
        assert await dump.stop() == 0
    assert (tmp_path / "f.flows").stat().st_size > 0


async def test_verbose_shows_debug_lines_and_headers(tmp_path: Path, origin) -> None:
    script = tmp_path / "dbg.py"
    script.write_text("from interpose import ctx\n\ndef request(flow):\n    ctx.log.debug('dbg-hello')\n")
    dump = await DumpProcess.start("-vv", "-s", str(script), tmp=tmp_path)
    try:
        code, _, err = await curl("-x", dump.url, f"{origin.url}/json")
        assert code == 0, err
        async with asyncio.timeout(10):
            while not any("dbg-hello" in ln for ln in dump.stderr_lines):
                dump.stderr_lines.append((await dump.proc.stderr.readline()).decode())
        first = await dump.stdout_line()
        assert "/json" in first
        headers = [await dump.stdout_line() for _ in range(3)]
        assert any(h.strip().lower().startswith("host:") for h in headers)
    finally:
        await dump.stop()


async def test_a_mitmproxy_config_yaml_naming_a_bundled_addons_option_loads_that_addon(tmp_path: Path, origin) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("anticache: true\nconsole_mouse: false\n")
    dump = await DumpProcess.start(tmp=tmp_path)
    try:
        assert any("unknown option 'console_mouse' ignored" in ln for ln in dump.stderr_lines)
        assert not any("anticache" in ln for ln in dump.stderr_lines)
        code, _, err = await curl("-x", dump.url, "-H", "If-None-Match: abc", f"{origin.url}/json")
        assert code == 0, err
        assert origin.received[-1].header("if-none-match") is None
    finally:
        assert await dump.stop() == 0
