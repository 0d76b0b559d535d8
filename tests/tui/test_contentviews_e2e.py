"""The new content views in the real `interpose`, in a pty: real payloads through the real proxy, the flow
opened, the view picked by `auto` from the Content-Type or by `m`, and the screen read back."""
from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import h11
import httpx
import pytest

from interpose.tui.contentviews import view_names
from tests.tui.payloads import Item, grpc_frame, msgpack_bytes, order_bytes
from tests.tui.pty_harness import Terminal

SSE = (b": connected\n\nid: 41\nevent: quote\ndata: {\"symbol\": \"ACME\", \"price\": 12.5}\n\n"
       b"id: 42\ndata: market\ndata: closed\n\n")


class CannedOrigin:
    """An HTTP/1.1 server (h11) answering each path with a fixed response: path → (headers, body)."""

    def __init__(self, routes: dict[str, tuple[list[tuple[str, str]], bytes]]) -> None:
        self.routes = routes
        self.server: asyncio.Server | None = None

    async def start(self) -> CannedOrigin:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    if not data:
                        return
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.Request):
                    path = event.target.decode()
                elif isinstance(event, h11.EndOfMessage):
                    headers, body = self.routes.get(path, ([("Content-Type", "text/plain")], b"no route"))
                    writer.write(conn.send(h11.Response(status_code=200, headers=[
                        *headers, ("Content-Length", str(len(body)))])))
                    writer.write(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
                    await writer.drain()
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    return
        except (ConnectionError, h11.ProtocolError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


GRPC_TRAILERS = grpc_frame(b"grpc-status: 0\r\ngrpc-message: done\r\n", trailers=True)
ROUTES = {
    "/shop.Orders/Get": ([("Content-Type", "application/grpc+proto"), ("grpc-encoding", "gzip")],
                         grpc_frame(order_bytes(), "gzip") + grpc_frame(Item(id=7, label="spare").SerializeToString())),
    "/web.Orders/Get": ([("Content-Type", "application/grpc-web+proto")], grpc_frame(order_bytes()) + GRPC_TRAILERS),
    "/order.pb": ([("Content-Type", "application/x-protobuf")], order_bytes()),
    "/order.bin": ([("Content-Type", "application/octet-stream")], order_bytes()),
    "/data.msgpack": ([("Content-Type", "application/msgpack")], msgpack_bytes()),
    "/events": ([("Content-Type", "text/event-stream")], SSE),
}


@pytest.fixture
async def canned() -> AsyncIterator[CannedOrigin]:
    server = await CannedOrigin(ROUTES).start()
    yield server
    await server.stop()


async def fetch(term: Terminal, url: str, method: str = "GET", **kw: object) -> None:
    async with httpx.AsyncClient(proxy=term.url, timeout=30) as client:
        resp = await client.request(method, url, **kw)  # type: ignore[arg-type]
    assert resp.status_code == 200


async def open_response(term: Terminal, path: str) -> str:
    await term.wait_for(re.compile(rf"\d{re.escape(path)}\s+200"))
    await term.press("enter")
    await term.wait_for("Request")
    await term.press("tab")
    return await term.wait_for("HTTP/1.1 200")


async def test_protobuf_response_picked_by_content_type(term: Terminal, canned: CannedOrigin) -> None:
    await fetch(term, f"{canned.url}/order.pb")
    await open_response(term, "/order.pb")
    screen = await term.wait_for("── Protobuf (13 top-level fields, no schema) [m: auto]")
    for want in ('1 len string: "Ada Lovelace"', "3 len message (10 bytes) {", '  2 len string: "widget"',
                 "as packed varint: 1, 150, 3, 270", "6 i64: 4612811918334230528  (double 2.5)"):
        assert want in screen


async def test_m_picks_the_protobuf_view_for_an_untyped_body(term: Terminal, canned: CannedOrigin) -> None:
    await fetch(term, f"{canned.url}/order.bin")
    await open_response(term, "/order.bin")
    await term.wait_for("── Hex dump (113 B) [m: auto]")
    for _ in range(view_names().index("protobuf")):
        await term.press("m")
    screen = await term.wait_for("[m: protobuf]")
    assert "── Protobuf (13 top-level fields, no schema)" in screen and '1 len string: "Ada Lovelace"' in screen
    await term.press("m")
    screen = await term.wait_for("[m: grpc]")  # not gRPC framing: says so and shows hex
    assert "not gRPC framing: flag byte 0x0a" in screen and "── Hex dump (113 B)" in screen


async def test_grpc_request_and_compressed_response(term: Terminal, canned: CannedOrigin) -> None:
    request = grpc_frame(Item(id=42, label="which order?").SerializeToString())
    await fetch(term, f"{canned.url}/shop.Orders/Get", "POST", content=request,
                headers={"Content-Type": "application/grpc", "TE": "trailers"})
    await term.wait_for(re.compile(r"POST\s+http://127\.0\.0\.1:\d+/shop\.Orders/Get\s+200"))
    await term.press("enter")
    screen = await term.wait_for("── gRPC (1 message) [m: auto]")
    assert '2 len string: "which order?"' in screen and "1 varint: 42" in screen
    await term.press("tab")
    screen = await term.wait_for("── gRPC (2 messages, 1 compressed) [m: auto]")
    assert re.search(r"── message 1 \(\d+ B, gzip: 113 B\)", screen)
    assert '1 len string: "Ada Lovelace"' in screen


async def test_grpc_web_trailers(term: Terminal, canned: CannedOrigin) -> None:
    await fetch(term, f"{canned.url}/web.Orders/Get", "POST", content=grpc_frame(b""),
                headers={"Content-Type": "application/grpc-web+proto"})
    await open_response(term, "/web.Orders/Get")
    await term.wait_for("── gRPC-Web (1 message) [m: auto]")
    await term.press("G")  # the trailers are at the end
    screen = await term.wait_for("grpc-message: done")
    assert "── trailers (36 bytes)" in screen and "grpc-status: 0" in screen


async def test_msgpack_response(term: Terminal, canned: CannedOrigin) -> None:
    await fetch(term, f"{canned.url}/data.msgpack")
    await open_response(term, "/data.msgpack")
    screen = await term.wait_for("── MessagePack [m: auto]")
    for want in ('"user": "ada",', '"blob": b"00 01 fe" (3 bytes),', '"when": timestamp 2023-11-14T22:13:20+00:00',
                 "3: nil,"):
        assert want in screen


async def test_graphql_request_body(term: Terminal, canned: CannedOrigin) -> None:
    query = "query Hero($ep: Episode) { hero(episode: $ep) { name friends { name } } }"
    await fetch(term, f"{canned.url}/graphql", "POST", json={"query": query, "variables": {"ep": "JEDI"}})
    await term.wait_for(re.compile(r"POST\s+http://127\.0\.0\.1:\d+/graphql\s+200"))
    await term.press("enter")
    screen = await term.wait_for("── GraphQL [m: auto]")
    lines = [ln.rstrip() for ln in screen.splitlines()]
    start = lines.index("query Hero($ep: Episode) {")
    assert lines[start:start + 12] == ["query Hero($ep: Episode) {", "  hero(episode: $ep) {", "    name",
                                       "    friends {", "      name", "    }", "  }", "}", "── variables", "{",
                                       '  "ep": "JEDI"', "}"]


async def test_sse_response(term: Terminal, canned: CannedOrigin) -> None:
    await fetch(term, f"{canned.url}/events")
    await open_response(term, "/events")
    screen = await term.wait_for("── Server-sent events (2 events) [m: auto]")
    lines = [ln.rstrip() for ln in screen.splitlines()]
    start = lines.index("  : connected")
    assert lines[start:start + 14] == ["  : connected", "── event 1 quote", "  id: 41", "  event: quote", "  data:",
                                       "    {", '      "symbol": "ACME",', '      "price": 12.5', "    }",
                                       "── event 2", "  id: 42", "  data:", "    market", "    closed"]


async def test_real_grpc_call_through_the_proxy(tmp_path) -> None:
    """grpcio's server and client on loopback, the call (gzip-compressed) through interpose's TLS interception."""
    import grpc

    from tests.tls_servers import TestCA
    from tests.tui.payloads import Order, order

    ca = TestCA(tmp_path / "origin-ca")
    server = grpc.aio.server()

    async def get(request: object, context: object) -> object:
        return order()

    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("shop.Orders", {
        "Get": grpc.unary_unary_rpc_method_handler(get, request_deserializer=Item.FromString,
                                                   response_serializer=lambda m: m.SerializeToString())}),))
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(ca.leaf.key_pem, ca.leaf.chain_pem)]))
    await server.start()
    term = Terminal()
    await term.start("--confdir", str(tmp_path / "conf"), "--set", f"ssl_verify_upstream_trusted_ca={ca.path}")
    try:
        proxy_ca = (tmp_path / "conf" / "interpose-ca-cert.pem").read_bytes()
        creds = grpc.ssl_channel_credentials(root_certificates=proxy_ca)
        async with grpc.aio.secure_channel(f"localhost:{port}", creds, options=[("grpc.http_proxy", term.url)]) as ch:
            call = ch.unary_unary("/shop.Orders/Get", request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=Order.FromString)
            try:
                request = Item(id=42, label="which order? " * 40)  # long enough for grpc to compress it
                await asyncio.wait_for(call(request, compression=grpc.Compression.Gzip), 30)
            except grpc.aio.AioRpcError:
                pass  # the proxy drops HTTP/2 trailers (for now): the client misses grpc-status; the flow is whole
        await term.wait_for(re.compile(r"POST\s+https://localhost:\d+/shop\.Orders/Get\s+200 grpc"))
        await term.press("enter")
        screen = await term.wait_for("── gRPC (1 message, 1 compressed) [m: auto]")
        assert "grpc-encoding: gzip" in screen
        assert re.search(r"── message 1 \(\d+ B, gzip: 525 B\)", screen)
        assert '2 len string: "which order? which order?' in screen and "1 varint: 42" in screen
        await term.press("tab")
        screen = await term.wait_for('1 len string: "Ada Lovelace"')
        assert "── gRPC (1 message) [m: auto]" in screen and "as packed varint: 1, 150, 3, 270" in screen
    finally:
        await term.stop()
        await server.stop(None)
