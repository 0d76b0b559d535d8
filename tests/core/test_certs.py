"""interpose.proxy.tls.certs: the CA files on disk, minted leaves, chain verification, and real handshakes
(Python ssl, curl)."""
from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from interpose.errors import InterposeError
from interpose.proxy.tls.certs import CA_CERT_DER_FILE, CA_CERT_PEM_FILE, CA_FILE, CertError, CertStore

LONG_HOST = ".".join(["a" * 40, "b" * 40, "example", "com"])


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertStore]:
    s = CertStore.from_confdir(str(tmp_path_factory.mktemp("certs") / "conf"))
    yield s
    s.close()


# -- CA files --------------------------------------------------------------------------------------------------


def test_first_use_creates_private_dir_and_files(tmp_path: Path) -> None:
    confdir = tmp_path / "conf"
    old = os.umask(0)  # even a permissive umask must not leak the key
    try:
        s = CertStore.from_confdir(str(confdir))
    finally:
        os.umask(old)
    assert mode(confdir) == 0o700
    assert sorted(os.listdir(confdir)) == sorted([CA_FILE, CA_CERT_PEM_FILE, CA_CERT_DER_FILE])
    assert mode(confdir / CA_FILE) == 0o600
    assert s.ca_cert_path == str(confdir / CA_CERT_PEM_FILE)
    assert (confdir / CA_CERT_PEM_FILE).read_bytes() == s.ca_cert_pem
    assert x509.load_der_x509_certificate((confdir / CA_CERT_DER_FILE).read_bytes()) == s.ca_cert
    data = (confdir / CA_FILE).read_bytes()
    assert b"PRIVATE KEY" in data and b"CERTIFICATE" in data
    assert b"PRIVATE KEY" not in (confdir / CA_CERT_PEM_FILE).read_bytes()


def test_ca_properties(store: CertStore) -> None:
    ca = store.ca_cert
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "interpose"
    assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "interpose"
    assert ca.issuer == ca.subject
    assert ca.public_key().key_size == 2048  # type: ignore[union-attr]
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    now = datetime.datetime.now(datetime.UTC)
    assert now - datetime.timedelta(days=3) < ca.not_valid_before_utc < now - datetime.timedelta(days=1)
    assert ca.not_valid_after_utc - now > datetime.timedelta(days=9 * 365)


def test_reload_gives_same_ca_and_recreates_public_files(tmp_path: Path) -> None:
    confdir = tmp_path / "conf"
    first = CertStore.from_confdir(str(confdir))
    key_bytes = (confdir / CA_FILE).read_bytes()
    (confdir / CA_CERT_PEM_FILE).unlink()
    (confdir / CA_CERT_DER_FILE).write_bytes(b"stale")
    second = CertStore.from_confdir(str(confdir))
    assert second.ca_cert == first.ca_cert
    assert second.ca_key.public_key() == first.ca_key.public_key()
    assert (confdir / CA_FILE).read_bytes() == key_bytes
    assert (confdir / CA_CERT_PEM_FILE).read_bytes() == first.ca_cert_pem
    assert (confdir / CA_CERT_DER_FILE).read_bytes() == first.ca_cert.public_bytes(serialization.Encoding.DER)
    assert not [n for n in os.listdir(confdir) if n.startswith(".tmp-")]


def test_existing_dir_keeps_its_mode_but_key_file_is_tightened(tmp_path: Path) -> None:
    confdir = tmp_path / "conf"
    confdir.mkdir()
    os.chmod(confdir, 0o755)
    CertStore.from_confdir(str(confdir))
    assert mode(confdir) == 0o755
    assert mode(confdir / CA_FILE) == 0o600
    os.chmod(confdir / CA_FILE, 0o644)
    CertStore.from_confdir(str(confdir))
    assert mode(confdir / CA_FILE) == 0o600


@pytest.mark.parametrize("content", [
    b"",
    b"not a pem file at all",
    b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
])
def test_corrupt_ca_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    confdir = tmp_path / "conf"
    confdir.mkdir()
    (confdir / CA_FILE).write_bytes(content)
    with pytest.raises(CertError, match=CA_FILE) as exc:
        CertStore.from_confdir(str(confdir))
    assert isinstance(exc.value, InterposeError)


