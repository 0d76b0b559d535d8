"""`--showhost` (mitmproxy's option `showhost`): interpose-dump prints the URL with the Host header's host
instead of the address the request went to. A request whose Host header differs from the address it
was sent to shows the address without the option, the Host header's host with `--showhost`, with
`--set showhost=true` and with `showhost: true` in config.yaml."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import curl
from tests.integration.test_cli import DumpProcess


async def _line_for_lying_host(dump: DumpProcess, origin) -> str:
    code, _, err = await curl("-x", dump.url, "-H", "Host: elsewhere.test", f"{origin.url}/json")
    assert code == 0, err
    assert origin.received[-1].header("host") == "elsewhere.test"  # the origin got the client's Host
    return await dump.stdout_line()


async def test_without_showhost_the_url_names_the_address_the_request_went_to(tmp_path: Path, origin) -> None:
    dump = await DumpProcess.start(tmp=tmp_path)
    try:
        line = await _line_for_lying_host(dump, origin)
        assert f"GET {origin.url}/json → 200" in line, line
        assert "elsewhere.test" not in line
    finally:
        assert await dump.stop() == 0


@pytest.mark.parametrize("how", ["flag", "set", "config"])
async def test_showhost_prints_the_host_headers_host(tmp_path: Path, origin, how: str) -> None:
    args: tuple[str, ...] = ()
    if how == "flag":
        args = ("--showhost",)
    elif how == "set":
        args = ("--set", "showhost=true")
    else:
        (tmp_path / "conf").mkdir()
        (tmp_path / "conf" / "config.yaml").write_text("showhost: true\n")
    dump = await DumpProcess.start(*args, tmp=tmp_path)
    try:
        line = await _line_for_lying_host(dump, origin)
        assert f"GET http://elsewhere.test:{origin.port}/json → 200" in line, line
        assert f"127.0.0.1:{origin.port}/json" not in line
    finally:
        assert await dump.stop() == 0
