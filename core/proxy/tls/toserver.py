"""The proxy as a TLS client of servers: contexts (trust, ALPN, version limits, key logging, client
certificates) and TLS session resumption.

Sessions are kept per (host, port) in each context (a context already stands for one ALPN offer, one client
certificate and one set of limits), at most `SESSIONS_PER_CONTEXT` of them, least recently used dropped. A
session is offered on the next connection to the same place and saved again when the connection ends (a TLS
1.3 server sends its tickets after the handshake, so the session worth keeping comes later).

`client_certs` is a PEM file (key + certificate) presented to every server that asks, or a directory of
`HOST.pem` files, one per server name. OpenSSL sends the certificate only when a server asks for one.
"""
from __future__ import annotations

import asyncio
import os
import ssl
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import certifi

from interpose.errors import InterposeError
from interpose.proxy.tls.pemfiles import PemError, load_bundle
from interpose.proxy.tls.versions import (
    DEFAULT_MAX,
    DEFAULT_MIN,
    Versions,
    apply_keylog,
    apply_versions,
    describe_version_error,
    keylog_file,
)

SESSIONS_PER_CONTEXT = 1024
SessionKey = tuple[str, int]



class _Attempt:
    """One `start_tls` in progress: where it goes, and the TLS object `wrap_bio` made for it."""

    __slots__ = ("hostname", "key", "sslobj")

    def __init__(self, hostname: str, key: SessionKey) -> None:
        self.hostname = hostname
        self.key = key
        self.sslobj: ssl.SSLObject | None = None


_CONTENT_HANDSHAKE = 22
_CERTIFICATE_REQUEST = 13
try:  # the C-level message callback: raw numbers, without ssl.py's per-message enum conversions
    _set_msg_callback: Any = ssl._ssl._SSLContext._msg_callback.__set__  # type: ignore[attr-defined]
except AttributeError:  # pragma: no cover - an ssl module without it: no hint, nothing else changes
    _set_msg_callback = None


def _on_message(conn: Any, direction: str, version: int, content_type: int, msg_type: int, data: bytes) -> None:
    """Notes on the TLS object that the server asked for a client certificate (set only on contexts without one)."""
    if msg_type == _CERTIFICATE_REQUEST and content_type == _CONTENT_HANDSHAKE and direction == "read" and conn:
        conn.interpose_cert_requested = True


class HandshakeEnded(ssl.SSLError):
    """The server hung up during the handshake while version limits were set (the message names them)."""


class ClientCertRequired(ssl.SSLError):
    """The server asked for a client certificate, the proxy had none to give, and the handshake failed."""


CERT_REQUIRED_MESSAGE = ("the server requires a client certificate (it asked for one and the proxy had none to "
                         "present); set the option client_certs")


class ClientCertError(InterposeError):
    """The client certificate for a server cannot be used (the message says why)."""


class ResumingContext(ssl.SSLContext):
    """A client-side context that offers the session it saved for the place being connected to."""

    sessions: OrderedDict[SessionKey, ssl.SSLSession]
    attempts: list[_Attempt]
    interpose_versions: Versions
    """`start_tls` calls waiting for their TLS object, oldest first: the event loop (asyncio's or uvloop's)
    makes it in a callback, in the order the calls were made, and in no task's context."""

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, server_side: bool = False,
                 server_hostname: str | bytes | None = None, session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        attempt = None
        if not server_side:
            attempt = next((a for a in self.attempts if a.hostname == server_hostname), None)
        if attempt is not None:
            self.attempts.remove(attempt)
            if session is None:
                session = self.sessions.get(attempt.key)
        obj = super().wrap_bio(incoming, outgoing, server_side=server_side, server_hostname=server_hostname,
                               session=session)
        obj.interpose_session_key = attempt.key if attempt is not None else None  # type: ignore[attr-defined]
        if attempt is not None:
            attempt.sslobj = obj
        return obj

    def remember(self, key: SessionKey, session: ssl.SSLSession) -> None:
        self.sessions[key] = session
        self.sessions.move_to_end(key)
        while len(self.sessions) > SESSIONS_PER_CONTEXT:
            self.sessions.popitem(last=False)


