"""Terminal escape injection through a real interpose-dump: a server's Content-Type and headers, a
client's Host (in the URL with --showhost, and in the headers), a method with CR/LF (from a flow file)
and an addon's log message are printed escaped, never as raw control bytes, and cannot split one
output line into two."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from interpose.http import HTTPFlow, Request, Response
from interpose.model.connection import Client, Server
from interpose.store.flowfile import FlowWriter
from tests.conftest import curl
from tests.integration.test_cli import DumpProcess
from tests.integration.test_hardening_decode import read_until

EVIL_BODY = b"<p>\x1b]0;pwned\x07hi\x1b[2J</p>\r\n\x1bc\rline2\x7f"
C0_C1 = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0))]


async def _evil_origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if b" /ok " in head:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
            else:
                writer.write(b"HTTP/1.1 200 OK\x1bc\r\nContent-Type: text/html\x1b[2J\x1bc\r\n"
                             b"X-Evil: a\x1b[31mred\r\nContent-Length: %d\r\n\r\n" % len(EVIL_BODY) + EVIL_BODY)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def evil_origin() -> AsyncIterator[int]:
    server = await asyncio.start_server(_evil_origin, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


def assert_printable(text: str) -> None:
    assert not [c for c in C0_C1 if c in text], repr(text)


async def normal_request_is_served(proxy: DumpProcess, port: int) -> None:
    code, out, err = await curl("-x", proxy.url, f"http://127.0.0.1:{port}/ok")
    assert (code, out) == (0, b"hello"), err
    line = await read_until(proxy.proc.stdout, "/ok")
    assert line.splitlines()[-1].startswith("127.0.0.1:")


async def test_dump_escapes_what_peers_send(tmp_path, evil_origin):
    script = tmp_path / "logger.py"
    script.write_text("from interpose import ctx\n"
                      "def response(flow):\n"
                      "    ctx.log.warn('saw ' + flow.response.headers['content-type'] + '\\n[error] forged')\n")
    # --showhost: the flow's line names the Host header's host, which is what the client controls
    proxy = await DumpProcess.start("--showhost", "--set", "flow_detail=3", "-s", str(script), tmp=tmp_path)
    try:
        r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
        w.write(b"GET http://127.0.0.1:%d/x HTTP/1.1\r\nHost: evil\x1bc\r\nX-Q: \x1b[1m\r\n\r\n" % evil_origin)
        await w.drain()
        async with asyncio.timeout(10):
            assert (await r.readuntil(EVIL_BODY)).endswith(EVIL_BODY)  # the client gets the bytes unchanged
        w.close()
        out = await read_until(proxy.proc.stdout, "line2")
        assert_printable(out.replace("\n", ""))
        first = out.splitlines()[0]
        assert first.startswith("127.0.0.1:") and "GET http://evil^[c:" in first and "text/html^[[2j^[c" in first
        assert "    Host: evil^[c" in out and "    Content-Type: text/html^[[2J^[c" in out
        assert "X-Evil: a^[[31mred" in out and "<p>^[]0;pwned^Ghi^[[2J</p>\n    ^[c^Mline2^?" in out
        log = await read_until(proxy.proc.stderr, "forged")
        assert "[warn] saw text/html^[[2J^[c\n    [error] forged" in log  # indented: not a log line of its own
        assert_printable(log.replace("\n", ""))
        await normal_request_is_served(proxy, evil_origin)
    finally:
        assert await proxy.stop() == 0


async def test_a_method_with_crlf_cannot_forge_a_dump_line(tmp_path, evil_origin):
    forged = "GET\r\n127.0.0.1:1 GET http://forged/ → 200 OK text/html 1b 1ms\r\n"
    f = HTTPFlow(Client(address=("127.0.0.1", 5555)), Server(address=("example.com", 80)), live=False)
    f.request = Request.make("GET", "http://example.com/\x1b[2J")
    f.request.method = forged
    f.request.headers["X-Line"] = "a\r\nX-Forged: 1"
    f.response = Response.make(200, b"ok", {"Content-Type": "text/plain\x1bc"})
    path = tmp_path / "evil.interpose"
    with FlowWriter(str(path)) as writer:
        writer.add(f)
    proxy = await DumpProcess.start("--set", "flow_detail=2", "-r", str(path), "--keepserving", tmp=tmp_path)
    try:
        out = await read_until(proxy.proc.stdout, "X-Line")
        lines = out.splitlines()
        assert len(lines) == 3, lines  # the flow's line, Host, X-Line: nothing forged
        assert lines[0].startswith("127.0.0.1:5555 GET^M^J127.0.0.1:1 GET http://forged/")
        assert "http://example.com/^[[2J" in lines[0]
        assert lines[2] == "    X-Line: a^M^JX-Forged: 1"
        assert_printable(out.replace("\n", ""))
        await normal_request_is_served(proxy, evil_origin)
    finally:
        assert await proxy.stop() == 0
