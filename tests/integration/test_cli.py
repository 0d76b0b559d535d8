"""The command line as users run it: `interpose-dump` in a subprocess, real curl through it."""
from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import curl

ROOT = Path(__file__).resolve().parents[2]


class DumpProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.port = 0
        self.stderr_lines: list[str] = []

    @classmethod
    async def start(cls, *args: str, tmp: Path) -> DumpProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "interpose.cli.dump", "-p", "0", "--confdir", str(tmp / "conf"), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        )
        self = cls(proc)
        async with asyncio.timeout(15):
            while True:
                line = (await proc.stderr.readline()).decode()
                assert line, f"interpose-dump exited early: {self.stderr_lines}"
                self.stderr_lines.append(line)
                if line.startswith("proxy listening at "):
                    self.port = int(line.strip().rsplit(":", 1)[1])
                    return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stdout_line(self) -> str:
        async with asyncio.timeout(10):
            return (await self.proc.stdout.readline()).decode()

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        async with asyncio.timeout(10):
            return await self.proc.wait()


async def run_dump(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "interpose.cli.dump", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )
    async with asyncio.timeout(15):
        out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_prints_one_line_per_flow_and_exits_cleanly(tmp_path, origin):
    done_marker = tmp_path / "done"
    script = tmp_path / "mark_done.py"
    script.write_text(f"def done():\n    open({str(done_marker)!r}, 'w').write('done')\n")
    dump = await DumpProcess.start("-s", str(script), tmp=tmp_path)
    code, out, err = await curl("-x", dump.url, f"{origin.url}/json")
    assert code == 0, err
    line = await dump.stdout_line()
    assert line.startswith("127.0.0.1:")
    assert f"GET {origin.url}/json → 200 OK application/json" in line
    assert line.rstrip().endswith("ms")
    assert await dump.stop(signal.SIGTERM) == 0
    assert done_marker.read_text() == "done"


async def test_sigint_exits_zero(tmp_path):
    dump = await DumpProcess.start(tmp=tmp_path)
    assert await dump.stop(signal.SIGINT) == 0


async def test_quiet_prints_nothing_per_flow(tmp_path, origin):
    dump = await DumpProcess.start("-q", tmp=tmp_path)
    code, _, err = await curl("-x", dump.url, f"{origin.url}/a")
    assert code == 0, err
    assert await dump.stop() == 0
    assert await dump.proc.stdout.read() == b""


async def test_failed_flow_line_names_the_reason(tmp_path):
    dump = await DumpProcess.start(tmp=tmp_path)
    code, out, _ = await curl("-x", dump.url, "http://127.0.0.1:1/")
    assert b"connection refused" in out
    line = await dump.stdout_line()
    assert "GET http://127.0.0.1:1/ → ✗ connection refused" in line
    await dump.stop()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mode", "bogus"], "unknown mode 'bogus'"),
        (["--mode", "reverse:"], "mode reverse needs a URL"),
        (["-s", "/nonexistent/script.py"], "cannot read script /nonexistent/script.py"),
        (["--set", "no_such_option=1"], "unknown option 'no_such_option'"),
        (["--set", "listen_port=abc"], "listen_port expects a whole number"),
        (["--set", "ssl_insecure=maybe"], "expects true or false"),
        (["-i", "~c abc"], "~c expects a status code number"),
        (["-i", "(~u a"], "unbalanced parenthesis"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
)
async def test_bad_command_line_exits_2_with_one_clear_message(args, message):
    code, out, err = await run_dump("-p", "0", *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


async def test_port_in_use_is_a_clear_error(tmp_path):
    dump = await DumpProcess.start(tmp=tmp_path)
    code, _, err = await run_dump("-p", str(dump.port))
    assert code == 2
    assert "address already in use" in err.lower()
    assert "Traceback" not in err
    await dump.stop()


async def test_addon_option_set_on_the_command_line(tmp_path, origin):
    addon = str(ROOT / "addons" / "add_header.py")
    dump = await DumpProcess.start("-s", addon, "--set", "add_header_name=X-Via", "--set", "add_header_value=dump",
                                   tmp=tmp_path)
    code, out, err = await curl("-si", "-x", dump.url, f"{origin.url}/x")
    assert code == 0, err
    assert b"X-Via: dump" in out
    await dump.stop()


async def test_interpose_without_a_terminal_says_to_use_dump(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from tui.app import main; main()", "-p", "0", "--confdir", str(tmp_path),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )
    async with asyncio.timeout(15):
        out, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"needs a terminal; use interpose-dump" in err


async def test_a_script_imports_the_public_api_as_interpose(tmp_path, origin):
    """A user's script, loaded with -s, writes `from interpose import ctx, http` (and command) as the
    README says, and its hook runs on real traffic."""
    script = tmp_path / "tag.py"
    script.write_text(
        "from interpose import command, ctx, http\n"
        "from interpose.websocket import WebSocketFlow\n"
        "from interpose.tcp import TCPFlow\n"
        "\n"
        "def request(flow: http.HTTPFlow) -> None:\n"
        "    assert isinstance(flow, http.HTTPFlow) and WebSocketFlow and TCPFlow and command.command\n"
        "    flow.request.headers['x-tagged'] = ctx.options.listen_host\n"
    )
    dump = await DumpProcess.start("-s", str(script), tmp=tmp_path)
    try:
        code, _, err = await curl("-x", dump.url, f"{origin.url}/tagged")
        assert code == 0, err
        assert origin.received[-1].header("x-tagged") == "127.0.0.1"
    finally:
        assert await dump.stop() == 0
