"""The leaf certificates the interception CA mints: sign and cache per-host leaves, and hand out ready-to-use
server-side `ssl.SSLContext`s (the CA's own files: `cafiles`).

Every leaf shares one EC P-256 key made once per store: minting a leaf is then one CA signature, and handshakes
sign with the cheap EC key. Contexts are cached and reused, so a client's session ticket stays valid for the
next connection to the same host (OpenSSL's ticket keys belong to the context).
"""
from __future__ import annotations

import atexit
import datetime
import ipaddress
import os
import shutil
import ssl
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from interpose.proxy.tls import cafiles
from interpose.proxy.tls.cafiles import (
    BACKDATE,
    CA_CERT_DER_FILE,
    CA_CERT_PEM_FILE,
    CA_FILE,
    CertError,
    key_pem,
    key_usage,
)
from interpose.proxy.tls.versions import Versions, apply_keylog, apply_versions, keylog_file

__all__ = ["CA_CERT_DER_FILE", "CA_CERT_PEM_FILE", "CA_FILE", "CertError", "CertStore", "LeafCert"]

LEAF_VALIDITY = datetime.timedelta(days=395)
"""Counted from now; with the 2-day backdating the whole period is 397 days, under the 398 browsers accept."""
CN_MAX = 64
"""RFC 5280's upper bound for a commonName; `cryptography` refuses longer ones."""

CacheKey: TypeAlias = tuple[str | None, tuple[str, ...], str | None]


@dataclass(frozen=True)
class LeafCert:
    """A minted leaf certificate for one host."""

    cert: x509.Certificate
    cert_pem: bytes
    key_pem: bytes
    """The store's shared leaf private key (PKCS#8 PEM, unencrypted)."""
    chain_pem: bytes
    """`cert_pem` followed by the CA certificate: what a server sends."""


