"""Benchmark the terminal UI at a million flows (issue 7): keypress → redraw through the real widgets.

    python bench/tui_bench.py [N]          # N flows (default 1,000,000); about 2 minutes and 2-3 GiB
    python bench/tui_bench.py --no-bodies  # empty bodies: only what a flow costs beyond its bodies
    python bench/run.py --only tui1m       # the same as the first line

It builds N realistic `HTTPFlow`s the way the HTTP/1 layer does (fields as fresh `bytes` as h11 hands
them over, six flows per client connection, browser-like request and nginx-like response headers,
bodies of 0 B to 300 KiB), and feeds them to the TUI's own `App` (tui/app.py; its `Master` is never
started) through `App.apply`, the path flows take from the event bus: `FlowAdded` adds a flow to
the `FlowStore`, `response` updates it and hands it to `BodySpill.keep` under the default options
(`body_spill_threshold=256k`, `flow_memory_limit=512m`). Then it times keypresses on `App.top`, the
real top widget, at 80×24: `top.keypress(size, key)` followed by `top.render(size, focus=True)`.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
import tracemalloc
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from interpose.http import HTTPFlow, Request, Response
from interpose.model.connection import Client, Server
from interpose.model.multidict import Headers
from interpose.runtime.bus import FlowAdded, FlowUpdated
from interpose.runtime.master import Master
from interpose.runtime.options import Options, core_options
from interpose.store.spill import SPILL_MIN
from interpose.tui.app import App

SIZE = (80, 24)
HOSTS = ["www.example.com", "api.example.org", "cdn.example.net", "fonts.gstatic.com", "static.cloudhost.io",
         "tracker.adnet.io", "www.python.org", "pypi.org", "files.pythonhosted.org", "github.com"]
UA = b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
KINDS = [  # (path template, Accept, response Content-Type)
    (b"/assets/app.%d.js", b"*/*", b"application/javascript"),
    (b"/static/img/%d.png", b"image/avif,image/webp,*/*", b"image/png"),
    (b"/api/v2/items/%d?fields=all", b"application/json", b"application/json"),
    (b"/styles/site.%d.css", b"text/css,*/*;q=0.1", b"text/css"),
    (b"/page/%d", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", b"text/html; charset=utf-8"),
]
STATUS = [(200, b"OK")] * 17 + [(304, b"Not Modified"), (404, b"Not Found"), (500, b"Internal Server Error")]


def fresh(b: bytes) -> bytes:
    """A new bytes object, as h11 makes one per parsed field (bytes(b) would return b itself)."""
    return bytes(bytearray(b))


def body_size(i: int) -> int:
    """94 % 0-1.5 KiB, 5.9 % 4-24 KiB, 0.1 % 300 KiB (above the spill threshold): 1.9 KiB on average."""
    r = (i * 2654435761) % 1000
    if r == 0:
        return 300 * 1024
    if r < 60:
        return 4096 + (i * 7919) % (20 * 1024)
    return (i * 104729) % 1536


def make_flow(i: int, conn: tuple[Client, Server], t0: float, bodies: bool) -> HTTPFlow:
    host = HOSTS[(i // 6) % len(HOSTS)].encode()
    path_t, accept, ctype = KINDS[i % len(KINDS)]
    post = i % 23 == 0
    req_fields = [(b"Host", host), (b"User-Agent", UA), (b"Accept", accept), (b"Accept-Language", b"en-US,en;q=0.5"),
                  (b"Accept-Encoding", b"gzip, deflate, br"), (b"Referer", b"https://" + host + b"/"),
                  (b"Cookie", b"session=%08x" % (i // 6 * 2654435761 % 2**32))]
    req_body = b""
    if post:
        req_body = b"{" * (200 + i % 1800) if bodies else b""
        req_fields += [(b"Content-Type", b"application/json"), (b"Content-Length", b"%d" % len(req_body))]
    status, reason = STATUS[i % len(STATUS)]
    size = body_size(i) if bodies and status != 304 else 0
    ts = t0 + i * 0.005
    resp_fields = [(b"Server", b"nginx/1.24.0"),
                   (b"Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(ts)).encode()),
                   (b"Content-Type", ctype), (b"Content-Length", b"%d" % size), (b"Connection", b"keep-alive"),
                   (b"Cache-Control", b"public, max-age=3600"), (b"ETag", b'"%x-%x"' % (i, size))]
    f = HTTPFlow(conn[0], conn[1], live=False)
    f.timestamp_created = ts
    f.request = Request("POST" if post else "GET", "https", host.decode(), 443, (path_t % i).decode(), "HTTP/1.1",
                        Headers.from_raw([(fresh(k), fresh(v)) for k, v in req_fields]), req_body)
    f.request.timestamp_start = ts
    f.request.timestamp_end = ts + 0.0004
    f.response = Response(status, reason.decode(), "HTTP/1.1",
                          Headers.from_raw([(fresh(k), fresh(v)) for k, v in resp_fields]), b"<" * size)
    f.response.timestamp_start = ts + 0.01 + (i % 37) / 1000
    f.response.timestamp_end = f.response.timestamp_start + (i % 11) / 1000
    return f


def flows(n: int, bodies: bool, start: int = 0) -> Any:
    t0 = 1_750_000_000.0
    conn: tuple[Client, Server] = (Client(), Server())
    for i in range(start, start + n):
        if i % 6 == 0:  # keep-alive: six requests per connection
            conn = (Client(address=(f"192.168.1.{i % 250}", 40000 + i % 20000), sockname=("127.0.0.1", 8080)),
                    Server(address=(HOSTS[(i // 6) % len(HOSTS)], 443)))
        yield make_flow(i, conn, t0, bodies)


def new_app() -> App:
    opts = Options()
    core_options(opts)
    return App(Master(opts))


def feed(app: App, it: Any, batch: int = 1000) -> tuple[int, float]:
    """Pass flows through `App.apply` as the bus consumer does, `batch` flows' events at a time.
    Returns how many flows and the seconds spent in `App.apply`."""
    n, events, spent = 0, [], 0.0
    for f in it:
        events += (FlowAdded(f), FlowUpdated(f, "response"))
        n += 1
        if len(events) >= 2 * batch or n % batch == 0:
            t0 = time.perf_counter()
            app.apply(events)
            spent += time.perf_counter() - t0
            events = []
    if events:
        t0 = time.perf_counter()
        app.apply(events)
        spent += time.perf_counter() - t0
    return n, spent


def rss() -> tuple[int, int]:
    """(VmRSS, VmHWM) in bytes."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) * 1024
    return out["VmRSS"], out["VmHWM"]


