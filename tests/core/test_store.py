"""interpose.store.view.FlowStore: order, filter, marks, updates, notifications, checked against a naive model;
plus 100k-flow timing and memory checks (bench/store_bench.py does the 1M run)."""
from __future__ import annotations

import gc
import random
import time
import tracemalloc
from typing import Any

import pytest

from interpose.flowfilter import FilterError, parse
from interpose.http import HTTPFlow, Request, Response
from interpose.model.connection import Client, Server
from interpose.store.view import ORDERS, FlowStore, sort_key
from interpose.tcp import TCPFlow, TCPMessage
from interpose.websocket import WebSocketFlow, WebSocketMessage

_clock = [1_700_000_000.0]


def http_flow(url: str = "http://example.com/", method: str = "GET", status: int | None = None,
              body: bytes = b"", ts: float | None = None, duration: float | None = None) -> HTTPFlow:
    f = HTTPFlow(Client(address=("127.0.0.1", 1)), Server(address=("example.com", 80)))
    f.request = Request.make(method, url)
    _clock[0] += 1
    f.timestamp_created = ts if ts is not None else _clock[0]
    f.request.timestamp_start = f.timestamp_created
    if status is not None:
        respond(f, status, body, duration)
    return f


def respond(f: HTTPFlow, status: int = 200, body: bytes = b"", duration: float | None = 0.5) -> None:
    f.response = Response.make(status, body)
    f.response.timestamp_end = None if duration is None else f.request.timestamp_start + duration


def urls(store: FlowStore) -> list[str]:
    return [f.request.url for f in store]


# -- basics --------------------------------------------------------------------------------------


def test_add_get_index_iterate() -> None:
    s = FlowStore()
    flows = [http_flow(f"http://example.com/{i}") for i in range(5)]
    for f in flows:
        s.add(f)
    assert len(s) == s.total == 5
    assert [s[i] for i in range(5)] == flows == list(s)
    assert s[-1] is flows[-1]
    with pytest.raises(IndexError):
        s[5]
    assert [s.index(f) for f in flows] == [0, 1, 2, 3, 4]
    assert s.get(flows[2].id) is flows[2] and s.get("nope") is None
    assert flows[0] in s and http_flow() not in s
    assert s.index(http_flow()) is None
    s.add(flows[0])  # same id again: an update, not a duplicate
    assert s.total == 5


def test_time_order_ties_keep_insertion_and_late_flows_slot_in() -> None:
    s = FlowStore()
    a, b, c = http_flow("http://a/", ts=10.0), http_flow("http://b/", ts=10.0), http_flow("http://c/", ts=5.0)
    for f in (a, b, c):
        s.add(f)
    assert list(s) == [c, a, b]
    assert s.index(a) == 1


def test_remove_and_clear() -> None:
    s = FlowStore()
    flows = [http_flow() for _ in range(4)]
    for f in flows:
        s.add(f)
    s.remove(flows[1])
    s.remove(flows[1])  # twice is fine
    assert list(s) == [flows[0], flows[2], flows[3]] and s.index(flows[1]) is None
    s.set_filter("~all")
    s.clear()
    assert len(s) == s.total == 0 and list(s) == []
    s.add(flows[0])
    assert list(s) == [flows[0]]


# -- filter --------------------------------------------------------------------------------------


def test_filter_hides_and_shows() -> None:
    s = FlowStore()
    ex = [http_flow("http://example.com/1"), http_flow("http://example.com/2")]
    other = http_flow("http://other.org/")
    for f in (ex[0], other, ex[1]):
        s.add(f)
    took = s.set_filter("~d example")
    assert took >= 0 and s.last_refilter_s == took
    assert s.filter_expr == "~d example"
    assert list(s) == ex and len(s) == 2 and s.total == 3
    assert s.index(other) is None and s.index(ex[1]) == 1
    late = http_flow("http://example.com/late")
    s.add(late)
    s.add(http_flow("http://nope.net/"))
    assert list(s) == [*ex, late] and s.total == 5
    s.set_filter(None)
    assert len(s) == 5 and s.filter_expr is None
    s.set_filter("   ")
    assert s.filter_expr is None


def test_bad_filter_keeps_the_old_one() -> None:
    s = FlowStore()
    s.add(http_flow("http://example.com/"))
    s.add(http_flow("http://other.org/"))
    s.set_filter("~d other")
    with pytest.raises(FilterError):
        s.set_filter("~d (")
    with pytest.raises(FilterError):
        s.set_filter("~nope")
    assert s.filter_expr == "~d other" and len(s) == 1


