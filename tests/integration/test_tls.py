"""TLS interception end to end: real curl and Python ssl clients, the real proxy, real TLS origins.

The origins (`tests.tls_servers`) are signed by a test CA of their own; the proxy trusts it only when a
test says so (`ssl_verify_upstream_trusted_ca`). Clients trust the proxy's CA from the confdir.
"""
from __future__ import annotations

import asyncio
import json
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from interpose.http import HTTPFlow
from interpose.proxy.tls.certs import CA_CERT_DER_FILE, CA_CERT_PEM_FILE, CA_FILE
from tests.conftest import Recorder, curl
from tests.tls_servers import (
    TEST_CA_NAME,
    https_url,
    peer_cert,
    san,
    tls_through_proxy,
)

HTTP_HOOKS = ("http_connect", "requestheaders", "request", "responseheaders", "response", "error")


def flows(rec: Recorder, hook: str = "response") -> list[HTTPFlow]:
    return [args[0] for name, args in rec.calls if name == hook]


def logs(rec: Recorder, level: str) -> list[str]:
    return [args[0].msg for name, args in rec.calls if name == "log" and args[0].level == level]


def ca_of(proxy: Any) -> str:
    return str(proxy.master.certs.ca_cert_path)


def cert_of(path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


# -- the CA ------------------------------------------------------------------------


async def test_first_start_creates_the_ca_files_with_documented_names_and_modes(
        make_proxy, tmp_path, h1_origin, test_ca):
    confdir = tmp_path / "confdir"
    assert not confdir.exists()
    proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path)

    assert stat.S_IMODE(confdir.stat().st_mode) == 0o700
    key_file, pem_file, der_file = confdir / CA_FILE, confdir / CA_CERT_PEM_FILE, confdir / CA_CERT_DER_FILE
    assert (CA_FILE, CA_CERT_PEM_FILE, CA_CERT_DER_FILE) == (
        "interpose-ca.pem", "interpose-ca-cert.pem", "interpose-ca-cert.cer")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not stat.S_IMODE(pem_file.stat().st_mode) & 0o022  # nobody else may rewrite what users trust
    # interpose-ca.pem: the key and the certificate; the other two: the same certificate, PEM and DER.
    both = key_file.read_bytes()
    key = serialization.load_pem_private_key(both, password=None)
    ca = x509.load_pem_x509_certificate(both)
    assert key.public_key() == ca.public_key()
    assert x509.load_pem_x509_certificate(pem_file.read_bytes()) == ca
    assert x509.load_der_x509_certificate(der_file.read_bytes()) == ca
    assert b"PRIVATE KEY" not in pem_file.read_bytes()
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca_of(proxy) == str(pem_file)

    # That file is exactly what curl needs to trust the proxy's leaves.
    code, out, err = await curl("--cacert", str(pem_file), "-x", proxy.url, https_url(h1_origin.port, "/hello"))
    assert (code, out) == (0, b"ok /hello"), err


async def test_a_second_start_reuses_the_ca(make_proxy, tmp_path):
    await make_proxy()
    first = (tmp_path / "confdir" / CA_CERT_PEM_FILE).read_bytes()
    await make_proxy()
    assert (tmp_path / "confdir" / CA_CERT_PEM_FILE).read_bytes() == first


# -- interception over HTTP/1.1 ------------------------------------------------------


