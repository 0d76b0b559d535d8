"""TLS interception: read the ClientHello, connect to the server first (to learn its certificate
verdict and ALPN), then finish the client's handshake with a certificate minted for its SNI.

ALPN is negotiated per side: the server is offered what the client offered (both versions if it
refuses that); the client gets h2 when it offered it and the server speaks it, else http/1.1. HTTP/1.1
and HTTP/2 translate to each other in between.
If the server can't be reached or fails verification, the client's handshake still completes and
its requests get a 502 that names the reason.
"""
from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time

from interpose.http import HTTPFlow, Request
from interpose.model.connection import Server, TLSInfo
from interpose.model.flow import Error
from interpose.proxy import upstream
from interpose.proxy.layer import LAYERS, Context, Layer, choose
from interpose.proxy.layers.pool import get_pool
from interpose.proxy.tls import customcerts
from interpose.proxy.tls.clienthello import ClientHello, ClientHelloError, parse_client_hello
from interpose.proxy.tls.names import forged_names
from interpose.proxy.tls.pemfiles import PemError
from interpose.proxy.tls.tlsstream import TlsStream
from interpose.proxy.tls.versions import describe_version_error
from interpose.runtime import hooks
from interpose.runtime.bus import FlowAdded

HANDSHAKE_TIMEOUT_S = 15.0
PEEK_TIMEOUT_S = 1.0
_warned_untrusted: set[tuple[str, str]] = set()
"""(CA file, host) pairs already warned about: once per host for each CA (each proxy of a process)."""
UNTRUSTED_ALERTS = frozenset({"TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE",
                              "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "TLSV1_ALERT_ACCESS_DENIED",
                              "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "TLSV1_ALERT_DECRYPT_ERROR"})
"""The alerts a client sends when it rejects the forged certificate (OpenSSL, NSS, BoringSSL, Schannel)."""


async def read_client_hello(ctx: Context) -> ClientHello:
    """Peek until a whole ClientHello is buffered, however finely the client splits it. Raises
    ClientHelloError on anything else, or when the client stops sending before the hello is complete."""
    seen = 0
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
            while True:
                data = await ctx.client.peek(seen + 1, timeout=HANDSHAKE_TIMEOUT_S)
                hello = parse_client_hello(data)
                if hello is not None:
                    return hello
                if len(data) <= seen:  # the client sent no more in time, or closed
                    raise ClientHelloError("incomplete ClientHello")
                seen = len(data)
    except TimeoutError:
        raise ClientHelloError("incomplete ClientHello (not received in time)") from None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


class TlsLayer(Layer):
    kind = "tls"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.hello: ClientHello | None = None

    async def run(self) -> None:
        ctx = self.ctx
        assert ctx.tunnel is not None and ctx.certs is not None
        host, port = ctx.tunnel
        try:
            hello = self.hello or await read_client_hello(ctx)
        except ClientHelloError as e:
            ctx.log(f"{ctx.client_conn.address}: expected a TLS ClientHello for {host}:{port}: {e}", "info")
            return
        sni = hello.sni
        reverse = ctx.mode.kind == "reverse"
        server_sni = host if reverse else (sni or host)
        pool = get_pool(ctx)

        server = Server(address=(host, port), via=ctx.mode.address if ctx.mode.kind == "upstream" else None)
        ctx.server_conn = server
        # ALPN per side: the server is offered the HTTP versions the client offered, so that each side
        # speaks what it prefers and an HTTP/1.1 client costs no HTTP/2 machinery towards the server. A
        # server that refuses them all (an HTTP/2-only server and an HTTP/1.1-only client) is asked again
        # with both; the proxy translates. A client that offers no HTTP ALPN may speak anything: the
        # server is offered nothing either.
        server_alpn = tuple(p for p in hello.alpn if p in ("h2", "http/1.1"))
        server_sni_sent = None if _is_ip(server_sni) else server_sni
        server_der: bytes | None = None
        reused = None
        onboarding = bool(getattr(ctx.options, "onboarding", False)) and (sni or host).lower().rstrip(".") == str(
            getattr(ctx.options, "onboarding_host", "")).lower()
        try:
            if onboarding:  # answered by the proxy itself (runtime/builtins/onboarding.py): no server to ask
                raise upstream.ServerConnectError("the onboarding page is served by the proxy")
            used_alpn = server_alpn
            # A connection an earlier client left idle (server_reuse) saves the TCP connect and the handshake.
            reused = pool.reuse(((host, port), server.via, True), server_sni_sent, server_alpn)
            if reused is not None:
                server, stream = reused.server, reused.stream
            else:
                try:
                    stream = await upstream.connect(ctx, server, tls=True, sni=server_sni_sent, alpn=server_alpn)
                except upstream.ServerConnectError as e:
                    if not e.alpn_refused or set(server_alpn) == {"h2", "http/1.1"}:
                        raise
                    server = Server(address=(host, port), via=server.via)
                    ctx.server_conn = server
                    used_alpn = ("h2", "http/1.1")
                    stream = await upstream.connect(ctx, server, tls=True, sni=server_sni_sent, alpn=used_alpn)
        except upstream.ServerConnectError as e:
            if onboarding:
                server.error = None  # nothing failed; the onboarding page never asks a server
            # Finish the client's handshake anyway: its first request gets a 502 naming this reason
            # (the pool tries again for that request and meets the same failure).
            else:
                server.error = str(e)
        else:
            sslobj = stream.extra("ssl_object")
            if isinstance(sslobj, ssl.SSLObject):
                server_der = sslobj.getpeercert(binary_form=True)
            if reused is None:
                await pool.adopt(((host, port), server.via, True), server, stream, sni=server_sni_sent, alpn=used_alpn)

        offered = hello.alpn
        if "h2" in offered and (server.alpn == "h2" or "http/1.1" not in offered):
            client_alpn: str | None = "h2"
        elif "http/1.1" in offered:
            client_alpn = "http/1.1"
        else:
            client_alpn = None
        cert_host = sni or host
        try:
            context = self._client_context(cert_host, (client_alpn,) if client_alpn else (), server_der)
        except PemError as e:  # a --certs file that changed on disk since it was checked
            await self._client_handshake_failed(cert_host, e, port, sni)
            return
        tls = TlsStream(ctx.client, context, server_side=True)
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                await tls.handshake()
        except (ssl.SSLError, ConnectionError, TimeoutError) as e:
            await self._client_handshake_failed(cert_host, e, port, sni)
            return
        sslobj = tls.sslobj
        cipher = sslobj.cipher()
        ctx.client_conn.tls = TLSInfo(sni=sni, alpn=sslobj.selected_alpn_protocol(), version=sslobj.version(),
                                      cipher=cipher[0] if cipher else None)
        ctx.client_conn.alpn = ctx.client_conn.tls.alpn
        ctx.client_conn.timestamp_tls_setup = time.time()  # type: ignore[attr-defined]
        ctx.client = tls  # type: ignore[assignment]
        if not reverse:
            ctx.tunnel_scheme = "https"
        kind = "http2" if ctx.client_conn.alpn == "h2" else "http1"
        if kind == "http1":
            # Some clients (httpx with http1=False) offer http/1.1 yet speak HTTP/2 with prior knowledge.
            head = await tls.peek(8, timeout=PEEK_TIMEOUT_S)
            if head.startswith(b"PRI * HT"):
                kind = "http2"
        nxt = LAYERS[kind](ctx)
        nxt.sni, nxt.alpn = sni, ctx.client_conn.alpn
        chosen = await choose(nxt)
        await chosen.run()

    def _client_context(self, cert_host: str, alpn: tuple[str, ...], der: bytes | None) -> ssl.SSLContext:
        """What the client is served: a `--certs` certificate matching its host, else a leaf minted for it
        (carrying the real server certificate's names with `upstream_cert`)."""
        opts, certs = self.ctx.options, self.ctx.certs
        versions = (opts.tls_version_client_min, opts.tls_version_client_max)
        if opts.certs:
            custom = customcerts.lookup(tuple(opts.certs), cert_host)
            if custom is not None:
                return custom.context(alpn, versions)
        host, organization = cert_host, None
        sans: tuple[str, ...] = ()
        if opts.upstream_cert and der:
            host, sans, organization = forged_names(cert_host, der)
        return certs.ssl_context(host, sans, alpn=alpn, organization=organization, versions=versions)

    async def _client_handshake_failed(self, host: str, e: BaseException, port: int, sni: str | None) -> None:
        ctx = self.ctx
        target = ctx.tunnel[0] if ctx.tunnel else host
        host = upstream.shown_host(host)  # a client's SNI may be thousands of characters long
        reason = getattr(e, "reason", None) or str(e) or type(e).__name__
        versions = (ctx.options.tls_version_client_min, ctx.options.tls_version_client_max)
        version_problem = describe_version_error(str(reason), versions, "client")
        message = f"client TLS handshake for {host} failed: {version_problem or reason}"
        warned = (str(ctx.certs.ca_cert_path), host)
        if version_problem:
            ctx.log(message, "warn")
        elif warned not in _warned_untrusted:
            _warned_untrusted.add(warned)
            ctx.log(
                f"{message}. If the client does not trust interpose's CA, install {ctx.certs.ca_cert_path} "
                f"(see the README).",
                "warn",
            )
        else:
            ctx.log(message, "debug")
        await self._failed_flow(target, port, sni, e, version_problem and message)

    async def _failed_flow(self, host: str, port: int, sni: str | None, e: BaseException,
                           message: str | None = None) -> None:
        """A client that gave up on the handshake becomes a flow with an error saying why and what to do: it
        shows in the TUI's list and in interpose-dump's output (`error` fires; no request hook does)."""
        ctx = self.ctx
        server = ctx.server_conn if ctx.server_conn is not None else Server(address=(host, port))
        flow = HTTPFlow(ctx.client_conn, server, live=False, mode=ctx.mode.kind)
        flow.request = Request("CONNECT", "https", sni or host, port, "", headers=(), content=None)
        flow.request.timestamp_end = flow.request.timestamp_start
        flow.error = Error(message or handshake_error(e, ctx.certs.ca_cert_path if ctx.certs else "the CA file",
                                                      ctx.options))
        ctx.bus.publish(FlowAdded(flow))
        await ctx.addons.trigger(hooks.ErrorHook(flow))


def handshake_error(e: BaseException, ca_path: str, options: object) -> str:
    """Why the client's handshake failed, and what to do about it."""
    reason = str(getattr(e, "reason", None) or e or type(e).__name__)
    visit = (f" or visit http://{getattr(options, 'onboarding_host', 'interpose.it')} through the proxy"
             if getattr(options, "onboarding", False) else "")
    fix = f"install {ca_path}{visit}"
    if reason in UNTRUSTED_ALERTS:
        return f"the client does not trust interpose's CA ({reason}): {fix}"
    if isinstance(e, TimeoutError):
        return f"the client did not finish the TLS handshake in {HANDSHAKE_TIMEOUT_S:.0f}s"
    if isinstance(e, ConnectionError | ssl.SSLEOFError) or "EOF" in reason:
        return f"the client hung up during the TLS handshake (if it does not trust interpose's CA: {fix})"
    return f"TLS handshake with the client failed: {reason} (if it does not trust interpose's CA: {fix})"
