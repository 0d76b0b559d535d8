"""`view.order.set size` on a big list paging from a session: how long the UI's loop was held at most, the
old way (the command called the store's set_order on the loop) against the command as it is now (the same
way as `o`: the SQL sort on a worker thread), alternated in one run, three rounds.

    python bench/order_command_bench.py 300000      # records /tmp/order-bench-N.session once (~75 s)
"""
from __future__ import annotations

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.core.test_paging import make_flows  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
path = f"/tmp/order-bench-{N}.session"
if not os.path.exists(path):
    t = time.time()
    from interpose.store.session import Session
    s = Session.open(path)
    for start in range(0, N, 20_000):
        for f in make_flows(min(20_000, N - start), seed=start + 1):
            s.put(f)
        assert s.sync()
    s.close()
    print(f"recorded {N:,} flows in {time.time() - t:.0f} s")

async def held_max(work):  # type: ignore[no-untyped-def]
    gaps, done = [0.0], False
    async def ticker():
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps[0] = max(gaps[0], now - last - 0.001)
            last = now
    t = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    t0 = time.perf_counter()
    await work()
    took = time.perf_counter() - t0
    done = True
    await t
    return took, gaps[0]

async def main():
    from interpose.runtime.master import Master
    from interpose.runtime.options import Options, core_options
    from interpose.store.session import Session
    from interpose.tui.app import App
    opts = Options()
    core_options(opts)
    app = App(Master(opts))
    session = Session.open(path, readonly=True)
    app.store.attach(session)
    print(f"{len(app.store):,} flows")
    async def old():
        app.store.set_order("size")  # what view.order.set did
    async def new():
        await app.master.commands.execute("view.order.set size")
    for rnd in range(3):
        for name, fn in (("old", old), ("new", new)) if rnd % 2 == 0 else (("new", new), ("old", old)):
            app.store.set_order("time")
            took, held = await held_max(fn)
            assert app.store.order == "size"
            print(f"round {rnd} {name}: done in {took:.2f} s, loop held at most {held*1000:.0f} ms")
asyncio.run(main())