async def test_curl_https_through_the_proxy_records_both_tls_sides(make_proxy, h1_origin, test_ca):
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path)
    code, out, err = await curl("-v", "--cacert", ca_of(proxy), "-x", proxy.url, "-H", "X-Probe: 1",
                                https_url(h1_origin.port, "/echo/x?q=1"))
    assert code == 0, err
    echoed = json.loads(out)
    assert echoed["path"] == "/echo/x?q=1"
    assert ["X-Probe", "1"] in echoed["headers"]
    assert ["Host", f"localhost:{h1_origin.port}"] in echoed["headers"]
    # curl checked the proxy's leaf for localhost, issued by the proxy's CA
    assert b'subjectAltName: host "localhost" matched' in err
    assert b"issuer: CN=interpose" in err and TEST_CA_NAME.encode() not in err

    await rec.wait_for("response")
    [flow] = flows(rec)
    req = flow.request
    assert (req.scheme, req.host, req.port, req.path) == ("https", "localhost", h1_origin.port, "/echo/x?q=1")
    assert req.url == https_url(h1_origin.port, "/echo/x?q=1")
    ctls = flow.client_conn.tls
    assert ctls is not None
    assert (ctls.sni, ctls.alpn) == ("localhost", "http/1.1")
    assert ctls.version in ("TLSv1.2", "TLSv1.3") and ctls.cipher
    assert flow.client_conn.alpn == "http/1.1"
    stls = flow.server_conn.tls
    assert stls is not None
    assert (stls.sni, stls.alpn) == ("localhost", "http/1.1")
    leaf = test_ca.leaf.cert
    assert stls.cert_subject == leaf.subject.rfc4514_string() == "CN=localhost"
    assert stls.cert_issuer == f"CN={TEST_CA_NAME}"
    assert stls.cert_not_after == leaf.not_valid_after_utc.timestamp()
    assert flow.server_conn.address == ("localhost", h1_origin.port)
    assert flow.response is not None and flow.response.status_code == 200


async def test_keepalive_requests_share_one_intercepted_connection(make_proxy, h1_origin, test_ca):
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path)
    url = https_url(h1_origin.port, "")
    code, out, err = await curl("--cacert", ca_of(proxy), "-x", proxy.url, url + "/a", url + "/b", url + "/c")
    assert (code, out) == (0, b"ok /aok /bok /c"), err
    await rec.wait_for("response", 3)
    assert rec.names.count("clientconnect") == 1
    assert h1_origin.connections == 1
    assert [f.request.path for f in flows(rec)] == ["/a", "/b", "/c"]


@pytest.mark.parametrize("client_version", ["--http1.1", "--http2"])
async def test_big_streamed_downloads_over_tls_arrive_exact(make_proxy, h1_origin, test_ca, client_version):
    """Bodies of known length above stream_large_bodies: spliced socket to socket for an HTTP/1.1 client
    (through the client's TLS), read in big chunks for an HTTP/2 client; both exact, twice on one
    connection."""
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path, stream_large_bodies="64k")
    url = https_url(h1_origin.port, "")
    n = 5 * 1024 * 1024 + 3
    code, out, err = await curl(client_version, "--cacert", ca_of(proxy), "-x", proxy.url,
                                f"{url}/bytes/{n}", f"{url}/bytes/{n}")
    assert code == 0, err
    assert out == b"x" * (2 * n)
    await rec.wait_for("response", 2)
    assert rec.names.count("clientconnect") == 1
    assert all(f.response.stream and f.error is None for f in flows(rec))


async def test_leaf_names_the_host_as_dns_san(make_proxy, h1_origin, test_ca):
    # upstream_cert off: the leaf names only the host (with it on, see test_tls_options.py)
    proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path, upstream_cert=False)
    context = ssl.create_default_context(cafile=ca_of(proxy))  # verifies chain and host name too
    reader, writer = await tls_through_proxy(proxy.port, "localhost", h1_origin.port, context)
    try:
        cert = peer_cert(writer)
        assert san(cert) == (["localhost"], [])
        assert cert.issuer == cert_of(ca_of(proxy)).subject
        writer.write(b"GET /sni HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(10):
            answer = await reader.read()
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok /sni")
    finally:
        writer.close()


async def test_leaf_for_an_ip_address_has_an_ip_san(make_proxy, h1_origin, test_ca):
    proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path, upstream_cert=False)
    context = ssl.create_default_context(cafile=ca_of(proxy))
    # Python sends no SNI for an IP literal: the proxy names the leaf after the CONNECT target.
    _, writer = await tls_through_proxy(proxy.port, "127.0.0.1", h1_origin.port, context)
    try:
        assert san(peer_cert(writer)) == ([], ["127.0.0.1"])
    finally:
        writer.close()
    code, out, err = await curl("--cacert", ca_of(proxy), "-x", proxy.url,
                                https_url(h1_origin.port, "/ip", "127.0.0.1"))
    assert (code, out) == (0, b"ok /ip"), err


# -- upstream verification ---------------------------------------------------------------


