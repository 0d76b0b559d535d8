"""The onboarding page through the real proxy, and clients whose TLS handshake with the proxy fails: real curl,
openssl s_client and raw sockets against an in-process proxy and `interpose-dump`."""
from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

from cryptography import x509

from tests.conftest import Recorder, curl
from tests.integration.test_cli import DumpProcess, run_dump


def _ca_path(proxy) -> Path:
    return Path(proxy.options.confdir) / "interpose-ca-cert.pem"


async def test_the_page_is_served_by_the_proxy_over_http(make_proxy):
    rec = Recorder(["serverconnect", "requestheaders", "response"])
    proxy = await make_proxy(rec)
    code, out, err = await curl("-x", proxy.url, "-i", "http://interpose.it/")
    assert code == 0, err
    page = out.decode()
    assert page.startswith("HTTP/1.1 200")
    for platform in ("Linux", "macOS", "Windows", "Firefox", "Android", "iOS", "Python, curl"):
        assert platform in page, platform
    assert 'href="/cert/pem"' in page and 'href="/cert/cer"' in page
    assert str(_ca_path(proxy)) in page  # where the CA is on the proxy's machine
    assert f"127.0.0.1:{proxy.port}" in page  # the proxy's address as the client reached it
    await rec.wait_for("response")
    assert "serverconnect" not in rec.names  # never reached the network


async def test_the_cert_downloads_are_the_ca_certificate_never_the_key(make_proxy):
    proxy = await make_proxy()
    code, pem, err = await curl("-x", proxy.url, "http://interpose.it/cert/pem")
    assert code == 0, err
    assert pem == _ca_path(proxy).read_bytes()
    assert b"PRIVATE KEY" not in pem
    code, der, err = await curl("-x", proxy.url, "http://interpose.it/cert/cer")
    assert code == 0, err
    assert x509.load_der_x509_certificate(der) == x509.load_pem_x509_certificate(pem)
    code, out, err = await curl("-x", proxy.url, "-o", "/dev/null", "-w", "%{http_code}",
                                "http://interpose.it/cert/key")
    assert out == b"404"


async def test_the_page_over_https_through_connect_with_the_forged_cert(make_proxy):
    rec = Recorder(["serverconnect", "response"])
    proxy = await make_proxy(rec)
    code, out, err = await curl("-x", proxy.url, "--cacert", str(_ca_path(proxy)), "https://interpose.it/")
    assert code == 0, err
    assert b"this client already trusts its CA" in out
    code, pem, err = await curl("-x", proxy.url, "--cacert", str(_ca_path(proxy)), "https://interpose.it/cert/pem")
    assert pem == _ca_path(proxy).read_bytes()
    assert "serverconnect" not in rec.names


async def test_onboarding_off_passes_the_request_on(make_proxy):
    proxy = await make_proxy(onboarding=False, connect_timeout_s=2.0)
    code, out, err = await curl("-x", proxy.url, "http://interpose.it/")
    assert b"Linux" not in out  # not the page: the proxy tried the real host (502 offline, its page online)


async def test_another_onboarding_host(make_proxy):
    proxy = await make_proxy(onboarding_host="setup.test")
    code, out, err = await curl("-x", proxy.url, "http://setup.test/")
    assert code == 0 and b"Android" in out


async def test_curl_without_the_ca_becomes_a_flow_that_says_why(make_proxy, h1_origin):
    rec = Recorder(["error"])
    proxy = await make_proxy(rec)
    code, out, err = await curl("-x", proxy.url, f"https://localhost:{h1_origin.port}/")
    assert code != 0  # curl refuses the forged certificate
    await rec.wait_for("error")
    (flow,) = rec.calls[0][1]
    msg = flow.error.msg
    assert msg.startswith("the client does not trust interpose's CA"), msg
    assert f"install {_ca_path(proxy)} or visit http://interpose.it" in msg
    assert flow.request.method == "CONNECT" and flow.request.port == h1_origin.port
    # the proxy keeps serving
    code, out, err = await curl("-x", proxy.url, "--cacert", str(_ca_path(proxy)), "-k",
                                f"https://localhost:{h1_origin.port}/")
    assert code == 0, err


async def test_openssl_hanging_up_becomes_a_flow(make_proxy, h1_origin):
    rec = Recorder(["error"])
    proxy = await make_proxy(rec)
    proc = await asyncio.create_subprocess_exec(
        "openssl", "s_client", "-proxy", f"127.0.0.1:{proxy.port}", "-connect", f"localhost:{h1_origin.port}",
        "-servername", "localhost", "-verify_return_error",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(15):
        await proc.communicate()
    assert proc.returncode != 0  # it rejected the certificate and hung up
    await rec.wait_for("error")
    msg = rec.calls[0][1][0].error.msg
    assert "does not trust interpose's CA" in msg and "install" in msg, msg


async def test_a_client_that_hangs_up_mid_handshake(make_proxy, h1_origin):
    rec = Recorder(["error"])
    proxy = await make_proxy(rec)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(f"CONNECT localhost:{h1_origin.port} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    # a ClientHello, then gone before the handshake ends
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    writer.write(outgoing.read())
    await writer.drain()
    await reader.read(1)  # the proxy's ServerHello has begun
    writer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    writer.close()
    await rec.wait_for("error")
    msg = rec.calls[0][1][0].error.msg
    assert msg.startswith("the client hung up during the TLS handshake"), msg
    assert "interpose-ca-cert.pem" in msg


async def test_dump_prints_the_failed_handshake(tmp_path, h1_origin):
    dump = await DumpProcess.start(tmp=tmp_path)
    try:
        code, out, err = await curl("-x", dump.url, f"https://localhost:{h1_origin.port}/")
        assert code != 0
        line = await dump.stdout_line()
        assert f"CONNECT localhost:{h1_origin.port} → ✗ the client does not trust interpose's CA" in line
        assert str(tmp_path / "conf" / "interpose-ca-cert.pem") in line
    finally:
        assert await dump.stop() == 0


async def test_a_failed_handshake_flow_survives_a_flow_file(tmp_path, h1_origin):
    path = tmp_path / "flows.interpose"
    dump = await DumpProcess.start("-w", str(path), tmp=tmp_path)
    try:
        code, _, _ = await curl("-x", dump.url, f"https://localhost:{h1_origin.port}/")
        assert code != 0
        await dump.stdout_line()
    finally:
        assert await dump.stop() == 0
    code, out, err = await run_dump("--confdir", str(tmp_path / "conf"), "-r", str(path))
    assert code == 0, err
    assert f"CONNECT localhost:{h1_origin.port} → ✗ the client does not trust interpose's CA" in out