class CertStore:
    """Holds the CA and mints leaves signed by it. Not thread-safe: use it from the event loop's thread."""

    def __init__(
        self,
        ca_key: CertificateIssuerPrivateKeyTypes,
        ca_cert: x509.Certificate,
        ca_cert_path: str,
        *,
        leaf_cache_size: int = 4096,
        context_cache_size: int = 1024,
    ) -> None:
        self.ca_key = ca_key
        self.ca_cert = ca_cert
        self.ca_cert_path = ca_cert_path
        """The `interpose-ca-cert.pem` file to give clients (`curl --cacert`, `cafile=`)."""
        self.ca_cert_pem: bytes = ca_cert.public_bytes(serialization.Encoding.PEM)
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.leaf_key_pem: bytes = key_pem(self.leaf_key)
        self._leaf_ski = x509.SubjectKeyIdentifier.from_public_key(self.leaf_key.public_key())
        self._aki = _authority_key_identifier(ca_cert)
        self._leaves: OrderedDict[CacheKey, LeafCert] = OrderedDict()
        self._contexts: OrderedDict[tuple[CacheKey, tuple[str, ...], Versions], ssl.SSLContext] = OrderedDict()
        self._leaf_cache_size = leaf_cache_size
        self._context_cache_size = context_cache_size
        self._tmpdir: str | None = None
        self._cleanup: Callable[[], None] | None = None

    @classmethod
    def from_confdir(cls, confdir: str) -> CertStore:
        """Load the CA from `confdir`, creating the directory (0700) and the CA files on first use."""
        return cls(*cafiles.load_or_create(confdir))

    def get_cert(self, host: str | None, sans: Sequence[str] = (), organization: str | None = None) -> LeafCert:
        """The leaf for `host` (a DNS name or IP literal; None when the client sent no SNI) plus extra `sans`.

        The common name is `host` (or the first SAN), cut to 64 characters; every name also goes into the SAN
        extension, as an IPAddress entry for IP literals and a DNSName otherwise. Cached (LRU).
        """
        key: CacheKey = (host, tuple(sans), organization)
        leaf = self._leaves.get(key)
        if leaf is not None:
            self._leaves.move_to_end(key)
            return leaf
        leaf = self._mint(host, sans, organization)
        self._leaves[key] = leaf
        if len(self._leaves) > self._leaf_cache_size:
            self._leaves.popitem(last=False)
        return leaf

    def ssl_context(
        self,
        host: str | None,
        sans: Sequence[str] = (),
        alpn: Sequence[str] = ("h2", "http/1.1"),
        organization: str | None = None,
        versions: Versions = ("TLS1_2", "UNBOUNDED"),
    ) -> ssl.SSLContext:
        """A server-side context presenting the leaf for `host`/`sans`. Cached: a repeat costs a dict lookup.

        `alpn` is this side's preference order and the server picks the first entry the client also offers,
        so pass what the client offered intersected with what the upstream speaks (e.g. just `("http/1.1",)`
        when the server lacks h2). An empty `alpn` disables ALPN. Treat the returned context as read-only:
        it is shared by every connection to the same host (which lets clients resume their sessions).
        `versions` are the (minimum, maximum) TLS versions accepted (`versions.VERSIONS` names). Secrets are
        logged to `versions.keylog_file()` when it names a file.
        """
        key = ((host, tuple(sans), organization), tuple(alpn), versions)
        ctx = self._contexts.get(key)
        if ctx is not None:
            self._contexts.move_to_end(key)
            return ctx
        ctx = self._build_context(self.get_cert(host, sans, organization), alpn)
        apply_versions(ctx, versions)
        apply_keylog(ctx, keylog_file())
        self._contexts[key] = ctx
        if len(self._contexts) > self._context_cache_size:
            self._contexts.popitem(last=False)
        return ctx

    def close(self) -> None:
        """Remove the private temp directory holding the leaf key. Contexts already built keep working."""
        if self._cleanup is not None:
            self._cleanup()
            atexit.unregister(self._cleanup)
            self._cleanup = None
            self._tmpdir = None

    def _build_context(self, leaf: LeafCert, alpn: Sequence[str]) -> ssl.SSLContext:
        # load_cert_chain only reads files. The key file lives in a 0700 directory for the store's lifetime;
        # each chain file exists only while it is being loaded.
        tmpdir = self._private_dir()
        fd, chain_path = tempfile.mkstemp(dir=tmpdir, suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(leaf.chain_pem)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(chain_path, os.path.join(tmpdir, "leaf-key.pem"))
        finally:
            os.unlink(chain_path)
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        return ctx

    def _private_dir(self) -> str:
        if self._tmpdir is None or not os.path.isdir(self._tmpdir):
            path = tempfile.mkdtemp(prefix="interpose-certs-")  # mode 0700
            fd = os.open(os.path.join(path, "leaf-key.pem"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(self.leaf_key_pem)

            # A closure over the path only, so atexit does not keep the whole store alive.
            def cleanup() -> None:
                shutil.rmtree(path, ignore_errors=True)

            if self._cleanup is not None:
                atexit.unregister(self._cleanup)
            atexit.register(cleanup)
            self._tmpdir, self._cleanup = path, cleanup
        return self._tmpdir

    def _mint(self, host: str | None, sans: Sequence[str], organization: str | None) -> LeafCert:
        names = [n for n in dict.fromkeys([host, *sans]) if n]  # ordered, without duplicates
        generals = (_general_name(n) for n in names)
        alt_names: list[x509.GeneralName] = [g for g in dict.fromkeys(generals) if g is not None]
        attrs: list[x509.NameAttribute[str]] = []
        if names:
            attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, names[0][:CN_MAX]))
        if organization:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization[:CN_MAX]))
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self.ca_cert.subject)
            .public_key(self.leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + LEAF_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # An EC key cannot encipher (RFC 5480 §3), so key_encipherment is asserted only for RSA keys.
            .add_extension(key_usage(signing=True, encipherment=isinstance(self.leaf_key, rsa.RSAPrivateKey)),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(self._leaf_ski, critical=False)
            .add_extension(self._aki, critical=False)
        )
        if alt_names:  # an empty SAN extension is invalid (RFC 5280 §4.2.1.6)
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        cert = builder.sign(self.ca_key, _hash_for(self.ca_key))
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        return LeafCert(cert=cert, cert_pem=cert_pem, key_pem=self.leaf_key_pem, chain_pem=cert_pem + self.ca_cert_pem)


def _general_name(name: str) -> x509.GeneralName | None:
    """An IPAddress entry for an IP literal (brackets allowed), else a DNSName in A-label form; None if unusable."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        pass
    name = name.rstrip(".").lower()
    if not name:
        return None
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return x509.DNSName(name)


def _hash_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    # Ed25519/Ed448 sign without a separate digest; the rest use SHA-256.
    return None if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)) else hashes.SHA256()


def _authority_key_identifier(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    # Use the CA's own SKI when it has one (a user-supplied CA may compute it differently).
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())  # type: ignore[arg-type]


