"""Sessions for real: interpose-dump recording with --session while curl and httpx go through it, reopening,
`-r SESSION` (passing flows through the addons, and following a session another process records), kill -9
under load, files that are not sessions, a full disk, and addon metadata across a reopen."""
from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time

import httpx
import pytest

from interpose.store.session import Session
from tests.conftest import curl
from tests.integration.test_cli import DumpProcess, run_dump


def flows_in(path) -> list:
    s = Session.open(str(path), readonly=True)
    try:
        return list(s.flows())
    finally:
        s.close()


async def test_dump_records_a_session_and_r_passes_it_through_the_addons(tmp_path, origin):
    path = tmp_path / "work.session"
    dump = await DumpProcess.start("--session", str(path), tmp=tmp_path)
    for p in ("/a", "/json"):
        code, _, err = await curl("-x", dump.url, f"{origin.url}{p}")
        assert code == 0, err
        await dump.stdout_line()
    code, _, _ = await curl("-x", dump.url, "http://127.0.0.1:1/")
    await dump.stdout_line()
    assert await dump.stop(signal.SIGTERM) == 0
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    recorded = flows_in(path)
    assert [f.request.path for f in recorded] == ["/a", "/json", "/"]
    assert recorded[1].response.status_code == 200 and recorded[1].response.content
    assert recorded[2].error is not None

    code, out, err = await run_dump("-p", "0", "--confdir", str(tmp_path / "conf"), "-r", str(path))
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3 and f"GET {origin.url}/a → 200 OK" in lines[0]
    assert "connection refused" in lines[2] and "Traceback" not in err
    # Reopening it records into it again; the flows keep their ids.
    dump = await DumpProcess.start("--session", str(path), tmp=tmp_path)
    code, _, err = await curl("-x", dump.url, f"{origin.url}/b")
    await dump.stdout_line()
    assert await dump.stop(signal.SIGTERM) == 0
    again = flows_in(path)
    assert [f.id for f in again[:3]] == [f.id for f in recorded] and again[3].request.path == "/b"


async def test_r_follows_a_session_another_process_records(tmp_path, origin):
    path = tmp_path / "live.session"
    recorder = await DumpProcess.start("--session", str(path), tmp=tmp_path)
    code, _, err = await curl("-x", recorder.url, f"{origin.url}/before")
    assert code == 0, err
    await recorder.stdout_line()
    follower = await DumpProcess.start("-r", str(path), "--keepserving", tmp=tmp_path)
    try:
        assert f"{origin.url}/before" in await follower.stdout_line()
        for p in ("/live1", "/live2"):
            code, _, err = await curl("-x", recorder.url, f"{origin.url}{p}")
            assert code == 0, err
            t0 = time.monotonic()
            assert f"{origin.url}{p}" in await follower.stdout_line()
            assert time.monotonic() - t0 < 3  # "within a second", with room for a loaded machine
    finally:
        assert await follower.stop() == 0
        assert await recorder.stop() == 0


async def test_kill_9_under_load_loses_at_most_the_last_second(tmp_path, origin):
    path = tmp_path / "killed.session"
    dump = await DumpProcess.start("-q", "--session", str(path), tmp=tmp_path)
    finished: dict[str, float] = {}
    stop = asyncio.Event()

    async def client(n: int) -> None:
        async with httpx.AsyncClient(proxy=dump.url, timeout=10) as c:
            i = 0
            while not stop.is_set():
                try:
                    r = await c.get(f"{origin.url}/bytes/2000?c={n}&i={i}")
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    finished[f"/bytes/2000?c={n}&i={i}"] = time.monotonic()
                i += 1

    tasks = [asyncio.ensure_future(client(n)) for n in range(4)]
    started = time.monotonic()
    async with asyncio.timeout(60):  # load for 3 s at least, so that some flows finished over a second ago
        while len(finished) < 400 or time.monotonic() - started < 3:
            await asyncio.sleep(0.05)
    killed_at = time.monotonic()
    dump.proc.send_signal(signal.SIGKILL)
    stop.set()
    await dump.proc.wait()
    await asyncio.gather(*tasks, return_exceptions=True)
    recorded = {f.request.path for f in flows_in(path)}
    must = {p for p, t in finished.items() if t < killed_at - 1.0}
    assert must and must <= recorded, f"{len(must - recorded)} flows finished over a second before the kill are missing"
    assert len(recorded) > len(must) // 2


