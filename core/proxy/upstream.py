"""Opening connections to servers: directly, through an upstream proxy's CONNECT, and with TLS.

`connect()` fires `serverconnect` first (an addon may still change `server_conn.address`), then dials.
Failures raise `ServerConnectError` whose message is what a user needs: "connection refused",
"name does not resolve", "certificate verify failed: ...", "invalid host name ...": a name that cannot be
one (`invalid_host`: an empty or over-long label, over 253 bytes, bad IDNA) is refused before any
resolver or TLS library sees it. `connect_tunnel()` is the CONNECT client on its own, for anything that
reaches a server through an HTTP proxy (the TUI's WebSocket repeater too).

With `--mode upstream:https://...` the connection to the upstream proxy is TLS itself (verified like any
server, against its name in the mode's URL): CONNECT goes inside it, and a server's TLS inside the tunnel
runs over the proxy's TLS with `TlsStream` (sans-io), since asyncio cannot stack a second `start_tls`.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Iterable
from functools import lru_cache

import certifi
import h11
from cryptography import x509

from interpose.errors import InterposeError
from interpose.model.connection import Server, TLSInfo
from interpose.proxy.layer import Context, Stream
from interpose.proxy.tls import toserver
from interpose.proxy.tls.tlsstream import TlsStream
from interpose.runtime import hooks


class ServerConnectError(InterposeError):
    alpn_refused = False
    """The server may have ended the TLS handshake because it speaks none of the protocols offered (ALPN):
    it said so (a no_application_protocol alert), or it hung up mid-handshake, as `openssl s_server -alpn`
    and some other servers do then."""


@lru_cache(maxsize=16)
def client_tls_context(insecure: bool, extra_ca: str | None, alpn: tuple[str, ...]) -> ssl.SSLContext:
    """The context for TLS towards servers: certifi's store (plus extra_ca) unless insecure. Cached."""
    return make_client_tls_context(insecure, (extra_ca,), alpn)


def make_client_tls_context(insecure: bool, cafiles: Iterable[str | None], alpn: tuple[str, ...]) -> ssl.SSLContext:
    """A new client TLS context trusting certifi's store plus `cafiles`, or nothing at all when insecure."""
    if insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=certifi.where())
        for path in cafiles:
            if path:
                ctx.load_verify_locations(cafile=path)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")
MAX_NAME = 253
"""The longest DNS name in text form, without its trailing dot (RFC 1035: 255 bytes on the wire)."""


def shown_host(host: str) -> str:
    """`host` for a log line or an error: as is up to 64 characters, else its start and its length."""
    return host if len(host) <= 64 else f"{host[:40]}... ({len(host)} characters)"


def invalid_host(host: str) -> str | None:
    """Why `host` cannot be a server name, or None when it can: an IP literal (brackets allowed) as is,
    else a DNS name of labels of 1 to 63 letters, digits, hyphens or underscores, 253 bytes at most
    (one trailing dot allowed), non-ASCII names through IDNA first. The reason names the host, shortened."""
    prefix = f"invalid host name {shown_host(host)!r}"
    if not host:
        return "invalid host name: empty"
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
        return None
    except ValueError:
        pass
    if len(host) > 4 * MAX_NAME:
        return f"{prefix}: longer than {MAX_NAME} bytes"
    name = host[:-1] if host.endswith(".") else host
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return f"{prefix}: not a valid internationalized name (IDNA)"
    if len(name) > MAX_NAME:
        return f"{prefix}: longer than {MAX_NAME} bytes"
    for label in name.split("."):
        if not label:
            return f"{prefix}: empty label"
        if len(label) > 63:
            return f"{prefix}: a label longer than 63 bytes"
        if not _LABEL.fullmatch(label):
            return f"{prefix}: a label with a character other than a letter, digit, '-' or '_'"
    return None


def check_host(host: str) -> None:
    """Raise ServerConnectError when `host` cannot be a server name (see `invalid_host`)."""
    reason = invalid_host(host)
    if reason is not None:
        raise ServerConnectError(reason)


def describe_os_error(e: OSError, host: str) -> str:
    if isinstance(e, socket.gaierror):
        return f"name does not resolve: {host}"
    if isinstance(e, ConnectionRefusedError) or e.errno == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(e, ConnectionResetError):
        return "connection reset by server"
    if isinstance(e, TimeoutError):
        return "connection timed out"
    return e.strerror or str(e) or type(e).__name__


def _describe_tls_error(e: Exception) -> str:
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {e.verify_message}"
    if isinstance(e, ssl.SSLError):
        return f"TLS handshake failed: {e.reason or e}"
    return f"TLS handshake failed: {e}"