def test_truncated_ca_file_is_a_clear_error(tmp_path: Path, store: CertStore) -> None:
    confdir = tmp_path / "conf"
    CertStore.from_confdir(str(confdir))
    data = (confdir / CA_FILE).read_bytes()
    (confdir / CA_FILE).write_bytes(data[: len(data) - 200])  # the certificate is cut off
    with pytest.raises(CertError, match=str(confdir / CA_FILE)):
        CertStore.from_confdir(str(confdir))


def test_key_not_matching_certificate(tmp_path: Path, store: CertStore) -> None:
    confdir = tmp_path / "conf"
    other = CertStore.from_confdir(str(confdir))
    key_pem = other.ca_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
    (confdir / CA_FILE).write_bytes(key_pem + store.ca_cert_pem)
    with pytest.raises(CertError, match="does not belong"):
        CertStore.from_confdir(str(confdir))


def test_confdir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "conf").write_text("x")
    with pytest.raises(CertError, match="not a directory"):
        CertStore.from_confdir(str(tmp_path / "conf"))


# -- leaves ----------------------------------------------------------------------------------------------------


def sans_of(cert: x509.Certificate) -> list[object]:
    return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)


def cn_of(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


@pytest.mark.parametrize(("host", "expected"), [
    ("localhost", x509.DNSName("localhost")),
    ("127.0.0.1", x509.IPAddress(ipaddress.ip_address("127.0.0.1"))),
    ("::1", x509.IPAddress(ipaddress.ip_address("::1"))),
    (LONG_HOST, x509.DNSName(LONG_HOST)),
])
def test_leaf_names(store: CertStore, host: str, expected: x509.GeneralName) -> None:
    leaf = store.get_cert(host)
    assert sans_of(leaf.cert) == [expected]
    assert cn_of(leaf.cert) == host[:64]
    assert leaf.cert.issuer == store.ca_cert.subject


def test_leaf_extensions_and_validity(store: CertStore) -> None:
    cert = store.get_cert("example.com").cert
    ext = cert.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ku = ext.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    assert ExtendedKeyUsageOID.SERVER_AUTH in ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = store.ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    ext.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= datetime.timedelta(days=398)
    assert cert.not_valid_before_utc < datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)


def test_leaf_sans_organization_and_cache(store: CertStore) -> None:
    leaf = store.get_cert("example.com", ["www.example.com", "10.0.0.1", "example.com", "[2001:db8::1]"],
                          organization="Example Inc")
    assert sans_of(leaf.cert) == [
        x509.DNSName("example.com"), x509.DNSName("www.example.com"),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")), x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
    ]
    assert leaf.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example Inc"
    assert store.get_cert("example.com", ["www.example.com", "10.0.0.1", "example.com", "[2001:db8::1]"],
                          organization="Example Inc") is leaf
    other = store.get_cert("other.example")
    assert other.cert.serial_number != leaf.cert.serial_number
    assert other.key_pem == leaf.key_pem  # one shared leaf key
    assert leaf.chain_pem == leaf.cert_pem + store.ca_cert_pem


def test_leaf_without_sni(store: CertStore) -> None:
    assert store.get_cert(None, ["10.1.2.3"]).cert.subject.rfc4514_string() == "CN=10.1.2.3"
    bare = store.get_cert(None)
    assert bare.cert.subject.rfc4514_string() == ""
    with pytest.raises(x509.ExtensionNotFound):
        bare.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_unicode_host_becomes_a_label(store: CertStore) -> None:
    assert sans_of(store.get_cert("bücher.example").cert) == [x509.DNSName("xn--bcher-kva.example")]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1", LONG_HOST])
def test_chain_verifies_with_cryptography(store: CertStore, host: str) -> None:
    try:
        subject: x509.DNSName | x509.IPAddress = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = x509.DNSName(host)
    verifier = PolicyBuilder().store(Store([store.ca_cert])).build_server_verifier(subject)
    chain = verifier.verify(store.get_cert(host).cert, [])
    assert chain[-1] == store.ca_cert


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", LONG_HOST])
def test_chain_verifies_with_openssl(store: CertStore, tmp_path: Path, host: str) -> None:
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(store.get_cert(host).cert_pem)
    check = ["-verify_ip", host] if host[0].isdigit() else ["-verify_hostname", host]
    out = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-purpose", "sslserver", *check, "-CAfile", store.ca_cert_path,
         str(leaf)],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith(": OK")


