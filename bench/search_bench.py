"""Benchmark the global search (`ctrl f`, issue 9) at 100,000 flows: does the UI stay responsive?

    python bench/search_bench.py [N]       # N flows (default 100,000); about 40 s and 0.5 GiB

It builds N realistic `HTTPFlow`s with bench/tui_bench.py's `make_flow` (browser-like request and
nginx-like response headers, six flows per connection) and gives them realistic bodies: JSON and HTML
of 2-6 KiB (a third gzip-encoded), JavaScript and CSS text, binary images, 0.1 % of 300 KiB (spilled to
disk by `BodySpill`), and every 100th flow a WebSocket with 20 JSON messages. They reach the TUI's
own `App` through `App.apply`, as from the bus (tui_bench's `feed`).

Then, on a running asyncio loop, it searches through the real keys on `App.top` at 80×24 (`ctrl f`,
the query, `enter`) for a string in a few bodies, a regex, and a string found nowhere. While the search
runs, a timer due every 10 ms records how late it fires (loop stalls), and every 50 ms a key (`j`/`k` in
the results list) is pressed and the screen rendered, timed from when the key was due to the end of the
render. `App.loop` is a stand-in whose `draw_screen()` renders `App.top` at 80×24, so the progress
redraws cost what they cost in the terminal and the bench can see the progress indicator on screen.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.tui_bench import SIZE, body_size, feed, fresh, make_flow, new_app
from interpose.http import HTTPFlow
from interpose.model.connection import Client, Server
from interpose.tui.app import App
from interpose.websocket import WebSocketFlow, WebSocketMessage

NEEDLE = "order-7f3a9c"
"""In one JSON and one HTML body in every 10,000 flows (20 at 100,000, some gzip-encoded)."""
QUERIES = [
    ("string in a few bodies", NEEDLE),
    ("regex", r'/"sku": "ZX-\d{3}77"/'),
    ("no match", "no-such-text-anywhere"),
]
TICK_S = 0.010
KEY_S = 0.050
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima",
         "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey",
         "xray", "yankee", "zulu"]
NOISE = os.urandom(64 * 1024)


def json_body(i: int, size: int) -> bytes:
    items, n = [], 0
    while n < size:
        w = WORDS[(i + n) % len(WORDS)]
        item = (f'{{"sku": "ZX-{(i * 31 + n) % 100000:05d}", "name": "{w} {WORDS[(i * 7 + n) % len(WORDS)]}", '
                f'"price": {(i * 13 + n) % 9999 / 100}, "tags": ["{w}", "sale"], "stock": {(i + n) % 50}}}')
        items.append(item)
        n += len(item) + 2
    extra = f', "ref": "{NEEDLE}"' if i % 10_000 == 1232 else ""
    return f'{{"id": {i}, "page": {i % 40}, "items": [{", ".join(items)}]{extra}}}'.encode()


def html_body(i: int, size: int) -> bytes:
    head = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Page {i}</title>"
            "<link rel=\"stylesheet\" href=\"/styles/site.css\"></head><body><main>")
    parts = [head]
    n = len(parts[0])
    while n < size:
        w = WORDS[(i + n) % len(WORDS)]
        p = f"<section class=\"card\"><h2>{w.title()} {n}</h2><p>{' '.join(WORDS[(n + k) % 26] for k in range(12))}" \
            f"</p><a href=\"/page/{(i + n) % 997}\">more about {w}</a></section>\n"
        parts.append(p)
        n += len(p)
    if i % 10_000 == 1234:
        parts.append(f"<footer data-ref=\"{NEEDLE}\"></footer>")
    return ("".join(parts) + "</main></body></html>").encode()


def code_body(i: int, size: int, css: bool) -> bytes:
    line = (".card-%d { margin: 0 auto; padding: 4px 8px; color: #333; }\n" if css else
            "function f%d(a, b) { return fetch('/api/v2/items/' + a).then(r => r.json()); }\n")
    return "".join(line % (i + k) for k in range(size // len(line) + 1)).encode()[:size]


def realistic(f: HTTPFlow, i: int) -> None:
    """Replace make_flow's filler body with one of the kind its Content-Type says, gzip a third of the
    JSON and HTML, and make every 100th flow a WebSocket with messages."""
    resp = f.response
    assert resp is not None
    ctype = resp.headers["content-type"]
    size = len(resp.raw_content or b"")
    if i % 100 == 50:  # a WebSocket upgrade with its messages
        resp.status_code, resp.reason = 101, "Switching Protocols"
        resp.headers["content-length"] = "0"
        resp.raw_content = b""
        ws = WebSocketFlow(f, live=False)
        for k in range(20):
            text = (f'{{"type": "tick", "seq": {k}, "symbol": "{WORDS[(i + k) % 26].upper()}", '
                    f'"price": {(i + k) % 997}.25}}')
            ws.add_message(WebSocketMessage(k % 4 == 0, text.encode(), is_text=True, timestamp=f.timestamp_created + k))
        f.websocket = ws
        return
    if not size and resp.status_code == 304:
        return
    if "json" in ctype or "html" in ctype:
        size = 2048 + body_size(i) % 4096 if size < 300 * 1024 else size
        body = json_body(i, size) if "json" in ctype else html_body(i, size)
        if i % 3 == 0:
            body = gzip.compress(body, 6)
            resp.headers["content-encoding"] = "gzip"
    elif "css" in ctype or "javascript" in ctype:
        body = code_body(i, size, "css" in ctype)
    else:  # images: binary
        start = (i * 4099) % (len(NOISE) - min(size, len(NOISE)) + 1)
        if size > len(NOISE):
            body = NOISE[start:start + size] * (size // len(NOISE) + 1)
        else:
            body = fresh(NOISE[start:start + size])
        body = body[:size]
    resp.raw_content = body
    resp.headers["content-length"] = str(len(body))


def flows(n: int) -> Any:
    t0 = 1_750_000_000.0
    conn: tuple[Client, Server] = (Client(), Server())
    for i in range(n):
        if i % 6 == 0:
            conn = (Client(address=(f"192.168.1.{i % 250}", 40000 + i % 20000), sockname=("127.0.0.1", 8080)),
                    Server(address=("www.example.com", 443)))
        f = make_flow(i, conn, t0, True)
        realistic(f, i)
        yield f


class ScreenLoop:
    """Stands in for `urwid.MainLoop` as far as `App` uses it: `draw_screen()` renders the top widget
    at 80×24, as the real loop does before writing the changed rows to the terminal."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.draws = 0
        self.progress_seen = 0
        self.last = ""

    def draw_screen(self) -> None:
        canvas = self.app.top.render(SIZE, focus=True)
        self.last = "\n".join(line.decode("utf-8", "replace") for line in canvas.text)
        self.draws += 1
        if "searching… " in self.last and "/" in self.last.split("searching… ", 1)[1][:20]:
            self.progress_seen += 1


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else 0.0


