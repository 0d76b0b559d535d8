"""`--mode transparent` on Linux, in network namespaces with a real iptables REDIRECT.

    client ns (10.231.0.2, fd31::2) --veth--> gateway ns (10.231.0.1, fd31::1)
                                              servers on 10.232.0.1 / fd32::1 (its lo)
                                              nat PREROUTING -i veth -p tcp -j REDIRECT --to-ports PROXY

The test's thread enters the gateway namespace (setns) for the whole test, so the in-process proxy and
origins live there; clients run with `ip netns exec CLIENT ...`. Needs root, `ip`, `iptables` and
`ip6tables`: otherwise every test here is skipped with the reason.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from interpose.http import HTTPFlow
from tests.conftest import Recorder
from tests.servers import Origin

CLONE_NEWNET = 0x40000000
GW_V4, CLIENT_V4, SERVER_V4 = "10.231.0.1", "10.231.0.2", "10.232.0.1"
GW_V6, CLIENT_V6, SERVER_V6 = "fd31::1", "fd31::2", "fd32::1"


def _why_not() -> str | None:
    if not sys.platform.startswith("linux"):
        return "transparent mode is Linux only"
    if os.geteuid() != 0:
        return "needs root: network namespaces and iptables"
    missing = [t for t in ("ip", "iptables", "ip6tables", "curl") if shutil.which(t) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (apt-get install -y iproute2 iptables curl)"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


class Net:
    """The two namespaces; `redirect(port)` installs the REDIRECT rules towards the proxy's port."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.gw, self.client = f"ipm-gw-{tag}", f"ipm-cl-{tag}"
        self.veth_gw, self.veth_client = f"ipmg{tag}", f"ipmc{tag}"

    def up(self) -> None:
        gw, cl = self.gw, self.client
        run("ip", "netns", "add", gw)
        run("ip", "netns", "add", cl)
        run("ip", "link", "add", self.veth_gw, "netns", gw, "type", "veth", "peer", "name", self.veth_client,
            "netns", cl)
        for ns, dev, v4, v6 in ((gw, self.veth_gw, GW_V4, GW_V6), (cl, self.veth_client, CLIENT_V4, CLIENT_V6)):
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", ns, "link", "set", dev, "up")
            run("ip", "-n", ns, "addr", "add", f"{v4}/24", "dev", dev)
            run("ip", "-n", ns, "-6", "addr", "add", f"{v6}/64", "dev", dev, "nodad")
        run("ip", "-n", gw, "addr", "add", f"{SERVER_V4}/32", "dev", "lo")
        run("ip", "-n", gw, "-6", "addr", "add", f"{SERVER_V6}/128", "dev", "lo")
        run("ip", "-n", cl, "route", "add", "default", "via", GW_V4)
        run("ip", "-n", cl, "-6", "route", "add", "default", "via", GW_V6)

    def redirect(self, port: int, family: int = 4) -> None:
        tool = "iptables" if family == 4 else "ip6tables"
        run("ip", "netns", "exec", self.gw, tool, "-t", "nat", "-A", "PREROUTING", "-i", self.veth_gw, "-p", "tcp",
            "-j", "REDIRECT", "--to-ports", str(port))

    def down(self) -> None:
        for ns in (self.client, self.gw):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """Run this thread in network namespace `ns` (sockets made meanwhile stay in it), then come back."""
    libc = ctypes.CDLL(None, use_errno=True)
    back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns}")
        try:
            yield
        finally:
            if libc.setns(back, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(there)
        os.close(back)


@pytest.fixture
def net() -> Iterator[Net]:
    n = Net()
    try:
        n.up()
    except subprocess.CalledProcessError as e:
        n.down()
        pytest.skip(f"cannot set up network namespaces: {e.stderr.decode(errors='replace').strip()}")
    try:
        with inside(n.gw):
            yield n
    finally:
        n.down()


async def in_client(net: Net, *cmd: str, timeout: float = 30) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", net.client, *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()})
    async with asyncio.timeout(timeout):
        out, err = await proc.communicate()
    return proc.returncode or 0, out, err


def flows(rec: Recorder, hook: str = "response") -> list[HTTPFlow]:
    return [args[0] for name, args in rec.calls if name == hook]


async def echo_server(host: str) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(b"echo:" + data)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, host, 0)
    return server, server.sockets[0].getsockname()[1]


