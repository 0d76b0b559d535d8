"""`--certs [DOMAIN=]PEM` (option `certs`): certificates the user gives the proxy to serve for matching hosts
instead of minting one.

DOMAIN is a host name (`api.example.com`), a wildcard (`*.example.com`: any name under example.com, at any
depth) or `*` (every host; also what a spec without `DOMAIN=` means). The most specific match wins: the exact
name, then the longest wildcard, then `*`; among equals, the first given.
"""
from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from functools import lru_cache

from interpose.proxy.tls.pemfiles import Bundle, PemError, load_bundle
from interpose.proxy.tls.versions import Versions, apply_keylog, apply_versions, keylog_file


@dataclass
class CustomCert:
    domain: str
    bundle: Bundle
    _contexts: dict[tuple[tuple[str, ...], Versions, str | None], ssl.SSLContext] = field(default_factory=dict)

    def rank(self, host: str) -> int | None:
        """How well this entry matches `host` (higher is better), or None when it does not."""
        host = host.rstrip(".").lower()
        if self.domain == "*":
            return 0
        if self.domain.startswith("*."):
            suffix = self.domain[1:]
            return len(suffix) if host.endswith(suffix) and len(host) > len(suffix) else None
        return 10_000 if host == self.domain else None

    def context(self, alpn: tuple[str, ...], versions: Versions) -> ssl.SSLContext:
        """A server-side context presenting this certificate; cached, so clients can resume their sessions."""
        keylog = keylog_file()
        key = (alpn, versions, keylog)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                ctx.load_cert_chain(self.bundle.path)
            except (ssl.SSLError, OSError) as e:  # changed on disk since it was checked
                raise PemError(f"--certs: cannot use {self.bundle.path}: {getattr(e, 'reason', None) or e}") from None
            if alpn:
                ctx.set_alpn_protocols(list(alpn))
            apply_versions(ctx, versions)
            apply_keylog(ctx, keylog)
            self._contexts[key] = ctx
        return ctx


def parse_spec(spec: str) -> tuple[str, str]:
    """`DOMAIN=PATH` or `PATH` → (domain, path); a path that merely contains "=" stays a path."""
    domain, sep, path = spec.partition("=")
    if not sep or "/" in domain or os.sep in domain or not domain.strip():
        return "*", spec
    return domain.strip().rstrip(".").lower(), path


@lru_cache(maxsize=8)
def load(specs: tuple[str, ...]) -> tuple[CustomCert, ...]:
    """Read and check every file named by `specs`; raises PemError naming the first bad one. Cached per list:
    the files are read again when the option changes."""
    entries = []
    for spec in specs:
        domain, path = parse_spec(spec)
        entries.append(CustomCert(domain, load_bundle(path, f"--certs {spec}")))
    return tuple(entries)


def lookup(specs: tuple[str, ...], host: str | None) -> CustomCert | None:
    """The entry to serve for `host` (None when the client sent no name: only `*` matches then)."""
    best: CustomCert | None = None
    best_rank = -1
    for entry in load(specs):
        rank = entry.rank(host) if host else (0 if entry.domain == "*" else None)
        if rank is not None and rank > best_rank:
            best, best_rank = entry, rank
    return best
