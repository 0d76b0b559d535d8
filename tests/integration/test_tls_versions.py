"""TLS version limits on both sides (tls_version_client_*/server_*) and key logging (SSLKEYLOGFILE), with real
openssl s_client / curl clients, origins limited to one version, and (when installed) tshark decrypting a
capture with the proxy's key log."""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import ssl
from typing import Any

import pytest

from interpose.errors import OptionsError
from tests.conftest import Recorder, curl
from tests.tls_pki import RecordingOrigin, origin_context
from tests.tls_servers import https_url, tls_through_proxy


def ca_of(proxy: Any) -> str:
    return str(proxy.master.certs.ca_cert_path)


async def s_client(proxy: Any, port: int, *args: str, stdin: bytes = b"") -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "openssl", "s_client", "-proxy", f"127.0.0.1:{proxy.port}", "-connect", f"localhost:{port}",
        "-servername", "localhost", "-CAfile", ca_of(proxy), *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    async with asyncio.timeout(20):
        out, _ = await proc.communicate(stdin)
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.fixture
async def origin(test_ca: Any) -> Any:
    o = await RecordingOrigin(origin_context(test_ca)).start()
    yield o
    await o.stop()


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")


@needs_openssl
async def test_a_client_below_tls_version_client_min_fails_with_an_error_flow(make_proxy, origin, test_ca):
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path, tls_version_client_min="TLS1_3")
    code, out = await s_client(proxy, origin.port, "-tls1_2")
    assert code != 0 and "Cipher is (NONE)" in out or "alert protocol version" in out, out
    await rec.wait_for("error")
    [flow] = [args[0] for name, args in rec.calls if name == "error"]
    assert flow.request.method == "CONNECT" and flow.request.host == "localhost"
    assert "no TLS version both sides accept" in flow.error.msg and "tls_version_client_min=TLS1_3" in flow.error.msg
    # a TLS 1.3 client is served, by the same proxy
    code, out = await s_client(proxy, origin.port, "-tls1_3", "-quiet",
                               stdin=b"GET /v13 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert "ok /v13" in out, out


@needs_openssl
async def test_a_client_above_tls_version_client_max_is_refused(make_proxy, origin, test_ca):
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path, tls_version_client_max="TLS1_2")
    code, out = await s_client(proxy, origin.port, "-tls1_3")
    assert code != 0, out
    await rec.wait_for("error")
    code, out = await s_client(proxy, origin.port, "-tls1_2", "-quiet",
                               stdin=b"GET /v12 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert "ok /v12" in out, out


@pytest.mark.parametrize("origin_limit, option", [
    ({"maximum": ssl.TLSVersion.TLSv1_2}, {"tls_version_server_min": "TLS1_3"}),
    ({"minimum": ssl.TLSVersion.TLSv1_3}, {"tls_version_server_max": "TLS1_2"}),
])
async def test_a_server_outside_the_server_limits_gets_502_with_the_reason(make_proxy, test_ca, origin_limit, option):
    origin = await RecordingOrigin(origin_context(test_ca, **origin_limit)).start()
    try:
        proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path, **option)
        code, out, err = await curl("-w", "\n%{http_code}", "--cacert", ca_of(proxy), "-x", proxy.url,
                                    https_url(origin.port, "/x"))
        body, status = out.rsplit(b"\n", 1)
        assert status == b"502"
        # (this origin hangs up on a ClientHello it cannot answer rather than sending an alert first)
        assert b"tls_version_server_" in body and b"version" in body, body
        # the limit lifted at run time: the same server answers
        proxy.master.options.update(tls_version_server_min="TLS1_2", tls_version_server_max="UNBOUNDED")
        code, out, err = await curl("--cacert", ca_of(proxy), "-x", proxy.url, https_url(origin.port, "/y"))
        assert (code, out) == (0, b"ok /y"), err
    finally:
        await origin.stop()


async def test_limits_that_exclude_every_version_are_refused(make_proxy):
    proxy = await make_proxy()
    with pytest.raises(OptionsError, match="above tls_version_server_max"):
        proxy.master.options.update(tls_version_server_min="TLS1_3", tls_version_server_max="TLS1_2")
    with pytest.raises(OptionsError, match="must be one of"):
        proxy.master.options.update(tls_version_client_min="TLS9")
    assert proxy.master.options.tls_version_server_min == "TLS1_2"


# -- key logging -------------------------------------------------------------------------------------