async def test_untrusted_upstream_gets_502_naming_the_verify_failure(make_proxy, h1_origin):
    rec = Recorder()
    proxy = await make_proxy(rec)  # not told about the test CA
    code, out, err = await curl("-w", "\n%{http_code}", "--cacert", ca_of(proxy), "-x", proxy.url,
                                https_url(h1_origin.port, "/secret"))
    assert code == 0, err
    body, status = out.rsplit(b"\n", 1)
    assert status == b"502"
    assert body.startswith(b"interpose: certificate verify failed: ")
    await rec.wait_for("error")
    [flow] = flows(rec, "error")
    assert flow.error is not None and "certificate verify failed" in flow.error.msg
    assert flow.response is None
    assert h1_origin.received == []
    assert "response" not in rec.names


async def test_ssl_insecure_accepts_an_untrusted_upstream(make_proxy, h1_origin):
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_insecure=True)
    code, out, err = await curl("--cacert", ca_of(proxy), "-x", proxy.url, https_url(h1_origin.port, "/insecure"))
    assert (code, out) == (0, b"ok /insecure"), err
    await rec.wait_for("response")
    # the certificate is recorded even though it was not verified
    assert flows(rec)[0].server_conn.tls.cert_issuer == f"CN={TEST_CA_NAME}"


async def test_trusted_ca_option_accepts_the_upstream(make_proxy, h1_origin, test_ca):
    proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path)
    code, out, err = await curl("--cacert", ca_of(proxy), "-x", proxy.url, https_url(h1_origin.port, "/trusted"))
    assert (code, out) == (0, b"ok /trusted"), err


# -- passthrough (ignore_hosts) -------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["localhost", "ocalhos", r"^localhost:\d+$"])
async def test_ignored_host_is_passed_through_untouched(make_proxy, h1_origin, test_ca, pattern):
    rec = Recorder()
    proxy = await make_proxy(rec, ignore_hosts=[pattern])  # no trust in the test CA needed: nothing is verified
    # The client trusts only the origin's CA: it must see the origin's own certificate.
    code, out, err = await curl("-v", "--cacert", test_ca.path, "-x", proxy.url, https_url(h1_origin.port, "/through"))
    assert (code, out) == (0, b"ok /through"), err
    assert f"issuer: CN={TEST_CA_NAME}".encode() in err
    await rec.wait_for("clientdisconnect")
    layers = [args[0].kind for name, args in rec.calls if name == "next_layer"]
    assert layers == ["http1", "passthrough"]
    assert not set(HTTP_HOOKS[1:]) & set(rec.names)
    assert h1_origin.received[0].path == "/through"


async def test_passthrough_by_port_regex_shows_the_origin_certificate_bytes(make_proxy, h1_origin, test_ca):
    rec = Recorder()
    proxy = await make_proxy(rec, ignore_hosts=[rf"^127\.0\.0\.1:{h1_origin.port}$"])
    reader, writer = await tls_through_proxy(proxy.port, "127.0.0.1", h1_origin.port, test_ca.client_context())
    try:
        assert peer_cert(writer) == test_ca.leaf.cert
        writer.write(b"GET /raw HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(10):
            answer = await reader.read()
        assert answer.endswith(b"ok /raw")
    finally:
        writer.close()
    await rec.wait_for("clientdisconnect")
    assert [args[0].kind for name, args in rec.calls if name == "next_layer"] == ["http1", "passthrough"]
    assert not {"requestheaders", "request", "responseheaders", "response"} & set(rec.names)
    # a host that does not match is intercepted as usual
    context = ssl.create_default_context(cafile=ca_of(proxy))
    _, writer = await tls_through_proxy(proxy.port, "localhost", h1_origin.port, context)
    try:
        assert peer_cert(writer).issuer == cert_of(ca_of(proxy)).subject
    finally:
        writer.close()


# -- clients that do not trust the proxy ------------------------------------------------------


@pytest.mark.parametrize("run", ["first", "again"])  # each proxy (each CA) warns, not just the process's first
async def test_untrusting_client_fails_the_handshake_and_the_proxy_warns_naming_the_ca_file(
        make_proxy, h1_origin, test_ca, run):
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path)
    url = https_url(h1_origin.port, "/next")
    code, out, err = await curl("--cacert", test_ca.path, "-x", proxy.url, url)  # trusts the origin's CA only
    assert code == 60, err  # curl: peer certificate cannot be authenticated
    async with asyncio.timeout(10):
        while not logs(rec, "warn"):
            await rec.wait_for("log", rec.names.count("log") + 1)
    [warning] = logs(rec, "warn")
    assert ca_of(proxy) in warning and "localhost" in warning
    assert "response" not in rec.names
    # the proxy keeps serving the next (trusting) client
    code, out, err = await curl("--cacert", ca_of(proxy), "-x", proxy.url, url)
    assert (code, out) == (0, b"ok /next"), err


