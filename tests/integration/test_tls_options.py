"""The TLS options of issue 19, end to end with real TLS on both sides: upstream_cert, --certs, client_certs,
--allow-hosts, and bad input for each (one clear message, the proxy keeps serving).

Origins are signed by a test CA the proxy is told to trust; client certificates come from a second test CA the
mTLS origin trusts. See also test_tls_versions.py (version limits, key logging) and test_tls_resume.py.
"""
from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from interpose.errors import OptionsError
from tests.conftest import Recorder, curl
from tests.integration.test_cli import run_dump
from tests.tls_pki import RecordingOrigin, issue, origin_context
from tests.tls_servers import TestCA, https_url, peer_cert, san, tls_through_proxy


def ca_of(proxy: Any) -> str:
    return str(proxy.master.certs.ca_cert_path)


async def get(proxy: Any, url: str, *extra: str) -> tuple[int, bytes, bytes]:
    """curl through the proxy, trusting its CA; stdout ends with a line holding the status code."""
    return await curl("-w", "\n%{http_code}", "--cacert", ca_of(proxy), "-x", proxy.url, *extra, url)


@pytest.fixture
async def start_origin(test_ca: TestCA) -> Any:
    """`await start_origin(**kwargs)`: a RecordingOrigin whose context `origin_context(test_ca, **kwargs)` makes."""
    started: list[RecordingOrigin] = []

    async def start(**kwargs: Any) -> RecordingOrigin:
        started.append(await RecordingOrigin(origin_context(test_ca, **kwargs)).start())
        return started[-1]

    yield start
    for o in started:
        await o.stop()


@pytest.fixture
async def origin(start_origin: Any) -> RecordingOrigin:
    return await start_origin()


# -- upstream_cert ----------------------------------------------------------------------


async def test_upstream_cert_copies_the_servers_names_into_the_forged_certificate(make_proxy, start_origin, test_ca):
    origin = await start_origin(names=("origin.test", "localhost", "127.0.0.1", "alt.origin.test"),
                                organization="Origin Org")
    proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path)
    assert proxy.master.options.upstream_cert is True  # the default
    context = ssl.create_default_context(cafile=ca_of(proxy))
    reader, writer = await tls_through_proxy(proxy.port, "localhost", origin.port, context)
    try:
        cert = peer_cert(writer)
    finally:
        writer.close()
    dns, ips = san(cert)
    assert {"origin.test", "localhost", "alt.origin.test"} <= set(dns) and "127.0.0.1" in dns + ips
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "origin.test"
    assert cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == "Origin Org"
    assert cert.issuer == x509.load_pem_x509_certificate(Path(ca_of(proxy)).read_bytes()).subject


async def test_without_upstream_cert_the_forged_certificate_names_only_the_host(make_proxy, start_origin, test_ca):
    origin = await start_origin(names=("origin.test", "localhost", "alt.origin.test"))
    proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path, upstream_cert=False)
    context = ssl.create_default_context(cafile=ca_of(proxy))
    _, writer = await tls_through_proxy(proxy.port, "localhost", origin.port, context)
    try:
        assert san(peer_cert(writer)) == (["localhost"], [])
    finally:
        writer.close()


# -- --certs ----------------------------------------------------------------------------


