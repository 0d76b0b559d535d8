"""Faults on real sockets: peers that leave, stall, lie about the protocol or break it, and shutdown.

Each test checks three things: the misbehaving peer gets a clear answer (a status, a GOAWAY, a close
code, or a clean close), the `error` hook (or `websocket_error`) fires with a message that says what
happened, and the proxy then serves the next request normally. Where a connection ends in the middle
of something, the test also checks that nothing is left behind: the asyncio tasks and the proxy's
open client connections go back to what they were (by waiting for them, never by sleeping).

What tests/integration already covers (refused and unresolvable servers, 400/414/431, resets
mid-body, body limits, untrusted TLS on either side, WebSocket peers vanishing without a close frame,
HTTP/2 stream resets of a request in flight) is not repeated here.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import struct
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import pytest
from hyperframe.frame import DataFrame, Frame, GoAwayFrame, RstStreamFrame
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection
from wsproto.events import Request as WsRequest

from interpose.http import HTTPFlow
from interpose.store.flowfile import read_flows
from tests.conftest import Recorder, raw_request
from tests.servers import Origin
from tests.tls_servers import TestCA, open_tunnel
from tests.ws_servers import WsServer

ROOT = Path(__file__).resolve().parents[2]
HELD_GONE = "client disconnected while the flow was intercepted"


# -- fixtures and helpers ---------------------------------------------------------------------------
class ErrorLog:
    """Collects error-level log entries: no fault in this file may make the proxy log one."""

    def __init__(self) -> None:
        self.entries: list[str] = []
        self.all: list[tuple[str, str]] = []

    def log(self, entry: Any) -> None:
        self.all.append((entry.level, entry.msg))
        if entry.level == "error":
            self.entries.append(entry.msg)

    def has(self, text: str) -> bool:
        return any(text in msg for _, msg in self.all)


@pytest.fixture
async def faulty(make_proxy) -> AsyncIterator[Callable[..., Any]]:
    """make_proxy that also returns an ErrorLog, and fails the test if the proxy logged an error."""
    logs: list[ErrorLog] = []

    async def factory(*addons: Any, **opts: Any) -> tuple[Any, ErrorLog]:
        log = ErrorLog()
        logs.append(log)
        return await make_proxy(log, *addons, **opts), log

    yield factory
    for log in logs:
        assert log.entries == [], log.entries


class Baseline:
    """The tasks of this event loop and the proxy's client connections at one moment, to compare later."""

    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy
        self.tasks = len(asyncio.all_tasks())
        self.connections = proxy.master.server.connection_count

    def now(self) -> tuple[int, int]:
        """(tasks, client connections); not counting the in-process origin's handler of each server connection
        the proxy keeps idle for the next client (server_reuse): those are kept, not leaked."""
        server = self.proxy.master.server
        return len(asyncio.all_tasks()) - server.shared.count, server.connection_count

    async def restored(self, timeout: float = 10) -> None:
        """Wait until tasks and connections are back to the baseline (fails with the figures if not)."""
        try:
            await until(lambda: self.now() <= (self.tasks, self.connections), timeout)
        except TimeoutError:
            raise AssertionError(f"leak: (tasks, connections) {self.now()} > {(self.tasks, self.connections)}: "
                                 f"{[t.get_coro() for t in asyncio.all_tasks()]}") from None


async def until(cond: Callable[[], bool], timeout: float = 10) -> None:
    """Yield to the event loop until `cond()` holds."""
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.005)


def hooked(rec: Recorder, name: str) -> list[Any]:
    return [args[0] for n, args in rec.calls if n == name]


