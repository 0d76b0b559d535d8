"""interpose.proxy.transparent.original_destination on sockets nobody redirected: a reason, never a crash."""
from __future__ import annotations

import asyncio
import socket
import sys

import pytest

from interpose.proxy.transparent import NoOriginalDestination, original_destination

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_ORIGINAL_DST is Linux only")


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_a_direct_connection_has_no_original_destination(family, host):
    with socket.socket(family) as listener:
        try:
            listener.bind((host, 0))
        except OSError as e:
            pytest.skip(f"cannot bind {host}: {e}")
        listener.listen(1)
        with socket.create_connection(listener.getsockname()[:2]) as client:
            accepted, _ = listener.accept()
            with accepted:
                with pytest.raises(NoOriginalDestination) as exc:
                    original_destination(accepted, accepted.getsockname())
    # Without connection tracking there is none; with it, the destination is the listener itself.
    assert "not through" in str(exc.value) and "redirect" in str(exc.value)
    assert client is not None


def test_other_sockets_are_refused_with_a_reason():
    a, b = socket.socketpair()
    with a, b:
        with pytest.raises(NoOriginalDestination, match="not a TCP/IP socket"):
            original_destination(a, ())
    with pytest.raises(NoOriginalDestination, match="no socket"):
        original_destination(None, ())


async def test_proxyauth_is_refused_in_transparent_mode(make_proxy):
    from interpose.errors import OptionsError

    with pytest.raises(OptionsError, match="transparent mode"):
        await make_proxy(mode="transparent", proxyauth="user:pass")
    proxy = await make_proxy(mode="transparent")
    with pytest.raises(OptionsError, match="transparent mode"):
        proxy.options.update(proxyauth="user:pass")
    assert not proxy.options.proxyauth


HELLO_TLS = bytes.fromhex("16030100") + b"\x2a" + b"\x01" + b"\x00" * 41  # a TLS record header and some
"""bytes of a ClientHello: enough for a TLS guess, had the proxy got as far as reading it."""


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_a_direct_connection_to_the_transparent_listener_is_one_warning_and_closed(make_proxy, host):
    """No netns, no iptables: a client connects to the transparent listener on loopback itself (plain HTTP,
    the start of a TLS handshake, silence). Each connection is closed after one warning line naming the
    client and the reason; nothing becomes a flow, nothing is logged as an error (no traceback); the proxy
    keeps accepting."""
    from tests.conftest import Recorder

    rec = Recorder(["log", "clientconnect", "clientdisconnect", "requestheaders", "error", "tcp_start"])
    try:
        proxy = await make_proxy(rec, mode="transparent", listen_host=host)
    except OSError as e:
        pytest.skip(f"cannot listen on {host}: {e}")
    firsts = [b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", HELLO_TLS, b""]
    for i, first in enumerate(firsts * 2):
        reader, writer = await asyncio.open_connection(host, proxy.port)
        local = writer.get_extra_info("sockname")
        if first:
            writer.write(first)
        async with asyncio.timeout(10):
            try:
                assert await reader.read() == b""  # closed (a reset when the request was still unread)
            except ConnectionResetError:
                pass
        writer.close()
        await rec.wait_for("clientdisconnect", i + 1)
        warnings = [a[0].msg for n, a in rec.calls if n == "log" and a[0].level == "warn" and "transparent" in a[0].msg]
        assert len(warnings) == i + 1, warnings
        line = warnings[-1]
        assert "\n" not in line and str(local[1]) in line, line
        assert "not through" in line and "redirect" in line and line.endswith("connection closed"), line
    assert not [n for n, _ in rec.calls if n in ("requestheaders", "error", "tcp_start")]
    assert not [a[0].msg for n, a in rec.calls if n == "log" and a[0].level == "error"]
    assert rec.names.count("clientconnect") == len(firsts) * 2