def test_update_reevaluates_filter() -> None:
    s = FlowStore()
    f = http_flow()
    s.add(f)
    s.set_filter("~s")
    assert len(s) == 0
    respond(f, 200)
    s.update(f)
    assert list(s) == [f]
    f.response = None
    s.update(f)
    assert len(s) == 0
    s.update(http_flow())  # unknown flows are ignored
    assert s.total == 1


def test_marked_only_and_marked() -> None:
    s = FlowStore()
    flows = [http_flow(f"http://example.com/{i}") for i in range(6)]
    for f in flows:
        s.add(f)
    flows[1].marked = flows[4].marked = True
    s.update(flows[1])
    s.update(flows[4])
    assert s.marked() == [flows[1], flows[4]]
    s.show_marked_only = True
    assert s.marked_only and list(s) == [flows[1], flows[4]]
    flows[2].marked = True
    s.update(flows[2])
    assert list(s) == [flows[1], flows[2], flows[4]]
    s.set_filter("~u /[12]$")
    assert list(s) == [flows[1], flows[2]]
    s.set_marked_only(False)
    assert list(s) == [flows[1], flows[2]] and not s.show_marked_only
    s.set_filter(None)
    assert len(s) == 6


def test_delete_matching() -> None:
    s = FlowStore()
    flows = [http_flow(f"http://{'a' if i % 2 else 'b'}.com/{i}") for i in range(10)]
    for f in flows:
        s.add(f)
    s.set_filter("~u /[0-4]$")
    assert s.delete_matching("~d a.com") == 5
    assert s.total == 5 and list(s) == [flows[0], flows[2], flows[4]]
    assert s.get(flows[1].id) is None
    assert s.delete_matching(lambda f: False) == 0
    with pytest.raises(FilterError):
        s.delete_matching("(")
    s.set_filter(None)
    assert s.delete_matching("~all") == 5 and s.total == 0


# -- order ---------------------------------------------------------------------------------------


def test_orders() -> None:
    s = FlowStore()
    a = http_flow("http://b.com/", "POST", 404, b"xx", duration=2.0)
    b = http_flow("http://a.com/", "GET", 200, b"xxxxx", duration=0.1)
    c = http_flow("http://c.com/", "DELETE")  # no response: status 0, size 0, duration unknown
    for f in (a, b, c):
        s.add(f)
    expected = {
        "time": [a, b, c], "method": [c, b, a], "url": [b, a, c],
        "size": [c, a, b], "duration": [b, a, c], "status": [c, b, a],
    }
    for order, want in expected.items():
        took = s.set_order(order)
        assert took >= 0 and s.order == order
        assert list(s) == want, order
        assert [s.index(f) for f in want] == [0, 1, 2]
    with pytest.raises(ValueError):
        s.set_order("colour")
    s.set_order("time")
    s.reverse = True
    assert list(s) == [c, b, a] and s[0] is c and s.index(a) == 2
    s.set_reverse(False)
    assert list(s) == [a, b, c]


def test_update_moves_flow_when_key_changes() -> None:
    s = FlowStore()
    flows = [http_flow(f"http://example.com/{i}") for i in range(4)]
    for i, f in enumerate(flows):
        respond(f, 200 + i)
        s.add(f)
    s.set_order("status")
    s.set_filter("~d example")
    flows[0].response.status_code = 500
    assert s.index(flows[0]) == 0  # stale until update()
    s.update(flows[0])
    assert list(s) == [flows[1], flows[2], flows[3], flows[0]]
    flows[0].response.status_code = 200
    s.update(flows[0])
    assert list(s) == flows  # back in its old tie position


def test_size_uses_content_length_for_streamed_bodies() -> None:
    f = http_flow(status=200, body=b"abc")
    assert sort_key("size", f) == 3
    f.response.stream = True
    f.response.raw_content = b""
    f.response.headers["content-length"] = "12345"
    assert sort_key("size", f) == 12345
    f.response.raw_content = None
    assert sort_key("size", f) == 12345
    f.response.headers["content-length"] = "junk"
    assert sort_key("size", f) == 0