def per_flow_traced(n: int = 20_000) -> dict[str, float]:
    """Bytes one kept flow costs beyond its bodies (tracemalloc, everything the TUI holds for it:
    the flow and its store entry, header fields shared as `keep` shares them)."""
    warm = new_app()
    feed(warm, flows(n, False))  # fills BodySpill's shared-fields memory as a long run would have
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    made = list(flows(n, False, start=n))
    built = tracemalloc.get_traced_memory()[0] - base
    app = new_app()
    app.spill._fields = warm.spill._fields
    base2 = tracemalloc.get_traced_memory()[0]
    feed(app, iter(made))
    kept = tracemalloc.get_traced_memory()[0] - base2
    del made
    gc.collect()
    total = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return {"built": built / n, "store_and_keep": kept / n, "kept": total / n}


def press(top: Any, key: str) -> float:
    t0 = time.perf_counter()
    top.keypress(SIZE, key)
    top.render(SIZE, focus=True)
    return (time.perf_counter() - t0) * 1000


async def keypress_bench(app: App, shown: list[int], background: dict[str, float]) -> list[tuple[str, list[float]]]:
    """Keys on the real top widget. Applying the filter at this size runs in slices in a task
    (tui/actions/search.py `apply_filter`): the enter key returns at once, and `j` is pressed every 30 ms
    until the new view is there, timed from the moment it is due (so time spent waiting for a slice to end
    counts)."""
    top = app.top
    top.render(SIZE, focus=True)
    rows: list[tuple[str, list[float]]] = []

    def run(label: str, keys: list[str]) -> None:
        rows.append((label, [press(top, k) for k in keys]))

    async def while_filtering(label: str) -> None:
        task = app.filter_task
        t0 = time.perf_counter()
        lag: list[float] = []
        loop = asyncio.get_running_loop()
        while task is not None and not task.done():
            due = loop.time() + 0.03
            await asyncio.sleep(0.03)
            if task.done():
                break
            late = (loop.time() - due) * 1000
            lag.append(late + press(top, "j"))
        if task is not None:
            await task
        background[label] = time.perf_counter() - t0
        rows.append((f"j while the filter is applied (due → rendered), {len(lag)}×", lag or [0.0]))

    run("g (first flow)", ["g"])
    run("j / down (move focus), 300×", ["j", "down", "j"] * 100)
    run("page down, 100×", ["page down"] * 100)
    run("G / g (last / first), 20×", ["G", "g"] * 10)
    run("f (open the filter prompt)", ["f"])
    run("typing `~d example` in the prompt", list("~d example"))
    run("enter: apply filter `~d example` (returns; the filter runs in slices)", ["enter"])
    await while_filtering("apply")
    shown.append(len(app.store))
    run("j (filtered), 100×", ["j"] * 100)
    run("page down (filtered), 100×", ["page down"] * 100)
    run("G / g (filtered), 20×", ["G", "g"] * 10)
    run("f, 10× backspace (clearing the prompt)", ["f"] + ["backspace"] * 10)
    run("enter: remove the filter", ["enter"])
    run("G / g (unfiltered again), 20×", ["G", "g"] * 10)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--no-bodies", action="store_true", help="empty bodies (measure the per-flow cost only)")
    args = ap.parse_args(argv)
    n, bodies = args.n, not args.no_bodies

    gc.collect()
    rss0, _ = rss()
    app = new_app()
    t0 = time.perf_counter()
    body_bytes = 0

    def counted() -> Any:
        nonlocal body_bytes
        for f in flows(n, bodies):
            body_bytes += len(f.request.raw_content or b"") + len(f.response.raw_content or b"")
            yield f
    fed, apply_s = feed(app, counted())
    build_s = time.perf_counter() - t0
    gc.collect()
    rss1, hwm = rss()
    spill = app.spill
    assert fed == n == app.store.total
    in_memory = body_bytes - spill.spilled_bytes
    gcs = {"n": 0}
    gc.callbacks.append(
        lambda phase, info: gcs.__setitem__("n", gcs["n"] + (phase == "start" and info["generation"] == 2)))
    shown: list[int] = []
    background: dict[str, float] = {}
    rows = asyncio.run(keypress_bench(app, shown, background))

    MiB = 1024 * 1024
    bodies_note = "bodies 0 B-300 KiB, 1.9 KiB mean" if bodies else "empty bodies"
    print(f"{n:,} HTTPFlows kept by the TUI's App ({bodies_note}); "
          f"built and fed in {build_s:.0f} s;\n"
          f"App.apply (FlowStore.add/update, BodySpill.keep incl. spilling) took {apply_s / n * 1e6:.1f} µs per flow")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; terminal {SIZE[0]}×{SIZE[1]}; "
          f"filter `~d example` shows {shown[0]:,} of {app.store.total:,}\n")
    print("| keypress → render | presses | median ms | max ms |")
    print("|---|---:|---:|---:|")
    for label, times in rows:
        print(f"| {label} | {len(times)} | {statistics.median(times):.2f} | {max(times):.2f} |")
    print(f"\nthe filter `~d example` took {background['apply']:.2f} s to apply in the background")
    print(f"full (gen 2) garbage collections during the keypresses: {gcs['n']}")
    print(f"\nRSS {rss1 / MiB:,.0f} MiB (peak {hwm / MiB:,.0f} MiB; {rss0 / MiB:.0f} MiB before the flows)")
    print(f"bodies: {body_bytes / MiB:,.0f} MiB in all; "
          f"{spill.spilled_count:,} spilled ({spill.spilled_bytes / MiB:,.0f} MiB, "
          f"file {(spill.file.size if spill.file else 0) / MiB:,.0f} MiB); {in_memory / MiB:,.0f} MiB in memory "
          f"({spill.in_memory / MiB:,.0f} MiB counted against flow_memory_limit, bodies under {SPILL_MIN} B are not)")
    print(f"RSS per flow beyond the bodies in memory: {(rss1 - rss0 - in_memory) / n:,.0f} B "
          f"(includes allocator slack left by spilled bodies)")
    spill.close()
    del app
    gc.collect()
    traced = per_flow_traced()
    print(f"tracemalloc, {20_000:,} flows: {traced['built']:,.0f} B per flow as built, "
          f"{traced['kept']:,.0f} B once kept (store entry, shared header fields, spill bookkeeping)")


if __name__ == "__main__":
    main()
