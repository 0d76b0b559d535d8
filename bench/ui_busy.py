"""Proxied requests while the terminal UI is busy: the proxy must not wait for the UI.

    python bench/ui_busy.py                     # the TUI as shipped: the core on its own thread
    python bench/ui_busy.py --shared-loop       # for comparison: core and UI on one loop (before 0.2)
    python bench/ui_busy.py --work filter       # busy with a filter over a million flows instead

It builds the real `App` (tui/app.py) with its real widgets, as `interpose` does, and starts the real
proxy core: on its own thread and loop through `CoreThread`, or with `--shared-loop` on the UI's loop,
as before the split. A client in another process sends plain HTTP requests through the proxy to a
local origin (also its own process), one at a time on new connections, and records each latency.
First 3 s with the UI idle, then 3 s while the UI's loop does CPU-bound work without yielding:

- `paste` (default): 100 KB of text typed into the `f` (view filter) prompt key by key, as a terminal
  without bracketed paste delivers a paste, each key followed by a redraw, until 3 s have passed;
- `filter`: a million flows in the list, then `FlowStore.set_filter("~d example")` in one go.

It prints p50, p99 and the maximum latency for both windows. The target: p99 under 250 ms while busy.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from interpose.runtime.entry import CoreThread  # noqa: E402
from interpose.runtime.master import Master  # noqa: E402
from interpose.runtime.options import Options, core_options  # noqa: E402
from interpose.tui.app import App  # noqa: E402

BUSY_S = 3.0
SIZE = (120, 40)

ORIGIN = textwrap.dedent("""
    import http.server, sys
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            body = b"x" * 1024
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    print(s.server_address[1], flush=True)
    s.serve_forever()
""")

CLIENT = textwrap.dedent("""
    import http.client, json, sys, time
    proxy_port, origin_port, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        c = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=60)
        c.request("GET", f"http://127.0.0.1:{origin_port}/1k")
        r = c.getresponse(); r.read(); c.close()
        out.append((t, time.monotonic() - t, r.status))
        time.sleep(0.01)
    print(json.dumps(out))
""")


def summary(samples: list[tuple[float, float, int]]) -> dict[str, float]:
    lat = sorted(s[1] * 1000 for s in samples)
    if not lat:
        return {"n": 0}
    p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
    return {"n": len(lat), "p50_ms": statistics.median(lat), "p99_ms": p99, "max_ms": lat[-1],
            "errors": sum(1 for s in samples if s[2] != 200)}


async def client_window(proxy_port: int, origin_port: int, seconds: float) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT, str(proxy_port), str(origin_port),
                                                str(seconds), stdout=asyncio.subprocess.PIPE)


def busy_paste(app: App, seconds: float) -> int:
    """Type a 100 KB paste into the view-filter prompt, key by key with redraws, until `seconds` pass."""
    top = app.top
    top.keypress(SIZE, "f")
    text = ("GET /api/items?id=12345&q=" + "abcdefghij" * 10 + " ") * 800  # ~100 KB
    end = time.monotonic() + seconds
    n = 0
    for ch in text:
        top.keypress(SIZE, ch)
        n += 1
        if n % 16 == 0:
            top.render(SIZE, focus=True)
            if time.monotonic() > end:
                break
    top.keypress(SIZE, "esc")
    return n


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    origin = subprocess.Popen([sys.executable, "-c", ORIGIN], stdout=subprocess.PIPE)
    assert origin.stdout is not None
    origin_port = int(origin.stdout.readline())
    opts = Options()
    core_options(opts)
    opts.update(listen_port=0, confdir=tempfile.mkdtemp(prefix="ui-busy-"))
    master = Master(opts)
    app = App(master)
    core: CoreThread | None = None
    try:
        if args.shared_loop:
            host, port = await master.start()
        else:
            core = CoreThread(master)
            host, port = core.start()
        app.spawn(app.consume())
        app.top.render(SIZE, focus=True)
        if args.work == "filter":
            busy_filter_setup = time.monotonic()
            import tui_bench
            tui_bench.feed(app, tui_bench.flows(1_000_000, bodies=False))
            print(f"loaded a million flows in {time.monotonic() - busy_filter_setup:.1f} s", file=sys.stderr)
        # idle window: the UI loop is free (it awaits the client)
        proc = await client_window(port, origin_port, BUSY_S)
        out, _ = await proc.communicate()
        idle = json.loads(out)
        # busy window: start the client, give it a moment to begin, then block this loop
        proc = await client_window(port, origin_port, BUSY_S)
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        if args.work == "paste":
            keys = busy_paste(app, BUSY_S)
            work = f"{keys} keys of a paste typed into the filter prompt"
        else:
            app.store.set_filter("~d example")
            work = f"a filter over {app.store.total} flows ({len(app.store)} shown)"
        busy_s = time.monotonic() - t0
        out, _ = await proc.communicate()
        # every request in flight during the busy window: sent in it, or sent before and not answered by t0
        busy = [s for s in json.loads(out) if s[0] <= t0 + busy_s and s[0] + s[1] >= t0]
        return {"architecture": "shared loop" if args.shared_loop else "core thread", "work": work,
                "busy_s": round(busy_s, 2), "idle": summary(idle), "busy": summary(busy)}
    finally:
        if core is not None:
            core.stop()
        else:
            await master.shutdown()
        origin.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared-loop", action="store_true", help="run the core on the UI's loop, as before the split")
    p.add_argument("--work", choices=("paste", "filter"), default="paste")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['architecture']}: UI busy {result['busy_s']} s with {result['work']}")
    for name in ("idle", "busy"):
        s = result[name]
        print(f"  {name:4}  {s['n']:4d} requests  p50 {s.get('p50_ms', 0):7.1f} ms  p99 {s.get('p99_ms', 0):7.1f} ms"
              f"  max {s.get('max_ms', 0):7.1f} ms  errors {s.get('errors', 0)}")
    p99 = result["busy"].get("p99_ms", float("inf"))
    print(f"  p99 while busy {'<' if p99 < 250 else '>='} 250 ms: {'yes' if p99 < 250 else 'no'}")


if __name__ == "__main__":
    main()
