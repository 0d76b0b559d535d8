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

HANDSHAKE_TIMEOUT_S = 15.0
PEEK_TIMEOUT_S = 1.0
_warned_untrusted: set[tuple[str, str]] = set()
"""(CA file, host) pairs already warned about: once per host for each CA (each proxy of a process)."""


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
        try:
            try:
                stream = await upstream.connect(ctx, server, tls=True, sni=server_sni_sent, alpn=server_alpn)
            except upstream.ServerConnectError as e:
                if not e.alpn_refused or set(server_alpn) == {"h2", "http/1.1"}:
                    raise
                server = Server(address=(host, port), via=server.via)
                ctx.server_conn = server
                stream = await upstream.connect(ctx, server, tls=True, sni=server_sni_sent, alpn=("h2", "http/1.1"))
        except upstream.ServerConnectError as e:
            # Finish the client's handshake anyway: its first request gets a 502 naming this reason
            # (the pool tries again for that request and meets the same failure).
            server.error = str(e)
        else:
            sslobj = stream.extra("ssl_object")
            if isinstance(sslobj, ssl.SSLObject):
                server_der = sslobj.getpeercert(binary_form=True)
            assert server.address is not None
            key = (server.address, server.via, True)
            await pool.adopt(key, server, stream)

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
            await self._client_handshake_failed(cert_host, e)
            return
        tls = TlsStream(ctx.client, context, server_side=True)
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                await tls.handshake()
        except (ssl.SSLError, ConnectionError, TimeoutError) as e:
            await self._client_handshake_failed(cert_host, e)
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

    async def _client_handshake_failed(self, host: str, e: BaseException) -> None:
        ctx = self.ctx
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
        await error_flow(ctx, message)


async def error_flow(ctx: Context, message: str) -> None:
    """Show a failed client handshake as a flow: the tunnel's CONNECT (or, without one, the address the client
    reached) with `message` as its error; the `error` hook fires for it."""
    host, port = ctx.tunnel or ("", 0)
    flow = HTTPFlow(ctx.client_conn, ctx.server_conn or Server(address=(host, port)), mode=ctx.mode.kind)
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    flow.request = Request("CONNECT", "", host, port, "", "HTTP/1.1", [], b"", authority=authority)
    flow.request.timestamp_start = time.time()
    flow.error = Error(message)
    flow.live = False
    await ctx.addons.trigger(hooks.ErrorHook(flow))