def client_cert_path(client_certs: str | None, host: str) -> str | None:
    """The PEM to present to `host`: the file itself, or `DIR/HOST.pem` when it exists; checked (cached) and
    raising ClientCertError when it is unusable (expired, no key, ...)."""
    if not client_certs:
        return None
    base = os.path.expanduser(client_certs)
    if os.path.isdir(base):
        name = host.strip("[]").rstrip(".").lower()
        if not name or "/" in name or name.startswith("."):
            return None
        path = os.path.join(base, f"{name}.pem")
        if not os.path.exists(path):
            return None
    else:
        path = base
    try:
        st = os.stat(path)
        _check_client_cert(path, st.st_mtime_ns, st.st_size)
    except OSError as e:
        raise ClientCertError(f"client_certs: cannot read {path}: {e.strerror or e}") from None
    except PemError as e:
        raise ClientCertError(str(e)) from None
    return path


@lru_cache(maxsize=256)
def _check_client_cert(path: str, mtime_ns: int, size: int) -> None:
    load_bundle(path, "client_certs", check_expiry=True)


def check_client_certs(value: str | None) -> None:
    """Validate the option at start or when it changes: a file must be a usable bundle, a directory must exist
    (its files are checked when a server asks)."""
    if not value:
        return
    path = os.path.expanduser(value)
    if os.path.isdir(path):
        return
    if not os.path.exists(path):
        raise PemError(f"client_certs: {path} does not exist (give a PEM file or a directory of HOST.pem files)")
    load_bundle(path, "client_certs", check_expiry=True)


def context_for(options: Any, host: str, alpn: tuple[str, ...]) -> ResumingContext:
    """The context for a TLS connection to `host` (its SNI, or address) under the current options."""
    versions = (options.tls_version_server_min, options.tls_version_server_max)
    cert = client_cert_path(options.client_certs, host)
    return _context(bool(options.ssl_insecure), options.ssl_verify_upstream_trusted_ca, alpn, cert, versions,
                     keylog_file())


