"""SOCKS5 mode with real curl: plain HTTP and HTTPS through the SOCKS tunnel, and bad clients."""
from __future__ import annotations

import asyncio

from tests.conftest import Recorder, curl


async def test_http_through_socks5(make_proxy, origin):
    rec = Recorder(["next_layer", "response"])
    proxy = await make_proxy(rec, mode="socks5")
    code, out, err = await curl("--socks5-hostname", f"127.0.0.1:{proxy.port}", f"{origin.url}/via-socks")
    assert code == 0, err
    assert out == b"ok /via-socks"
    await rec.wait_for("response")
    flow = [a[0] for n, a in rec.calls if n == "response"][-1]
    assert flow.request.path == "/via-socks" and flow.request.port == origin.port
    kinds = [a[0].kind for n, a in rec.calls if n == "next_layer"]
    assert kinds[:2] == ["socks5", "http1"]


async def test_ipv4_address_form(make_proxy, origin):
    proxy = await make_proxy(mode="socks5")
    code, out, err = await curl("--socks5", f"127.0.0.1:{proxy.port}", f"{origin.url}/ipv4")
    assert code == 0, err
    assert out == b"ok /ipv4"


async def test_non_socks_client_is_dropped_and_proxy_keeps_serving(make_proxy, origin):
    rec = Recorder(["log"])
    proxy = await make_proxy(rec, mode="socks5")
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    writer.close()
    assert any("not a SOCKS5 client" in a[0].msg for n, a in rec.calls if n == "log")
    code, out, _ = await curl("--socks5-hostname", f"127.0.0.1:{proxy.port}", f"{origin.url}/after")
    assert out == b"ok /after"


async def test_bind_command_is_refused(make_proxy):
    proxy = await make_proxy(mode="socks5")
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"\x05\x01\x00")
    async with asyncio.timeout(5):
        assert await reader.readexactly(2) == b"\x05\x00"
        writer.write(b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50")  # BIND 127.0.0.1:80
        reply = await reader.readexactly(10)
    assert reply[1] == 0x07  # command not supported
    writer.close()
