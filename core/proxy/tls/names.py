"""`upstream_cert`: the names a forged certificate carries, copied from the real server's certificate."""
from __future__ import annotations

import re
from functools import lru_cache

from cryptography import x509

from interpose.proxy.tls.pemfiles import leaf_names

_HOSTLIKE = re.compile(r"^[A-Za-z0-9*_.:\[\]-]{1,253}$")


@lru_cache(maxsize=1024)
def server_cert_names(der: bytes) -> tuple[str | None, tuple[str, ...], str | None]:
    """(common name, subject alternative names, organization) of a server certificate (DER). Cached: a server
    presents the same certificate every time."""
    try:
        cert = x509.load_der_x509_certificate(der)
        cn, sans = leaf_names(cert)
        orgs = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    except ValueError:
        return None, (), None
    return cn, tuple(sans), str(orgs[0].value) if orgs else None


def forged_names(client_host: str, der: bytes) -> tuple[str, tuple[str, ...], str | None]:
    """(common name, extra SANs, organization) for the leaf served to a client that asked for `client_host`,
    when the real server presented `der`: the server's CN (when it looks like a host name) and SANs, and the
    client's own name, which the leaf must carry whatever the server's certificate says."""
    cn, sans, organization = server_cert_names(der)
    names = [n for n in (cn if cn and _HOSTLIKE.match(cn) else None, *sans, client_host) if n]
    names = list(dict.fromkeys(names))
    return names[0], tuple(names[1:]), organization
