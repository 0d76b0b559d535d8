"""SOCKS5 mode with real curl: plain HTTP and HTTPS through the SOCKS tunnel, and bad clients."""
from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest

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


# -- host names, and username/password authentication (RFC 1929) -----------------------------------------

async def socks5(port: int, greeting: bytes, *steps: tuple[bytes, int]) -> list[bytes]:
    """Send the greeting, then each (bytes, answer length) step; returns the answers, then what came before EOF."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    try:
        async with asyncio.timeout(10):
            writer.write(greeting)
            answers.append(await reader.readexactly(2))
            for data, n in steps:
                writer.write(data)
                answers.append(await reader.readexactly(n))
            answers.append(await reader.read())
    finally:
        writer.close()
    return answers


def domain_request(name: bytes, port: int = 80) -> bytes:
    return b"\x05\x01\x00\x03" + bytes([len(name)]) + name + port.to_bytes(2, "big")


async def test_hostname_through_socks5(make_proxy, origin):
    rec = Recorder(["response"])
    proxy = await make_proxy(rec, mode="socks5")
    code, out, err = await curl("--socks5-hostname", f"127.0.0.1:{proxy.port}",
                                f"http://localhost:{origin.port}/by-name")
    assert code == 0, err
    assert out == b"ok /by-name"
    await rec.wait_for("response")
    assert [a[0].request.host for n, a in rec.calls][-1] == "localhost"


async def test_name_case_does_not_matter(make_proxy, origin):
    proxy = await make_proxy(mode="socks5")
    code, out, err = await curl("--socks5-hostname", f"127.0.0.1:{proxy.port}", f"http://LocalHost:{origin.port}/n")
    assert out == b"ok /n", err


@pytest.mark.parametrize("name", [
    pytest.param(b".", id="1-byte"),
    pytest.param(b"a..b.example", id="empty-label"),
    pytest.param(b"x" * 64 + b".example", id="long-label"),
    pytest.param(b"a" * 255, id="255-bytes"),
    pytest.param(b".".join([b"a" * 63] * 4)[:254], id="254-bytes"),
    pytest.param(b"\xff\xfe.example", id="not-utf8"),
    pytest.param(b"a b.example", id="space"),
    pytest.param(b"a\x00b.example", id="nul"),
])
async def test_invalid_names_get_general_failure(make_proxy, origin, name):
    rec = Recorder(["log"])
    proxy = await make_proxy(rec, mode="socks5")
    hello, reply, rest = await socks5(proxy.port, b"\x05\x01\x00", (domain_request(name), 10))
    assert hello == b"\x05\x00"
    assert reply[:2] == b"\x05\x01"  # general SOCKS server failure
    assert rest == b""  # and the connection closes
    msgs = [a[0].msg for n, a in rec.calls]
    assert any("SOCKS5:" in m for m in msgs) and not any("Traceback" in m for m in msgs)
    code, out, err = await curl("--socks5-hostname", f"127.0.0.1:{proxy.port}", f"http://localhost:{origin.port}/a")
    assert out == b"ok /a", err


async def test_empty_name_gets_general_failure(make_proxy, origin):
    proxy = await make_proxy(mode="socks5")
    hello, reply, rest = await socks5(proxy.port, b"\x05\x01\x00", (b"\x05\x01\x00\x03\x00\x00\x50", 10))
    assert reply[:2] == b"\x05\x01" and rest == b""
    code, out, err = await curl("--socks5-hostname", f"127.0.0.1:{proxy.port}", f"http://localhost:{origin.port}/e")
    assert out == b"ok /e", err


async def test_name_that_does_not_resolve_gets_host_unreachable(make_proxy, origin):
    """A 253-byte name, valid in form, in the .invalid domain (RFC 6761: it never resolves)."""
    proxy = await make_proxy(mode="socks5")
    name = (b".".join([b"a" * 63] * 3) + b"." + b"b" * 53 + b".invalid")
    assert len(name) == 253
    for n in (name, b"does-not-exist.invalid"):
        hello, reply, rest = await socks5(proxy.port, b"\x05\x01\x00", (domain_request(n), 10))
        assert reply[:2] == b"\x05\x04" and rest == b""  # host unreachable
    code, out, err = await curl("--socks5-hostname", f"127.0.0.1:{proxy.port}", f"http://localhost:{origin.port}/b")
    assert out == b"ok /b", err


async def test_username_password(make_proxy, origin):
    proxy = await make_proxy(mode="socks5", proxyauth="alice:s3cret")
    code, out, err = await curl("-x", f"socks5h://alice:s3cret@127.0.0.1:{proxy.port}",
                                f"http://localhost:{origin.port}/in")
    assert code == 0, err
    assert out == b"ok /in"  # and no 407 for the request inside the tunnel
    code, out, err = await curl("-x", f"socks5h://alice:wrong@127.0.0.1:{proxy.port}",
                                f"http://localhost:{origin.port}/wrong")
    assert code != 0 and out == b""
    code, out, err = await curl("--socks5-hostname", f"127.0.0.1:{proxy.port}", f"http://localhost:{origin.port}/none")
    assert code != 0 and out == b""
    assert [r.path for r in origin.received] == ["/in"]


async def test_only_username_password_is_offered_with_proxyauth(make_proxy, origin):
    proxy = await make_proxy(mode="socks5", proxyauth="alice:s3cret")
    hello, rest = await socks5(proxy.port, b"\x05\x01\x00")
    assert hello == b"\x05\xff" and rest == b""
    hello, rest = await socks5(proxy.port, b"\x05\x00")  # no methods at all
    assert hello == b"\x05\xff" and rest == b""
    code, out, err = await curl("-x", f"socks5h://alice:s3cret@127.0.0.1:{proxy.port}",
                                f"http://localhost:{origin.port}/after")
    assert out == b"ok /after", err


def login(user: bytes, password: bytes) -> bytes:
    return b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password


@pytest.mark.parametrize(("spec", "user", "password", "ok"), [
    ("alice:s3cret", b"alice", b"s3cret", True),
    ("alice:s3cret", b"alice", b"wrong", False),
    ("alice:s3cret", b"", b"", False),
    ("alice:s3cret", "jürgen".encode(), b"whatever", False),
    ("alice:s3cret", b"\xff\xfe", b"\xff", False),
    ("alice:s3cret", b"a" * 255, b"b" * 255, False),
    ("jürgen:pässword", "jürgen".encode(), "pässword".encode(), True),
    ("any", b"who", b"ever", True),
])
async def test_login_exchange(make_proxy, origin, spec, user, password, ok):
    proxy = await make_proxy(mode="socks5", proxyauth=spec)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        async with asyncio.timeout(10):
            writer.write(b"\x05\x02\x00\x02")
            assert await reader.readexactly(2) == b"\x05\x02"
            writer.write(login(user, password))
            status = await reader.readexactly(2)
            if ok:
                assert status == b"\x01\x00"
                writer.write(domain_request(b"localhost", origin.port))
                assert (await reader.readexactly(10))[:2] == b"\x05\x00"
                writer.write(b"GET /raw HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            else:
                assert status[0] == 1 and status[1] != 0
            rest = await reader.read()
    finally:
        writer.close()
    if ok:
        assert rest.startswith(b"HTTP/1.1 200") and rest.endswith(b"ok /raw")
        return
    assert rest == b"" and origin.received == []  # refused, and the connection closed
    good = "alice:s3cret" if spec == "alice:s3cret" else "x:y"
    code, out, err = await curl("-x", f"socks5h://{good}@127.0.0.1:{proxy.port}", f"http://localhost:{origin.port}/a")
    assert out == b"ok /a", err


async def test_htpasswd_login(make_proxy, origin, tmp_path):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("user1:{SHA}" + base64.b64encode(hashlib.sha1(b"pw1").digest()).decode() + "\n")
    proxy = await make_proxy(mode="socks5", proxyauth=f"@{htpasswd}")
    code, out, err = await curl("-x", f"socks5h://user1:pw1@127.0.0.1:{proxy.port}", f"http://localhost:{origin.port}/h")
    assert out == b"ok /h", err
    code, out, err = await curl("-x", f"socks5h://user1:pw2@127.0.0.1:{proxy.port}", f"http://localhost:{origin.port}/x")
    assert code != 0 and out == b""