def test_mixed_flow_types_sort_under_every_order() -> None:
    h = http_flow("http://example.com/", status=200, body=b"hello")
    hs = http_flow("http://ws.example.com/chat", status=101)
    ws = WebSocketFlow(hs)
    ws.timestamp_created = hs.timestamp_created + 0.5
    ws.add_message(WebSocketMessage(True, b"hi", is_text=True))
    tcp = TCPFlow(Client(address=("127.0.0.1", 2)), Server(address=("db", 5432)))
    tcp.add_message(TCPMessage(False, b"x" * 100))
    s = FlowStore()
    for f in (h, hs, ws, tcp):
        s.add(f)
    for order in ORDERS:
        s.set_order(order)
        assert sorted(s.index(f) for f in (h, hs, ws, tcp)) == [0, 1, 2, 3]
    s.set_order("size")
    assert list(s)[-1] is tcp
    s.set_filter("~websocket")
    assert set(s) == {ws}  # the handshake flow has no .websocket set here


def test_on_change() -> None:
    s = FlowStore()
    calls: list[int] = []
    unsubscribe = s.on_change(lambda: calls.append(1))
    f = http_flow()
    s.add(f)
    s.update(f)
    s.set_filter("~q")
    s.set_order("url")
    s.set_reverse(True)
    s.set_marked_only(True)
    s.remove(f)
    s.clear()
    assert len(calls) == 8
    unsubscribe()
    s.add(http_flow())
    assert len(calls) == 8


def test_random_operations_match_a_naive_model() -> None:
    rnd = random.Random(7)
    hosts = ["example.com", "other.org", "api.example.net"]
    filters = [None, "~d example", "~s", "~m POST | ~c 404", "!~d other"]
    s = FlowStore()
    live: dict[str, HTTPFlow] = {}
    seq: dict[str, int] = {}
    counter = 0
    for step in range(1500):
        op = rnd.random()
        if op < 0.45 or not live:
            f = http_flow(f"http://{rnd.choice(hosts)}/{step}", rnd.choice(["GET", "POST", "PUT"]),
                          ts=1000.0 + rnd.randrange(50))
            s.add(f)
            live[f.id], seq[f.id] = f, counter
            counter += 1
        elif op < 0.75:
            f = live[rnd.choice(list(live))]
            if f.response is None or rnd.random() < 0.3:
                respond(f, rnd.choice([200, 404, 500]), b"x" * rnd.randrange(100), rnd.random())
            f.marked = rnd.random() < 0.3
            s.update(f)
        elif op < 0.85:
            f = live.pop(rnd.choice(list(live)))
            s.remove(f)
        elif op < 0.9:
            s.set_filter(rnd.choice(filters))
        elif op < 0.95:
            s.set_order(rnd.choice(list(ORDERS)))
        elif op < 0.97:
            s.set_reverse(not s.reverse)
        else:
            s.set_marked_only(not s.marked_only)
        flt = parse(s.filter_expr) if s.filter_expr else None
        want = sorted((f for f in live.values() if (flt is None or flt(f)) and (f.marked or not s.marked_only)),
                      key=lambda f: (sort_key(s.order, f), seq[f.id]), reverse=s.reverse)
        assert list(s) == want, step
        assert s.total == len(live) and len(s) == len(want)
        if want:
            i = rnd.randrange(len(want))
            assert s[i] is want[i] and s.index(want[i]) == i


# -- scale: 100k here, 1M in bench/store_bench.py ----------------------------------------------------


class LightFlow:
    __slots__ = ("id", "marked", "timestamp_created")

    def __init__(self, i: int) -> None:
        self.id = str(i)
        self.timestamp_created = 1_700_000_000.0 + i / 1000
        self.marked = False


N = 100_000


def test_100k_flows_fast_and_small(capsys: Any) -> None:
    flows = [LightFlow(i) for i in range(N)]
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    s = FlowStore()
    for f in flows:
        s.add(f)
    per_flow = (tracemalloc.get_traced_memory()[0] - base) / N
    tracemalloc.stop()
    assert per_flow < 200, f"{per_flow:.0f} bytes per flow"

    s = FlowStore()
    t0 = time.perf_counter()
    for f in flows:
        s.add(f)
    t_add = time.perf_counter() - t0
    rnd = random.Random(1)
    sample = [flows[rnd.randrange(N)] for _ in range(2000)]
    t0 = time.perf_counter()
    for f in sample:
        assert s[s.index(f)] is f  # a linear index() would take seconds here
    t_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(0, N, 50):  # paging through everything, a screenful at a time
        _ = [s[j] for j in range(i, min(i + 50, N))]
    t_page = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n100k light flows: add {t_add * 1000:.0f} ms, 2000 index()+[] {t_index * 1000:.1f} ms, "
              f"page through all {t_page * 1000:.0f} ms, {per_flow:.0f} B/flow")
    assert t_add < 3.0
    assert t_index < 0.5
    assert t_page < 2.0


