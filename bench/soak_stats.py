"""Soak statistics: once a second (on `tick`), write the proxy's own resource figures to a JSON file.

    interpose-dump -q -s bench/soak_stats.py --set soak_stats_file=/tmp/stats.json

The file always holds the latest sample, replaced atomically (write + rename), so a reader never sees
half of one:

    {"t": 1700000000.0, "seq": 42, "rss_kb": 51234, "fds": 37, "tasks": 12, "connections": 4,
     "gc_counts": [312, 4, 1], "gc_objects": 181234}

`rss_kb` is VmRSS from /proc/self/status, `fds` the entries of /proc/self/fd, `tasks` the event loop's
`asyncio.all_tasks()`, `connections` the client connections the proxy is serving. With
`--set soak_tracemalloc=true` it also starts tracemalloc and, every 30 s, compares a snapshot with the
first one: samples then carry `top_growth`, the ten source lines whose allocations grew most (for
hunting a leak, at a cost in speed).
"""
from __future__ import annotations

import asyncio
import gc
import json
import os
import time
import tracemalloc
from typing import Any

from interpose import ctx

INTERVAL_S = 1.0
TRACE_EVERY_S = 30.0
"""Snapshots block the event loop for a while (long enough to upset the proxy's 1 s peeks): take few."""


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class SoakStats:
    name = "soak_stats"

    def __init__(self) -> None:
        self.path = ""
        self.seq = 0
        self.last = 0.0
        self.first: tracemalloc.Snapshot | None = None
        self.top_growth: list[str] = []
        self.last_trace = 0.0

    def load(self, loader: Any) -> None:
        loader.add_option("soak_stats_file", str, "", "Where the soak statistics addon writes its JSON sample.")
        loader.add_option("soak_tracemalloc", bool, False, "Trace allocations and report the lines that grow.")

    def configure(self, options: Any, updated: set[str]) -> None:
        if "soak_stats_file" in updated:
            self.path = options.soak_stats_file
        if "soak_tracemalloc" in updated and options.soak_tracemalloc and not tracemalloc.is_tracing():
            tracemalloc.start(8)

    def sample(self) -> dict[str, Any]:
        server = getattr(ctx.master, "server", None)
        out: dict[str, Any] = {
            "t": time.time(),
            "seq": self.seq,
            "rss_kb": rss_kb(),
            "fds": len(os.listdir("/proc/self/fd")),
            "tasks": len(asyncio.all_tasks()),
            "connections": server.connection_count if server is not None else None,
            "gc_counts": list(gc.get_count()),
            "gc_objects": len(gc.get_objects()),
        }
        if tracemalloc.is_tracing() and time.monotonic() - self.last_trace >= TRACE_EVERY_S:
            self.last_trace = time.monotonic()
            snap = tracemalloc.take_snapshot().filter_traces((tracemalloc.Filter(False, tracemalloc.__file__),))
            if self.first is None:
                self.first = snap
            else:
                stats = snap.compare_to(self.first, "lineno")[:10]
                self.top_growth = [f"{s.traceback[0].filename}:{s.traceback[0].lineno} {s.size_diff / 1024:+.1f} KiB "
                                   f"({s.count_diff:+d} blocks)" for s in stats]
        if self.top_growth:
            out["top_growth"] = self.top_growth
        return out

    def tick(self) -> None:
        now = time.monotonic()
        if not self.path or now - self.last < INTERVAL_S:
            return
        self.last = now
        self.seq += 1
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.sample(), f)
        os.replace(tmp, self.path)


addons = [SoakStats()]
