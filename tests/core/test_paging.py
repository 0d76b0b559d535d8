"""interpose.store.session.paging: the flow list paging from a session gives the same flows, in the same order,
as the in-memory FlowStore holding them all, for every order, filter and "marked only"; live flows join
it, recorded ones are made compact and load again with their bodies."""
from __future__ import annotations

import asyncio
import random

import pytest

from interpose.flowfilter import parse
from interpose.store.session import Session, fenced
from interpose.store.session import paging as paging_mod
from interpose.store.session.pagesql import to_sql
from interpose.store.session.paging import PagedFlowStore
from interpose.store.view import ORDERS, FlowStore, sort_key
from tests.core.test_store import http_flow

HOSTS = ["example.com", "api.example.org", "cdn.test", "host.example.net"]

FILTERS = [
    None, "~d example", "~d host & ~c 200", "~c 404", "~m POST", "!~m GET", "~u /a/1", "~marked",
    "~d cdn | ~c 500", "~e", "~q", "~s & !~c 200", "~comment look", "~b needle", "~h x-n", "~d cdn & ~b needle",
]


def make_flows(n: int, seed: int = 1) -> list:
    rnd = random.Random(seed)
    flows = []
    for i in range(n):
        host = rnd.choice(HOSTS)
        f = http_flow(f"http://{host}/a/{i % 7}?i={i}", method=rnd.choice(["GET", "POST", "PUT"]))
        f.timestamp_created = 1_700_000_000.0 + rnd.randrange(n // 3 + 1)  # ties on purpose
        f.request.timestamp_start = f.timestamp_created
        if rnd.random() < 0.9:
            from interpose.http import Response
            body = (b"needle " if rnd.random() < 0.2 else b"") + bytes(rnd.randrange(0, 2048))
            headers = {"X-N": str(i), "content-type": "text/plain"}
            f.response = Response.make(rnd.choice([200, 200, 404, 500]), body, headers)
            f.response.timestamp_end = f.timestamp_created + rnd.random() if rnd.random() < 0.9 else None
        f.marked = rnd.random() < 0.1
        if rnd.random() < 0.05:
            f.comment = "look here"
        f.live = False
        flows.append(f)
    return flows


def record(path: str, flows: list) -> None:
    s = Session.open(path)
    for f in flows:
        s.put(f)
    assert s.sync()
    s.close()


def ids(store) -> list[str]:
    return [f.id for f in store]


def paged_and_plain(path: str, flows: list) -> tuple[PagedFlowStore, FlowStore, Session]:
    """`flows` recorded into a session at `path`, listed by a paging store from it and by a memory store."""
    record(path, flows)
    session = Session.open(path)
    paged = PagedFlowStore()
    paged.attach(session)
    plain = FlowStore()
    for f in flows:
        plain.add(f)
    return paged, plain, session


@pytest.fixture(autouse=True, params=["blocks", "tiny blocks"])
def fence_blocks(request, monkeypatch):
    """Every test twice: with the fences' real block sizes (a list this small stays in memory), and with blocks
    of 8 rows of which 2 stay in memory, so that the list in time order is read back from the session as it
    is used (fenced.py)."""
    if request.param == "tiny blocks":
        monkeypatch.setattr(fenced, "BLOCK", 8)
        monkeypatch.setattr(fenced, "HOT", 2)
    return request.param


@pytest.fixture
def opened(tmp_path):
    flows = make_flows(400)
    paged, plain, session = paged_and_plain(str(tmp_path / "s.session"), flows)
    yield paged, plain, flows, session
    paged.close()
    session.close()


def test_opens_without_flow_objects_and_lists_every_flow(opened):
    paged, plain, flows, _ = opened
    assert paged.paging and len(paged) == paged.total == 400
    assert not paged._entries  # nothing resident: compact entries only
    assert len(paged._all.rows) == 400 and not paged._all.res  # rowids only (8 bytes a flow)
    assert ids(paged) == ids(plain)
    f = paged[17]
    assert f.response is None or f.response.raw_content == plain[17].response.raw_content
    assert len(paged._cache) <= paging_mod.CACHE


@pytest.mark.parametrize("order", list(ORDERS))
def test_every_order_both_ways_matches_the_memory_store(opened, order):
    paged, plain, _, _ = opened
    paged.set_order(order)
    plain.set_order(order)
    assert ids(paged) == ids(plain)
    paged.set_reverse(True)
    plain.set_reverse(True)
    assert ids(paged) == ids(plain)
    for i in (0, 5, 399):
        assert paged.index(paged[i]) == i


@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.parametrize("expr", [None, "~d host & ~c 200", "~b needle"])
def test_order_sorted_off_the_loop_matches_the_memory_store(opened, order, expr):
    paged, plain, _, _ = opened
    paged.set_filter(expr)
    plain.set_filter(expr)
    asyncio.run(paged.set_order_sliced(order))
    plain.set_order(order)
    assert paged.order == order
    assert ids(paged) == ids(plain)


@pytest.mark.parametrize("expr", FILTERS)
def test_filters_sql_and_python_match_the_memory_store(opened, expr):
    paged, plain, _, _ = opened
    for order in ("time", "size"):
        paged.set_order(order)
        plain.set_order(order)
        paged.set_filter(expr)
        plain.set_filter(expr)
        assert ids(paged) == ids(plain), (expr, order)
        paged.set_marked_only(True)
        plain.set_marked_only(True)
        assert ids(paged) == ids(plain), (expr, order, "marked only")
        paged.set_marked_only(False)
        plain.set_marked_only(False)


def test_which_filters_are_sql():
    assert to_sql(parse("~d host & ~c 200"), False) is not None
    assert to_sql(parse("!(~m GET | ~marked) & ~comment x"), True) is not None
    assert to_sql(parse("~b needle"), False) is None
    assert to_sql(parse("~d a & ~h b"), False) is None


@pytest.mark.parametrize("expr", ["~d host & ~c 200", "~b needle", "~m POST"])
def test_sliced_filter_gives_the_same_flows(opened, expr):
    paged, plain, _, _ = opened
    paged.set_order("size")
    plain.set_order("size")
    asyncio.run(paged.set_filter_sliced(expr, slice_s=0.001))
    plain.set_filter(expr)
    assert paged.filter_expr == expr
    assert ids(paged) == ids(plain)


def test_marking_a_compact_flow_pins_it_and_keeps_its_place(opened):
    paged, plain, _, session = opened
    paged.set_order("status")
    plain.set_order("status")
    f = paged[100]
    f.marked = not f.marked
    paged.update(f)
    assert f.id in paged._entries and paged.get(f.id) is f
    assert paged.index(f) == 100
    assert any(g.id == f.id for g in paged.marked()) == f.marked
    pf = plain.get(f.id)
    pf.marked = f.marked
    plain.update(pf)
    assert [g.id for g in paged.marked()] == [g.id for g in plain.marked()]


def test_remove_and_delete_matching(opened):
    paged, plain, _, _ = opened
    gone = paged[3]
    paged.remove(gone)
    plain.remove(plain.get(gone.id))
    assert paged.get(gone.id) is None and paged.index(gone) is None
    assert ids(paged) == ids(plain)
    assert paged.delete_matching("~c 404") == plain.delete_matching("~c 404")
    assert ids(paged) == ids(plain)
    paged.set_order("url")
    plain.set_order("url")
    assert ids(paged) == ids(plain)  # rebuilt from SQL: what was removed stays out


def test_live_flows_join_and_recorded_ones_become_compact_and_reload_with_bodies(opened, monkeypatch):
    paged, plain, _, session = opened
    monkeypatch.setattr(paging_mod, "RESIDENT", 50)
    live = make_flows(200, seed=7)
    for f in live:
        f.timestamp_created += 10_000
        paged.add(f)
        plain.add(f)
    held = live[0]
    held.intercepted = True
    assert ids(paged) == ids(plain)
    assert len(paged._entries) == 200  # nothing recorded yet: every live flow stays resident
    for f in live:
        session.put(f)
    assert session.sync()
    made = paged.compact()
    assert made > 0 and held.id in paged._entries and len(paged._entries) <= 200 - made
    same_list(paged, plain, "time")
    some = next(f for f in live[1:] if f.id not in paged._entries and f.response is not None)
    again = paged.get(some.id)
    assert again is not some and again.response.raw_content == some.response.raw_content
    assert paged[paged.index(some)].id == some.id
    for order in ORDERS:
        paged.set_order(order)
        plain.set_order(order)
        same_list(paged, plain, order)


def same_list(paged, plain, order) -> None:
    """The same flows in the same order, but for ties: a compact flow's tie position is its recording
    order, a resident one's comes after them."""
    assert sorted(ids(paged)) == sorted(ids(plain))
    assert [sort_key(order, f) for f in paged] == [sort_key(order, f) for f in plain]


def test_global_search_candidates_come_from_the_index(opened):
    paged, plain, flows, session = opened
    assert session.sync(index=True)
    found = paged.search_candidates("needle")
    want = [f.id for f in plain if f.response is not None and b"needle" in (f.response.raw_content or b"")]
    assert [f.id for f in found] == want
    assert paged.search_candidates("ne") is None  # shorter than a trigram: the caller walks every flow
    live = make_flows(1, seed=21)[0]  # resident, not indexed: a candidate too, in its place
    paged.add(live)
    plain.add(live)
    gone = found[0]
    paged.remove(paged.get(gone.id))
    plain.remove(plain.get(gone.id))
    want = [f.id for f in plain if f is live or f.response is not None and b"needle" in (f.response.raw_content or b"")]
    for reverse, filtered in ((False, False), (True, False), (True, True), (False, True)):
        paged.set_reverse(reverse)
        paged.set_filter("~d example" if filtered else None)
        shown = {f.id for f in paged}
        expect = [i for i in want if i in shown]
        assert [f.id for f in paged.search_candidates("needle")] == (expect[::-1] if reverse else expect)


def test_without_a_session_it_is_a_flow_store():
    s = PagedFlowStore()
    flows = make_flows(30)
    for f in flows:
        s.add(f)
    assert not s.paging and s.total == 30
    s.set_order("size")
    s.set_filter("~c 200")
    ref = FlowStore()
    for f in flows:
        ref.add(f)
    ref.set_order("size")
    ref.set_filter("~c 200")
    assert [f.id for f in s] == [f.id for f in ref]
    assert all(a is b for a, b in zip(s, ref, strict=True))