def test_filter_100k_real_flows(capsys: Any) -> None:
    hosts = ["example.com", "api.example.org", "cdn.test", "tracker.net", "www.python.org"]
    s = FlowStore()
    for i in range(N):
        f = HTTPFlow(Client(address=("127.0.0.1", 1)), Server(address=(hosts[i % 5], 80)))
        # The plain constructor: Request.make would triple the setup time of this test.
        f.request = Request("GET", "http", hosts[i % 5], 80, f"/p/{i}", headers=[("Host", hosts[i % 5])])
        f.timestamp_created = float(i)
        s.add(f)
    took = s.set_filter("~d example")
    assert len(s) == 2 * N // 5
    assert s.index(s[len(s) // 2]) == len(s) // 2
    with capsys.disabled():
        print(f"\nset_filter('~d example') over 100k HTTPFlows: {took * 1000:.0f} ms")
    assert took < 10.0


# -- the sliced refilter (big stores: the event loop keeps running) -----------------------------------


def _mixed_store(n: int) -> tuple[FlowStore, list[HTTPFlow]]:
    s = FlowStore()
    flows = [http_flow(f"http://{'example' if i % 3 == 0 else 'other'}.com/{i}", status=200 if i % 2 else None)
             for i in range(n)]
    for f in flows:
        s.add(f)
    return s, flows


async def test_sliced_filter_gives_the_same_view_and_reports_progress() -> None:
    s, flows = _mixed_store(3000)
    expected = [f for f in flows if f.request.host.startswith("example")]
    seen: list[tuple[int, int]] = []
    await s.set_filter_sliced("~d example", lambda done, total: seen.append((done, total)), slice_s=0.0)
    assert list(s) == expected and s.filter_expr == "~d example"
    assert len(seen) > 1 and seen[-1] == (3000, 3000)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    await s.set_filter_sliced(None)
    assert list(s) == flows and s.filter_expr is None


async def test_sliced_filter_keeps_the_old_view_until_done_and_lets_the_loop_run() -> None:
    s, flows = _mixed_store(3000)
    s.set_filter("~d other")
    during: list[int] = []

    def progress(done: int, total: int) -> None:
        during.append(len(s))  # what the list shows meanwhile

    await s.set_filter_sliced("~d example", progress, slice_s=0.0)
    assert set(during[:-1]) == {2000}
    assert len(s) == 1000


async def test_changes_during_a_sliced_filter_are_accounted_for() -> None:
    import asyncio

    s, flows = _mixed_store(3000)
    added = http_flow("http://example.com/late")
    now_hidden = flows[0]  # example.com: matches until its URL changes
    now_shown = flows[1]  # other.com: hidden until its URL changes
    removed = flows[3]  # example.com, matches, but goes away
    started = asyncio.Event()

    def progress(done: int, total: int) -> None:
        started.set()

    task = asyncio.create_task(s.set_filter_sliced("~d example", progress, slice_s=0.0))
    await started.wait()
    s.add(added)
    now_hidden.request.url = "http://elsewhere.org/0"
    s.update(now_hidden)
    now_shown.request.url = "http://example.net/1"
    s.update(now_shown)
    s.remove(removed)
    await task
    expected = [f for f in flows if f is not removed and "example" in f.request.pretty_host] + [added]
    assert list(s) == expected
    assert now_shown in s and s.index(now_hidden) is None and s.index(removed) is None


async def test_a_sliced_filter_overtaken_or_cancelled_leaves_the_newer_state() -> None:
    import asyncio

    s, flows = _mixed_store(3000)
    started = asyncio.Event()
    task = asyncio.create_task(s.set_filter_sliced("~d example", lambda d, t: started.set(), slice_s=0.0))
    await started.wait()
    s.set_filter("~d other")  # the user applied another filter meanwhile
    await task
    assert s.filter_expr == "~d other" and len(s) == 2000

    started.clear()
    task = asyncio.create_task(s.set_filter_sliced("~d example", lambda d, t: started.set(), slice_s=0.0))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert s.filter_expr == "~d other" and len(s) == 2000
    s.add(http_flow("http://other.com/after"))  # no refilter bookkeeping left behind
    assert len(s) == 2001 and not s._touched


async def test_sliced_filter_rejects_a_bad_expression_before_anything_changes() -> None:
    s, flows = _mixed_store(10)
    s.set_filter("~d example")
    with pytest.raises(FilterError):
        await s.set_filter_sliced("~d (")
    assert s.filter_expr == "~d example"
