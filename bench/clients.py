"""Load generators the benchmark runs as subprocesses, for what wrk and curl can't do through a proxy.

    python bench/clients.py tls-handshake --proxy 127.0.0.1:8080 --target 127.0.0.1:8443 --cafile CA ...
    python bench/clients.py tls-keepalive ...
    python bench/clients.py h2 ...
    python bench/clients.py ws --proxy 127.0.0.1:8080 ...

Each prints one JSON object on stdout: `count` completed operations in the measured window (after
`--warmup` seconds), `seconds`, `rate` (count/seconds) and `errors` (the first few messages kept).
`--proxy none` connects straight to the target: that is the client's own ceiling.

- tls-handshake: `--workers` tasks, each in a loop: TCP connect, `CONNECT host:port`, TLS handshake
  (HTTP/1.1 ALPN), `GET /1k`, read the whole response, close. One operation = one such connection.
- tls-resume: as tls-handshake, but each handshake offers the session of the last one (as a browser
  does when it reconnects): `resumed` counts the handshakes that were resumed.
- tls-keepalive: `--workers` persistent TLS connections through CONNECT, each sending `GET /1k` back to
  back (HTTP/1.1 keep-alive). One operation = one response.
- h2: one TLS connection (ALPN h2) through CONNECT; keeps `--streams` requests for /1k in flight on it.
- http-requests: exactly `--total` plain-HTTP keep-alive requests for /1k (absolute-form URLs) spread
  over `--workers` connections, with no time limit (used to count flows for the memory case).
- ws: a websockets echo server in this process; one client connection through the proxy keeps up to
  `--window` messages of `--size` bytes in flight. One operation = one echoed message received.

It uses uvloop when installed, whichever proxy it measures.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from collections.abc import Callable
from typing import Any

ERRORS_KEPT = 5


class Meter:
    """Counts operations completed between the end of the warm-up and the deadline."""

    def __init__(self, warmup: float, duration: float) -> None:
        now = time.monotonic()
        self.start = now + warmup
        self.end = self.start + duration
        self.count = 0
        self.errors: list[str] = []
        self.error_count = 0

    def done(self) -> bool:
        return time.monotonic() >= self.end

    def tick(self, n: int = 1) -> None:
        now = time.monotonic()
        if self.start <= now < self.end:
            self.count += n

    def error(self, e: BaseException) -> None:
        self.error_count += 1
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append(f"{type(e).__name__}: {e}")

    def result(self, **extra: object) -> dict[str, object]:
        seconds = self.end - self.start
        return {"count": self.count, "seconds": seconds, "rate": self.count / seconds,
                "error_count": self.error_count, "errors": self.errors, **extra}


def hostport(s: str) -> tuple[str, int]:
    host, _, port = s.rpartition(":")
    return host, int(port)


def tls_context(cafile: str, alpn: list[str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(alpn)
    return ctx


async def open_tls(proxy: tuple[str, int] | None, target: tuple[str, int], ctx: ssl.SSLContext
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = target
    reader, writer = await asyncio.open_connection(*(proxy or target))
    if proxy is not None:
        writer.write(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if head.split(b" ", 2)[1] != b"200":
            writer.close()
            raise ConnectionError(f"CONNECT refused: {head.splitlines()[0]!r}")
    await writer.start_tls(ctx, server_hostname=host)
    return reader, writer


async def get_1k(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = head[9:12]
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ValueError("response without Content-Length")
    await reader.readexactly(length)
    if status != b"200":
        raise ValueError(f"status {status.decode()}")


def request_1k(target: tuple[str, int], close: bool) -> bytes:
    conn = "Connection: close\r\n" if close else ""
    return f"GET /1k HTTP/1.1\r\nHost: {target[0]}:{target[1]}\r\n{conn}\r\n".encode()


async def _new_connection_each(args: argparse.Namespace, m: Meter, ctx: ssl.SSLContext,
                               after: Callable[[Any], None] | None = None) -> None:
    """Workers that open a new TLS connection through the proxy for every 1 KiB GET; `after(ssl_object)`
    runs once each response is read."""
    req = request_1k(args.target, close=True)

    async def worker() -> None:
        while not m.done():
            writer = None
            try:
                reader, writer = await open_tls(args.proxy, args.target, ctx)
                await get_1k(reader, writer, req)  # (a TLS 1.3 ticket arrives with the response)
                if after is not None:
                    after(writer.get_extra_info("ssl_object"))
                m.tick()
            except Exception as e:  # noqa: BLE001 - counted and reported
                m.error(e)
                await asyncio.sleep(0.01)
            finally:
                if writer is not None:
                    writer.transport.abort()

    await asyncio.gather(*(worker() for _ in range(args.workers)))


async def tls_handshake(args: argparse.Namespace, m: Meter) -> dict[str, object]:
    await _new_connection_each(args, m, tls_context(args.cafile, ["http/1.1"]))
    return m.result(workers=args.workers)


class ResumingClientContext(ssl.SSLContext):
    """Offers the last session it was given, as a browser does when it reconnects to a site."""

    last: ssl.SSLSession | None = None

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, server_side: bool = False,
                 server_hostname: str | bytes | None = None, session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session or self.last)


async def tls_resume(args: argparse.Namespace, m: Meter) -> dict[str, object]:
    ctx = ResumingClientContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=args.cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    resumed = 0

    def after(sslobj: Any) -> None:
        nonlocal resumed
        resumed += sslobj.session_reused
        ctx.last = sslobj.session

    await _new_connection_each(args, m, ctx, after)
    return m.result(workers=args.workers, resumed=resumed)


async def tls_keepalive(args: argparse.Namespace, m: Meter) -> dict[str, object]:
    ctx = tls_context(args.cafile, ["http/1.1"])
    req = request_1k(args.target, close=False)

    async def worker() -> None:
        while not m.done():
            writer = None
            try:
                reader, writer = await open_tls(args.proxy, args.target, ctx)
                while not m.done():
                    await get_1k(reader, writer, req)
                    m.tick()
            except Exception as e:  # noqa: BLE001
                m.error(e)
                await asyncio.sleep(0.01)
            finally:
                if writer is not None:
                    writer.transport.abort()

    await asyncio.gather(*(worker() for _ in range(args.workers)))
    return m.result(workers=args.workers)


async def h2_multiplexed(args: argparse.Namespace, m: Meter) -> dict[str, object]:
    import h2.config
    import h2.connection
    import h2.events

    reader, writer = await open_tls(args.proxy, args.target, tls_context(args.cafile, ["h2"]))
    alpn = writer.get_extra_info("ssl_object").selected_alpn_protocol()
    if alpn != "h2":
        raise ConnectionError(f"ALPN negotiated {alpn!r}, not h2")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    conn.increment_flow_control_window(1 << 24)
    authority = f"{args.target[0]}:{args.target[1]}".encode()
    headers = [(b":method", b"GET"), (b":path", b"/1k"), (b":scheme", b"https"), (b":authority", authority)]
    in_flight = 0
    opened = 0

    def fill() -> None:
        nonlocal in_flight, opened
        limit = min(args.streams, conn.remote_settings.max_concurrent_streams)
        while in_flight < limit and not m.done():
            conn.send_headers(conn.get_next_available_stream_id(), headers, end_stream=True)
            in_flight += 1
            opened += 1

    fill()
    writer.write(conn.data_to_send())
    while not m.done() or (in_flight and time.monotonic() < m.end + 2):
        data = await reader.read(1 << 16)
        if not data:
            raise ConnectionError("connection closed")
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                in_flight -= 1
                m.tick()
            elif isinstance(ev, h2.events.StreamReset):
                in_flight -= 1
                m.error(ConnectionError(f"stream {ev.stream_id} reset: {ev.error_code!r}"))
            elif isinstance(ev, h2.events.ConnectionTerminated):
                raise ConnectionError(f"GOAWAY {ev.error_code!r}")
        fill()
        writer.write(conn.data_to_send())
        await writer.drain()
        if m.done() and in_flight == 0:
            break
    writer.transport.abort()
    return m.result(streams=args.streams, opened=opened)


async def websocket_echo(args: argparse.Namespace, m: Meter) -> dict[str, object]:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    async def echo(ws) -> None:  # type: ignore[no-untyped-def]
        try:
            async for msg in ws:
                await ws.send(msg)
        except ConnectionClosed:
            pass

    payload = b"x" * args.size
    async with serve(echo, "127.0.0.1", 0, compression=None, max_queue=None) as server:
        port = server.sockets[0].getsockname()[1]
        proxy = f"http://{args.proxy[0]}:{args.proxy[1]}" if args.proxy else None
        async with connect(f"ws://127.0.0.1:{port}/", proxy=proxy, compression=None, max_queue=None) as ws:
            window = asyncio.Semaphore(args.window)

            async def sender() -> None:
                while not m.done():
                    await window.acquire()
                    await ws.send(payload)

            async def receiver() -> None:
                while not m.done():
                    msg = await ws.recv()
                    if len(msg) != args.size:
                        raise ValueError(f"echo of {len(msg)} bytes, sent {args.size}")
                    m.tick()
                    window.release()

            send = asyncio.create_task(sender())
            await receiver()
            send.cancel()
    return m.result(window=args.window, size=args.size)


async def http_requests(args: argparse.Namespace, m: Meter) -> dict[str, object]:
    """Exactly `--total` plain-HTTP keep-alive requests (absolute-form) over `--workers` connections."""
    host, port = args.target
    req = f"GET http://{host}:{port}/1k HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    left = args.total
    done = 0

    async def worker() -> None:
        nonlocal left, done
        reader, writer = await asyncio.open_connection(*(args.proxy or args.target))
        try:
            while left > 0:
                left -= 1
                await get_1k(reader, writer, req)
                done += 1
        finally:
            writer.transport.abort()

    t0 = time.monotonic()
    results = await asyncio.gather(*(worker() for _ in range(args.workers)), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            m.error(r)
    seconds = time.monotonic() - t0
    return {"count": done, "seconds": seconds, "rate": done / seconds, "error_count": m.error_count,
            "errors": m.errors, "workers": args.workers}


CASES = {"http-requests": http_requests, "tls-handshake": tls_handshake, "tls-resume": tls_resume,
         "tls-keepalive": tls_keepalive,
         "h2": h2_multiplexed, "ws": websocket_echo}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("case", choices=sorted(CASES))
    p.add_argument("--proxy", default="none", help="HOST:PORT of the proxy, or `none` for direct")
    p.add_argument("--target", default="127.0.0.1:8443", help="HOST:PORT of the origin (not used by ws)")
    p.add_argument("--cafile", help="CA to trust for TLS: the proxy's, or the origin's when direct")
    p.add_argument("--workers", type=int, default=32)
    p.add_argument("--streams", type=int, default=100)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--total", type=int, default=20000, help="http-requests: how many requests in all")
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--warmup", type=float, default=0.5)
    args = p.parse_args()
    args.proxy = None if args.proxy == "none" else hostport(args.proxy)
    args.target = hostport(args.target)
    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"

    async def run() -> dict[str, object]:
        m = Meter(args.warmup, args.duration)
        try:
            limit = 600 if args.case == "http-requests" else args.warmup + args.duration + 20
            return await asyncio.wait_for(CASES[args.case](args, m), limit)
        except Exception as e:  # noqa: BLE001 - a failed run is reported, not raised
            m.error(e)
            return m.result(failed=True)

    result = asyncio.run(run())
    result["client_loop"] = loop_name
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
