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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sessionscale import with_loop_gaps  # noqa: E402

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
            took, held = await with_loop_gaps(fn())
            assert app.store.order == "size"
            print(f"round {rnd} {name}: done in {took:.2f} s, loop held at most {held*1000:.0f} ms")
asyncio.run(main())
