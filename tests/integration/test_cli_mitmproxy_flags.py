"""mitmproxy's flag spellings on interpose-dump: --anticache / --anticomp load their addon switched on,
--save-stream-file / --flow-detail / --showhost are accepted, -v shows debug lines and -vv headers; every
spelling sets the option its interpose spelling sets."""
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


def test_every_mitmproxy_spelling_sets_its_option(tmp_path: Path) -> None:
    """--rfile, --save-stream-file, --flow-detail, --tcp-hosts, --proxyauth, --showhost, --anticache and
    --anticomp become the options (and bundled addons) their interpose spellings set."""
    from interpose.cli import args as cli
    from interpose.runtime.commands.bundled import bundled_addons

    flows = tmp_path / "in.flows"
    flows.write_bytes(b"")
    ns = cli.make_parser("t", "t").parse_args([
        "--confdir", str(tmp_path / "conf"), "--rfile", str(flows), "--save-stream-file", str(tmp_path / "out.flows"),
        "--flow-detail", "2", "--tcp-hosts", "^db:5432$", "--tcp-hosts", "^mq:", "--proxyauth", "u:p",
        "--showhost", "--anticache", "--anticomp"])
    opts = cli.options_from_args(ns)
    assert (opts.rfile, opts.save_stream_file) == (str(flows), str(tmp_path / "out.flows"))
    assert (opts.flow_detail, opts.tcp_hosts, opts.proxyauth, opts.showhost) == (2, ["^db:5432$", "^mq:"], "u:p", True)
    bundled = bundled_addons()
    assert bundled["anticache"] in opts.scripts and bundled["anticomp"] in opts.scripts
    assert opts.unknown_deferred() == ["anticache", "anticomp"]  # set to true once their addons declare them