async def measure(app: App, label: str, query: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    screen = app.loop
    assert isinstance(screen, ScreenLoop)
    top = app.top
    while app.views:  # back to the flow list
        app.pop()
    screen.draws = screen.progress_seen = 0
    ticks: list[float] = []
    keys: list[float] = []
    running = True
    gc_ms: list[float] = []
    gc_t0 = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                gc_t0[0] = time.perf_counter()
            else:
                gc_ms.append((time.perf_counter() - gc_t0[0]) * 1000)
    gc.callbacks.append(on_gc)

    def tick(due: float) -> None:
        now = loop.time()
        ticks.append((now - due) * 1000)
        if running:  # re-armed from now, as a periodic UI timer would be: each delay is one stall
            loop.call_at(now + TICK_S, tick, now + TICK_S)

    def key(due: float, k: int) -> None:
        if not running:
            return
        top.keypress(SIZE, "j" if k % 2 == 0 else "k")
        screen.draw_screen()  # urwid redraws after handling input
        now = loop.time()
        keys.append((now - due) * 1000)
        loop.call_at(now + KEY_S, key, now + KEY_S, k + 1)

    for k in ("ctrl f", *query):
        top.keypress(SIZE, k)
    t0 = loop.time()
    top.keypress(SIZE, "enter")  # starts the search task and pushes the results view
    screen.draw_screen()
    loop.call_at(t0 + TICK_S, tick, t0 + TICK_S)
    loop.call_at(t0 + KEY_S, key, t0 + KEY_S, 0)
    while app.tasks:
        await asyncio.gather(*app.tasks, return_exceptions=True)
    elapsed = loop.time() - t0
    running = False
    gc.callbacks.remove(on_gc)
    await asyncio.sleep(0)  # let redraw_soon's final redraw run
    screen.draw_screen()
    view = app.current
    matches = len(getattr(view, "matches", []))
    assert f"({matches} matches)" in screen.last or "no match for" in screen.last, screen.last
    return {"label": label, "query": query, "matches": matches, "s": elapsed, "flows_s": len(app.store) / elapsed,
            "tick_max": max(ticks, default=0), "tick_p99": pct(ticks, 0.99), "ticks": len(ticks),
            "key_max": max(keys, default=0), "key_p50": pct(keys, 0.5), "keys": len(keys),
            "gc": len(gc_ms), "gc_max": max(gc_ms, default=0), "draws": screen.draws, "progress": screen.progress_seen}


async def run(n: int) -> None:
    app = new_app()
    t0 = time.perf_counter()
    fed, _ = feed(app, flows(n))
    gc.collect()
    build_s = time.perf_counter() - t0
    app.loop = ScreenLoop(app)  # type: ignore[assignment]
    app.follow = False
    print(f"{fed:,} flows built and fed in {build_s:.0f} s ({app.spill.spilled_count} bodies spilled to disk); "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; terminal {SIZE[0]}×{SIZE[1]}")
    load = os.getloadavg()[0]
    rows = []
    for label, query in QUERIES:
        rows.append(await measure(app, label, query))
    print(f"load average (1 min) before the searches: {load:.2f}")
    print(f"timer every {TICK_S * 1000:.0f} ms (lateness), key `j`/`k` in the results list every {KEY_S * 1000:.0f} ms "
          "(due → rendered)\n")
    print("| search | query | matches | total s | flows/s | timer late max / p99 ms | key → render max / median ms "
          "(keys) | progress redraws shown | full GCs (max ms) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['label']} | `{r['query']}` | {r['matches']} | {r['s']:.2f} | {r['flows_s']:,.0f} | "
              f"{r['tick_max']:.1f} / {r['tick_p99']:.1f} | {r['key_max']:.1f} / {r['key_p50']:.1f} ({r['keys']}) | "
              f"{r['progress']} of {r['draws']} | {r['gc']} ({r['gc_max']:.0f}) |")
    app.spill.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=100_000)
    args = ap.parse_args(argv)
    asyncio.run(run(args.n))


if __name__ == "__main__":
    main()
