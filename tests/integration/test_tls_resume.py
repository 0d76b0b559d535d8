"""Cheaper handshakes: the proxy resumes its TLS sessions towards a server, and clients resume theirs with the
proxy (session tickets on the reused per-host contexts)."""
from __future__ import annotations

import asyncio
import shutil
import ssl
from typing import Any

import pytest

from tests.conftest import curl
from tests.tls_pki import RecordingOrigin, origin_context
from tests.tls_servers import https_url


def ca_of(proxy: Any) -> str:
    return str(proxy.master.certs.ca_cert_path)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_a_second_connection_to_the_same_origin_resumes_the_session(make_proxy, test_ca, version):
    origin = await RecordingOrigin(origin_context(test_ca, maximum=version)).start()
    try:
        proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path)
        for path in ("/one", "/two", "/three"):  # three client connections, so three server connections
            code, out, err = await curl("--http1.1", "--cacert", ca_of(proxy), "-x", proxy.url,
                                        https_url(origin.port, path))
            assert (code, out) == (0, f"ok {path}".encode()), err
    finally:
        await origin.stop()
    assert [h.version for h in origin.handshakes] == [version.name.replace("_", ".")] * 3
    assert [h.session_reused for h in origin.handshakes] == [False, True, True]


async def test_sessions_are_kept_per_port(make_proxy, test_ca):
    a = await RecordingOrigin(origin_context(test_ca)).start()
    b = await RecordingOrigin(origin_context(test_ca)).start()  # another server (its own ticket keys)
    try:
        proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path)
        for origin in (a, b, a, b):
            code, out, err = await curl("--cacert", ca_of(proxy), "-x", proxy.url, https_url(origin.port, "/p"))
            assert (code, out) == (0, b"ok /p"), err
    finally:
        await a.stop()
        await b.stop()
    assert [h.session_reused for h in a.handshakes] == [False, True]
    assert [h.session_reused for h in b.handshakes] == [False, True]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")
@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
async def test_a_client_resumes_its_session_with_the_proxy(make_proxy, test_ca, tmp_path, version):
    origin = await RecordingOrigin(origin_context(test_ca)).start()
    sess = str(tmp_path / "session.pem")
    try:
        proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path)
        outputs = []
        for flag in ("-sess_out", "-sess_in"):
            proc = await asyncio.create_subprocess_exec(
                "openssl", "s_client", "-proxy", f"127.0.0.1:{proxy.port}", "-connect", f"localhost:{origin.port}",
                "-servername", "localhost", "-CAfile", ca_of(proxy), version, flag, sess, "-ign_eof",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            async with asyncio.timeout(20):
                out, _ = await proc.communicate(b"GET /r HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            text = out.decode(errors="replace")
            assert "ok /r" in text and "Verify return code: 0 (ok)" in text, text
            outputs.append(text)
    finally:
        await origin.stop()
    assert "\nNew, TLSv1" in outputs[0]
    assert "\nReused, TLSv1" in outputs[1], outputs[1]
