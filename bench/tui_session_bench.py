"""The terminal UI on a big session (issue 17): `interpose -r FILE` in a real pseudo-terminal.

    python bench/sessionscale.py 10000000 --lean --keep /big/s10m.session   # builds the file (~30 GB)
    python bench/tui_session_bench.py /big/s10m.session [/tmp/s1m.session ...] [--rounds 2]

For each file (alternated when several, `--rounds` times): starts `interpose -r FILE` in a 120x35 pty
(tests/tui/pty_harness.py, pyte), and measures the time from the start to the first screen of flows, the
process's RSS then (VmRSS, /proc), and keypresses on the list: each key is sent once the screen is quiet and
timed from the send to the app's last write of the redraw (the pty round trip included; a redraw counts as
done after 80 ms without output). Prints one JSON line a run.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.tui.pty_harness import Terminal

QUIET = 0.08
KEYS = ["G", "g", "page down", "page down", "page up", "G", "up", "up", "enter", "q", "g", "enter", "q"]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def key_time(term: Terminal, key: str) -> float:
    """Seconds from sending `key` to the app's last write before QUIET seconds of silence."""
    await term.settle(QUIET)
    t0 = time.perf_counter()
    last = t0
    term._changed.clear()
    term.send(key)
    while True:
        try:
            async with asyncio.timeout(QUIET if last > t0 else 30):
                await term._changed.wait()
        except TimeoutError:
            return last - t0
        last = time.perf_counter()
        term._changed.clear()


async def one(path: str) -> dict[str, object]:
    term = Terminal(120, 35)
    t0 = time.perf_counter()
    try:
        await term.start("-r", path)
        await term.wait_for(".example.com", timeout=300)
        out: dict[str, object] = {"file": os.path.basename(path), "open_to_first_screen_s":
                                  round(time.perf_counter() - t0, 2)}
        assert term.proc is not None
        await term.settle(0.3)
        out["rss_first_screen_mib"] = round(rss_mib(term.proc.pid), 1)
        times = [(k, round(await key_time(term, k) * 1000, 1)) for k in KEYS]
        out["keys_ms"] = times
        out["key_max_ms"] = max(t for _, t in times)
        out["rss_end_mib"] = round(rss_mib(term.proc.pid), 1)
        return out
    finally:
        await term.stop()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    for _ in range(args.rounds):
        for path in args.files:
            print(json.dumps(await one(path)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
