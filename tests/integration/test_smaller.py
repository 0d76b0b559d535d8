"""Smaller fixes of issue 16, over real sockets: `interpose-dump -r` binds no port; `-s addons/proxyauth.py`."""
from __future__ import annotations

import signal
import socket

from tests.conftest import curl
from tests.integration.test_cli import ROOT, DumpProcess, run_dump


async def test_dump_read_binds_no_port_so_it_runs_beside_a_proxy(tmp_path, origin):
    path = tmp_path / "flows.interpose"
    dump = await DumpProcess.start("-w", str(path), tmp=tmp_path)
    code, _, err = await curl("-x", dump.url, f"{origin.url}/a")
    assert code == 0, err
    await dump.stdout_line()
    assert await dump.stop(signal.SIGTERM) == 0
    with socket.socket() as busy:  # "a proxy already runs on this port"
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = await run_dump("-p", str(port), "--confdir", str(tmp_path / "conf"), "-r", str(path))
    assert code == 0, err
    assert f"GET {origin.url}/a → 200 OK" in out
    assert "proxy listening at" not in err


async def test_proxyauth_as_a_script(tmp_path, origin):
    dump = await DumpProcess.start("-s", str(ROOT / "addons" / "proxyauth.py"), "--set", "proxyauth=alice:s3cret",
                                   tmp=tmp_path)
    try:
        code, out, err = await curl("-si", "-x", dump.url, f"{origin.url}/echo")
        assert out.startswith(b"HTTP/1.1 407")
        code, out, err = await curl("-s", "-x", dump.url, "--proxy-user", "alice:s3cret", f"{origin.url}/echo")
        assert code == 0 and b'"path": "/echo"' in out
        assert origin.received[-1].header("proxy-authorization") is None
    finally:
        assert await dump.stop() == 0
