"""Raw TCP end to end: a raw asyncio client CONNECTs through the real proxy to a small asyncio server
and sends bytes that are not HTTP (or are, with `tcp_hosts`). Each test checks the hooks the addons saw
and the bytes each end really received.
"""
from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from interpose import flowfilter
from interpose.runtime.bus import FlowIntercepted
from interpose.tcp import TCPFlow, TCPMessage
from tests.conftest import Recorder

LIFECYCLE = ("load", "start", "configure", "tick", "log", "done")
Handler = Callable[["TcpServer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# -- a raw TCP server and client --------------------------------------------------------------------
class TcpServer:
    """Listens on 127.0.0.1; echoes by default. Records everything it receives in `received`; each
    connection's writer lands in `writers` so a test can push bytes from the server's side."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler or TcpServer.echo
        self.received = bytearray()
        self.writers: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()
        self.eof = asyncio.Event()
        """Set when a client's EOF (half-close or close) has been read."""
        self._changed = asyncio.Condition()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> TcpServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def record(self, data: bytes) -> None:
        async with self._changed:
            if data:
                self.received += data
            else:
                self.eof.set()
            self._changed.notify_all()

    async def wait_received(self, expected: bytes, timeout: float = 10) -> None:
        """Wait until the server has received exactly `expected` (fails on anything else)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.received) >= len(expected))
        assert bytes(self.received) == expected

    async def next_writer(self, timeout: float = 10) -> asyncio.StreamWriter:
        async with asyncio.timeout(timeout):
            return await self.writers.get()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.put_nowait(writer)
        try:
            await self.handler(self, reader, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()

    @staticmethod
    async def echo(server: TcpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            await server.record(data)
            writer.write(data)
            await writer.drain()
        await server.record(b"")

    @staticmethod
    async def record_only(server: TcpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            await server.record(data)
        await server.record(b"")


async def tcp_through_proxy(proxy: Any, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection to the proxy with a CONNECT tunnel to 127.0.0.1:port already established."""
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return reader, writer


async def read_exactly(reader: asyncio.StreamReader, n: int, timeout: float = 10) -> bytes:
    async with asyncio.timeout(timeout):
        return await reader.readexactly(n)


async def read_to_eof(reader: asyncio.StreamReader, timeout: float = 10) -> bytes:
    async with asyncio.timeout(timeout):
        return await reader.read(-1)


async def next_held(bus: asyncio.Queue[Any], timeout: float = 10) -> TCPMessage:
    async with asyncio.timeout(timeout):
        while True:
            event = await bus.get()
            if isinstance(event, FlowIntercepted) and event.message is not None:
                assert event.stage == "messages"
                return event.message  # type: ignore[no-any-return]


def traffic(rec: Recorder) -> list[str]:
    """Connection and flow hooks in order; next_layer carries the kind it chose (`next_layer:tcp`)."""
    return [f"next_layer:{args[0].kind}" if name == "next_layer" else name
            for name, args in rec.calls if name not in LIFECYCLE]


def flows(rec: Recorder, hook: str) -> list[Any]:
    return [args[0] for name, args in rec.calls if name == hook]


def sent(flow: TCPFlow, from_client: bool) -> bytes:
    """What the flow forwarded in one direction (dropped chunks left out)."""
    return b"".join(m.content for m in flow.messages if m.from_client == from_client and not m.dropped)


@pytest.fixture
def make_proxy(strict_make_proxy):
    """Every proxy in this file must log no error."""
    return strict_make_proxy


@pytest.fixture
async def echo_server() -> AsyncIterator[TcpServer]:
    s = await TcpServer().start()
    yield s
    await s.stop()


# -- tests ------------------------------------------------------------------------------------------
async def test_hook_order_and_echo(make_proxy, echo_server):
    rec = Recorder()
    proxy = await make_proxy(rec)
    reader, writer = await tcp_through_proxy(proxy, echo_server.port)
    writer.write(b"\x00\x01hello")
    assert await read_exactly(reader, 7) == b"\x00\x01hello"
    writer.write(b"\x02again")
    assert await read_exactly(reader, 6) == b"\x02again"
    writer.close()
    await rec.wait_for("clientdisconnect")
    assert traffic(rec) == [
        "clientconnect", "next_layer:http1", "http_connect", "next_layer:tcp",
        "tcp_start", "serverconnect", "tcp_message", "tcp_message", "tcp_message", "tcp_message",
        "tcp_end", "serverdisconnect", "clientdisconnect",  # the end hook first, as with WebSocket
    ]
    (flow,) = flows(rec, "tcp_start")
    assert isinstance(flow, TCPFlow)
    assert flows(rec, "tcp_end") == [flow] and flow.error is None and not flow.live
    assert [(m.from_client, m.content) for m in flow.messages] == [
        (True, b"\x00\x01hello"), (False, b"\x00\x01hello"), (True, b"\x02again"), (False, b"\x02again")]
    assert flow.server_conn.address == ("127.0.0.1", echo_server.port)
    assert flowfilter.parse("~tcp")(flow) and not flowfilter.parse("~websocket")(flow)


async def test_first_chunk_arrives_as_one_message(make_proxy, echo_server):
    """The proxy peeks at the first bytes to pick a layer; that must not split the client's first chunk."""
    rec = Recorder()
    proxy = await make_proxy(rec)
    reader, writer = await tcp_through_proxy(proxy, echo_server.port)
    payload = b"\x00\x01 a first chunk longer than the peek"
    writer.write(payload)
    assert await read_exactly(reader, len(payload)) == payload
    writer.close()
    await rec.wait_for("tcp_end")
    (flow,) = flows(rec, "tcp_end")
    assert [m.content for m in flow.messages if m.from_client] == [payload]


async def test_addon_edits_and_drops_chunks(make_proxy, echo_server):
    class Edit:
        def tcp_message(self, flow: TCPFlow) -> None:
            msg = flow.messages[-1]
            if msg.from_client and msg.content == b"drop":
                msg.drop()
            elif msg.from_client:
                msg.content = msg.content.replace(b"hello", b"HELLO")

    rec = Recorder()
    proxy = await make_proxy(Edit(), rec)
    reader, writer = await tcp_through_proxy(proxy, echo_server.port)
    writer.write(b"\x00\x01hello")
    assert await read_exactly(reader, 7) == b"\x00\x01HELLO"
    writer.write(b"drop")
    await rec.wait_for("tcp_message", 3)  # the dropped chunk went through the hook
    writer.write(b"\x00after")
    assert await read_exactly(reader, 6) == b"\x00after"
    await echo_server.wait_received(b"\x00\x01HELLO\x00after")  # "drop" never arrived
    writer.close()
    await rec.wait_for("tcp_end")
    (flow,) = flows(rec, "tcp_end")
    assert [(m.from_client, m.content, m.dropped) for m in flow.messages] == [
        (True, b"\x00\x01HELLO", False), (False, b"\x00\x01HELLO", False),
        (True, b"drop", True), (True, b"\x00after", False), (False, b"\x00after", False)]


async def test_half_close_lets_the_server_answer(make_proxy):
    async def answer_after_eof(server: TcpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.read(-1)  # everything, up to the client's half-close
        await server.record(request)
        await server.record(b"")
        writer.write(b"reply to " + request)
        await writer.drain()

    server = await TcpServer(answer_after_eof).start()
    rec = Recorder()
    proxy = await make_proxy(rec)
    try:
        reader, writer = await tcp_through_proxy(proxy, server.port)
        writer.write(b"\x00\x01request")
        writer.write_eof()
        assert await read_to_eof(reader) == b"reply to \x00\x01request"
        assert server.eof.is_set()
        writer.close()
        await rec.wait_for("tcp_end")
    finally:
        await server.stop()
    (flow,) = flows(rec, "tcp_end")
    assert "tcp_error" not in rec.names and flow.error is None
    assert sent(flow, True) == b"\x00\x01request"
    assert sent(flow, False) == b"reply to \x00\x01request"
    assert rec.names.index("tcp_end") > max(i for i, n in enumerate(rec.names) if n == "tcp_message")


async def test_server_reset_is_tcp_error(make_proxy):
    async def reset(server: TcpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.record(await reader.read(65536))
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST, not FIN

    server = await TcpServer(reset).start()
    rec = Recorder()
    proxy = await make_proxy(rec)
    try:
        reader, writer = await tcp_through_proxy(proxy, server.port)
        writer.write(b"\x00\x01trigger")
        await server.wait_received(b"\x00\x01trigger")
        try:
            assert await read_to_eof(reader) == b""  # the proxy hangs up on the client too
        except ConnectionResetError:
            pass
        writer.close()
        await rec.wait_for("tcp_error")
    finally:
        await server.stop()
    (flow,) = flows(rec, "tcp_error")
    assert "tcp_end" not in rec.names
    assert flow.error is not None
    assert flow.error.msg.startswith("server reset the connection"), flow.error.msg


async def test_unreachable_server_is_tcp_error(make_proxy):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    rec = Recorder()
    proxy = await make_proxy(rec)
    reader, writer = await tcp_through_proxy(proxy, port)  # the proxy answers CONNECT before dialling
    writer.write(b"\x00\x01anyone there?")
    assert await read_to_eof(reader) == b""
    writer.close()
    await rec.wait_for("tcp_error")
    (flow,) = flows(rec, "tcp_error")
    assert flow.error.msg == "connection refused"
    assert [n for n in traffic(rec) if n.startswith("tcp")] == ["tcp_start", "tcp_error"]


async def test_tcp_hosts_routes_http_looking_payload_as_tcp(make_proxy, echo_server):
    rec = Recorder()
    proxy = await make_proxy(rec, tcp_hosts=[rf"^127\.0\.0\.1:{echo_server.port}$"])
    reader, writer = await tcp_through_proxy(proxy, echo_server.port)
    request = b"GET /not-parsed HTTP/1.1\r\nHost: example.com\r\n\r\n"
    writer.write(request)
    assert await read_exactly(reader, len(request)) == request  # the echo server's answer, not an HTTP response
    writer.close()
    await rec.wait_for("clientdisconnect")
    names = traffic(rec)
    assert names[:6] == ["clientconnect", "next_layer:http1", "http_connect", "next_layer:tcp", "tcp_start",
                         "serverconnect"]
    assert "requestheaders" not in names and names.count("http_connect") == 1
    (flow,) = flows(rec, "tcp_end")
    assert sent(flow, True) == request and sent(flow, False) == request


async def test_server_speaks_first(make_proxy):
    banner = b"220 banner from a server-speaks-first protocol\r\n"

    async def greet(server: TcpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(banner)
        await writer.drain()
        await TcpServer.record_only(server, reader, writer)

    server = await TcpServer(greet).start()
    rec = Recorder()
    proxy = await make_proxy(rec)
    try:
        reader, writer = await tcp_through_proxy(proxy, server.port)
        # The client sends nothing: after the peek timeout the proxy relays as TCP and the banner comes.
        assert await read_exactly(reader, len(banner)) == banner
        writer.write(b"QUIT\r\n")
        await server.wait_received(b"QUIT\r\n")
        writer.close()
        await rec.wait_for("tcp_end")
    finally:
        await server.stop()
    assert "next_layer:tcp" in traffic(rec)
    (flow,) = flows(rec, "tcp_end")
    assert [(m.from_client, m.content) for m in flow.messages] == [(False, banner), (True, b"QUIT\r\n")]


async def test_held_chunk_blocks_only_its_own_direction(make_proxy):
    server = await TcpServer(TcpServer.record_only).start()
    rec = Recorder()
    proxy = await make_proxy(rec, intercept="~tcp", intercept_at="messages")
    bus = proxy.master.bus.subscribe()
    try:
        reader, writer = await tcp_through_proxy(proxy, server.port)
        writer.write(b"\x00one")
        one = await next_held(bus)
        server_writer = await server.next_writer()
        assert (one.from_client, one.content) == (True, b"\x00one")
        writer.write(b"\x00two")

        # The server's direction keeps flowing while the client's chunk is held.
        server_writer.write(b"push")
        push = await next_held(bus)
        assert (push.from_client, push.content) == (False, b"push")
        push.resume()
        assert await read_exactly(reader, 4) == b"push"
        assert server.received == b""
        (flow,) = flows(rec, "tcp_start")
        assert flow.held_messages == [one]

        one.content = b"\x00ONE, edited"
        one.resume()
        await server.wait_received(b"\x00ONE, edited")
        two = await next_held(bus)
        assert (two.from_client, two.content) == (True, b"\x00two")
        two.resume()
        await server.wait_received(b"\x00ONE, edited\x00two")
        writer.close()
        await rec.wait_for("tcp_end")
    finally:
        proxy.master.bus.unsubscribe(bus)
        await server.stop()
    assert [(m.from_client, m.content) for m in flow.messages] == [
        (True, b"\x00ONE, edited"), (False, b"push"), (True, b"\x00two")]


async def test_kill_tcp_flow_closes_both_ends(make_proxy, echo_server):
    rec = Recorder()
    proxy = await make_proxy(rec)
    reader, writer = await tcp_through_proxy(proxy, echo_server.port)
    writer.write(b"\x00alive")
    assert await read_exactly(reader, 6) == b"\x00alive"
    (flow,) = flows(rec, "tcp_start")
    flow.kill()
    assert await read_to_eof(reader) == b""
    async with asyncio.timeout(10):
        await echo_server.eof.wait()
    writer.close()
    await rec.wait_for("tcp_error")
    assert "tcp_end" not in rec.names
    assert flow.killed and "killed" in flow.error.msg.lower() and not flow.live


async def test_inject_both_ways(make_proxy, echo_server):
    rec = Recorder()
    proxy = await make_proxy(rec)
    reader, writer = await tcp_through_proxy(proxy, echo_server.port)
    writer.write(b"\x00hi")
    assert await read_exactly(reader, 3) == b"\x00hi"
    (flow,) = flows(rec, "tcp_start")
    flow.inject(b"\x00to client", from_client=False)
    assert await read_exactly(reader, 10) == b"\x00to client"
    flow.inject("to server")
    await echo_server.wait_received(b"\x00hito server")
    assert await read_exactly(reader, 9) == b"to server"  # the echo of what was injected
    writer.close()
    await rec.wait_for("tcp_end")
    injected = [(m.from_client, m.content) for m in flow.messages if m.injected]
    assert injected == [(False, b"\x00to client"), (True, b"to server")]
    with pytest.raises(RuntimeError):
        flow.inject(b"too late")


async def test_max_messages_keeps_newest_and_counts_all(make_proxy, echo_server):
    rec = Recorder()
    proxy = await make_proxy(rec, max_messages=3)
    reader, writer = await tcp_through_proxy(proxy, echo_server.port)
    for i in range(5):
        writer.write(b"\x00%d" % i)
        assert await read_exactly(reader, 2) == b"\x00%d" % i
    writer.close()
    await rec.wait_for("tcp_end")
    (flow,) = flows(rec, "tcp_end")
    assert [m.content for m in flow.messages] == [b"\x003", b"\x004", b"\x004"]
    assert flow.message_count == 10
    assert flow.bytes_from_client == flow.bytes_from_server == 10