async def test_certs_serves_the_given_certificate_for_matching_hosts(make_proxy, origin, test_ca, tmp_path):
    own = TestCA(tmp_path / "own-ca")  # the user's own CA, which the client trusts
    wild = issue(own, "wildcard", tmp_path / "wild.pem", sans=["*.example.test"])
    exact = issue(own, "exact", tmp_path / "exact.pem", sans=["api.example.test"])
    every = issue(own, "everything", tmp_path / "every.pem", sans=["localhost"])
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_insecure=True,  # the origin is not really called *.example.test
                             certs=[f"*.example.test={wild}", f"api.example.test={exact}", every])
    context = ssl.create_default_context(cafile=own.path)

    async def served(sni: str) -> str:
        reader, writer = await tls_through_proxy(proxy.port, "localhost", origin.port, context, server_hostname=sni)
        try:
            writer.write(f"GET /{sni} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
            answer = await reader.read()
            assert answer.endswith(f"ok /{sni}".encode()), answer
            return peer_cert(writer).subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        finally:
            writer.close()

    assert await served("www.example.test") == "wildcard"
    context.check_hostname = False  # a client accepts one label for "*", the proxy serves any depth under it
    assert await served("deep.www.example.test") == "wildcard"
    context.check_hostname = True
    assert await served("api.example.test") == "exact"  # the exact name beats the wildcard
    assert await served("localhost") == "everything"  # a spec without DOMAIN= matches every host


@pytest.mark.parametrize("content, message", [
    (b"not a pem at all\n", "holds no PEM certificate"),
    ("cert-only", "holds no private key"),
    ("wrong-key", "does not belong to the first certificate"),
])
async def test_a_bad_certs_file_exits_2_with_one_message(tmp_path, test_ca, content, message):
    pem = tmp_path / "bad.pem"
    good = Path(issue(test_ca, "x", tmp_path / "good.pem", sans=["x.test"])).read_text()
    other = Path(issue(test_ca, "y", tmp_path / "other.pem", sans=["y.test"])).read_text()
    key = lambda text: text[:text.index("-----END PRIVATE KEY-----") + 26]  # noqa: E731
    certs = lambda text: text[text.index("-----BEGIN CERTIFICATE"):]  # noqa: E731
    pem.write_bytes(content if isinstance(content, bytes) else
                    (certs(good) if content == "cert-only" else key(other) + certs(good)).encode())
    code, out, err = await run_dump("--confdir", str(tmp_path / "conf"), "-p", "0", "--certs", f"x.test={pem}")
    assert code == 2
    assert message in err and str(pem) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


async def test_a_bad_certs_value_at_run_time_is_refused_and_the_proxy_keeps_serving(
        make_proxy, origin, test_ca, tmp_path):
    (tmp_path / "junk.pem").write_text("junk")
    proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path)
    with pytest.raises(OptionsError, match="holds no PEM certificate"):
        proxy.master.options.update(certs=[str(tmp_path / "junk.pem")])
    assert proxy.master.options.certs == []
    code, out, err = await get(proxy, https_url(origin.port, "/still"))
    assert (code, out) == (0, b"ok /still\n200"), err


# -- client_certs -----------------------------------------------------------------------


@pytest.fixture
def client_ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "client-ca")


@pytest.fixture
async def mtls_origin(test_ca: TestCA, client_ca: TestCA) -> Any:
    o = await RecordingOrigin(origin_context(test_ca, require_client_ca=client_ca.path)).start()
    yield o
    await o.stop()


@pytest.mark.parametrize("version", ["TLS1_2", "TLS1_3"])
async def test_an_mtls_origin_without_client_certs_gives_502_naming_the_option(
        make_proxy, mtls_origin, test_ca, version):
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path, tls_version_server_max=version)
    code, out, err = await get(proxy, https_url(mtls_origin.port, "/private"))
    assert code == 0, err
    body, status = out.rsplit(b"\n", 1)
    assert status == b"502"
    assert b"client certificate" in body and b"client_certs" in body, body
    await rec.wait_for("error")
    assert not mtls_origin.handshakes  # the origin never accepted the proxy


@pytest.mark.parametrize("form", ["file", "directory"])
async def test_client_certs_are_presented_to_an_mtls_origin(make_proxy, mtls_origin, test_ca, client_ca, tmp_path,
                                                            form):
    if form == "file":
        option = issue(client_ca, "the-client", tmp_path / "client.pem", client=True)
    else:
        (tmp_path / "certs").mkdir()
        issue(client_ca, "the-client", tmp_path / "certs" / "localhost.pem", client=True)
        option = str(tmp_path / "certs")
    proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path, client_certs=option)
    code, out, err = await get(proxy, https_url(mtls_origin.port, "/private"))
    assert (code, out) == (0, b"ok /private\n200"), err
    assert mtls_origin.handshakes[-1].client_cert_subject == "the-client"


