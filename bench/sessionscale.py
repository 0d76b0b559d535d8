"""The flow list paging from a big session (issue 17): RSS, open to first screen, moves, sort, filter, search.

    python bench/sessionscale.py 1000000 [--keep FILE] [--lean]

Builds a session of N HTTP flows with 1 KiB response bodies by writing its rows directly (the rows the
session writer makes for one template flow, with a new id, time, host, status and size per flow, and the
search index filled the same way), then, in a fresh process, opens it with the TUI's store
(`PagedFlowStore.attach`) headless and times what a keypress does to the store: the rows of one screen
formatted as the list draws them. RSS is the process's VmRSS.

`--lean` (the scale points, 2M flows and up): no search index and response bodies of 920-983 bytes, so that
each stays in its B-tree page (a 1 KiB body does not: it overflows into a page of its own, 4 KiB on disk);
about 3 KB a flow on disk instead of 6.8 KB, and nothing the list keeps in memory changes.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROWS = 50


def rss_mib(field: str = "VmRSS") -> float:
    """The process's RSS now (VmHWM: its peak so far), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def build(path: str, n: int, lean: bool = False) -> None:
    search, base = not lean, 1024 if not lean else 920
    from interpose.store import flowcodec
    from interpose.store.session import Session, rows
    from interpose.store.session.writer import _INSERT
    from tests.core.test_store import http_flow, respond

    s = Session.open(path)
    s.close()
    template = http_flow("http://host0.example.com/path/to/resource?x=1")
    respond(template, 200, b"x" * 1024)
    template.response.headers["content-type"] = "text/plain"
    snap = rows.snapshot(template)
    cols = list(snap.columns)
    cols[-1] = json.dumps(flowcodec.dump(template, bodies=False))  # JSON records (every version reads them)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    rnd = random.Random(1)
    t0, batch = time.time(), 20_000
    for start in range(0, n, batch):  # one transaction a batch: the WAL stays small (checkpointed as it goes)
        db.execute("BEGIN")
        flows, bodies = [], []
        for i in range(start, min(n, start + batch)):
            host = f"host{i % 97}.example.com"
            status = rnd.choice((200, 200, 200, 301, 404, 500))
            size = base + rnd.randrange(64)
            body = (b"needle%d " % i if i % 1000 == 0 else b"") + b"y" * (size - 8)
            c = list(cols)
            c[0] = f"{i:08d}-0000-4000-8000-{rnd.getrandbits(48):012x}"
            c[2] = t0 + i * 0.001
            c[4], c[6], c[7], c[9] = host, f"http://{host}/path/{i}", status, len(body)
            c[11] = rnd.random()
            rec = json.loads(c[-1])
            rec["id"] = c[0]
            c[-1] = json.dumps(rec)
            flows.append((i + 1, *c, i + 1))  # rowid, the columns, seq
            bodies.append(body)
        db.executemany(_INSERT, flows)
        rowids = [f[0] for f in flows]
        db.executemany("INSERT INTO bodies VALUES (?, 'response', 0, ?)", zip(rowids, bodies, strict=True))
        if not search:
            db.execute("COMMIT")
            continue
        rows_ = [(r, f[7], "", b.decode()[:64], "", "") for r, f, b in zip(rowids, flows, bodies, strict=True)]
        db.executemany("INSERT INTO search (rowid, url, headers, body, messages, comment) VALUES (?,?,?,?,?,?)",
                       rows_)
        db.execute("COMMIT")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('indexed', ?)", (str(n) if search else "0",))
    db.execute("INSERT OR REPLACE INTO meta VALUES ('clean', '1')")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def screen(store: object, top: int) -> float:
    from interpose.tui.format import flow_row

    t0 = time.perf_counter()
    n = len(store)  # type: ignore[arg-type]
    for i in range(top, min(n, top + ROWS)):
        flow_row(store[i], 160)  # type: ignore[index]
    return time.perf_counter() - t0


async def with_loop_gaps(coro: object) -> tuple[float, float]:
    """Seconds `coro` took, and the longest the event loop was held meanwhile (what a keypress would wait)."""
    gaps = [0.0]
    done = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps[0] = max(gaps[0], now - last - 0.002)
            last = now
    task = asyncio.create_task(ticker())
    t = time.perf_counter()
    await coro  # type: ignore[misc]
    took = time.perf_counter() - t
    done = True
    await task
    return took, gaps[0]


def measure(path: str) -> dict[str, float]:
    from interpose.store.session import Session
    from interpose.store.session.paging import PagedFlowStore

    out: dict[str, float] = {"rss_start_mib": rss_mib()}
    t0 = time.perf_counter()
    session = Session.open(path, readonly=True)
    store = PagedFlowStore()
    store.attach(session)
    first = screen(store, max(0, len(store) - ROWS))
    out["open_to_first_screen_s"] = time.perf_counter() - t0
    out["first_screen_rows_s"] = first
    out["flows"] = len(store)
    out["rss_open_mib"] = rss_mib()
    rnd = random.Random(2)
    moves = [screen(store, rnd.randrange(len(store))) for _ in range(20)]
    out["page_to_unseen_rows_max_s"] = max(moves)
    t = time.perf_counter()
    f = store[rnd.randrange(len(store))]
    store.index(f)
    out["open_a_flow_s"] = time.perf_counter() - t
    out["sort_size_s"] = store.set_order("size")
    out["rss_after_sort_mib"] = rss_mib()
    store.set_order("time")
    out["sort_size_off_loop_s"], out["sort_size_loop_held_max_s"] = asyncio.run(
        with_loop_gaps(store.set_order_sliced("size")))
    store.set_order("time")
    out["filter_d_c_s"], out["filter_loop_held_max_s"] = asyncio.run(
        with_loop_gaps(store.set_filter_sliced("~d host & ~c 200")))
    out["filter_shown"] = len(store)
    store.set_filter(None)
    with sqlite3.connect(path) as db:
        indexed = db.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()
    if indexed is None or indexed[0] == "0":  # --lean: no search index
        out["rss_end_mib"], out["rss_peak_mib"] = rss_mib(), rss_mib("VmHWM")
        return out
    t = time.perf_counter()
    found = store.search_candidates("needle", limit=100)
    out["search_first_results_s"] = time.perf_counter() - t
    out["search_found"] = len(found or [])
    t = time.perf_counter()
    found = store.search_candidates("needle")  # as the TUI asks: up to 10,000 candidates, each loaded
    out["search_tui_s"] = time.perf_counter() - t
    out["search_tui_found"] = len(found or [])
    out["rss_end_mib"], out["rss_peak_mib"] = rss_mib(), rss_mib("VmHWM")
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        print(json.dumps(measure(sys.argv[2])))
        return
    args = sys.argv[1:]
    lean = "--lean" in args
    args = [a for a in args if a != "--lean"]
    n = int(args[0]) if args else 100_000
    default = f"/tmp/sessionscale-{n}{'-lean' if lean else ''}.session"
    path = args[2] if len(args) > 2 and args[1] == "--keep" else default
    if not os.path.exists(path):
        t = time.time()
        build(path, n, lean)
        print(f"built {n:,} flows in {time.time() - t:.0f} s: {os.path.getsize(path) / 2**20:.0f} MiB", flush=True)
    res = subprocess.run([sys.executable, __file__, "--measure", path], capture_output=True, text=True, check=True)
    print(json.dumps(json.loads(res.stdout), indent=1))


if __name__ == "__main__":
    main()