@pytest.mark.parametrize("kind", ["text", "foreign", "damaged"])
async def test_a_file_that_is_not_a_usable_session_exits_2_untouched(tmp_path, kind):
    path = tmp_path / "thing.session"
    if kind == "text":
        path.write_bytes(b"my notes, not a session\n")
        expect = "not an SQLite database"
    elif kind == "foreign":
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE moz_places (url TEXT)")
        db.commit()
        db.close()
        expect = "another application"
    else:
        s = Session.open(str(path))
        s.close()
        data = bytearray(path.read_bytes())
        data[100:4096] = b"\xee" * (4096 - 100)  # the schema page
        path.write_bytes(bytes(data))
        expect = "damaged"
    before = path.read_bytes()
    for flag in ("--session", "-r"):
        code, _, err = await run_dump("-p", "0", "--confdir", str(tmp_path / "conf"), flag, str(path))
        assert code == 2, err
        wanted = "not an interpose flow file" if kind == "text" and flag == "-r" else expect  # -r reads many formats
        assert wanted in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
    assert path.read_bytes() == before


async def test_a_full_disk_stops_recording_visibly_and_the_proxy_carries_on(tmp_path, origin):
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.decode().strip()}")
    try:
        dump = await DumpProcess.start("--session", str(mnt / "full.session"), tmp=tmp_path)
        for i in range(8):
            code, _, err = await curl("-x", dump.url, "-o", "/dev/null", f"{origin.url}/bytes/{600_000}?{i}")
            assert code == 0, err
        async with asyncio.timeout(10):
            while not any("recording into" in ln and "stopped" in ln for ln in dump.stderr_lines):
                dump.stderr_lines.append((await dump.proc.stderr.readline()).decode())
        code, out, err = await curl("-x", dump.url, f"{origin.url}/json")
        assert code == 0 and out, err
        assert await dump.stop() == 0
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


async def test_metadata_an_addon_stores_is_there_after_a_reopen(tmp_path, origin):
    script = tmp_path / "tag.py"
    script.write_text("def response(flow):\n    flow.metadata['tag'] = {'seen': flow.request.path}\n"
                      "    flow.metadata['handle'] = object()\n")
    path = tmp_path / "meta.session"
    dump = await DumpProcess.start("-s", str(script), "--session", str(path), tmp=tmp_path)
    code, _, err = await curl("-x", dump.url, f"{origin.url}/json")
    assert code == 0, err
    await dump.stdout_line()
    assert await dump.stop() == 0
    (flow,) = flows_in(path)
    assert flow.metadata["tag"] == {"seen": "/json"} and "handle" not in flow.metadata


async def test_options_are_restored_on_reopen_and_flags_given_now_win(make_proxy, tmp_path):
    path = str(tmp_path / "opts.session")
    p = await make_proxy(session=path)
    p.master.options.update(connect_timeout_s=3.0, read_timeout_s=7.0)
    await p.master.shutdown()
    p2 = await make_proxy(session=path, read_timeout_s=9.0)
    assert p2.master.options.connect_timeout_s == 3.0
    assert p2.master.options.read_timeout_s == 9.0


async def test_r_and_session_naming_one_file_is_refused(tmp_path):
    code, _, err = await run_dump("-p", "0", "-r", str(tmp_path / "s"), "--session", str(tmp_path / "s"))
    assert code == 2 and "-r and --session name the same file" in err

