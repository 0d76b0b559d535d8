"""PEM files users hand the proxy: a private key plus a certificate chain in one file, for `--certs`
(certificates the proxy serves) and `client_certs` (certificates it presents to servers).

`load_bundle` checks everything a handshake would trip over later and says what is wrong in one sentence:
unreadable, no key, no certificate, an encrypted key, a key that does not belong to the first certificate, or
(when asked) an expired certificate.
"""
from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from interpose.errors import InterposeError

_KEY_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----", re.S)
MAX_PEM_BYTES = 1 << 20


class PemError(InterposeError):
    """A PEM file that cannot serve: the message names the file and what is wrong."""


@dataclass(frozen=True)
class Bundle:
    path: str
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    """Every certificate in the file, the leaf first."""

    @property
    def names(self) -> list[str]:
        """The leaf's subject alternative names (DNS and IP), else its common name."""
        return leaf_names(self.leaf)[1] or [n for n in (leaf_names(self.leaf)[0],) if n]


def leaf_names(cert: x509.Certificate) -> tuple[str | None, list[str]]:
    """(common name, subject alternative names) of a certificate: DNS names and IP addresses as text."""
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else None
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return cn, []
    sans: list[str] = [str(n) for n in ext.get_values_for_type(x509.DNSName)]
    sans += [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    return cn, sans


def load_bundle(path: str, what: str, check_expiry: bool = False) -> Bundle:
    """Read and check `path` (a key and its certificate, optionally followed by the chain). `what` names the
    option in messages (e.g. "--certs")."""
    path = os.path.expanduser(path)
    try:
        if os.path.isdir(path):
            raise PemError(f"{what}: {path} is a directory, not a PEM file")
        with open(path, "rb") as f:
            data = f.read(MAX_PEM_BYTES + 1)
    except OSError as e:
        raise PemError(f"{what}: cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_PEM_BYTES:
        raise PemError(f"{what}: {path} is larger than 1 MiB, not a PEM certificate file")
    try:
        chain = tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        chain = ()
    if not chain:
        raise PemError(f"{what}: {path} holds no PEM certificate (expected a private key and a certificate)")
    block = _KEY_BLOCK.search(data)
    if block is None:
        raise PemError(f"{what}: {path} holds no private key (put the key and the certificate in one PEM file)")
    if block.group(1).strip() == b"ENCRYPTED":
        raise PemError(f"{what}: the private key in {path} is encrypted; the proxy needs it unencrypted")
    try:
        key = serialization.load_pem_private_key(block.group(0), password=None)
    except (ValueError, TypeError) as e:
        raise PemError(f"{what}: the private key in {path} cannot be read ({e})") from None
    leaf = chain[0]
    if key.public_key() != leaf.public_key():
        raise PemError(f"{what}: in {path}, the private key does not belong to the first certificate")
    if check_expiry:
        now = datetime.datetime.now(datetime.UTC)
        if leaf.not_valid_after_utc < now:
            raise PemError(f"{what}: the certificate in {path} expired on {leaf.not_valid_after_utc:%Y-%m-%d}")
        if leaf.not_valid_before_utc > now:
            raise PemError(f"{what}: the certificate in {path} is not valid before "
                           f"{leaf.not_valid_before_utc:%Y-%m-%d}")
    return Bundle(path, leaf, chain)