async def read_all(reader: asyncio.StreamReader, timeout: float = 10) -> bytes:
    """Everything until the peer closes; fails if it does not close within `timeout`."""
    chunks = []
    async with asyncio.timeout(timeout):
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def serves_normally(proxy: Any, origin: Origin, path: str = "/after") -> None:
    """A fresh client gets a normal answer through the proxy."""
    data = await raw_request(proxy.host, proxy.port,
                             f"GET {origin.url}{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(f"ok {path}".encode()), data


class Hold:
    """Intercepts flows whose path contains /hold at one stage and reports each held flow."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.held: asyncio.Queue[HTTPFlow] = asyncio.Queue()
        setattr(self, stage, self._hold)

    def _hold(self, flow: HTTPFlow) -> None:
        if "/hold" in flow.request.path:
            flow.intercept()
            self.held.put_nowait(flow)

    async def next(self, timeout: float = 10) -> HTTPFlow:
        async with asyncio.timeout(timeout):
            return await self.held.get()


# -- HTTP/2 by hand ---------------------------------------------------------------------------------
class H2Client:
    """An h2 client connection over a raw stream (h2c prior knowledge inside a CONNECT tunnel)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, **config: Any) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8", **config))
        self.events: list[Any] = []
        self.closed = False

    @classmethod
    async def through(cls, proxy: Any, origin: Origin, **config: Any) -> H2Client:
        reader, writer = await open_tunnel(proxy.port, origin.host, origin.port)
        self = cls(reader, writer, **config)
        self.conn.initiate_connection()
        self.flush()
        return self

    def flush(self) -> None:
        self.writer.write(self.conn.data_to_send())

    def request(self, sid: int, path: str, origin: Origin, extra: tuple[tuple[str, str], ...] = ()) -> None:
        self.conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                                     (":authority", f"{origin.host}:{origin.port}"), (":path", path), *extra],
                               end_stream=True)
        self.flush()

    async def until(self, cond: Callable[[list[Any]], bool], timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not cond(self.events):
                data = await self.reader.read(65536)
                if not data:
                    self.closed = True
                    return
                for ev in self.conn.receive_data(data):
                    self.events.append(ev)
                    if isinstance(ev, h2.events.DataReceived):
                        self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                self.flush()

    def status(self, sid: int) -> str | None:
        for ev in self.events:
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                return dict(ev.headers)[":status"]
        return None

    def body(self, sid: int) -> bytes:
        return b"".join(ev.data for ev in self.events if isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid)

    def ended(self, sid: int) -> bool:
        return any(isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid for ev in self.events)


def frames(data: bytes) -> list[Frame]:
    """Parse raw HTTP/2 frames (the server preface is SETTINGS, so the bytes start on a frame boundary)."""
    out = []
    while len(data) >= 9:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9:9 + length]))
        out.append(frame)
        data = data[9 + length:]
    return out


