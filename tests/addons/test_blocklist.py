"""blocklist: matching requests are answered by the proxy (or hung up on) and never reach the server."""
from __future__ import annotations

import asyncio
import os
import sys

import httpx
import pytest

from interpose.errors import OptionsError
from interpose.model.flow import KILLED_MSG
from tests.addons import client, script, start
from tests.conftest import Recorder, curl, raw_request

REPO = os.path.dirname(os.path.dirname(script("blocklist")))


async def test_matching_request_gets_the_status_and_the_server_is_not_contacted(make_proxy, origin):
    proxy = await start(make_proxy, "blocklist", "block_list=/~u /ads/404")
    async with client(proxy) as c:
        blocked = await c.get(f"{origin.url}/ads/banner.js")
        passed = await c.get(f"{origin.url}/content")
    assert blocked.status_code == 404
    assert blocked.content == b""
    assert passed.content == b"ok /content"
    assert [r.path for r in origin.received] == ["/content"]


async def test_any_separator_and_the_first_matching_rule_wins(make_proxy, origin):
    proxy = await start(make_proxy, "blocklist", "block_list=|~u /a|403", "block_list=:~u /a/b:418",
                        "block_list=!~m POST!405")
    assert proxy.options.block_list == ["|~u /a|403", ":~u /a/b:418", "!~m POST!405"]
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/a/b")).status_code == 403
        assert (await c.post(f"{origin.url}/x", content=b"data")).status_code == 405
        assert (await c.get(f"{origin.url}/x")).status_code == 200
    assert [r.path for r in origin.received] == ["/x"]


async def test_a_streamed_upload_is_refused_before_it_is_sent(make_proxy, origin):
    """Rules act at requestheaders: a body big enough to stream never goes out."""
    proxy = await start(make_proxy, "blocklist", "block_list=/~u /upload/403", stream_large_bodies="1k")
    async with client(proxy) as c:
        r = await c.post(f"{origin.url}/upload", content=b"x" * 100_000)
    assert r.status_code == 403
    assert origin.received == []


async def test_a_rule_reading_the_body_is_decided_once_the_body_is_in(make_proxy, origin):
    proxy = await start(make_proxy, "blocklist", "block_list=/~bq secret/403")
    async with client(proxy) as c:
        assert (await c.post(f"{origin.url}/form", content=b"a secret value")).status_code == 403
        assert (await c.post(f"{origin.url}/form", content=b"harmless")).status_code == 200
    assert [r.body for r in origin.received] == [b"harmless"]


async def test_444_hangs_up_without_an_answer(make_proxy, origin):
    rec = Recorder(["error"])
    proxy = await start(make_proxy, "blocklist", "block_list=/~u /tracker/444", addons=(rec,))
    code, out, err = await curl("-x", proxy.url, f"{origin.url}/tracker")
    assert code == 52, err  # curl: "Empty reply from server"
    assert out == b""
    got = await raw_request(proxy.host, proxy.port,
                            f"GET {origin.url}/tracker HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\n\r\n".encode())
    assert got == b""  # closed, nothing written
    async with client(proxy) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get(f"{origin.url}/tracker")
        assert (await c.get(f"{origin.url}/fine")).status_code == 200  # the proxy keeps serving
    assert [r.path for r in origin.received] == ["/fine"]
    await rec.wait_for("error", count=3)
    flows = [args[0] for _, args in rec.calls]
    assert all(f.error.msg == KILLED_MSG and f.response is None and f.metadata["blocklisted"] for f in flows)


async def test_status_without_a_body_is_answered_well(make_proxy, origin):
    proxy = await start(make_proxy, "blocklist", "block_list=/~u /nothing/204")
    async with client(proxy) as c:
        r1 = await c.get(f"{origin.url}/nothing")
        r2 = await c.get(f"{origin.url}/something")  # same connection: the 204 left it usable
    assert (r1.status_code, r1.content) == (204, b"")
    assert r2.status_code == 200


@pytest.mark.parametrize("rule, why", [
    ("/~u (/403", "bad filter"),
    ("/~u x/abc", "STATUS must be a status code"),
    ("/~u x/999", "STATUS must be a status code"),
    ("/~u x/", "STATUS must be a status code"),
    ("/404", "expected /FILTER/STATUS"),
    ("//404", "the filter is empty"),
    ("x", "expected /FILTER/STATUS"),
    ("a~u x a404", "separator"),
])
async def test_bad_rule_is_refused_and_the_old_rules_stay(make_proxy, origin, rule, why):
    proxy = await start(make_proxy, "blocklist", "block_list=/~u /old/403")
    with pytest.raises(OptionsError) as exc:
        proxy.options.set("block_list=/~u /fine/401", f"block_list={rule}")
    msg = str(exc.value)
    assert msg.startswith("block_list: invalid rule ") and repr(rule) in msg and why in msg
    assert proxy.options.block_list == ["/~u /old/403"]
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/old")).status_code == 403
        assert (await c.get(f"{origin.url}/fine")).status_code == 200


async def test_off_when_the_list_is_empty(make_proxy, origin):
    proxy = await start(make_proxy, "blocklist")
    assert proxy.options.block_list == []
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/ads")).status_code == 200
        proxy.options.set("block_list=/~u /ads/404")
        assert (await c.get(f"{origin.url}/ads")).status_code == 404
        proxy.options.set("block_list=")  # an empty --set clears a list option
        assert proxy.options.block_list == []
        assert (await c.get(f"{origin.url}/ads")).status_code == 200
    assert len(origin.received) == 2


async def run_dump(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    """Start `interpose-dump` (this checkout's) and return it with its `listen` address."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "interpose.cli.dump", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
    )
    assert proc.stderr is not None
    async with asyncio.timeout(20):
        while line := (await proc.stderr.readline()).decode():
            if line.startswith("proxy listening at "):
                return proc, line.split()[-1]
    await proc.wait()
    return proc, ""


async def test_command_line_set_before_the_script_is_loaded(origin, tmp_path):
    """`--set` waits for the script to declare the option, as on the real command line."""
    proc, address = await run_dump("-q", "-p", "0", "--confdir", str(tmp_path), "-s", script("blocklist"),
                                   "--set", "block_list=/~u /ads/404", "--set", "block_list=|~u /t|444")
    try:
        assert address
        code, out, err = await curl("-o", "/dev/null", "-w", "%{http_code}", "-x", f"http://{address}",
                                    f"{origin.url}/ads/x")
        assert (code, out) == (0, b"404"), err
        code, _, _ = await curl("-x", f"http://{address}", f"{origin.url}/t")
        assert code == 52
        assert origin.received == []
    finally:
        proc.terminate()
        await proc.wait()


async def test_command_line_bad_rule_exits_2_with_the_reason(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "interpose.cli.dump", "-p", "0", "--confdir", str(tmp_path), "-s", script("blocklist"),
        "--set", "block_list=/~u x/abc", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    async with asyncio.timeout(20):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    assert err.decode().strip().splitlines()[-1] == (
        "interpose-dump: error: block_list: invalid rule '/~u x/abc': "
        "STATUS must be a status code from 200 to 599 (444 hangs up), not 'abc'"
    )
