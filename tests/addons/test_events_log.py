"""events_log: `interpose-dump -s addons/events_log.py` logs every one of the 26 addon events, driven
by real traffic: curl (HTTP, and a request to a closed port), a websockets client through a CONNECT
tunnel (closed cleanly, then aborted by the server) and a raw TCP client through CONNECT (closed
cleanly, then reset by the server), a malformed request for a core log entry, and SIGTERM for done."""
from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import struct
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from interpose.runtime.hooks import ALL
from tests.addons import script
from tests.conftest import curl, raw_request
from tests.ws_servers import WsServer

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(\w+)\b")


class Dump:
    """interpose-dump in a subprocess; its stderr is read all along (it must never fill the pipe)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.port = 0
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, *args: str, tmp: Path) -> Dump:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "interpose.cli.dump", "-p", "0", "--confdir", str(tmp / "conf"), *args,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=ROOT)
        self = cls(proc)
        self._reader = asyncio.create_task(self._read())
        await self.wait_for(lambda: any(line.startswith("proxy listening at ") for line in self.lines), 15)
        listening = next(line for line in self.lines if line.startswith("proxy listening at "))
        self.port = int(listening.strip().rsplit(":", 1)[1])
        return self

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            async with self._changed:
                self.lines.append(line.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self.lines.append("<eof>")
            self._changed.notify_all()

    async def wait_for(self, pred, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: pred() or "<eof>" in self.lines)
        assert pred(), "\n".join(self.lines[-40:])

    def events(self) -> list[str]:
        """The event names the log lines start with (other lines, like core's own, left out)."""
        return [m.group(1) for line in self.lines if (m := LINE.match(line)) and m.group(1) in ALL]

    async def wait_event(self, name: str, count: int = 1, timeout: float = 10) -> None:
        await self.wait_for(lambda: self.events().count(name) >= count, timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            code = await self.proc.wait()
            if self._reader is not None:
                await self._reader
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


# -- raw TCP servers and a client through CONNECT --------------------------------------------------
async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def reset_after_first_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # RST, not FIN


async def tcp_via_proxy(proxy_port: int, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return reader, writer


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def abort_on_first_message(server: WsServer, ws: ServerConnection) -> None:
    server.received.put_nowait(await ws.recv())
    ws.transport.abort()


async def test_every_event_is_logged(tmp_path, origin):
    ws_echo = await WsServer().start()
    ws_abort = await WsServer(abort_on_first_message).start()
    tcp_echo = await asyncio.start_server(echo, "127.0.0.1", 0)
    tcp_reset = await asyncio.start_server(reset_after_first_read, "127.0.0.1", 0)
    dump = await Dump.start("-s", script("events_log"), tmp=tmp_path)
    try:
        # Lifecycle: load, start, configure come with the script; tick a moment later.
        await dump.wait_event("tick")

        # HTTP: requestheaders … response, with the connection events around them.
        code, out, err = await curl("-x", dump.url, f"{origin.url}/json")
        assert code == 0, err
        await dump.wait_event("response")
        # error: nothing listens on that port (the client gets a 502).
        code, out, err = await curl("-x", dump.url, f"http://127.0.0.1:{closed_port()}/nobody")
        assert b"connection refused" in out
        await dump.wait_event("error")

        # WebSocket through a CONNECT tunnel (http_connect), closed cleanly: websocket_end.
        async with connect(ws_echo.url, proxy=dump.url, ping_interval=None, open_timeout=10) as ws:
            await ws.send("hello")
            async with asyncio.timeout(10):
                assert await ws.recv() == "hello"
        await dump.wait_event("websocket_end")
        # The server vanishes without a close frame: websocket_error.
        async with connect(ws_abort.url, proxy=dump.url, ping_interval=None, open_timeout=10) as ws:
            await ws.send("boom")
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(10):
                    await ws.recv()
        await dump.wait_event("websocket_error")

        # Raw TCP through CONNECT (bytes that are not HTTP), closed cleanly: tcp_end.
        port = tcp_echo.sockets[0].getsockname()[1]
        reader, writer = await tcp_via_proxy(dump.port, port)
        writer.write(b"\x00\x01not http")
        async with asyncio.timeout(10):
            assert await reader.readexactly(10) == b"\x00\x01not http"
        writer.close()
        await dump.wait_event("tcp_end")
        # The server resets the connection: tcp_error.
        port = tcp_reset.sockets[0].getsockname()[1]
        reader, writer = await tcp_via_proxy(dump.port, port)
        writer.write(b"\x00\x01reset me")
        with contextlib.suppress(ConnectionError):
            async with asyncio.timeout(10):
                await reader.read(-1)
        writer.close()
        await dump.wait_event("tcp_error")

        # log: an entry another part of the proxy writes (core logs refused requests).
        await raw_request("127.0.0.1", dump.port, b"NOT A REQUEST\r\n\r\n", timeout=5)
        await dump.wait_event("log")
        await dump.wait_event("clientdisconnect", 7)
    finally:
        code = await dump.stop() if dump.proc.returncode is None else dump.proc.returncode
        dump.kill()
        for s in (tcp_echo, tcp_reset):
            s.close()
        await ws_echo.stop()
        await ws_abort.stop()
    assert code == 0
    assert not [line for line in dump.lines if line.startswith("[error]")], dump.lines
    seen = dump.events()
    missing = [name for name in ALL if name not in seen]
    assert missing == [], "\n".join(dump.lines)
    assert len(ALL) == 26
    # Order where it is fixed: lifecycle first, done last; a request's hooks in their order.
    assert seen[:3] == ["load", "start", "configure"]
    assert seen[-1] == "done"
    http = [e for e in seen if e in ("requestheaders", "request", "responseheaders", "response")]
    assert http[:4] == ["requestheaders", "request", "responseheaders", "response"]
    # tick is rate-limited: a run of a few seconds logs it once or twice, not dozens of times.
    assert 1 <= seen.count("tick") <= 2
    # Each line carries a summary of the arguments.
    lines = dump.lines
    assert any(line.startswith("request GET ") and "/json" in line for line in lines)
    assert any(line.startswith("websocket_message text client → server 5 bytes b'hello'") for line in lines), lines
    assert any(line.startswith("tcp_message client → server 10 bytes") for line in lines)
    assert any(line.startswith("next_layer tcp ") for line in lines)
    assert any(line.startswith("error GET ") and "connection refused" in line for line in lines)
    assert any(line.startswith("log [info]") for line in lines)


async def test_log_does_not_feed_on_itself(make_proxy):
    """Lines the addon writes are not echoed by its own `log` hook, so a quiet proxy stays quiet."""
    from interpose.runtime.log import LogEntry
    from tests.conftest import Recorder

    rec = Recorder(["log"])
    proxy = await make_proxy(rec, scripts=[script("events_log")])
    before = len(rec.calls)
    proxy.master.add_log("something happened", "warn")
    await asyncio.sleep(0.3)
    msgs = [a[0].msg for _, a in rec.calls[before:]]
    assert msgs[0] == "something happened"
    assert msgs.count("log [warn] 'something happened'") == 1
    assert not any(m.startswith("log [info]") for m in msgs)  # no echo of the echo
    assert isinstance(rec.calls[-1][1][0], LogEntry)