@lru_cache(maxsize=64)
def _context(insecure: bool, extra_ca: str | None, alpn: tuple[str, ...], client_cert: str | None,
             versions: Versions, keylog: str | None) -> ResumingContext:
    ctx = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.sessions = OrderedDict()
    ctx.attempts = []
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile=certifi.where())
        if extra_ca:
            ctx.load_verify_locations(cafile=extra_ca)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if not client_cert and _set_msg_callback is not None:
        _set_msg_callback(ctx, _on_message)  # to say why, when a server wants a certificate
    if client_cert:
        try:
            ctx.load_cert_chain(client_cert)
        except (ssl.SSLError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise ClientCertError(f"client_certs: cannot use {client_cert}: {reason}") from None
    apply_versions(ctx, versions)
    ctx.interpose_versions = versions
    apply_keylog(ctx, keylog)
    return ctx


async def start_tls(writer: asyncio.StreamWriter, context: ssl.SSLContext, server_hostname: str, port: int) -> None:
    """`writer.start_tls`, offering the session saved for (server_hostname, port) and saving the new one."""
    attempt = _Attempt(server_hostname, (server_hostname, port))
    attempts = getattr(context, "attempts", None)
    if attempts is not None:
        attempts.append(attempt)
    try:
        await writer.start_tls(context, server_hostname=server_hostname)
    except (ssl.SSLError, OSError) as e:
        if getattr(attempt.sslobj, "interpose_cert_requested", False) and not isinstance(
                e, ssl.SSLCertVerificationError):
            raise ClientCertRequired(f"{CERT_REQUIRED_MESSAGE} ({describe_os(e)})") from None
        versions = getattr(context, "interpose_versions", None)
        ended = isinstance(e, ssl.SSLEOFError) or not isinstance(e, ssl.SSLError)
        if ended and versions is not None and versions != (DEFAULT_MIN, DEFAULT_MAX):
            # A server that hangs up on a ClientHello it cannot answer: say which options may be why.
            raise HandshakeEnded(
                f"the server ended the TLS handshake ({describe_os(e)}); the limits tls_version_server_min="
                f"{versions[0]}, tls_version_server_max={versions[1]} may exclude every version it speaks") from None
        raise
    finally:
        if attempts is not None and attempt in attempts:  # failed before the TLS object was made
            attempts.remove(attempt)
    remember(writer.get_extra_info("ssl_object"))


def describe_os(e: OSError) -> str:
    return str(getattr(e, "reason", None) or e.strerror or e or type(e).__name__)


def refused_client(stream: Any) -> str | None:
    """When a server hangs up on a connection after asking for a client certificate the proxy did not have
    (TLS 1.3 servers say no only after the handshake): the reason to give instead of "connection closed"."""
    try:
        sslobj = stream.extra("ssl_object")
    except Exception:  # noqa: BLE001 - a closed transport
        return None
    return CERT_REQUIRED_MESSAGE if getattr(sslobj, "interpose_cert_requested", False) else None


def remember(sslobj: Any) -> None:
    """Save the session of a client-side TLS object made by a ResumingContext (after the handshake, and again
    when the connection ends: TLS 1.3 tickets arrive later). Anything else is ignored."""
    key = getattr(sslobj, "interpose_session_key", None)
    context = getattr(sslobj, "context", None)
    if key is None or not isinstance(context, ResumingContext):
        return
    try:
        session = sslobj.session
    except (ValueError, ssl.SSLError):
        return
    if session is not None and (session.has_ticket or session.id):
        context.remember(key, session)


def remember_stream(stream: Any) -> None:
    """`remember` for a stream's TLS object, if it has one (a `Stream` or a `TlsStream`)."""
    extra = getattr(stream, "extra", None)
    if extra is not None:
        try:
            remember(extra("ssl_object"))
        except Exception:  # noqa: BLE001 - a closed transport: nothing to save
            return


_CERT_ALERTS = ("CERTIFICATE_REQUIRED", "HANDSHAKE_FAILURE", "BAD_CERTIFICATE", "CERTIFICATE_EXPIRED",
                "UNKNOWN_CA", "CERTIFICATE_UNKNOWN", "ACCESS_DENIED")


def describe_error(e: BaseException, options: Any) -> str | None:
    """A clearer reason for TLS failures the options explain (version limits, client certificates), else None."""
    if isinstance(e, (ClientCertRequired, HandshakeEnded)):
        return str(e)
    if not isinstance(e, ssl.SSLError) or isinstance(e, ssl.SSLCertVerificationError):
        return None
    reason = str(e.reason or e)
    versions = (options.tls_version_server_min, options.tls_version_server_max)
    said = describe_version_error(reason, versions, "server")
    if said is not None:
        return f"TLS handshake failed: {said}"
    return describe_alert(reason, bool(options.client_certs))


def describe_alert(reason: str, have_client_certs: bool) -> str | None:
    """For an alert a server sends when it wants a client certificate: a sentence naming `client_certs`."""
    upper = reason.upper()
    if "ALERT" not in upper or not any(a in upper for a in _CERT_ALERTS):
        return None
    if "CERTIFICATE_REQUIRED" in upper and not have_client_certs:
        return f"the server requires a client certificate ({reason}); set the option client_certs"
    if have_client_certs:
        return f"the server refused the client certificate ({reason}); check the option client_certs"
    if "HANDSHAKE_FAILURE" in upper:
        return None
    return f"TLS handshake failed: {reason} (if the server wants a client certificate, set the option client_certs)"
