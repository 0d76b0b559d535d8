"""Proxy modes: `regular`, `upstream:URL`, `reverse:URL`, `socks5`, `transparent`.

`reverse:h2c://host:port` is a reverse proxy to a server that speaks HTTP/2 in clear text with prior
knowledge; `reverse:http://` speaks HTTP/1.1 to the server (clients may speak either to the proxy).
"""
from __future__ import annotations

import sys
import urllib.parse
from dataclasses import dataclass

from interpose.errors import OptionsError

NO_URL = ("regular", "socks5", "transparent")


@dataclass(frozen=True)
class Mode:
    kind: str
    """regular, upstream, reverse, socks5 or transparent."""
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
        if kind in NO_URL:
            if url:
                raise OptionsError(f"mode {kind} takes no URL (got {spec!r})")
            if kind == "transparent" and not sys.platform.startswith("linux"):
                raise OptionsError("mode transparent needs Linux (the original destination comes from SO_ORIGINAL_DST)")
            return cls(kind)
        if kind not in ("upstream", "reverse"):
            raise OptionsError(f"unknown mode {spec!r}: use regular, upstream:URL, reverse:URL, socks5 or transparent")
        if not url:
            raise OptionsError(f"mode {kind} needs a URL, e.g. {kind}:http://host:port")
        if "://" not in url:
            url = "http://" + url
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "h2c" and kind != "reverse":
            raise OptionsError(f"invalid URL in mode {spec!r}: h2c:// is for reverse mode only")
        if scheme not in ("http", "https", "h2c") or not parts.hostname:
            raise OptionsError(f"invalid URL in mode {spec!r}: expected http(s)://host[:port]")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise OptionsError(f"invalid port in mode {spec!r}") from None
        return cls(kind, scheme, parts.hostname, port)

    @property
    def request_scheme(self) -> str:
        """The scheme of requests to a reverse proxy's server: h2c is plain HTTP."""
        return "http" if self.scheme == "h2c" else self.scheme

    @property
    def h2c(self) -> bool:
        """A reverse proxy to a clear-text HTTP/2 server (prior knowledge)."""
        return self.kind == "reverse" and self.scheme == "h2c"

    def __str__(self) -> str:
        if self.kind in NO_URL:
            return self.kind
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.kind}:{self.scheme}://{host}:{self.port}"