def test_ssl_context_is_cached_per_host_and_alpn(store: CertStore) -> None:
    ctx = store.ssl_context("cache.example")
    assert store.ssl_context("cache.example") is ctx
    assert store.ssl_context("cache.example", alpn=("http/1.1",)) is not ctx
    assert store.ssl_context("other.example") is not ctx


# -- real handshakes -------------------------------------------------------------------------------------------


async def echo_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    data = await reader.read(100)
    writer.write(data.upper())
    await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def serve(handler: object, ctx: ssl.SSLContext, host: str = "127.0.0.1") -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, host, 0, ssl=ctx)  # type: ignore[arg-type]
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def client_context(store: CertStore, alpn: list[str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=store.ca_cert_path)  # trusts only our CA
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT  # the default from Python 3.13 on
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


async def handshake(store: CertStore, name: str, server_alpn: tuple[str, ...], client_alpn: list[str],
                    bind: str = "127.0.0.1") -> str | None:
    async with serve(echo_once, store.ssl_context(name, alpn=server_alpn), bind) as port:
        reader, writer = await asyncio.open_connection(bind, port, ssl=client_context(store, client_alpn),
                                                       server_hostname=name)
        writer.write(b"ping")
        async with asyncio.timeout(10):
            assert await reader.read() == b"PING"
        alpn = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        writer.close()
        return alpn  # type: ignore[no-any-return]


@pytest.mark.parametrize(("server_alpn", "client_alpn", "expected"), [
    (("h2", "http/1.1"), ["h2", "http/1.1"], "h2"),
    (("h2", "http/1.1"), ["http/1.1"], "http/1.1"),
    (("http/1.1",), ["h2", "http/1.1"], "http/1.1"),
    (("h2", "http/1.1"), [], None),
    ((), ["h2", "http/1.1"], None),
])
async def test_handshake_localhost_and_alpn(store: CertStore, server_alpn: tuple[str, ...], client_alpn: list[str],
                                            expected: str | None) -> None:
    assert await handshake(store, "localhost", server_alpn, client_alpn) == expected


async def test_handshake_ip_address(store: CertStore) -> None:
    assert await handshake(store, "127.0.0.1", ("h2",), ["h2"]) == "h2"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
async def test_handshake_ipv6_address(store: CertStore) -> None:
    assert await handshake(store, "::1", ("h2", "http/1.1"), ["http/1.1"], bind="::1") == "http/1.1"


async def test_handshake_wrong_name_fails(store: CertStore) -> None:
    async with serve(echo_once, store.ssl_context("localhost")) as port:
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection("127.0.0.1", port, ssl=client_context(store, []),
                                          server_hostname="not-localhost.example")


async def http_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
    await writer.drain()
    writer.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
async def test_curl_trusts_the_ca(store: CertStore) -> None:
    async with serve(http_hello, store.ssl_context("localhost", alpn=("http/1.1",))) as port:
        proc = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--max-time", "10", "--cacert", store.ca_cert_path,
            "--resolve", f"localhost:{port}:127.0.0.1", f"https://localhost:{port}/",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(20):
            out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert out == b"hello"


def test_close_removes_private_dir(tmp_path: Path) -> None:
    s = CertStore.from_confdir(str(tmp_path / "conf"))
    ctx = s.ssl_context("localhost")
    tmpdir = s._tmpdir
    assert tmpdir is not None and mode(Path(tmpdir)) == 0o700
    assert mode(Path(tmpdir) / "leaf-key.pem") == 0o600
    assert os.listdir(tmpdir) == ["leaf-key.pem"]  # chain files are removed right after loading
    s.close()
    assert not os.path.exists(tmpdir)
    assert s.ssl_context("localhost") is ctx  # built contexts keep their cert in memory
    s.ssl_context("new.example")  # and new ones recreate the directory
    s.close()
