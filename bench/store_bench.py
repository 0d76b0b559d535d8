"""Benchmark `interpose.store.view.FlowStore` at a million flows (issue 7: keypress -> redraw under 50 ms).

    python bench/store_bench.py [N] [--real N_REAL]

Light synthetic flows (a `__slots__` class with a tiny request) measure the store itself: adding,
paging by index, `index()`, updates, filter and order changes, and the memory the store adds per flow.
Real `HTTPFlow` objects (100k by default) measure what a filter costs on the real model.
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from interpose.http import HTTPFlow, Request, Response
from interpose.model.connection import Client, Server
from interpose.store.view import FlowStore


class LightRequest:
    __slots__ = ("host", "method", "pretty_host", "timestamp_start", "url")

    def __init__(self, method: str, host: str, url: str, ts: float) -> None:
        self.method, self.host, self.pretty_host, self.url, self.timestamp_start = method, host, host, url, ts


class LightFlow:
    """Just what the store and a `~d` filter read."""

    __slots__ = ("error", "id", "marked", "request", "response", "timestamp_created", "type")

    def __init__(self, i: int, ts: float, req: LightRequest) -> None:
        self.id = str(i)
        self.timestamp_created = ts
        self.marked = i % 100 == 0
        self.request = req
        self.response = None
        self.type = "http"
        self.error = None


HOSTS = ["example.com", "api.example.org", "cdn.test", "tracker.net", "www.python.org"]
METHODS = ["GET", "GET", "GET", "POST", "PUT"]


def light_flows(n: int) -> list[LightFlow]:
    t0 = 1_700_000_000.0
    out = []
    for i in range(n):
        host = HOSTS[i % len(HOSTS)]
        req = LightRequest(METHODS[i % len(METHODS)], host, f"http://{host}/p/{i}", t0 + i * 0.001)
        out.append(LightFlow(i, t0 + i * 0.001, req))
    return out


def real_flows(n: int) -> list[HTTPFlow]:
    out = []
    for i in range(n):
        host = HOSTS[i % len(HOSTS)]
        f = HTTPFlow(Client(address=("127.0.0.1", 50000)), Server(address=(host, 80)))
        f.request = Request.make(METHODS[i % len(METHODS)], f"http://{host}/p/{i}?q={i}", b"", {"Accept": "*/*"})
        f.response = Response.make(200 + (i % 3) * 100, b"x" * (i % 500), {"Content-Type": "text/html"})
        f.response.timestamp_end = f.request.timestamp_start + (i % 97) / 1000
        out.append(f)
    return out


def timed(label: str, fn, per: int | None = None) -> float:
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    extra = f"  ({dt / per * 1e6:.2f} µs each)" if per else ""
    print(f"  {label:<52} {dt * 1000:10.1f} ms{extra}")
    return dt


def bench_light(n: int) -> None:
    print(f"{n:,} light flows")
    flows = light_flows(n + 1000)
    extra, flows = flows[n:], flows[:n]
    gc.collect()
    tracemalloc.start()  # a separate pass: tracemalloc slows allocation down a lot
    base = tracemalloc.get_traced_memory()[0]
    store = FlowStore()
    for f in flows:
        store.add(f)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del store
    gc.collect()
    print(f"  {'store memory per flow (tracemalloc)':<52} {used / n:10.1f} bytes")
    store = FlowStore()
    timed("add all (time order, append fast path)", lambda: [store.add(f) for f in flows], n)

    rnd = random.Random(1)
    idx = [rnd.randrange(n) for _ in range(10_000)]
    timed("10,000 random store[i]", lambda: [store[i] for i in idx], len(idx))
    sample = [flows[i] for i in idx]
    timed("10,000 random store.index(flow)", lambda: [store.index(f) for f in sample], len(idx))

    def page() -> None:  # what a redraw reads: len() and a screenful of rows around the focus
        focus = n // 2
        for _ in range(100):
            focus = min(focus + 50, len(store) - 1)
            _ = [store[j] for j in range(max(0, focus - 50), focus)]
    timed("100 page-downs (50 rows each)", page, 100)

    late = LightFlow(n, 1_600_000_000.0, LightRequest("GET", "late.example", "http://late.example/", 0.0))
    timed("add one out-of-order flow (insort at the front)", lambda: store.add(late))
    timed("update one flow", lambda: store.update(flows[n // 2]))
    timed("remove one flow from the front", lambda: store.remove(late))

    elapsed = store.set_filter("~d example")
    print(f"  {'set_filter(~d example) (reported)':<52} {elapsed * 1000:10.1f} ms  -> {len(store):,} visible")
    timed("10,000 random store[i] (filtered)", lambda: [store[i % len(store)] for i in idx], len(idx))
    timed("10,000 random store.index(flow) (filtered)", lambda: [store.index(f) for f in sample], len(idx))
    timed("add 1,000 flows while filtered", lambda: [store.add(f) for f in extra], 1000)
    store.set_filter(None)
    elapsed = store.set_order("method")
    print(f"  {'set_order(method) (reported)':<52} {elapsed * 1000:10.1f} ms")
    timed("10,000 random store.index(flow) (by method)", lambda: [store.index(f) for f in sample], len(idx))
    elapsed = store.set_order("time")
    print(f"  {'set_order(time) (reported)':<52} {elapsed * 1000:10.1f} ms")
    timed("reverse toggle + 10,000 store[i]", lambda: (store.set_reverse(True), [store[i] for i in idx]))
    store.set_reverse(False)
    timed("show_marked_only on", lambda: store.set_marked_only(True))
    print(f"  {'':<52} {'':>10}     -> {len(store):,} visible")
    timed("show_marked_only off (full refilter)", lambda: store.set_marked_only(False))
    timed("delete_matching(~d cdn)", lambda: store.delete_matching("~d cdn"))
    timed("clear", store.clear)


def bench_real(n: int) -> None:
    print(f"{n:,} real HTTPFlows")
    flows = real_flows(n)
    store = FlowStore()
    timed("add all", lambda: [store.add(f) for f in flows], n)
    elapsed = store.set_filter("~d example")
    print(f"  {'set_filter(~d example) (reported)':<52} {elapsed * 1000:10.1f} ms  "
          f"({elapsed / n * 1e6:.2f} µs/flow, 1M ≈ {elapsed / n * 1e6:.1f} s) -> {len(store):,} visible")
    elapsed = store.set_filter("~c 404 | ~m POST")
    print(f"  {'set_filter(~c 404 | ~m POST) (reported)':<52} {elapsed * 1000:10.1f} ms")
    store.set_filter(None)
    for order in ("url", "size", "duration", "status", "time"):
        elapsed = store.set_order(order)
        print(f"  {f'set_order({order}) (reported)':<52} {elapsed * 1000:10.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--real", type=int, default=100_000, help="how many real HTTPFlows (default 100k)")
    args = ap.parse_args()
    bench_light(args.n)
    print()
    bench_real(args.real)


if __name__ == "__main__":
    main()
