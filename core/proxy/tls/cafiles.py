"""The CA's files in the confdir: create the CA on first use, load it later, and write the files safely.

Files (SPEC, TLS):
    interpose-ca.pem        private key + certificate (PEM), mode 0600, never world-readable even briefly
    interpose-ca-cert.pem   the certificate users trust (PEM)
    interpose-ca-cert.cer   the same certificate (DER)

The CA key is RSA 2048 for the widest client support.
"""
from __future__ import annotations

import datetime
import os
import stat
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from interpose.errors import InterposeError

CA_FILE = "interpose-ca.pem"
CA_CERT_PEM_FILE = "interpose-ca-cert.pem"
CA_CERT_DER_FILE = "interpose-ca-cert.cer"

CA_VALIDITY = datetime.timedelta(days=3650)
BACKDATE = datetime.timedelta(days=2)
"""Tolerates clients whose clock runs behind ours."""


class CertError(InterposeError):
    """The CA in the confdir cannot be created or loaded; the message names the file."""


def load_or_create(confdir: str) -> tuple[CertificateIssuerPrivateKeyTypes, x509.Certificate, str]:
    """(key, certificate, path of interpose-ca-cert.pem) of the CA in `confdir`, which is created (0700) with
    the CA files on first use."""
    confdir = os.path.expanduser(confdir)
    ensure_dir(confdir)
    key_path = os.path.join(confdir, CA_FILE)
    if os.path.exists(key_path):
        key, cert = load_ca(key_path)
    else:
        key, cert = create_ca()
        if not publish(key_path, key_pem(key) + cert.public_bytes(serialization.Encoding.PEM), 0o600):
            key, cert = load_ca(key_path)  # another process created it first: use theirs
    fix_mode(key_path)
    pem_path = os.path.join(confdir, CA_CERT_PEM_FILE)
    write_if_changed(pem_path, cert.public_bytes(serialization.Encoding.PEM))
    write_if_changed(os.path.join(confdir, CA_CERT_DER_FILE), cert.public_bytes(serialization.Encoding.DER))
    return key, cert, pem_path


def key_usage(signing: bool, encipherment: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing, content_commitment=False, key_encipherment=encipherment,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False,
    )


def key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def create_ca() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "interpose"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "interpose"),
    ])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(signing=False, cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def load_ca(path: str) -> tuple[CertificateIssuerPrivateKeyTypes, x509.Certificate]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CertError(f"cannot read the CA file {path}: {e.strerror or e}") from e
    try:
        # Our own 0600 file: OpenSSL's RSA consistency check (≈ 50 ms at every start) guards against
        # hostile keys, not ours. The key still has to match the certificate (below).
        key = serialization.load_pem_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
        cert = x509.load_pem_x509_certificate(data)
    except (ValueError, TypeError, x509.UnsupportedGeneralNameType) as e:
        raise CertError(
            f"the CA file {path} is corrupt or not an unencrypted PEM private key plus certificate ({e}); "
            f"move it away to create a new CA"
        ) from e
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey,
                            ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        raise CertError(f"the CA file {path} holds a {type(key).__name__}, which cannot sign certificates")
    if key.public_key() != cert.public_key():
        raise CertError(f"the CA file {path}: the private key does not belong to the certificate")
    return key, cert


def ensure_dir(confdir: str) -> None:
    """Create `confdir` with mode 0700; an existing directory keeps the mode its owner chose."""
    try:
        os.makedirs(confdir, mode=0o700)
    except FileExistsError:
        if not os.path.isdir(confdir):
            raise CertError(f"the confdir {confdir} exists but is not a directory") from None
        return
    except OSError as e:
        raise CertError(f"cannot create the confdir {confdir}: {e.strerror or e}") from e
    os.chmod(confdir, 0o700)  # makedirs' mode is filtered through the umask


def fix_mode(path: str) -> None:
    """Tighten a key file someone loosened; if we may not (not our file), leave it."""
    try:
        if stat.S_IMODE(os.stat(path).st_mode) & 0o077:
            os.chmod(path, 0o600)
    except OSError:
        pass


def publish(path: str, data: bytes, mode: int) -> bool:
    """Write `data` to `path` atomically, only if `path` does not exist yet (else False).

    The temp file is born 0600 (mkstemp), so a key is never readable by others, not even briefly. A hard link
    publishes it without clobbering a CA another process wrote meanwhile; os.replace where links are unsupported.
    """
    tmp = write_temp(path, data, mode)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            os.replace(tmp, path)
        return True
    except OSError as e:
        raise CertError(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_if_changed(path: str, data: bytes) -> None:
    """(Re)create a public certificate file when missing or stale; atomically via os.replace."""
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return
    except OSError:
        pass
    tmp = write_temp(path, data, 0o644)
    try:
        os.replace(tmp, path)
    except OSError as e:
        os.unlink(tmp)
        raise CertError(f"cannot write {path}: {e.strerror or e}") from e


def write_temp(path: str, data: bytes, mode: int) -> str:
    directory = os.path.dirname(path) or "."
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".pem")
    except OSError as e:
        raise CertError(f"cannot write {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
    except BaseException as e:
        os.unlink(tmp)
        if isinstance(e, OSError):
            raise CertError(f"cannot write {path}: {e.strerror or e}") from e
        raise
    return tmp
