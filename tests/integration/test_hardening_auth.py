"""Hardening: proxy authentication fails closed, and hostile host names end in a clean error flow.

Each test sends the hostile input over a real socket (or real curl), checks the safe outcome, then checks
that the proxy still serves a normal request.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
import struct
from typing import Any

import pytest

from interpose.proxy.upstream import invalid_host
from tests.conftest import Recorder, curl, raw_request


def basic(raw: bytes) -> bytes:
    return b"Basic " + base64.b64encode(raw)


async def head_of(host: str, port: int, data: bytes) -> bytes:
    return await raw_request(host, port, data, timeout=10)


async def serves(proxy: Any, origin: Any, *auth: str) -> None:
    """A normal request through the proxy still works."""
    code, out, err = await curl("-s", "-x", proxy.url, *auth, f"{origin.url}/still-serving")
    assert code == 0, err
    assert out == b"ok /still-serving"


# -- proxy authentication ---------------------------------------------------------------------------

HOSTILE_CREDENTIALS = [
    pytest.param(basic("jürgen:whatever".encode()), id="non-ascii-user"),
    pytest.param(basic("alice:s3crét".encode()), id="non-ascii-password"),
    pytest.param(basic(b"\xff\xfe:\xff"), id="not-utf8"),
    pytest.param(b"Basic !!!not-base64!!!", id="bad-base64"),
    pytest.param(b"Basic " + base64.b64encode(b"alice:s3cret")[:-2], id="truncated-base64"),
    pytest.param(basic(b"alices3cret"), id="no-colon"),
    pytest.param(b"Basic", id="no-token"),
    pytest.param(b"Basic \xc3\xbcml\xc3\xa4ut", id="non-ascii-token"),
    pytest.param(b"Bearer alice:s3cret", id="other-scheme"),
    pytest.param(basic(b"alice:s3cret" + b"x" * 30000), id="huge"),
    pytest.param(b"Basic " + b"QUFB" * 12000, id="huge-base64"),
]


@pytest.mark.parametrize("value", HOSTILE_CREDENTIALS)
async def test_hostile_credentials_are_refused(strict_make_proxy, origin, value):
    proxy = await strict_make_proxy(proxyauth="alice:s3cret")
    req = (f"GET {origin.url}/leak HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\n".encode()
           + b"Proxy-Authorization: " + value + b"\r\nConnection: close\r\n\r\n")
    out = await head_of(proxy.host, proxy.port, req)
    assert out.startswith(b"HTTP/1.1 407"), out[:200]
    assert origin.received == []
    await serves(proxy, origin, "--proxy-user", "alice:s3cret")


@pytest.mark.parametrize("value", HOSTILE_CREDENTIALS[:4])
async def test_hostile_credentials_get_no_tunnel(strict_make_proxy, origin, value):
    proxy = await strict_make_proxy(proxyauth="alice:s3cret")
    req = (f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\n".encode()
           + b"Proxy-Authorization: " + value + b"\r\n\r\nGET /leak HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = await head_of(proxy.host, proxy.port, req)
    assert out.startswith(b"HTTP/1.1 407"), out[:200]
    assert b"ok /leak" not in out and origin.received == []
    await serves(proxy, origin, "--proxy-user", "alice:s3cret")


async def test_non_ascii_credentials_in_htpasswd_and_reverse_modes(strict_make_proxy, origin, tmp_path):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("user1:{SHA}" + base64.b64encode(hashlib.sha1(b"pw1").digest()).decode() + "\n")
    proxy = await strict_make_proxy(proxyauth=f"@{htpasswd}")
    for value in (basic("jürgen:pw1".encode()), basic("user1:pw1é".encode())):
        out = await head_of(proxy.host, proxy.port, f"GET {origin.url}/x HTTP/1.1\r\nHost: h\r\n".encode()
                            + b"Proxy-Authorization: " + value + b"\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 407"), out[:200]
    await serves(proxy, origin, "--proxy-user", "user1:pw1")

    reverse = await strict_make_proxy(mode=f"reverse:{origin.url}", proxyauth="alice:s3cret")
    out = await head_of(reverse.host, reverse.port, b"GET /r HTTP/1.1\r\nHost: h\r\nAuthorization: "
                        + basic("jürgen:whatever".encode()) + b"\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 401"), out[:200]
    assert origin.received[-1].path == "/still-serving"  # the reverse proxy forwarded nothing
    code, out, err = await curl("-s", "-u", "alice:s3cret", f"{reverse.url}/after")
    assert out == b"ok /after", err


async def test_non_ascii_credentials_that_match_are_accepted(strict_make_proxy, origin):
    proxy = await strict_make_proxy(proxyauth="jürgen:pässword")
    code, out, err = await curl("-s", "-x", proxy.url, "--proxy-user", "jürgen:pässword", f"{origin.url}/in")
    assert out == b"ok /in", err
    code, out, err = await curl("-s", "-x", proxy.url, "--proxy-user", "jürgen:passwörd", f"{origin.url}/out")
    assert b"proxy authentication required" in out
    assert [r.path for r in origin.received] == ["/in"]


# -- hostile host names -------------------------------------------------------------------------------

HOSTILE_NAMES = [
    pytest.param("a" * 3000, "longer than 253 bytes", id="3000-bytes"),
    pytest.param("a..b.example", "empty label", id="empty-label"),
    pytest.param("x" * 64 + ".example", "label longer than 63", id="long-label"),
    pytest.param(".".join(["a" * 63] * 4) + ".example", "longer than 253 bytes", id="long-name"),
]


def errors_of(rec: Recorder) -> list[str]:
    return [a[0].error.msg for n, a in rec.calls if n in ("error", "tcp_error")]


@pytest.mark.parametrize(("name", "why"), HOSTILE_NAMES)
async def test_absolute_form_with_hostile_name(strict_make_proxy, origin, name, why):
    rec = Recorder(["error"])
    proxy = await strict_make_proxy(rec)
    out = await head_of(proxy.host, proxy.port, f"GET http://{name}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 502") and b"invalid host name" in out and why.encode() in out, out[:300]
    await rec.wait_for("error")
    assert "invalid host name" in errors_of(rec)[0]
    await serves(proxy, origin)


@pytest.mark.parametrize(("name", "why"), HOSTILE_NAMES)
async def test_connect_target_with_hostile_name(strict_make_proxy, origin, name, why):
    rec = Recorder(["error"])
    proxy = await strict_make_proxy(rec)
    out = await head_of(proxy.host, proxy.port, f"CONNECT {name}:80 HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                        + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    # Refused at the CONNECT, with the reason, and the connection closes: no tunnel opens.
    assert out.startswith(b"HTTP/1.1 502") and b"invalid host name" in out and why.encode() in out, out[:300]
    assert out.count(b"HTTP/1.1 ") == 1
    await rec.wait_for("error")
    assert "invalid host name" in errors_of(rec)[0]
    await serves(proxy, origin)


async def test_tcp_tunnel_to_hostile_name(strict_make_proxy, origin):
    rec = Recorder(["error", "tcp_error"])
    proxy = await strict_make_proxy(rec, tcp_hosts=["example"])
    out = await head_of(proxy.host, proxy.port, b"CONNECT a..b.example:25 HTTP/1.1\r\nHost: x\r\n\r\nHELO\r\n")
    assert out.startswith(b"HTTP/1.1 502") and b"empty label" in out, out[:300]
    await rec.wait_for("error")
    assert "invalid host name" in errors_of(rec)[0]
    await serves(proxy, origin)


class RouteByHost:
    """An addon that sends each request where its Host header says (as some setups do)."""

    def request(self, flow: Any) -> None:
        flow.request.host = flow.request.headers["host"].partition(":")[0]  # no IPv6 literals here


@pytest.mark.parametrize(("name", "why"), HOSTILE_NAMES)
async def test_host_header_with_hostile_name(strict_make_proxy, origin, name, why):
    rec = Recorder(["error"])
    proxy = await strict_make_proxy(RouteByHost(), rec)
    out = await head_of(proxy.host, proxy.port, f"GET {origin.url}/x HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 502") and b"invalid host name" in out and why.encode() in out, out[:300]
    await rec.wait_for("error")
    assert origin.received == []
    code, out, err = await curl("-s", "-x", proxy.url, f"{origin.url}/still-serving")
    assert out == b"ok /still-serving", err


class RawSniContext(ssl.SSLContext):
    """A client context that puts the SNI on the wire as given (the ssl module would IDNA-encode it)."""

    def _encode_hostname(self, hostname: Any) -> Any:
        return hostname


@pytest.mark.parametrize("sni", ["a..b.example", "a" * 250, "x" * 64 + ".example"])
async def test_hostile_sni(strict_make_proxy, origin, sni):
    rec = Recorder(["error"])
    proxy = await strict_make_proxy(rec)
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    try:
        writer.write(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        async with asyncio.timeout(10):
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            ctx = RawSniContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            await writer.start_tls(ctx, server_hostname=sni)
            writer.write(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            out = await reader.read()
    finally:
        writer.close()
    assert out.startswith(b"HTTP/1.1 502") and b"invalid host name" in out and b"SNI" in out, out[:300]
    await rec.wait_for("error")
    assert origin.received == []
    await serves(proxy, origin)


def client_hello(sni: bytes) -> bytes:
    """A minimal TLS 1.2 ClientHello record carrying `sni`, of any length (no TLS library sends over 255)."""
    name = b"\x00" + struct.pack("!H", len(sni)) + sni
    sni_ext = struct.pack("!HH", 0, len(name) + 2) + struct.pack("!H", len(name)) + name
    body = (b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x04\xc0\x2f\x00\x9c" + b"\x01\x00"
            + struct.pack("!H", len(sni_ext)) + sni_ext)
    handshake = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


async def test_3000_byte_sni(strict_make_proxy, origin):
    rec = Recorder(["log"])
    proxy = await strict_make_proxy(rec)
    out = await head_of(proxy.host, proxy.port, f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                        + client_hello(b"a" * 3000))
    assert out.startswith(b"HTTP/1.1 200")
    # The server connection is refused before any resolver or TLS library sees the name (no internal error,
    # no traceback); the client's handshake then fails (OpenSSL refuses an SNI over 255 bytes) and is logged.
    msgs = [a[0].msg for n, a in rec.calls]
    assert any(m.startswith("client TLS handshake for aaaa") for m in msgs), msgs
    assert all(len(m) < 600 for m in msgs), max(msgs, key=len)[:200]  # the name is shortened in the log
    assert any("... (3000 characters)" in m for m in msgs), msgs
    assert not any("Traceback" in m or "internal error" in m for m in msgs)
    assert origin.connections == 0
    await serves(proxy, origin)


# -- the rule itself ---------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["localhost", "example.com.", "_srv.x-y.example", "a" * 63 + ".example",
                                  ".".join(["a" * 63] * 3) + "." + "b" * 61, "jürgen.example", "127.0.0.1",
                                  "::1", "[::1]"])
def test_valid_names(host):
    assert invalid_host(host) is None


@pytest.mark.parametrize("host", ["", ".", "a..b", ".a", "a" * 64, ".".join(["a" * 63] * 3) + "." + "b" * 62,
                                  "a b", "a\x00b", "a/b", "ä" * 64, "a:b"])
def test_invalid_names(host):
    reason = invalid_host(host)
    assert reason is not None and reason.startswith("invalid host name")
