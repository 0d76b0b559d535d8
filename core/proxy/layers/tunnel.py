"""What runs inside a CONNECT tunnel: peek at the client's first bytes and pick a layer; relay bytes."""
from __future__ import annotations

import asyncio
import re
from typing import Any

from interpose.model.connection import Server
from interpose.proxy.layer import LAYERS, Context, Layer, Stream
from interpose.proxy.layers.tls import TlsLayer, read_client_hello
from interpose.proxy.tls.clienthello import ClientHello, ClientHelloError

# Tokens an HTTP/1 request may start with; anything else in a tunnel is TLS or opaque TCP.
_HTTP_METHOD = re.compile(rb"^[A-Z]{3,12} ")
H2_PREFACE_START = b"PRI * HT"
"""Enough of HTTP/2's connection preface (`PRI * HTTP/2.0`) to tell it from an HTTP/1 request."""
PEEK_TIMEOUT_S = 1.0
"""Server-speaks-first protocols send nothing: after this long the tunnel is treated as raw TCP."""


def _matches(patterns: list[str], host: str, port: int) -> bool:
    hostport = f"{host}:{port}"
    return any(re.search(p, hostport, re.I) for p in patterns)


def passes_through(opts: Any, host: str, port: int, sni: str | None) -> bool:
    """Whether TLS to host:port (or the SNI) is relayed untouched: ignore_hosts matches it, or allow_hosts is
    set and matches neither."""
    def hit(patterns: list[str]) -> bool:
        return _matches(patterns, host, port) or (sni is not None and _matches(patterns, sni, port))

    allow: list[str] = opts.allow_hosts
    return hit(opts.ignore_hosts) or (bool(allow) and not hit(allow))


async def detect(ctx: Context, timeout: float | None = PEEK_TIMEOUT_S, default: str = "tcp") -> Layer:
    """The layer for what the client sends first: TLS, HTTP/1, HTTP/2 prior knowledge, or `default`.

    Sets `ctx.server_conn` to the tunnel's target (not connected yet), so that `next_layer(layer)` sees
    `layer.server_conn` and can choose per destination."""
    assert ctx.tunnel is not None
    host, port = ctx.tunnel
    ctx.server_conn = Server(address=(host, port), via=ctx.mode.address if ctx.mode.kind == "upstream" else None)
    opts = ctx.options
    if _matches(opts.tcp_hosts, host, port):
        return LAYERS["tcp"](ctx)
    head = await ctx.client.peek(8, timeout=timeout)
    if head[:1] == b"\x16":
        try:
            hello: ClientHello | None = await read_client_hello(ctx)
        except ClientHelloError:
            hello = None
        sni = hello.sni if hello else None
        ignored = passes_through(opts, host, port, sni)
        # Bytes that look like TLS but are no ClientHello go to the TLS layer too, which says so and hangs up.
        layer = LAYERS["passthrough" if ignored else "tls"](ctx)
        if hello is not None:
            layer.sni, layer.alpn = sni, hello.alpn  # type: ignore[assignment]
            if isinstance(layer, TlsLayer):
                layer.hello = hello
        return layer
    if head.startswith(H2_PREFACE_START):
        return LAYERS["http2"](ctx)
    if _HTTP_METHOD.match(head):
        return LAYERS["http1"](ctx)
    return LAYERS[default](ctx)


async def detect_plain(ctx: Context, timeout: float | None) -> Layer | None:
    """The first layer of a regular or upstream-mode connection: HTTP/1, or HTTP/2 when the client starts
    with the connection preface (h2c with prior knowledge, absolute URLs in `:scheme`/`:authority`).
    None when the client sent nothing within `timeout` (the idle timeout): the connection just ends."""
    head = await ctx.client.peek(len(H2_PREFACE_START), timeout=timeout)
    while head and len(head) < len(H2_PREFACE_START) and H2_PREFACE_START.startswith(head):
        more = await ctx.client.peek(len(head) + 1, timeout=timeout)  # the preface, cut short: wait for more
        if len(more) == len(head):
            break
        head = more
    if not head and not ctx.client.at_eof():
        return None
    return LAYERS["http2" if head.startswith(H2_PREFACE_START) else "http1"](ctx)


async def _pump(src: Stream, dst: Stream) -> None:
    try:
        while True:
            data = await src.read()
            if not data:
                break
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        # Pass the half-close on: the other direction may still have things to say.
        dst.write_eof()


async def relay(a: Stream, b: Stream) -> None:
    """Copy bytes both ways until both directions have ended."""
    t1 = asyncio.ensure_future(_pump(a, b))
    t2 = asyncio.ensure_future(_pump(b, a))
    try:
        await asyncio.gather(t1, t2)
    finally:
        t1.cancel()
        t2.cancel()