TCP_CLIENT = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"\\x00\\x01binary hello")
print(s.recv(100).decode(errors="replace"))
"""


async def test_http_tls_and_tcp_over_ipv4(net, make_proxy, test_ca):
    rec = Recorder(["response", "tcp_start", "tcp_end", "error", "log"])
    proxy = await make_proxy(rec, mode="transparent", listen_host="0.0.0.0",
                             ssl_verify_upstream_trusted_ca=test_ca.path)
    net.redirect(proxy.port)
    plain = await Origin(host=SERVER_V4).start()
    tls = await Origin(host=SERVER_V4).start(ssl=test_ca.server_context(("http/1.1",)))
    echo, echo_port = await echo_server(SERVER_V4)
    try:
        code, out, err = await in_client(net, "curl", "-sS", f"http://{SERVER_V4}:{plain.port}/plain")
        assert (code, out) == (0, b"ok /plain"), err
        # TLS: the client asks for "localhost" (SNI) at the server's address; the proxy forges a
        # certificate for the SNI and verifies the real server under that name.
        ca = str(proxy.master.certs.ca_cert_path)
        code, out, err = await in_client(net, "curl", "-sS", "--cacert", ca, "--resolve",
                                         f"localhost:{tls.port}:{SERVER_V4}", f"https://localhost:{tls.port}/tls")
        assert (code, out) == (0, b"ok /tls"), err
        # The server closes after the first answer: the second request on the client's connection needs a
        # new server connection, again verified under the SNI (not the bare IP address).
        code, out, err = await in_client(net, "curl", "-sS", "--cacert", ca, "--resolve",
                                         f"localhost:{tls.port}:{SERVER_V4}", f"https://localhost:{tls.port}/close",
                                         f"https://localhost:{tls.port}/again")
        assert code == 0 and out.endswith(b"ok /again"), (out, err)
        code, out, err = await in_client(net, sys.executable, "-c", TCP_CLIENT, SERVER_V4, str(echo_port))
        assert (code, out.strip()) == (0, b"echo:\x00\x01binary hello"), err
        await rec.wait_for("response", 4)
        await rec.wait_for("tcp_end")
    finally:
        for s in (plain, tls):
            await s.stop()
        echo.close()
    plain_flow, tls_flow, closing, again = flows(rec)
    assert again.server_conn is not closing.server_conn and again.server_conn.tls.sni == "localhost"
    assert plain_flow.request.url == f"http://{SERVER_V4}:{plain.port}/plain"
    assert plain_flow.request.headers["host"] == f"{SERVER_V4}:{plain.port}"
    assert plain_flow.client_conn.address[0] == CLIENT_V4
    assert (tls_flow.request.scheme, tls_flow.request.port) == ("https", tls.port)
    assert tls_flow.server_conn.address == (SERVER_V4, tls.port)
    assert tls_flow.client_conn.tls is not None and tls_flow.client_conn.tls.sni == "localhost"
    [tcp] = flows(rec, "tcp_end")
    assert tcp.server_conn.address == (SERVER_V4, echo_port)
    assert tcp.messages[0].content == b"\x00\x01binary hello"
    assert plain.received[0].header("host") == f"{SERVER_V4}:{plain.port}"


async def test_http_over_ipv6(net, make_proxy):
    rec = Recorder(["response"])
    proxy = await make_proxy(rec, mode="transparent", listen_host="::")
    net.redirect(proxy.port, family=6)
    origin = await Origin(host=SERVER_V6).start()
    try:
        code, out, err = await in_client(net, "curl", "-sS", "-g", f"http://[{SERVER_V6}]:{origin.port}/six")
        assert (code, out) == (0, b"ok /six"), err
        await rec.wait_for("response")
    finally:
        await origin.stop()
    [flow] = flows(rec)
    assert flow.server_conn.address[:2] == (SERVER_V6, origin.port)
    assert flow.client_conn.address[0] == CLIENT_V6


async def test_a_connection_that_was_not_redirected_is_refused_with_a_reason(net, make_proxy):
    rec = Recorder(["log", "clientdisconnect"])
    proxy = await make_proxy(rec, mode="transparent", listen_host="0.0.0.0")
    net.redirect(proxy.port)
    origin = await Origin(host=SERVER_V4).start()
    try:
        # Straight to the listener from the gateway itself: no NAT, so no original destination.
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(10):
            try:
                assert await reader.read() == b""  # closed (a reset when the request was still unread)
            except ConnectionResetError:
                pass
        writer.close()
        # From the client to the proxy's own port: redirected onto itself, which would loop.
        code, out, err = await in_client(net, "curl", "-sS", f"http://{GW_V4}:{proxy.port}/loop")
        assert code != 0
        warnings = [a[0].msg for n, a in rec.calls
                    if n == "log" and a[0].level == "warn" and "transparent mode:" in a[0].msg]
        assert len(warnings) == 2, warnings
        assert all("not through" in w and "redirect" in w and "connection closed" in w for w in warnings)
        # The proxy keeps serving redirected clients.
        code, out, err = await in_client(net, "curl", "-sS", f"http://{SERVER_V4}:{origin.port}/still")
        assert (code, out) == (0, b"ok /still"), err
    finally:
        await origin.stop()
    assert not [a[0].msg for n, a in rec.calls if n == "log" and a[0].level == "error"]