def client_randoms(path: str) -> dict[str, set[str]]:
    """label → client randoms (hex) in an NSS key log file."""
    seen: dict[str, set[str]] = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and not line.startswith("#"):
                seen.setdefault(parts[0], set()).add(parts[1].lower())
    return seen


@pytest.mark.parametrize("variable", ["SSLKEYLOGFILE", "INTERPOSE_SSLKEYLOGFILE"])
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_keylog_file_gets_the_secrets_of_both_sides(make_proxy, test_ca, tmp_path, monkeypatch, variable,
                                                          version):
    proxy_log, client_log, origin_log = (str(tmp_path / n) for n in ("proxy.keys", "client.keys", "origin.keys"))
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    monkeypatch.setenv(variable, proxy_log)
    origin_ctx = origin_context(test_ca, maximum=version)
    origin_ctx.keylog_filename = origin_log
    origin = await RecordingOrigin(origin_ctx).start()
    try:
        proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path)
        client_ctx = ssl.create_default_context(cafile=ca_of(proxy))
        client_ctx.maximum_version = version
        client_ctx.keylog_filename = client_log
        reader, writer = await tls_through_proxy(proxy.port, "localhost", origin.port, client_ctx)
        writer.write(b"GET /k HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(10):
            assert (await reader.read()).endswith(b"ok /k")
        writer.close()
    finally:
        await origin.stop()
    logged = client_randoms(proxy_log)
    client_side, server_side = client_randoms(client_log), client_randoms(origin_log)
    label = "CLIENT_RANDOM" if version == ssl.TLSVersion.TLSv1_2 else "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
    [client_random] = client_side[label]  # the handshake between the client and the proxy
    [server_random] = server_side[label]  # the handshake between the proxy and the origin
    assert client_random != server_random
    assert {client_random, server_random} <= logged[label]
    if version == ssl.TLSVersion.TLSv1_3:
        for other in ("SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"):
            assert {client_random, server_random} <= logged[other]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (apt-get install -y tshark)")
@pytest.mark.skipif(os.geteuid() != 0, reason="capturing on the loopback interface needs root")
async def test_the_key_log_decrypts_a_capture_of_both_sides(make_proxy, test_ca, tmp_path, monkeypatch):
    keys, pcap = str(tmp_path / "keys"), str(tmp_path / "cap.pcapng")
    monkeypatch.setenv("SSLKEYLOGFILE", keys)
    origin = await RecordingOrigin(origin_context(test_ca)).start()
    try:
        proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path)
        capture = await asyncio.create_subprocess_exec(
            "tshark", "-l", "-P", "-i", "lo", "-w", pcap, "-f", f"tcp port {proxy.port} or tcp port {origin.port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        assert capture.stdout is not None

        async def seen_probe() -> None:
            """A connection to the proxy, then its packets in tshark's live output: all before it are captured."""
            _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            local = str(writer.get_extra_info("sockname")[1])
            writer.close()
            while local not in (line := (await capture.stdout.readline()).decode()):  # type: ignore[union-attr]
                assert line, "tshark ended early"

        try:
            async with asyncio.timeout(30):
                while True:  # tshark announces itself before its capture really starts: probe until one shows
                    try:
                        async with asyncio.timeout(1):
                            await seen_probe()
                        break
                    except TimeoutError:
                        continue
            code, out, err = await curl("--http1.1", "--cacert", ca_of(proxy), "-x", proxy.url,
                                        https_url(origin.port, "/decrypt-me"))
            assert (code, out) == (0, b"ok /decrypt-me"), err
            async with asyncio.timeout(30):
                await seen_probe()
        finally:
            capture.send_signal(signal.SIGINT)
            async with asyncio.timeout(30):
                await capture.communicate()
    finally:
        await origin.stop()
    proc = await asyncio.create_subprocess_exec(
        "tshark", "-r", pcap, "-o", f"tls.keylog_file:{keys}", "-d", f"tcp.port=={origin.port},tls",
        "-d", f"tcp.port=={proxy.port},http", "-Y", "http.request", "-T", "fields", "-e", "tcp.dstport",
        "-e", "http.request.method", "-e", "http.request.uri",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    lines = {tuple(re.split(r"\s+", line.strip())) for line in out.decode().splitlines() if line.strip()}
    # the request in the clear twice: inside the client's TLS (to the proxy) and inside the proxy's (to the origin)
    assert (str(proxy.port), "GET", "/decrypt-me") in lines, (lines, err)
    assert (str(origin.port), "GET", "/decrypt-me") in lines, (lines, err)