@lru_cache(maxsize=256)
def _cert_summary(der: bytes) -> tuple[str | None, str | None, float | None]:
    """(subject, issuer, expiry) of a server certificate. Cached: a server shows the same one every time."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None, None, None
    return cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), cert.not_valid_after_utc.timestamp()


def _fill_tls(server: Server, sslobj: ssl.SSLObject | None, sni: str | None) -> None:
    if sslobj is None:
        return
    cipher = sslobj.cipher()
    info = TLSInfo(sni=sni, alpn=sslobj.selected_alpn_protocol(), version=sslobj.version(),
                   cipher=cipher[0] if cipher else None)
    der = sslobj.getpeercert(binary_form=True)  # present even when verification is off
    if der:
        info.cert_subject, info.cert_issuer, info.cert_not_after = _cert_summary(der)
    server.tls = info
    server.alpn = info.alpn


class TunnelRefused(ServerConnectError):
    """The proxy answered CONNECT with a status other than 2xx."""

    def __init__(self, status_code: int, reason: str, body: bytes = b"") -> None:
        super().__init__(f"upstream proxy refused CONNECT: {status_code} {reason}")
        self.status_code = status_code
        self.reason = reason
        self.body = body
        """The start of the answer's body (what a proxy says about why), when it was asked for."""


_REFUSAL_BODY_MAX = 64 * 1024


async def connect_tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int,
                         headers: Iterable[tuple[str, str]] = (), refusal_body: bool = False) -> bytes:
    """Ask the HTTP proxy at the other end of `reader`/`writer` for a CONNECT tunnel to host:port.

    `headers` go with the CONNECT after `Host` (e.g. `Proxy-Authorization`). Returns the bytes that came
    after the proxy's 2xx answer: the first bytes through the tunnel, b"" nearly always. Raises
    `TunnelRefused` (status, reason and, with `refusal_body`, up to 64 KiB of the body) for any other
    answer, and `ServerConnectError` when the proxy hangs up or answers with something else than a response.
    Set a timeout around it: a proxy that never answers is waited for."""
    conn = h11.Connection(h11.CLIENT)
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    writer.write(conn.send(h11.Request(method="CONNECT", target=authority, headers=[("Host", authority), *headers])))
    conn.send(h11.EndOfMessage())  # nothing on the wire: it tells h11 that a 2xx switches to the tunnel
    await writer.drain()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            if not data:
                raise ServerConnectError("upstream proxy closed the connection during CONNECT")
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Response):
            if not 200 <= event.status_code < 300:
                body = await _read_body(conn, reader) if refusal_body else b""
                raise TunnelRefused(event.status_code, event.reason.decode(errors="replace"), body)
            return conn.trailing_data[0]
        if isinstance(event, h11.InformationalResponse):
            continue
        raise ServerConnectError(f"unexpected answer from upstream proxy: {event!r}")


async def _read_body(conn: h11.Connection, reader: asyncio.StreamReader) -> bytes:
    """The body of the response `conn` just read the head of (up to _REFUSAL_BODY_MAX), as far as it comes."""
    body = bytearray()
    try:
        while len(body) < _REFUSAL_BODY_MAX:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
    except (h11.RemoteProtocolError, OSError):
        pass  # what came so far is all there is to say
    return bytes(body[:_REFUSAL_BODY_MAX])


def _proxy_tls_failure(e: BaseException, proxy: tuple[str, int]) -> ServerConnectError:
    """What a failed TLS handshake with an HTTPS upstream proxy says; a plain-HTTP proxy is the usual cause."""
    name = f"{proxy[0]}:{proxy[1]}"
    where = f"TLS handshake with the upstream proxy {name} failed"
    if isinstance(e, ssl.SSLCertVerificationError):
        return ServerConnectError(f"certificate verify failed: {e.verify_message} (upstream proxy {name})")
    if isinstance(e, TimeoutError):
        return ServerConnectError(f"{where}: timed out")
    reason = (getattr(e, "reason", None) or str(e) or type(e).__name__).lower().replace("_", " ")
    hint = ""
    if isinstance(e, (ssl.SSLError, ConnectionError)):
        hint = " (does it speak plain HTTP? then use --mode upstream:http://...)"
    return ServerConnectError(f"{where}: {reason}{hint}")


async def _proxy_handshake(ctx: Context, writer: asyncio.StreamWriter) -> None:
    """TLS towards the HTTPS upstream proxy of `--mode upstream:https://...`, on the raw connection."""
    mode, opts = ctx.mode, ctx.options
    context = client_tls_context(opts.ssl_insecure, opts.ssl_verify_upstream_trusted_ca, ("http/1.1",))
    try:
        async with asyncio.timeout(opts.connect_timeout_s):
            await writer.start_tls(context, server_hostname=mode.host)
    except (ssl.SSLError, ssl.CertificateError, OSError, TimeoutError) as e:
        raise _proxy_tls_failure(e, mode.address) from None


