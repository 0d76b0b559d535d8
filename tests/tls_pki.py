"""Certificates and TLS origins the TLS option tests need beyond tests.tls_servers: client certificates
(clientAuth), leaves with chosen names, and small TLS origins whose context a test sets up (mTLS, one TLS
version only, session tickets) and which record what each handshake looked like.

    pem = issue(ca, "client", client=True, path=tmp / "client.pem")        # key + certificate in one PEM
    origin = await RecordingOrigin(ctx).start()                              # answers "ok <path>" and closes
    origin.handshakes[-1].session_reused
"""
from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.tls_servers import ORIGIN_NAMES, TestCA


def issue(ca: TestCA, cn: str, path: Path, sans: Sequence[str] = (), client: bool = False, expired: bool = False,
          organization: str | None = None) -> str:
    """Write a key and a certificate signed by `ca` into `path` (one PEM); returns the path."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    now = datetime.datetime.now(datetime.UTC)
    start, end = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)) if expired else (
        now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs)).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                              else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False)
    cert = builder.sign(ca.store.ca_key, hashes.SHA256())
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM) + ca.cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def origin_context(ca: TestCA, *, require_client_ca: str | None = None, minimum: ssl.TLSVersion | None = None,
                   maximum: ssl.TLSVersion | None = None, names: Sequence[str] = ORIGIN_NAMES,
                   organization: str | None = None) -> ssl.SSLContext:
    """A fresh server context with the origin certificate of `ca` (or one for `names`), ALPN http/1.1, optionally
    requiring a client certificate signed by the CA in `require_client_ca` and limited in TLS versions."""
    leaf = ca.store.get_cert(names[0], names[1:], organization)
    chain = ca.directory / f"chain-{abs(hash((tuple(names), organization)))}.pem"
    chain.write_bytes(leaf.key_pem + leaf.chain_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(chain))
    ctx.set_alpn_protocols(["http/1.1"])
    if require_client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=require_client_ca)
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


@dataclass
class Handshake:
    version: str | None
    session_reused: bool
    client_cert_subject: str | None


class RecordingOrigin:
    """An HTTP/1.1-over-TLS origin: reads one request head, answers `ok <path>` with Connection: close, and
    records each completed handshake; failed handshakes are counted in `failures`."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.handshakes: list[Handshake] = []
        self.failures = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> RecordingOrigin:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sslobj = writer.get_extra_info("ssl_object")
        peer = sslobj.getpeercert() if sslobj else None
        subject = dict(x[0] for x in peer["subject"]).get("commonName") if peer else None
        self.handshakes.append(Handshake(sslobj.version() if sslobj else None,
                                         bool(sslobj and sslobj.session_reused), subject))
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1]
            body = b"ok " + path
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            self.failures += 1
        finally:
            writer.close()