# -- modes ------------------------------------------------------------------------------------


async def test_reverse_https_mode_serves_plain_and_tls_clients(make_proxy, h2_origin, test_ca):
    rec = Recorder()
    proxy = await make_proxy(rec, mode=f"reverse:https://localhost:{h2_origin.port}",
                             ssl_verify_upstream_trusted_ca=test_ca.path)
    code, out, err = await curl(f"http://127.0.0.1:{proxy.port}/echo/plain")
    assert code == 0, err
    seen = json.loads(out)
    assert seen["path"] == "/echo/plain" and seen["scheme"] == "https"
    assert seen["headers"]["host"] == f"localhost:{h2_origin.port}"
    # TLS from the client: the proxy notices the ClientHello and intercepts it.
    code, out, err = await curl("-v", "--http1.1", "--cacert", ca_of(proxy), f"https://localhost:{proxy.port}/echo/tls")
    assert code == 0, err
    assert json.loads(out)["path"] == "/echo/tls"
    assert b'subjectAltName: host "localhost" matched' in err
    await rec.wait_for("response", 2)
    plain, tls = flows(rec)
    assert plain.client_conn.tls is None
    assert tls.client_conn.tls is not None and tls.client_conn.tls.sni == "localhost"
    for f in (plain, tls):
        assert (f.request.scheme, f.request.host, f.request.port) == ("https", "localhost", h2_origin.port)
        assert f.server_conn.tls is not None and f.server_conn.tls.cert_issuer == f"CN={TEST_CA_NAME}"


async def test_upstream_mode_through_an_intercepting_upstream_proxy(make_proxy, h1_origin, test_ca):
    up_rec, front_rec = Recorder(), Recorder()
    upstream_proxy = await make_proxy(up_rec, ssl_verify_upstream_trusted_ca=test_ca.path)
    # make_proxy gives every proxy of a test the same confdir, hence the same CA: the front must
    # verify the upstream proxy's leaves against it.
    front = await make_proxy(front_rec, mode=f"upstream:{upstream_proxy.url}",
                             ssl_verify_upstream_trusted_ca=ca_of(upstream_proxy))
    code, out, err = await curl("--cacert", ca_of(front), "-x", front.url, https_url(h1_origin.port, "/chain"))
    assert (code, out) == (0, b"ok /chain"), err
    await front_rec.wait_for("response")
    await up_rec.wait_for("response")
    for rec in (front_rec, up_rec):
        [connect] = flows(rec, "http_connect")
        assert (connect.request.host, connect.request.port) == ("localhost", h1_origin.port)
    front_flow, up_flow = flows(front_rec)[0], flows(up_rec)[0]
    assert front_flow.server_conn.via == (upstream_proxy.host, upstream_proxy.port)
    assert front_flow.server_conn.tls.cert_issuer == cert_of(ca_of(upstream_proxy)).subject.rfc4514_string()
    assert up_flow.server_conn.tls.cert_issuer == f"CN={TEST_CA_NAME}"
    assert h1_origin.connections == 1


async def test_upstream_mode_front_verifies_the_upstream_proxys_leaf(make_proxy, h1_origin, test_ca):
    upstream_proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path)
    # This front trusts only the test CA, not the upstream proxy's CA that signs what it sees.
    front = await make_proxy(mode=f"upstream:{upstream_proxy.url}", ssl_verify_upstream_trusted_ca=test_ca.path)
    code, out, err = await curl("-w", "\n%{http_code}", "--cacert", ca_of(front), "-x", front.url,
                                https_url(h1_origin.port, "/chain"))
    assert code == 0, err
    body, status = out.rsplit(b"\n", 1)
    assert status == b"502" and b"certificate verify failed" in body