def proxy_speaks_tls(ctx: Context, dial: tuple[str, int]) -> bool:
    """Whether dialling `dial` means reaching the HTTPS upstream proxy (TLS to the proxy itself)."""
    mode = ctx.mode
    return mode.kind == "upstream" and mode.scheme == "https" and tuple(dial) == mode.address


async def connect(
    ctx: Context, server: Server, tls: bool = False, sni: str | None = None, alpn: tuple[str, ...] = ()
) -> Stream:
    """Open (and announce) a connection to `server.address`, via `server.via` if set (through TLS to the
    upstream proxy first when the mode says https)."""
    await ctx.addons.trigger(hooks.ServerConnectHook(server))
    assert server.address is not None
    host, port = server.address
    dial = server.via or server.address
    opts = ctx.options
    # Hostile names (a 3,000-byte SNI, an empty label) would make the resolver or the TLS library raise
    # deep inside: refuse them here with a reason, like any other failure to connect.
    for name in dict.fromkeys((str(host), str(dial[0]))):
        check_host(name)
    # A client that sent a name no server can have as its TLS SNI gets none of its requests forwarded.
    client_sni = getattr(getattr(ctx.client_conn, "tls", None), "sni", None)
    for name in dict.fromkeys(n for n in (sni, client_sni) if isinstance(n, str) and n):
        if (reason := invalid_host(name)) is not None:
            raise ServerConnectError(f"{reason} (the client's TLS SNI)")
    if tls:
        try:
            context = toserver.context_for(opts, sni or host, alpn)
        except toserver.ClientCertError as e:
            raise ServerConnectError(str(e)) from None
    try:
        async with asyncio.timeout(opts.connect_timeout_s):
            reader, writer = await asyncio.open_connection(dial[0], dial[1], limit=2**20)
    except TimeoutError:
        raise ServerConnectError(f"connection to {dial[0]}:{dial[1]} timed out") from None
    except OSError as e:
        raise ServerConnectError(describe_os_error(e, dial[0])) from None
    server.timestamp_tcp_setup = time.time()
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server.sockname = writer.get_extra_info("sockname")[:2]
    stream = Stream(reader, writer)
    proxy_tls = proxy_speaks_tls(ctx, dial)
    try:
        if proxy_tls:
            await _proxy_handshake(ctx, writer)
            if not server.via:  # the proxy is the server (plain HTTP in absolute form): its TLS is the server's
                _fill_tls(server, writer.get_extra_info("ssl_object"), ctx.mode.host)
        if server.via:
            stream.unread(await connect_tunnel(reader, writer, host, port, server.connect_headers))
        if tls:
            if stream.pending:
                raise ServerConnectError("upstream proxy sent data before the TLS handshake")
            server_hostname = sni or host
            async with asyncio.timeout(opts.connect_timeout_s):
                if proxy_tls and server.via:  # TLS in TLS: the server's inside the tunnel through the proxy's
                    inner = TlsStream(stream, context, server_side=False, server_hostname=server_hostname)
                    await inner.handshake()
                    stream = inner  # type: ignore[assignment]  # TlsStream offers what Stream does
                    toserver.remember_stream(inner)
                else:
                    await toserver.start_tls(writer, context, server_hostname, port)
            sslobj = stream.extra("ssl_object")
            _fill_tls(server, sslobj if isinstance(sslobj, ssl.SSLObject) else None, server_hostname)
            server.timestamp_tls_setup = time.time()
    except ServerConnectError:
        writer.close()
        raise
    except (ssl.SSLError, ssl.CertificateError) as e:
        writer.close()
        error = ServerConnectError(toserver.describe_error(e, opts) or _describe_tls_error(e))
        said = f"{getattr(e, 'reason', '') or ''} {e}".lower().replace("_", " ")
        error.alpn_refused = "no application protocol" in said or isinstance(e, ssl.SSLEOFError)
        raise error from None
    except TimeoutError:
        writer.close()
        raise ServerConnectError("TLS handshake with the server timed out") from None
    except OSError as e:
        writer.close()
        raise ServerConnectError(describe_os_error(e, host)) from None
    return stream


async def disconnect(ctx: Context, server: Server, stream: Stream) -> None:
    toserver.remember_stream(stream)  # TLS 1.3 session tickets arrive after the handshake
    stream.close()
    if server.timestamp_end is None:
        server.timestamp_end = time.time()
        await ctx.addons.trigger(hooks.ServerDisconnectHook(server))