async def test_an_expired_client_certificate_exits_2_at_start(tmp_path, client_ca):
    pem = issue(client_ca, "old", tmp_path / "old.pem", client=True, expired=True)
    code, out, err = await run_dump("--confdir", str(tmp_path / "conf"), "-p", "0", "--set", f"client_certs={pem}")
    assert code == 2
    assert "expired on" in err and pem in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


async def test_an_expired_certificate_in_the_directory_is_an_error_flow_and_the_proxy_keeps_serving(
        make_proxy, mtls_origin, origin, test_ca, client_ca, tmp_path):
    (tmp_path / "certs").mkdir()
    issue(client_ca, "old", tmp_path / "certs" / "localhost.pem", client=True, expired=True)
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path, client_certs=str(tmp_path / "certs"))
    code, out, err = await get(proxy, https_url(mtls_origin.port, "/private"))
    body, status = out.rsplit(b"\n", 1)
    assert status == b"502" and b"expired on" in body, out
    await rec.wait_for("error")
    # a host without a file in the directory gets no certificate, and an origin that asks for none answers
    code, out, err = await get(proxy, https_url(origin.port, "/public", host="127.0.0.1"))
    assert (code, out) == (0, b"ok /public\n200"), err


async def test_a_missing_client_certs_path_is_refused_at_run_time(make_proxy, origin, test_ca, tmp_path):
    proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path)
    with pytest.raises(OptionsError, match="does not exist"):
        proxy.master.options.update(client_certs=str(tmp_path / "nowhere.pem"))
    assert proxy.master.options.client_certs is None
    code, out, err = await get(proxy, https_url(origin.port, "/still"))
    assert (code, out) == (0, b"ok /still\n200"), err


# -- --allow-hosts ----------------------------------------------------------------------


async def test_allow_hosts_intercepts_only_matching_hosts(make_proxy, origin, test_ca):
    rec = Recorder()
    proxy = await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path, allow_hosts=[r"^127\.0\.0\.1:"])
    proxy_ca = x509.load_pem_x509_certificate(Path(ca_of(proxy)).read_bytes())
    # localhost is not allowed: TLS passes through untouched, the client sees the origin's own certificate
    _, writer = await tls_through_proxy(proxy.port, "localhost", origin.port, test_ca.client_context())
    try:
        assert peer_cert(writer).issuer == test_ca.cert.subject
    finally:
        writer.close()
    # 127.0.0.1 matches: intercepted, the leaf comes from the proxy's CA, and the flow is recorded
    _, writer = await tls_through_proxy(proxy.port, "127.0.0.1", origin.port,
                                        ssl.create_default_context(cafile=ca_of(proxy)))
    try:
        assert peer_cert(writer).issuer == proxy_ca.subject
    finally:
        writer.close()
    code, out, err = await get(proxy, https_url(origin.port, "/seen", host="127.0.0.1"))
    assert (code, out) == (0, b"ok /seen\n200"), err
    await rec.wait_for("response")
    assert [args[0].request.path for name, args in rec.calls if name == "response"] == ["/seen"]


async def test_allow_hosts_and_ignore_hosts_together_exit_2(tmp_path):
    code, out, err = await run_dump("--confdir", str(tmp_path / "conf"), "-p", "0",
                                    "--allow-hosts", "a", "--ignore-hosts", "b")
    assert code == 2
    assert "allow_hosts and ignore_hosts cannot be used together" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


async def test_allow_hosts_at_run_time_is_refused_while_ignore_hosts_is_set(make_proxy, origin, test_ca):
    proxy = await make_proxy(ssl_verify_upstream_trusted_ca=test_ca.path, ignore_hosts=["nothing-matches"])
    with pytest.raises(OptionsError, match="cannot be used together"):
        proxy.master.options.update(allow_hosts=["localhost"])
    assert proxy.master.options.allow_hosts == []
    with pytest.raises(OptionsError, match="invalid regular expression"):
        proxy.master.options.update(ignore_hosts=["("])
    assert proxy.master.options.ignore_hosts == ["nothing-matches"]
    code, out, err = await get(proxy, https_url(origin.port, "/still"))
    assert (code, out) == (0, b"ok /still\n200"), err
