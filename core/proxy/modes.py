"""Proxy modes: `regular`, `upstream:URL`, `reverse:URL`, `socks5`."""
from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from interpose.errors import OptionsError


@dataclass(frozen=True)
class Mode:
    kind: str
    """regular, upstream, reverse or socks5."""
    scheme: str = "http"
    host: str = ""
    port: int = 0

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @classmethod
    def parse(cls, spec: str) -> Mode:
        kind, _, url = spec.partition(":")
        kind = kind.strip().lower()
        if kind in ("regular", "socks5"):
            if url:
                raise OptionsError(f"mode {kind} takes no URL (got {spec!r})")
            return cls(kind)
        if kind not in ("upstream", "reverse"):
            raise OptionsError(f"unknown mode {spec!r}: use regular, upstream:URL, reverse:URL or socks5")
        if not url:
            raise OptionsError(f"mode {kind} needs a URL, e.g. {kind}:http://host:port")
        if "://" not in url:
            url = "http://" + url
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise OptionsError(f"invalid URL in mode {spec!r}: expected http(s)://host[:port]")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise OptionsError(f"invalid port in mode {spec!r}") from None
        return cls(kind, scheme, parts.hostname, port)

    def __str__(self) -> str:
        if self.kind in ("regular", "socks5"):
            return self.kind
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.kind}:{self.scheme}://{host}:{self.port}"
