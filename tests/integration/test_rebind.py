"""listen_host, listen_port and mode change at run time: the listener re-binds (the new one opened first,
the old one closed, open connections kept), a bind that fails is refused with the reason, and an invalid
value is refused by the same check as `--set`. Real sockets, a real origin."""
from __future__ import annotations

import asyncio
import socket

import pytest

from interpose.errors import OptionsError
from interpose.runtime.entry import Core


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class KeepAlive:
    """One HTTP/1.1 client connection to the proxy, used for several requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> KeepAlive:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def get(self, url: str) -> bytes:
        self.writer.write(f"GET {url} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
        async with asyncio.timeout(10):
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            return head + await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def refused(port: int) -> bool:
    try:
        _, w = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    w.close()
    return False


async def test_a_new_port_serves_the_old_one_stops_and_an_open_connection_carries_on(proxy, origin):
    old = proxy.port
    kept = await KeepAlive.open(old)
    assert (await kept.get(f"{origin.url}/json")).startswith(b"HTTP/1.1 200")
    new = free_port()
    host, port = await proxy.master.set_options(listen_port=new)
    assert (host, port) == ("127.0.0.1", new) and proxy.options.listen_port == new
    assert await refused(old)
    fresh = await KeepAlive.open(new)
    assert (await fresh.get(f"{origin.url}/json")).startswith(b"HTTP/1.1 200")
    assert (await kept.get(f"{origin.url}/json?again")).startswith(b"HTTP/1.1 200")  # the old connection lives
    assert [r.path for r in origin.received][-2:] == ["/json", "/json?again"]
    kept.close()
    fresh.close()


async def test_a_port_in_use_is_refused_with_the_reason_and_nothing_changes(proxy, origin):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        with pytest.raises(OptionsError, match=rf"cannot listen at 127\.0\.0\.1:{port}: Address already in use"):
            await proxy.master.set_options(listen_port=port)
        assert proxy.options.listen_port == 0 and proxy.master.server.address[1] == proxy.port
        c = await KeepAlive.open(proxy.port)
        assert (await c.get(f"{origin.url}/json")).startswith(b"HTTP/1.1 200")
        c.close()
    finally:
        busy.close()


async def test_mode_applies_to_new_connections_and_the_open_ones_keep_theirs(proxy, origin):
    kept = await KeepAlive.open(proxy.port)
    assert (await kept.get(f"{origin.url}/json")).startswith(b"HTTP/1.1 200")
    await proxy.master.set_options(mode="socks5")
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    w.write(b"\x05\x01\x00")  # SOCKS5 greeting: no authentication
    async with asyncio.timeout(10):
        assert await r.readexactly(2) == b"\x05\x00"
    w.close()
    assert (await kept.get(f"{origin.url}/json?2")).startswith(b"HTTP/1.1 200")
    kept.close()


async def test_an_invalid_value_is_refused_as_set_refuses_it(proxy):
    for name, text in (("mode", "regulcustom-tag"), ("listen_port", "80echo"), ("listen_port", "70000"),
                       ("intercept", "~nonsense"), ("ignore_hosts", "[unclosed")):
        with pytest.raises(OptionsError) as from_set:
            proxy.options.set(f"{name}={text}")
        with pytest.raises(OptionsError) as from_ui:
            await Core(proxy.master, asyncio.get_running_loop()).set_option_text(name, text)
        assert str(from_ui.value) == str(from_set.value)
        assert name in str(from_ui.value)
    assert proxy.options.mode == "regular" and proxy.options.listen_port == 0
    assert proxy.master.server.mode.kind == "regular"


async def test_the_ui_path_rebinds_through_core(proxy, origin):
    core = Core(proxy.master, asyncio.get_running_loop())
    new = free_port()
    assert await core.set_option_text("listen_port", str(new)) == ("127.0.0.1", new)
    c = await KeepAlive.open(new)
    assert (await c.get(f"{origin.url}/json")).startswith(b"HTTP/1.1 200")
    c.close()
    try:
        address = await core.reset_option("listen_port")  # back to the default, 8080
    except OptionsError as e:
        assert "cannot listen at 127.0.0.1:8080" in str(e)  # something else has it
        assert proxy.options.listen_port == new
    else:
        assert address == ("127.0.0.1", 8080) and proxy.options.listen_port == 8080


async def test_an_addon_assigning_the_port_is_followed(proxy, origin):
    new = free_port()
    proxy.options.listen_port = new  # as an addon would, not through set_options
    async with asyncio.timeout(10):
        while proxy.master.server.address[1] != new:
            await asyncio.sleep(0)
    c = await KeepAlive.open(new)
    assert (await c.get(f"{origin.url}/json")).startswith(b"HTTP/1.1 200")
    c.close()
    assert await refused(proxy.port)


async def test_the_same_port_moves_to_another_address(proxy, origin):
    kept = await KeepAlive.open(proxy.port)
    assert (await kept.get(f"{origin.url}/json")).startswith(b"HTTP/1.1 200")
    await proxy.master.set_options(listen_port=proxy.port)  # the port as a number, not 0 any more
    host, port = await proxy.master.set_options(listen_host="0.0.0.0")  # the system refuses a second socket
    assert (host, port) == ("0.0.0.0", proxy.port) and proxy.options.listen_host == "0.0.0.0"
    fresh = await KeepAlive.open(proxy.port)
    assert (await fresh.get(f"{origin.url}/json?new")).startswith(b"HTTP/1.1 200")
    assert (await kept.get(f"{origin.url}/json?kept")).startswith(b"HTTP/1.1 200")
    kept.close()
    fresh.close()


async def test_a_failed_move_listens_where_it_did(proxy, origin):
    await proxy.master.set_options(listen_port=proxy.port)
    with pytest.raises(OptionsError, match="cannot listen at 192.0.2.1"):  # an address this host does not have
        await proxy.master.set_options(listen_host="192.0.2.1")
    other = socket.socket()  # someone else has the port at another loopback address
    other.bind(("127.0.0.2", proxy.port))
    other.listen()
    try:
        # 0.0.0.0 is refused even once the proxy's own listener is closed: it listens at 127.0.0.1 again
        with pytest.raises(OptionsError, match=rf"cannot listen at 0\.0\.0\.0:{proxy.port}: Address already in use"):
            await proxy.master.set_options(listen_host="0.0.0.0")
    finally:
        other.close()
    assert proxy.options.listen_host == "127.0.0.1" and proxy.master.server.listening
    c = await KeepAlive.open(proxy.port)
    assert (await c.get(f"{origin.url}/json")).startswith(b"HTTP/1.1 200")
    c.close()
