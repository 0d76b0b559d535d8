"""Client and server connection records: who is talking, where, since when, and over what TLS.

These are plain data. The protocol layers fill them in; addons and the TUI read them.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

Address = tuple[str, int]

_ids = itertools.count(1)


@dataclass(eq=False)
class TLSInfo:
    """What one side's TLS handshake settled on."""

    sni: str | None = None
    alpn: str | None = None
    version: str | None = None
    cipher: str | None = None
    cert_subject: str | None = None
    """The peer certificate's subject (server side only)."""
    cert_issuer: str | None = None
    cert_not_after: float | None = None


@dataclass(eq=False)
class Connection:
    """Fields both ends share."""

    address: Address | None = None
    """The peer's address: the client's for a client, the target's for a server."""
    sockname: Address | None = None
    timestamp_start: float = field(default_factory=time.time)
    timestamp_end: float | None = None
    tls: TLSInfo | None = None
    alpn: str | None = None
    """Application protocol in use on this connection (b"h2", "http/1.1"), where negotiated."""
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def sni(self) -> str | None:
        return self.tls.sni if self.tls else None


@dataclass(eq=False)
class Client(Connection):
    """A client connected to the proxy."""

    error: str | None = None
    """Why the proxy closed this connection, when it did (idle, a request head too slow or refused, a
    failed TLS handshake); `clientdisconnect` sees it."""

    def __repr__(self) -> str:
        host, port = self.address or ("?", 0)
        return f"<Client {host}:{port}>"


@dataclass(eq=False)
class Server(Connection):
    """A connection the proxy makes (or is about to make) to a server or upstream proxy.

    `address` is never None once the `serverconnect` hook sees it.
    """

    via: Address | None = None
    """The upstream proxy this connection goes through, if any."""
    connect_headers: list[tuple[str, str]] = field(default_factory=list)
    """Extra headers for the CONNECT sent to the upstream proxy in `via` (addons may set them in `serverconnect`)."""
    timestamp_tcp_setup: float | None = None
    timestamp_tls_setup: float | None = None
    error: str | None = None

    def __repr__(self) -> str:
        host, port = self.address or ("?", 0)
        return f"<Server {host}:{port}>"
