"""A paste into the real `interpose` in a real pty: how long until the prompt shows it, and do proxied
requests keep flowing meanwhile?

    python bench/paste.py                 # 1 KB, 10 KB, 100 KB and 1 MB into f, i, ctrl f and / prompts
    python bench/paste.py --sizes 100000  # one size
    python bench/paste.py --keys          # also type 10 KB without bracketed paste (as keys)

It starts `interpose -p 0` in a pseudo-terminal (the harness of the TUI tests, tests/tui/pty_harness.py),
a local origin, and a client that sends one request after another through the proxy on a keep-alive
connection. For each prompt and size it opens the prompt, writes the paste as a terminal does
(ESC[200~ … ESC[201~) and measures the time from the first byte written to the screen showing the
paste's last characters in the prompt (the UI has read, inserted and drawn it). The requests answered
while that happens, and their slowest latency, show that the proxy was not held up.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import httpx  # noqa: E402

from tests.servers import Origin  # noqa: E402
from tests.tui.pty_harness import Terminal  # noqa: E402

PROMPTS = {
    "f (view filter)": (["f"], "Filter"),
    "i (intercept filter)": (["i"], "Intercept filter"),
    "ctrl f (global search)": (["ctrl f"], "Search all flows"),
    "/ (search in a flow)": (["enter", "/"], "Search"),
}


class Traffic:
    """Requests through the proxy, one after another, each latency with its end time."""

    def __init__(self, proxy: str, url: str) -> None:
        self.proxy, self.url = proxy, url
        self.done: list[tuple[float, float]] = []
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async with httpx.AsyncClient(proxy=self.proxy, timeout=60) as client:
            while True:
                t0 = time.perf_counter()
                r = await client.get(self.url)
                assert r.status_code == 200
                t1 = time.perf_counter()
                self.done.append((t1, t1 - t0))

    def between(self, start: float, end: float) -> list[float]:
        """Latencies of requests that were under way at some time in [start, end]."""
        return [lat for t, lat in self.done if t >= start and t - lat <= end]


async def paste_once(term: Terminal, keys: list[str], label: str, size: int, traffic: Traffic,
                     as_keys: bool = False) -> tuple[float, int, float]:
    marker = f"END{size}X"
    text = ("abcdefghij" * (size // 10 + 1))[:size - len(marker)] + marker
    await term.press(*keys)
    await term.wait_for(label)
    await term.settle(0.1)
    start = time.perf_counter()
    if as_keys:
        await term.write_all(text.encode())
    else:
        await term.paste(text)
    await term.wait_for(re.compile(re.escape(marker) + r"\s*$", re.M), timeout=600)
    end = time.perf_counter()
    lats = traffic.between(start, end)
    await term.press("esc")
    await term.wait_gone(marker)
    if keys[0] == "enter":
        await term.press("q")
    await term.settle(0.1)
    return end - start, len(lats), max(lats, default=0.0)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--keys", action="store_true", help="also type 10 KB as keys (no bracketed paste)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    origin = await Origin().start()
    term = Terminal(cols=120, rows=35)
    confdir = tempfile.mkdtemp(prefix="interpose-paste-")
    await term.start("--confdir", confdir)
    traffic = Traffic(term.url, f"{origin.url}/json")
    try:
        async with httpx.AsyncClient(proxy=term.url) as client:
            await client.get(f"{origin.url}/json")  # a flow for the `/` search in the flow view
        traffic.task = asyncio.ensure_future(traffic.run())
        await asyncio.sleep(1)
        idle = [lat for _, lat in traffic.done]
        print(f"idle: {len(idle)} requests in 1 s, median {statistics.median(idle) * 1000:.1f} ms\n")
        print("| prompt | paste | on screen after | requests meanwhile | slowest request |")
        print("|---|---|---|---|---|")
        for name, (keys, label) in PROMPTS.items():
            for size in sizes:
                took, n, slowest = await paste_once(term, keys, label, size, traffic)
                print(f"| {name} | {size / 1000:g} KB | {took * 1000:.0f} ms | {n} | {slowest * 1000:.0f} ms |",
                      flush=True)
        if args.keys:
            took, n, slowest = await paste_once(term, ["f"], "Filter", 10_000, traffic, as_keys=True)
            print(f"| f, typed as keys | 10 KB | {took * 1000:.0f} ms | {n} | {slowest * 1000:.0f} ms |")
    finally:
        if traffic.task is not None:
            traffic.task.cancel()
        await term.stop()
        await origin.stop()
        shutil.rmtree(confdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