# == 1. clients that leave while their flow is held ================================================
@pytest.mark.parametrize("stage", ["request", "response"])
async def test_client_leaving_while_held_fires_error_and_leaks_nothing(faulty, origin, stage):
    hold, rec = Hold(stage), Recorder(["error", "clientdisconnect"])
    proxy, _ = await faulty(hold, rec)
    await serves_normally(proxy, origin, "/warm")  # the first connection's one-off setup is done
    base = Baseline(proxy)
    _, writer = await asyncio.open_connection(proxy.host, proxy.port)
    writer.write(f"GET {origin.url}/hold HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    flow = await hold.next()
    assert flow.intercepted
    writer.close()
    await rec.wait_for("error")
    [failed] = hooked(rec, "error")
    assert failed is flow and flow.error is not None and flow.error.msg == HELD_GONE
    assert not flow.intercepted and not flow.live and flow.response is None
    await rec.wait_for("clientdisconnect", 2)
    await base.restored()
    await serves_normally(proxy, origin)
    await base.restored()


async def test_h2_stream_reset_while_held_ends_that_flow_only(faulty, origin):
    hold, rec = Hold("request"), Recorder(["error", "response", "clientdisconnect"])
    proxy, _ = await faulty(hold, rec)
    base = Baseline(proxy)
    client = await H2Client.through(proxy, origin)
    client.request(1, "/hold", origin)
    flow = await hold.next()
    client.conn.reset_stream(1, h2.errors.ErrorCodes.CANCEL)
    client.request(3, "/sibling", origin)  # the same connection goes on serving
    await rec.wait_for("error")
    assert flow.error is not None and not flow.intercepted
    assert flow.error.msg == "client reset the stream (error code 8) while the flow was intercepted"
    await client.until(lambda _: client.ended(3))
    assert (client.status(3), client.body(3)) == ("200", b"ok /sibling")
    assert not any(isinstance(e, h2.events.ConnectionTerminated) for e in client.events)
    client.writer.close()
    await rec.wait_for("clientdisconnect")
    await base.restored()
    await serves_normally(proxy, origin)


async def test_h2_client_closing_its_connection_while_held_fires_error(faulty, origin):
    hold, rec = Hold("request"), Recorder(["error", "clientdisconnect"])
    proxy, _ = await faulty(hold, rec)
    base = Baseline(proxy)
    client = await H2Client.through(proxy, origin)
    client.request(1, "/hold/a", origin)
    client.request(3, "/hold/b", origin)
    held = {(await hold.next()).request.path, (await hold.next()).request.path}
    assert held == {"/hold/a", "/hold/b"}
    client.writer.close()
    await rec.wait_for("error", 2)
    await rec.wait_for("clientdisconnect")
    for flow in hooked(rec, "error"):
        assert flow.error is not None
        assert flow.error.msg == "connection closed while the flow was intercepted", flow.error
        assert not flow.intercepted and not flow.live
    await base.restored()
    await serves_normally(proxy, origin)


async def test_client_leaving_while_the_server_never_answers_frees_both_connections(faulty, origin):
    """A server that accepts a request and never answers must not hold a client that has left."""
    arrived = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        arrived.set()
        while await reader.read(65536):  # never answers; ends when the proxy hangs up
            pass
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rec = Recorder(["error", "serverdisconnect", "clientdisconnect"])
    proxy, _ = await faulty(rec)
    base = Baseline(proxy)
    try:
        _, writer = await asyncio.open_connection(proxy.host, proxy.port)
        writer.write(f"GET http://127.0.0.1:{port}/never HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        async with asyncio.timeout(10):
            await arrived.wait()
        writer.close()
        await rec.wait_for("error")
        [flow] = hooked(rec, "error")
        assert flow.error is not None
        assert flow.error.msg == "client disconnected while waiting for the server's response"
        await rec.wait_for("serverdisconnect")
        await rec.wait_for("clientdisconnect")
        await base.restored()
    finally:
        server.close()
    await serves_normally(proxy, origin)


# == 2. slow and idle clients ======================================================================
async def test_slowloris_request_head_gets_408_and_is_closed(faulty, origin):
    rec = Recorder(["clientdisconnect"])
    proxy, log = await faulty(rec, header_read_timeout_s=1.0)
    base = Baseline(proxy)
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    head = f"GET {origin.url}/slow HTTP/1.1\r\nHost: x\r\nX-Padding: {'p' * 200}\r\n\r\n".encode()

    async def drip() -> None:
        # One byte every 50 ms: the whole head would take ~12 s, far beyond the 1 s allowed.
        for i in range(len(head)):
            writer.write(head[i:i + 1])
            await writer.drain()
            await asyncio.sleep(0.05)

    dripping = asyncio.create_task(drip())
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        answer = await read_all(reader, timeout=10)
    finally:
        dripping.cancel()
    elapsed = loop.time() - t0
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    assert answer.endswith(b"interpose: request head not received in time\n")
    assert 0.9 < elapsed < 5, elapsed
    assert log.has("request head not received in time")
    assert origin.received == []  # nothing reached the server
    await rec.wait_for("clientdisconnect")  # fires with the reason the proxy closed the connection
    (root,) = rec.calls[0][1]
    assert root.client_conn.error == "408 Request Timeout: request head not received in time"
    writer.close()
    await base.restored()
    await serves_normally(proxy, origin)


async def test_idle_keepalive_client_is_closed_after_idle_timeout(faulty, origin):
    rec = Recorder(["clientdisconnect"])
    proxy, _ = await faulty(rec, idle_timeout_s=1.0)
    base = Baseline(proxy)
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    writer.write(f"GET {origin.url}/first HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(len(b"ok /first"))
    assert head.startswith(b"HTTP/1.1 200") and body == b"ok /first"
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    rest = await read_all(reader, timeout=10)  # the client says nothing more: the proxy hangs up
    assert rest == b""
    assert 0.9 < loop.time() - t0 < 5
    await rec.wait_for("clientdisconnect")
    (root,) = rec.calls[0][1]
    assert root.client_conn.error == "idle for 1 s (idle_timeout_s): closed"
    writer.close()
    await base.restored()
    await serves_normally(proxy, origin)


async def test_client_still_uploading_when_refused_gets_the_413_not_a_reset(faulty, origin):
    """The proxy answers 413 mid-upload; it must not close with unread input (a TCP reset), which would
    destroy the answer on its way: it stops sending, reads and drops the rest for a moment, then closes."""
    rec = Recorder(["error"])
    proxy, _ = await faulty(rec, body_size_limit="64k")
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    writer.write(f"POST {origin.url}/sink HTTP/1.1\r\nHost: x\r\nContent-Length: {50 * 2**20}\r\n\r\n".encode())

    async def upload() -> None:
        with contextlib.suppress(ConnectionError):
            for _ in range(50 * 16):
                writer.write(b"u" * 65536)
                await writer.drain()

    uploading = asyncio.create_task(upload())
    try:
        answer = await read_all(reader, timeout=15)
    finally:
        uploading.cancel()
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert answer.endswith(b"request body exceeds body_size_limit (65536 bytes)\n")
    await rec.wait_for("error")
    writer.close()
    await serves_normally(proxy, origin)


# == 3. the wrong protocol where another was expected ==============================================
@pytest.mark.parametrize("garbage", [
    b"\x16\x03\x01" + b"\xff" * 64,                         # a record too large to be a ClientHello
    b"\x16\x03\x01\x00\x20" + b"\x02" + os.urandom(31),     # a handshake record that is not a ClientHello
], ids=["oversized-record", "not-a-client-hello"])
async def test_tls_looking_garbage_in_a_tunnel_is_closed_with_a_log_entry(faulty, origin, garbage):
    rec = Recorder(["next_layer", "serverconnect"])
    proxy, log = await faulty(rec)
    base = Baseline(proxy)
    reader, writer = await open_tunnel(proxy.port, "localhost", 443)
    writer.write(garbage)
    assert await read_all(reader) == b""  # closed, nothing sent back
    assert log.has("expected a TLS ClientHello for localhost:443"), log.all
    assert [layer.kind for layer in hooked(rec, "next_layer")][-1] == "tls"
    assert hooked(rec, "serverconnect") == []  # the junk went nowhere
    writer.close()
    await base.restored()
    await serves_normally(proxy, origin)


async def test_fragmented_client_hello_is_still_intercepted(faulty, origin, tmp_path):
    """A ClientHello sent in small pieces (as some clients and DPI-evading tools do) is reassembled."""
    ca = TestCA(tmp_path / "origin-ca")
    tls_origin = await Origin().start(ssl=ca.server_context(("http/1.1",)))
    try:
        proxy, _ = await faulty(ssl_verify_upstream_trusted_ca=ca.path)
        reader, writer = await open_tunnel(proxy.port, "localhost", tls_origin.port)
        context = ssl.create_default_context(cafile=str(proxy.master.certs.ca_cert_path))
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = outgoing.read()
        for i in range(0, len(hello), 100):  # 100-byte pieces, each sent on its own
            writer.write(hello[i:i + 100])
            await writer.drain()
            await asyncio.sleep(0.02)
        async with asyncio.timeout(10):
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    writer.write(outgoing.read())
                    data = await reader.read(65536)
                    assert data, "the proxy closed the connection during the handshake"
                    incoming.write(data)
            tls.write(b"GET /frag HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            writer.write(outgoing.read())
            plain = b""
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                incoming.write(data)
                try:
                    plain += tls.read(65536)
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLZeroReturnError:
                    break
                if plain.endswith(b"ok /frag"):
                    break
        assert plain.startswith(b"HTTP/1.1 200") and plain.endswith(b"ok /frag"), plain
        writer.close()
    finally:
        await tls_origin.stop()


async def test_reverse_proxy_answers_garbage_with_400_and_keeps_serving(faulty, origin):
    rec = Recorder(["response"])
    proxy, _ = await faulty(rec, mode=f"reverse:{origin.url}")
    answer = await raw_request(proxy.host, proxy.port, b"\x00\x01garbage\xff\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    assert b"interpose: malformed request" in answer
    answer = await raw_request(proxy.host, proxy.port, b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok /next")


async def test_reverse_https_proxy_tells_plain_http_from_tls_and_garbage(faulty, tmp_path):
    ca = TestCA(tmp_path / "origin-ca")
    tls_origin = await Origin().start(ssl=ca.server_context(("http/1.1",)))
    try:
        proxy, _ = await faulty(mode=f"reverse:https://localhost:{tls_origin.port}",
                                ssl_verify_upstream_trusted_ca=ca.path)
        answer = await raw_request(proxy.host, proxy.port,
                                   b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok /plain"), answer
        answer = await raw_request(proxy.host, proxy.port, b"\x01\x02\x03 not http\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        answer = await raw_request(proxy.host, proxy.port,
                                   b"GET /again HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.endswith(b"ok /again"), answer
    finally:
        await tls_origin.stop()


# == 4. HTTP/2 protocol errors =====================================================================
async def _h2_violation(proxy: Any, origin: Origin, send: Callable[[H2Client], None]) -> list[Frame]:
    """Open an h2c connection through the proxy, let `send` break the protocol, return the frames that came back."""
    client = await H2Client.through(proxy, origin, validate_outbound_headers=False, normalize_outbound_headers=False)
    send(client)
    data = await read_all(client.reader)  # the proxy must end the connection
    client.writer.close()
    return frames(data)


def _data_on_stream_zero(client: H2Client) -> None:
    frame = DataFrame(1, data=b"oops")
    frame.stream_id = 0  # hyperframe refuses it in the constructor; the wire doesn't
    client.writer.write(frame.serialize())


def _uppercase_header(client: H2Client) -> None:
    client.request(1, "/upper", Origin(host="127.0.0.1", port=1), extra=(("X-Upper-Case", "1"),))


@pytest.mark.parametrize("violation", [_data_on_stream_zero, _uppercase_header],
                         ids=["data-on-stream-0", "uppercase-header"])
async def test_h2_client_protocol_error_gets_goaway_and_other_connections_carry_on(faulty, origin, violation):
    proxy, log = await faulty()
    base = Baseline(proxy)
    good = await H2Client.through(proxy, origin)  # a well-behaved neighbour, open before and after
    good.request(1, "/before", origin)
    await good.until(lambda _: good.ended(1))
    got = await _h2_violation(proxy, origin, violation)
    goaways = [f for f in got if isinstance(f, GoAwayFrame)]
    resets = [f for f in got if isinstance(f, RstStreamFrame)]
    assert goaways or resets, got
    if goaways:
        assert goaways[-1].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert log.has("HTTP/2 protocol error"), log.all
    good.request(3, "/after", origin)
    await good.until(lambda _: good.ended(3))
    assert (good.status(3), good.body(3)) == ("200", b"ok /after")
    good.writer.close()
    await base.restored()
    assert all(r.path in ("/before", "/after") for r in origin.received)


async def _h2_server_sending_garbage(ca: TestCA) -> asyncio.Server:
    """A TLS h2 server that answers every request with a HEADERS frame whose HPACK block is garbage."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        try:
            while data := await reader.read(65536):
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        junk = b"\xff\xff\xff\xff\xff\xff"
                        frame_head = struct.pack(">I", len(junk))[1:] + b"\x01\x04" + struct.pack(">I", ev.stream_id)
                        writer.write(frame_head + junk)
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ca.server_context(("h2",)))


async def test_h2_server_sending_garbage_gives_502_and_error(faulty, origin, tmp_path):
    ca = TestCA(tmp_path / "origin-ca")
    server = await _h2_server_sending_garbage(ca)
    port = server.sockets[0].getsockname()[1]
    try:
        rec = Recorder(["error", "response"])
        proxy, _ = await faulty(rec, ssl_verify_upstream_trusted_ca=ca.path, mode=f"reverse:https://localhost:{port}")
        answer = await raw_request(proxy.host, proxy.port, b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 502 "), answer
        await rec.wait_for("error")
        [flow] = hooked(rec, "error")
        assert flow.server_conn.alpn == "h2"
        assert flow.error is not None and "HTTP/2" in flow.error.msg, flow.error
        assert flow.error.msg.encode() in answer
        assert flow.response is None
    finally:
        server.close()
    direct, _ = await faulty()
    await serves_normally(direct, origin)


# == 5. WebSocket protocol violations ==============================================================
async def _ws_upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> WSConnection:
    ws = WSConnection(ConnectionType.CLIENT)
    writer.write(ws.send(WsRequest(host=host, target="/")))
    async with asyncio.timeout(10):
        while True:
            data = await reader.read(65536)
            assert data, "closed during the upgrade"
            ws.receive_data(data)
            if any(isinstance(e, AcceptConnection) for e in ws.events()):
                return ws


async def test_ws_client_sending_an_unmasked_frame_gets_1002(faulty, origin):
    server = await WsServer().start()
    rec = Recorder(["websocket_error", "websocket_end"])
    proxy, _ = await faulty(rec)
    base = Baseline(proxy)
    try:
        reader, writer = await open_tunnel(proxy.port, server.host, server.port)
        ws = await _ws_upgrade(reader, writer, f"{server.host}:{server.port}")
        writer.write(b"\x81\x05hello")  # FIN + text, 5 bytes, no mask: only servers may do that
        ws.receive_data(await read_all(reader))
        closes = [e for e in ws.events() if isinstance(e, CloseConnection)]
        assert [c.code for c in closes] == [1002], closes
        writer.close()
        await rec.wait_for("websocket_error")
        [flow] = hooked(rec, "websocket_error")
        assert flow.error is not None and flow.error.msg.startswith("client broke the WebSocket protocol:"), flow.error
        assert "mask" in flow.error.msg.lower()
        assert "websocket_end" not in rec.names
        await until(lambda: bool(server.closed))
        assert server.closed == [(1001, "peer protocol error")]
        await base.restored()
    finally:
        await server.stop()
    await serves_normally(proxy, origin)


async def test_ws_server_sending_reserved_bits_gets_1002_and_client_1001(faulty, origin):
    server_saw: asyncio.Queue[int] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        try:
            while data := await reader.read(65536):
                ws.receive_data(data)
                for e in ws.events():
                    if isinstance(e, WsRequest):
                        writer.write(ws.send(AcceptConnection()))
                        writer.write(b"\xf1\x02hi")  # FIN + RSV1-3 + text: no extension allows those bits
                    elif isinstance(e, CloseConnection):
                        server_saw.put_nowait(e.code)
                        return
        finally:
            writer.close()

    raw_server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = raw_server.sockets[0].getsockname()[1]
    rec = Recorder(["websocket_error"])
    proxy, _ = await faulty(rec)
    try:
        async with ws_connect(f"ws://127.0.0.1:{port}/", proxy=proxy.url, ping_interval=None, open_timeout=10) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001, closed.value
        async with asyncio.timeout(10):
            assert await server_saw.get() == 1002
        await rec.wait_for("websocket_error")
        [flow] = hooked(rec, "websocket_error")
        assert flow.error.msg.startswith("server broke the WebSocket protocol:"), flow.error
        assert "reserved" in flow.error.msg.lower() or "rsv" in flow.error.msg.lower(), flow.error
        assert list(flow.messages) == []  # the bad frame was not taken for a message
    finally:
        raw_server.close()
    await serves_normally(proxy, origin)


# == 6. shutdown with connections in flight ========================================================
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_shutdown_with_connections_in_flight(tmp_path, origin, sig):
    marker = tmp_path / "done"
    script = tmp_path / "mark_done.py"
    script.write_text(f"def done():\n    open({str(marker)!r}, 'w').write('done')\n")
    saved = tmp_path / "flows.interpose"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "interpose.cli.dump", "-p", "0", "--confdir", str(tmp_path / "conf"), "-s", str(script),
        "-i", "~u /held", "-w", str(saved), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=ROOT)
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(15):
            while not (line := (await proc.stderr.readline()).decode()).startswith("proxy listening at "):
                assert line, "interpose-dump exited early"
        port = int(line.strip().rsplit(":", 1)[1])
        conns = []

        async def client(data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(data)
            conns.append((r, w))
            return r, w

        r, _ = await client(f"GET {origin.url}/idle HTTP/1.1\r\nHost: x\r\n\r\n".encode())  # then idles, kept alive
        async with asyncio.timeout(10):
            await r.readuntil(b"ok /idle")
        await client(f"GET {origin.url}/hang HTTP/1.1\r\nHost: x\r\n\r\n".encode())  # waits for the server
        await client(f"GET {origin.url}/held HTTP/1.1\r\nHost: x\r\n\r\n".encode())  # held by -i
        await client(f"GET {origin.url}/half HTTP/1.1\r\nHost".encode())  # half a head
        async with asyncio.timeout(10):
            while not any(rec.path == "/hang" for rec in origin.received):
                origin.arrived.clear()
                await origin.arrived.wait()
        proc.send_signal(sig)
        async with asyncio.timeout(15):
            code = await proc.wait()
            err = (await proc.stderr.read()).decode()
        assert code == 0, err
        assert marker.read_text() == "done"
        assert "Traceback" not in err and "[error]" not in err, err
        for r, w in conns:  # every client was let go
            assert await read_all(r) is not None
            w.close()
        # Nothing lost: the flows still in flight were ended with an error and written to -w's file.
        flows = {f.request.path: f for f in read_flows(saved)}
        assert set(flows) == {"/idle", "/hang", "/held"}, flows
        assert flows["/idle"].response is not None and flows["/idle"].response.status_code == 200
        hang, held = flows["/hang"].error, flows["/held"].error
        assert hang is not None and hang.msg == "connection closed before the flow completed"
        assert held is not None and held.msg == "connection closed while the flow was intercepted"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
