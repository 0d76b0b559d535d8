"""interpose.proxy.upstream.connect_tunnel: the CONNECT client, against a scripted proxy on a loopback socket."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from interpose.proxy.upstream import ServerConnectError, TunnelRefused, connect_tunnel

WAIT = 10


@asynccontextmanager
async def scripted_proxy(answer: bytes, then_close: bool = False) -> AsyncIterator[
        tuple[asyncio.StreamReader, asyncio.StreamWriter, Callable[[], bytes]]]:
    """A 'proxy' that reads one request head, answers `answer` (and hangs up if told, else waits for the
    client to); yields a client connected to it and a function giving the head it read."""
    heads: list[bytes] = []
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(answer)
            await writer.drain()
            if not then_close:
                await reader.read()  # until the client hangs up
        finally:
            writer.close()
            await writer.wait_closed()
            done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer, lambda: heads[0]
    finally:
        writer.close()
        async with asyncio.timeout(WAIT):
            await writer.wait_closed()
            await done.wait()
        server.close()
        await server.wait_closed()


async def test_tunnel_opens_and_sends_host_and_extra_headers():
    async with scripted_proxy(b"HTTP/1.1 200 Connection established\r\n\r\n") as (reader, writer, head):
        async with asyncio.timeout(WAIT):
            early = await connect_tunnel(reader, writer, "example.com", 443, [("Proxy-Authorization", "Basic eA==")])
        assert early == b""
        lines = head().decode().split("\r\n")
        assert lines[0] == "CONNECT example.com:443 HTTP/1.1"
        assert lines[1:3] == ["Host: example.com:443", "Proxy-Authorization: Basic eA=="]


async def test_ipv6_authority_is_bracketed():
    async with scripted_proxy(b"HTTP/1.1 200 OK\r\n\r\n") as (reader, writer, head):
        async with asyncio.timeout(WAIT):
            await connect_tunnel(reader, writer, "::1", 8443)
        assert head().startswith(b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n")


async def test_bytes_after_the_answer_are_given_back():
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nSSH-2.0-server\r\n"
    async with scripted_proxy(answer) as (reader, writer, _):
        async with asyncio.timeout(WAIT):
            assert await connect_tunnel(reader, writer, "h", 22) == b"SSH-2.0-server\r\n"


async def test_refusal_says_status_and_reason():
    answer = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 13\r\n\r\nlog in first\n"
    async with scripted_proxy(answer) as (reader, writer, _):
        with pytest.raises(TunnelRefused) as info:
            async with asyncio.timeout(WAIT):
                await connect_tunnel(reader, writer, "example.com", 443)
    e = info.value
    assert str(e) == "upstream proxy refused CONNECT: 407 Proxy Authentication Required"
    assert (e.status_code, e.reason, e.body) == (407, "Proxy Authentication Required", b"")
    assert isinstance(e, ServerConnectError)


@pytest.mark.parametrize(("answer", "then_close"), [
    (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 16\r\n\r\nnot this host.\r\n", False),
    (b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\nnot this host.\r\n", True),  # read until the close
])
async def test_refusal_body_when_asked_for(answer, then_close):
    async with scripted_proxy(answer, then_close) as (reader, writer, _):
        with pytest.raises(TunnelRefused) as info:
            async with asyncio.timeout(WAIT):
                await connect_tunnel(reader, writer, "example.com", 443, refusal_body=True)
    assert info.value.status_code == 403
    assert info.value.body == b"not this host.\r\n"


async def test_proxy_hanging_up_is_a_clear_error():
    async with scripted_proxy(b"", then_close=True) as (reader, writer, _):
        with pytest.raises(ServerConnectError, match="upstream proxy closed the connection during CONNECT"):
            async with asyncio.timeout(WAIT):
                await connect_tunnel(reader, writer, "example.com", 443)
