"""Hardening of the WebSocket and TCP relays: bounded memory for huge messages and long flows, holds
that notice a peer leaving, hook order, and `next_layer` seeing the CONNECT target.

Real clients and servers on loopback: the `websockets` package, wsproto over raw sockets, asyncio TCP.
The floods run against an `interpose-dump` subprocess whose peak RSS (VmHWM) is checked. Every test
ends by checking that the proxy still answers a normal request.
"""
from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import sys
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request
from wsproto.extensions import PerMessageDeflate

from interpose.http import HTTPFlow
from interpose.runtime.bus import FlowIntercepted, FlowResumed
from interpose.tcp import TCPFlow
from interpose.websocket import WebSocketFlow
from tests.conftest import Recorder, raw_request
from tests.integration.test_tcp import TcpServer, read_exactly, tcp_through_proxy
from tests.integration.test_websocket import next_held, recv, wait_closed, ws_client
from tests.servers import Origin
from tests.tls_servers import TestCA, start_h1_origin
from tests.ws_servers import WsServer

ROOT = Path(__file__).resolve().parents[2]
MiB = 2**20
RSS_LIMIT_KB = 200 * 1024


# -- helpers ----------------------------------------------------------------------------------------
async def serves_normally(host: str, port: int, origin: Origin, path: str = "/after") -> None:
    """A fresh client gets a normal answer through the proxy."""
    data = await raw_request(host, port, f"GET {origin.url}{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                             .encode())
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(f"ok {path}".encode()), data


def flows(rec: Recorder, hook: str) -> list[Any]:
    return [args[0] for name, args in rec.calls if name == hook]


class Dump:
    """`interpose-dump` in a subprocess, for the floods: its peak memory is what is checked."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.host, self.port = "127.0.0.1", port

    def peak_rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")


@pytest.fixture
async def dump(tmp_path: Path) -> AsyncIterator[Dump]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "interpose.cli.dump", "-p", "0", "--confdir", str(tmp_path / "conf"), "-q",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=ROOT)
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(20):
            while not (line := (await proc.stderr.readline()).decode()).startswith("proxy listening at "):
                assert line, "interpose-dump exited early"
        yield Dump(proc, int(line.strip().rsplit(":", 1)[1]))
    finally:
        if proc.returncode is None:
            proc.terminate()
            async with asyncio.timeout(15):
                await proc.wait()
    err = (await proc.stderr.read()).decode()
    assert "internal error" not in err and "Traceback" not in err, err


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    o = await Origin().start()
    yield o
    await o.stop()


async def raw_ws(host: str, port: int, target_port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter,
                                                                   WSConnection]:
    """A wsproto client over a raw socket: CONNECT through the proxy, then the WebSocket handshake."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"CONNECT 127.0.0.1:{target_port} HTTP/1.1\r\nHost: 127.0.0.1:{target_port}\r\n\r\n".encode())
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    conn = WSConnection(ConnectionType.CLIENT)
    writer.write(conn.send(Request(host=f"127.0.0.1:{target_port}", target="/")))
    async with asyncio.timeout(10):
        while True:
            data = await reader.read(65536)
            assert data, "the proxy hung up during the handshake"
            conn.receive_data(data)
            if any(isinstance(e, AcceptConnection) for e in conn.events()):
                return reader, writer, conn


def reset(writer: asyncio.StreamWriter) -> None:
    """Leave with a RST, not a FIN."""
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# == 1. WebSocket message size =========================================================================
async def test_websocket_message_over_the_limit_closes_both_sides_with_1009(strict_make_proxy, origin):
    server = await WsServer().start()
    rec = Recorder()
    proxy = await strict_make_proxy(rec, websocket_max_message_size="1m")
    try:
        async with ws_client(proxy, server.url, max_size=None) as ws:
            srv = await server.next_connection()
            await ws.send(b"x" * (MiB - 10))  # under the limit: passes, and is echoed
            assert await recv(ws) == b"x" * (MiB - 10)
            with pytest.raises(ConnectionClosed):
                await ws.send(iter([b"y" * (256 * 1024)] * 16))  # 4 MiB in fragments
                await recv(ws)
            await wait_closed(ws)
            await wait_closed(srv)
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1009
            assert srv.protocol.close_rcvd is not None and srv.protocol.close_rcvd.code == 1009
    finally:
        await server.stop()
    await rec.wait_for("websocket_error")
    (flow,) = flows(rec, "websocket_error")
    assert isinstance(flow, WebSocketFlow) and "websocket_max_message_size" in flow.error.msg, flow.error
    assert flow.close_code == 1009
    assert [len(m.content) for m in flow.messages] == [MiB - 10, MiB - 10]  # the big one was never a message
    assert "websocket_end" not in rec.names
    await serves_normally(proxy.host, proxy.port, origin)


async def test_websocket_fragment_flood_keeps_memory_bounded(dump, origin):
    """256 fragments of 1 MiB without FIN (default limit 16m): closed with 1009, RSS stays low."""
    server = await WsServer().start()
    try:
        reader, writer, conn = await raw_ws(dump.host, dump.port, server.port)
        chunk = b"z" * MiB
        first = conn.send(BytesMessage(data=chunk, message_finished=False))
        more = conn.send(BytesMessage(data=chunk, message_finished=False))  # a continuation frame
        try:
            writer.write(first)
            for _ in range(255):
                writer.write(more)
                await writer.drain()
        except ConnectionError:
            pass  # the proxy may hang up once it has closed with 1009 and the server has gone
        got = b""
        try:
            async with asyncio.timeout(10):
                while data := await reader.read(65536):
                    got += data
        except ConnectionError:
            pass
        writer.close()
        # The proxy's close frame (if it arrived before the hang-up) says 1009.
        if got:
            conn.receive_data(got)
            assert any(getattr(e, "code", None) == 1009 for e in conn.events())
        srv = await server.next_connection()
        await wait_closed(srv)
        assert srv.protocol.close_rcvd is not None and srv.protocol.close_rcvd.code == 1009
        assert server.received.empty()  # nothing of it was forwarded
    finally:
        await server.stop()
    assert dump.peak_rss_kb() < RSS_LIMIT_KB, dump.peak_rss_kb()
    await serves_normally(dump.host, dump.port, origin)


class MuteWsServer:
    """A WebSocket server that accepts the handshake, then reads and never answers anything, not even a close."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def start(self) -> MuteWsServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = WSConnection(ConnectionType.SERVER)
        try:
            while data := await reader.read(65536):
                conn.receive_data(data)
                for event in conn.events():
                    if isinstance(event, Request):
                        writer.write(conn.send(AcceptConnection()))
        except ConnectionError:
            pass
        self.closed.set()
        writer.close()

    async def stop(self) -> None:
        self.server.close()


async def test_websocket_peers_that_never_answer_the_1009_are_hung_up_on(strict_make_proxy, origin):
    """After a 1009, peers that keep their sockets open and never close back are read for CLOSE_TIMEOUT_S
    only, then the proxy hangs up on both: no connection is held open for ever."""
    from interpose.proxy.layers.websocket import CLOSE_TIMEOUT_S

    server = await MuteWsServer().start()
    rec = Recorder(["websocket_error"])
    proxy = await strict_make_proxy(rec, websocket_max_message_size="64k")
    try:
        reader, writer, conn = await raw_ws(proxy.host, proxy.port, server.port)
        writer.write(conn.send(BytesMessage(data=b"q" * 100_000, message_finished=False)))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        got = b""
        async with asyncio.timeout(CLOSE_TIMEOUT_S + 10):
            while data := await reader.read(65536):  # never answers the close frame it is sent
                got += data
            await server.closed.wait()
        elapsed = loop.time() - t0
        conn.receive_data(got)
        assert any(getattr(e, "code", None) == 1009 for e in conn.events())
        assert CLOSE_TIMEOUT_S - 1 < elapsed < CLOSE_TIMEOUT_S + 10, elapsed
        writer.close()
    finally:
        await server.stop()
    await rec.wait_for("websocket_error")
    await serves_normally(proxy.host, proxy.port, origin)


def deflated_zeros_frame(inflated: int) -> bytes:
    """One masked binary frame, compressed (RSV1, permessage-deflate), that inflates to `inflated` zero bytes:
    a deflate bomb of about 1/1000 its size. The mask key is 0 (valid, and the payload stays as is)."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(MiB)
    payload = b"".join(z.compress(block) for _ in range(inflated // MiB)) + z.flush(zlib.Z_SYNC_FLUSH)
    payload = payload[:-4] if payload.endswith(b"\x00\x00\xff\xff") else payload
    return b"\xc2" + bytes([0x80 | 127]) + struct.pack("!Q", len(payload)) + bytes(4) + payload


async def test_websocket_deflate_bomb_is_closed_with_1009_in_bounded_memory(dump, origin):
    """A 1 GiB message compressed into ~1 MiB (permessage-deflate): the proxy inflates it a few KiB of input
    at a time, closes with 1009 at websocket_max_message_size (16m) and its peak RSS stays low."""
    server = await WsServer().start()
    try:
        reader, writer = await asyncio.open_connection(dump.host, dump.port)
        writer.write(f"CONNECT 127.0.0.1:{server.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        async with asyncio.timeout(10):
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        conn = WSConnection(ConnectionType.CLIENT)
        writer.write(conn.send(Request(host="x", target="/", extensions=[PerMessageDeflate()])))
        async with asyncio.timeout(10):
            accepted = None
            while accepted is None:
                data = await reader.read(65536)
                assert data, "the proxy hung up during the handshake"
                conn.receive_data(data)
                accepted = next((e for e in conn.events() if isinstance(e, AcceptConnection)), None)
        assert any(isinstance(x, PerMessageDeflate) for x in accepted.extensions), accepted
        try:
            writer.write(deflated_zeros_frame(1024 * MiB))
            await writer.drain()
        except ConnectionError:
            pass
        got = b""
        try:
            async with asyncio.timeout(20):
                while data := await reader.read(65536):
                    got += data
        except ConnectionError:
            pass
        writer.close()
        conn.receive_data(got)
        assert any(getattr(e, "code", None) == 1009 for e in conn.events()), got[:100]
        assert server.received.empty()
    finally:
        await server.stop()
    assert dump.peak_rss_kb() < RSS_LIMIT_KB, dump.peak_rss_kb()
    print(f"peak RSS {dump.peak_rss_kb()} KiB")
    await serves_normally(dump.host, dump.port, origin)


# == 2. bytes kept per flow ============================================================================
async def test_tcp_flow_keeps_at_most_max_message_bytes(strict_make_proxy, origin):
    server = await TcpServer().start()
    rec = Recorder()
    proxy = await strict_make_proxy(rec, max_message_bytes="1m")
    try:
        reader, writer = await tcp_through_proxy(proxy, server.port)
        total = 0
        for i in range(64):
            data = bytes([i]) * 65536
            writer.write(data)
            assert await read_exactly(reader, len(data)) == data
            total += len(data)
        writer.close()
        await rec.wait_for("tcp_end")
    finally:
        await server.stop()
    (flow,) = flows(rec, "tcp_end")
    assert isinstance(flow, TCPFlow)
    assert flow.bytes_from_client == flow.bytes_from_server == total
    assert flow.message_count == len(flows(rec, "tcp_message"))
    kept = sum(len(m.content) for m in flow.messages)
    assert kept == flow.kept_bytes and kept <= MiB
    assert flow.messages[-1].content[-1:] == bytes([63])  # the newest are kept
    assert [m.seq for m in flow.messages] == list(range(flow.message_count - len(flow.messages) + 1,
                                                        flow.message_count + 1))
    await serves_normally(proxy.host, proxy.port, origin)


async def test_websocket_flow_keeps_at_most_max_message_bytes(strict_make_proxy, origin):
    server = await WsServer().start()
    rec = Recorder()
    proxy = await strict_make_proxy(rec, max_message_bytes="1m")
    try:
        async with ws_client(proxy, server.url) as ws:
            for i in range(40):
                await ws.send(bytes([i]) * 100_000)
                assert await recv(ws) == bytes([i]) * 100_000
    finally:
        await server.stop()
    await rec.wait_for("websocket_end")
    (flow,) = flows(rec, "websocket_end")
    assert flow.message_count == 80 and flow.bytes_from_client == flow.bytes_from_server == 4_000_000
    kept = sum(len(m.content) for m in flow.messages)
    assert kept == flow.kept_bytes and kept <= MiB and len(flow.messages) == 10
    assert flow.messages[-1].content == bytes([39]) * 100_000
    await serves_normally(proxy.host, proxy.port, origin)


async def test_tcp_flood_keeps_memory_bounded(dump, origin):
    """256 MiB relayed as raw TCP through interpose-dump (default max_message_bytes): RSS stays low."""
    done = asyncio.Event()
    counted = 0

    async def sink(server: TcpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal counted
        while data := await reader.read(1 << 20):
            counted += len(data)
        done.set()

    server = await TcpServer(sink).start()
    try:
        reader, writer = await asyncio.open_connection(dump.host, dump.port)
        writer.write(f"CONNECT 127.0.0.1:{server.port} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        async with asyncio.timeout(10):
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        block = b"\x00\x01" * (512 * 1024)  # 1 MiB, not HTTP and not TLS
        async with asyncio.timeout(120):
            for _ in range(256):
                writer.write(block)
                await writer.drain()
            writer.write_eof()
            await done.wait()
        writer.close()
        assert counted == 256 * MiB
    finally:
        await server.stop()
    assert dump.peak_rss_kb() < RSS_LIMIT_KB, dump.peak_rss_kb()
    await serves_normally(dump.host, dump.port, origin)


# == 3. a held message notices the peer leaving ========================================================
async def test_held_websocket_message_ends_when_the_client_closes(strict_make_proxy, origin):
    """The server's message is held; the client closes. The hold ends by itself, nothing is sent into
    wsproto's closing state, and the flow ends with websocket_error saying why."""
    server = await WsServer(echo=False).start()
    rec = Recorder()
    proxy = await strict_make_proxy(rec, intercept="~websocket", intercept_at="messages")
    bus = proxy.master.bus.subscribe()
    try:
        async with ws_client(proxy, server.url) as ws:
            srv = await server.next_connection()
            await srv.send("to the client")
            held = await next_held(bus)
            assert (held.from_client, held.text) == (False, "to the client")
            await ws.close()
            await wait_closed(srv)
        await rec.wait_for("websocket_error")
        async with asyncio.timeout(10):
            while not isinstance(event := await bus.get(), FlowResumed) or event.message is not held:
                pass
    finally:
        proxy.master.bus.unsubscribe(bus)
        await server.stop()
    (flow,) = flows(rec, "websocket_error")
    assert flow.error.msg == "client went away while a message was held (it was not sent)"
    assert held.dropped and not held.intercepted and flow.held_messages == []
    held.resume()  # releasing it now is harmless
    assert "websocket_end" not in rec.names
    await serves_normally(proxy.host, proxy.port, origin)


async def test_held_websocket_message_ends_when_its_sender_hangs_up(strict_make_proxy, origin):
    server = await WsServer(echo=False).start()
    rec = Recorder()
    proxy = await strict_make_proxy(rec, intercept="~websocket", intercept_at="messages")
    bus = proxy.master.bus.subscribe()
    try:
        reader, writer, conn = await raw_ws(proxy.host, proxy.port, server.port)
        srv = await server.next_connection()
        writer.write(conn.send(BytesMessage(data=b"held")))
        held = await next_held(bus)
        writer.close()  # gone without a close frame
        await rec.wait_for("websocket_error")
        await wait_closed(srv)
        assert srv.protocol.close_rcvd is not None and srv.protocol.close_rcvd.code == 1001
    finally:
        proxy.master.bus.unsubscribe(bus)
        await server.stop()
    (flow,) = flows(rec, "websocket_error")
    assert flow.error.msg == "client went away while a message was held (it was not sent)"
    assert held.dropped and not held.intercepted
    assert server.received.empty()
    await serves_normally(proxy.host, proxy.port, origin)


async def test_held_tcp_chunk_ends_when_the_client_resets(strict_make_proxy, origin):
    server = await TcpServer().start()
    rec = Recorder()
    proxy = await strict_make_proxy(rec, intercept="~tcp", intercept_at="messages")
    bus = proxy.master.bus.subscribe()
    try:
        reader, writer = await tcp_through_proxy(proxy, server.port)
        writer.write(b"\x00held")
        async with asyncio.timeout(10):
            while not isinstance(event := await bus.get(), FlowIntercepted) or event.message is None:
                pass
        held = event.message
        reset(writer)
        await rec.wait_for("tcp_error")
        await rec.wait_for("serverdisconnect")
    finally:
        proxy.master.bus.unsubscribe(bus)
        await server.stop()
    (flow,) = flows(rec, "tcp_error")
    assert flow.error.msg == "client went away while a message was held (it was not sent)"
    assert held.dropped and not held.intercepted
    assert bytes(server.received) == b""
    await serves_normally(proxy.host, proxy.port, origin)


# == 4. TCP hook order ==================================================================================
async def test_tcp_end_fires_before_serverdisconnect(strict_make_proxy, origin):
    server = await TcpServer().start()
    rec = Recorder(["tcp_end", "serverdisconnect", "clientdisconnect"])
    proxy = await strict_make_proxy(rec)
    try:
        reader, writer = await tcp_through_proxy(proxy, server.port)
        writer.write(b"\x00ping")
        assert await read_exactly(reader, 5) == b"\x00ping"
        writer.close()
        await rec.wait_for("clientdisconnect")
    finally:
        await server.stop()
    assert rec.names == ["tcp_end", "serverdisconnect", "clientdisconnect"]
    await serves_normally(proxy.host, proxy.port, origin)


# == 5. next_layer sees the CONNECT target ==============================================================
class PerDestination:
    """Relays one destination as raw TCP and leaves the others to TLS interception."""

    def __init__(self, tcp_port: int) -> None:
        self.tcp_port = tcp_port
        self.seen: list[tuple[str, Any, Any]] = []

    def next_layer(self, layer: Any) -> None:
        server = layer.server_conn
        self.seen.append((layer.kind, server.address if server else None,
                          server.timestamp_tcp_setup if server else "no server_conn"))
        if layer.kind == "tls" and server is not None and server.address[1] == self.tcp_port:
            layer.replace("tcp")


async def https_get(proxy: Any, port: int, context: ssl.SSLContext, path: str) -> bytes:
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    try:
        writer.write(f"CONNECT localhost:{port} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
        async with asyncio.timeout(10):
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            await writer.start_tls(context, server_hostname="localhost")
            writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n".encode())
            return await reader.read(-1)
    finally:
        writer.close()


async def test_next_layer_in_a_tunnel_sees_the_target_and_can_choose_tcp(strict_make_proxy, test_ca: TestCA,
                                                                           tmp_path, origin):
    relayed = await start_h1_origin(test_ca)
    intercepted = await start_h1_origin(test_ca)
    chooser = PerDestination(relayed.port)
    rec = Recorder(["tcp_start", "tcp_end", "response"])
    proxy = await strict_make_proxy(chooser, rec, ssl_insecure=True)
    try:
        # Relayed as TCP: the client talks TLS with the origin itself (it trusts the origin's CA).
        body = await https_get(proxy, relayed.port, test_ca.client_context(), "/direct")
        assert body.startswith(b"HTTP/1.1 200") and body.endswith(b"ok /direct"), body
        # Intercepted: the client must trust the proxy's CA.
        proxy_ca = ssl.create_default_context(cafile=str(tmp_path / "confdir" / "interpose-ca-cert.pem"))
        body = await https_get(proxy, intercepted.port, proxy_ca, "/seen")
        assert body.startswith(b"HTTP/1.1 200") and body.endswith(b"ok /seen"), body
        await rec.wait_for("tcp_end")
        await rec.wait_for("response")
    finally:
        await relayed.stop()
        await intercepted.stop()
    tunnel_layers = [s for s in chooser.seen if s[0] != "http1" or s[1] is not None]
    assert ("tls", ("localhost", relayed.port), None) in tunnel_layers
    assert ("tls", ("localhost", intercepted.port), None) in tunnel_layers
    (tcp,) = flows(rec, "tcp_start")
    assert isinstance(tcp, TCPFlow) and tcp.server_conn.address == ("localhost", relayed.port)
    (http,) = flows(rec, "response")
    assert isinstance(http, HTTPFlow) and http.request.path == "/seen" and http.request.port == intercepted.port
    await serves_normally(proxy.host, proxy.port, origin)


async def test_a_held_message_pushed_out_by_max_bytes_can_still_be_resumed():
    from interpose.model.connection import Client, Server
    from interpose.tcp import TCPMessage

    flow = TCPFlow(Client(address=("127.0.0.1", 1)), Server(address=("127.0.0.1", 2)), max_bytes=100)
    held = TCPMessage(True, b"h" * 60)
    flow.add_message(held)
    flow.hooking = held
    flow.intercept()
    flow.hooking = None
    for _ in range(5):
        flow.add_message(TCPMessage(False, b"s" * 60))
    assert held not in flow.messages and len(flow.messages) == 1 and flow.kept_bytes == 60
    assert flow.held_messages == [held] and flow.message_count == 6 and flow.bytes_from_server == 300
    flow.resume()
    assert not held.intercepted and flow.held_messages == []


async def test_held_client_message_ends_when_the_server_closes(strict_make_proxy, origin):
    server = await WsServer(echo=False).start()
    rec = Recorder()
    proxy = await strict_make_proxy(rec, intercept="~websocket", intercept_at="messages")
    bus = proxy.master.bus.subscribe()
    try:
        async with ws_client(proxy, server.url) as ws:
            srv = await server.next_connection()
            await ws.send("to the server")
            held = await next_held(bus)
            await srv.close()
            await wait_closed(ws)
            await wait_closed(srv)
        await rec.wait_for("websocket_error")
    finally:
        proxy.master.bus.unsubscribe(bus)
        await server.stop()
    (flow,) = flows(rec, "websocket_error")
    assert flow.error.msg == "server went away while a message was held (it was not sent)"
    assert held.dropped and not held.intercepted and server.received.empty()
    await serves_normally(proxy.host, proxy.port, origin)


class HoldFlow:
    """Holds the whole WebSocket flow (not one message) as it starts."""

    def websocket_start(self, flow: WebSocketFlow) -> None:
        flow.intercept()


async def test_held_websocket_flow_ends_when_the_client_hangs_up(strict_make_proxy, origin):
    server = await WsServer(echo=False).start()
    rec = Recorder()
    proxy = await strict_make_proxy(HoldFlow(), rec)
    bus = proxy.master.bus.subscribe()
    try:
        reader, writer, conn = await raw_ws(proxy.host, proxy.port, server.port)
        srv = await server.next_connection()
        writer.write(conn.send(BytesMessage(data=b"waits for the flow")))
        async with asyncio.timeout(10):
            while not isinstance(event := await bus.get(), FlowIntercepted) or event.message is not None:
                pass
        reset(writer)
        await rec.wait_for("websocket_error")
        await wait_closed(srv)
    finally:
        proxy.master.bus.unsubscribe(bus)
        await server.stop()
    (flow,) = flows(rec, "websocket_error")
    assert flow.error.msg == "client went away while a message was held (it was not sent)"
    assert not flow.intercepted and flow.messages[-1].dropped and server.received.empty()
    await serves_normally(proxy.host, proxy.port, origin)
