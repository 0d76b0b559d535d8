"""The paging list's compact representation (pageindex.Merged: rowids in an array, resident entries merged in by
position) at its edges: random changes checked against a plain sorted list; deletions and updates of compact
flows, and live flows arriving, in a sorted, filtered and reversed view, checked against the in-memory
FlowStore; following a session that another writer adds to."""
from __future__ import annotations

import asyncio
import random
from array import array

import pytest

from interpose.store.session.pageindex import Merged
from interpose.store.session.paging import PagedFlowStore
from interpose.store.view import ORDERS, sort_key
from tests.core.test_paging import fence_blocks, make_flows, paged_and_plain  # noqa: F401 (every test twice)


def test_merged_follows_a_sorted_list_through_random_changes():
    rnd = random.Random(3)
    keys = {r: rnd.randrange(50) for r in range(1, 2001)}  # ties on purpose
    looked_up = []

    def keyof(r: int) -> int:
        looked_up.append(r)
        return keys[r]

    listed = sorted(rnd.sample(sorted(keys), 1200), key=lambda r: (keys[r], r))
    m = Merged(array("q", listed), keyof)
    model = [(keys[r], r, None) for r in listed]  # (key, seq, flow or None for a compact row)
    residents: list[tuple] = []
    seq = 10_000
    for step in range(1500):
        op = rnd.random()
        if op < 0.3:  # a resident entry arrives
            e = (rnd.randrange(55), seq, object())
            seq += 1
            m.add_res(e)
            residents.append(e)
            model.append(e)
        elif op < 0.45 and residents:
            e = residents.pop(rnd.randrange(len(residents)))
            assert m.remove_res(e)
            model.remove(e)
        elif op < 0.7:  # a compact row leaves (or is not here)
            r = rnd.choice(sorted(keys))
            here = (keys[r], r, None) in model
            assert m.remove_row(keys[r], r) == here
            if here:
                model.remove((keys[r], r, None))
        elif op < 0.85:  # a compact row joins
            r = rnd.choice(sorted(keys))
            if (keys[r], r, None) not in model:
                m.add_row(keys[r], r)
                model.append((keys[r], r, None))
        elif op < 0.9:  # several join at once
            new = {r for r in rnd.sample(sorted(keys), rnd.choice([3, 40])) if (keys[r], r, None) not in model}
            m.add_rows([(keys[r], r) for r in new])
            model.extend((keys[r], r, None) for r in new)
        else:  # several leave at once
            gone = set(rnd.sample(sorted(keys), 40))
            m.drop(gone)
            model = [e for e in model if e[2] is not None or e[1] not in gone]
        model.sort(key=lambda e: e[:2])
        if step % 50 == 0 or step > 1450:
            flat = [(e[0], e[1], e[2]) if e[2] is not None else (None, e[1], e[1]) for e in model]
            assert len(m) == len(model)
            assert list(m) == flat
            assert list(reversed(m)) == flat[::-1]
            for i in rnd.sample(range(len(model)), min(30, len(model))):
                assert m[i] == flat[i]
                e = model[i]
                assert (m.find_res(e) if e[2] is not None else m.find_row(e[0], e[1])) == i
    assert len(looked_up) < 1500 * 40  # binary searches: log2(n) keys each, not scans


@pytest.fixture
def pair(tmp_path):
    paged, plain, session = paged_and_plain(str(tmp_path / "s.session"), make_flows(300, seed=5))
    yield paged, plain, session
    paged.close()
    session.close()


def ids(store) -> list[str]:
    return [f.id for f in store]


def both(paged, plain, order: str, expr: str | None, reverse: bool) -> None:
    for s in (paged, plain):
        s.set_order(order)
        s.set_filter(expr)
        s.set_reverse(reverse)


@pytest.mark.parametrize(("order", "expr", "reverse"), [("size", "~c 200", True), ("status", "~d cdn | ~m POST", False),
                                                        ("url", "~b needle", True), ("time", None, True)])
def test_compact_flows_deleted_and_changed_in_a_sorted_filtered_reversed_view(pair, order, expr, reverse):
    paged, plain, _ = pair
    both(paged, plain, order, expr, reverse)
    rnd = random.Random(order)
    for _ in range(25):
        f = paged[rnd.randrange(len(paged))]
        if rnd.random() < 0.4:
            paged.remove(f)
            plain.remove(plain.get(f.id))
            assert paged.index(f) is None and paged.get(f.id) is None
        else:  # a change that moves it (size, status, url) or hides it (the filter)
            p = plain.get(f.id)
            for g in (f, p):
                g.request.url = g.request.url + "x"
                if g.response is not None:
                    g.response.status_code = 404 if g.response.status_code == 200 else 200
                    g.response.content = (g.response.content or b"") + b"more"
            paged.update(f)
            plain.update(p)
            assert paged.index(f) == plain.index(p)
        assert ids(paged) == ids(plain)
        assert [paged.index(paged[i]) for i in range(0, len(paged), 17)] == list(range(0, len(paged), 17))
    assert paged.total == plain.total


@pytest.mark.parametrize(("order", "expr", "reverse"), [("size", "~c 200", True), ("duration", "~m GET", False),
                                                        ("time", "~b needle", True), ("method", None, False)])
def test_live_flows_arrive_in_a_sorted_filtered_reversed_view(pair, order, expr, reverse):
    paged, plain, _ = pair
    both(paged, plain, order, expr, reverse)
    for f in make_flows(120, seed=9):  # keys among the recorded ones: they land in the middle
        paged.add(f)
        plain.add(f)
        if f.response is not None and f.id[-1] in "0123":
            f.response.status_code = 500
            paged.update(f)
            plain.update(f)
    assert sorted(ids(paged)) == sorted(ids(plain))
    assert [sort_key(order, f) for f in paged] == [sort_key(order, f) for f in plain]
    for i in range(0, len(paged), 7):
        assert paged.index(paged[i]) == i
    assert paged.total == plain.total == 420


def test_delete_matching_and_clear_keep_them_out_of_every_later_query(pair):
    paged, plain, _ = pair
    extra = make_flows(1, seed=11)[0]  # a resident flow among the compact ones
    extra.request.method = "PUT"
    paged.add(extra)
    plain.add(extra)
    paged.set_order("size")
    plain.set_order("size")
    assert paged.delete_matching("~c 404 | ~m PUT") == plain.delete_matching("~c 404 | ~m PUT")
    assert ids(paged) == ids(plain)
    asyncio.run(paged.set_order_sliced("url"))
    plain.set_order("url")
    assert ids(paged) == ids(plain)
    paged.clear()
    assert len(paged) == paged.total == 0
    for order in ORDERS:
        paged.set_order(order)
        paged.set_filter("~q | ~s")
        assert list(paged) == []


def test_poll_takes_in_rows_another_writer_records(pair, tmp_path):
    paged, plain, session = pair
    paged.set_order("size")
    paged.set_filter("~c 200")
    assert paged.poll() == 0  # nothing new
    new = make_flows(40, seed=13)
    for f in new:
        session.put(f)
    assert session.sync()
    assert paged.poll() == 40
    assert not paged._entries  # compact rows, no Flow objects
    for f in new:
        plain.add(f)
    plain.set_order("size")
    plain.set_filter("~c 200")
    assert ids(paged) == ids(plain)
    gone, changed = new[0], new[1]
    session.delete([gone.id])
    changed.marked = not changed.marked
    session.put(changed)
    assert session.sync()
    assert paged.poll() >= 2
    plain.remove(plain.get(gone.id))
    assert paged.get(gone.id) is None and ids(paged) == ids(plain)
    assert paged.get(changed.id).marked == changed.marked


@pytest.mark.parametrize("expr", [None, "~c 200", "~b needle"])
def test_changes_while_a_sort_or_filter_runs_off_the_loop_are_in_the_result(pair, expr):
    paged, plain, session = pair
    new = make_flows(30, seed=17)

    async def run() -> None:
        paged.set_filter(expr)
        task = asyncio.ensure_future(paged.set_order_sliced("size") if expr is None else
                                     paged.set_filter_sliced(expr, slice_s=0.0001))
        await asyncio.sleep(0)  # the rebuild is under way: change the list meanwhile
        f = paged[len(paged) // 2]
        f.marked = not f.marked
        paged.update(f)
        p = plain.get(f.id)
        p.marked = f.marked
        plain.update(p)
        gone = paged[1]
        paged.remove(gone)
        plain.remove(plain.get(gone.id))
        for g in new:
            session.put(g)
            plain.add(g)
        assert session.sync()
        paged.poll()
        await task

    asyncio.run(run())
    plain.set_filter(expr)
    plain.set_order(paged.order)
    assert sorted(ids(paged)) == sorted(ids(plain))
    assert [sort_key(paged.order, f) for f in paged] == [sort_key(paged.order, f) for f in plain]


def test_a_flow_changed_while_resident_is_made_compact_again_at_its_new_place(pair, monkeypatch):
    from interpose.store.session import paging as paging_mod

    paged, plain, session = pair
    monkeypatch.setattr(paging_mod, "RESIDENT", 0)
    paged.set_order("url")
    plain.set_order("url")
    f = paged[5]
    assert paged.index(f) == 5  # its key (the old URL) is in the key cache now
    p = plain.get(f.id)
    for g in (f, p):
        g.request.url = "http://zzz.example/last"
    paged.update(f)
    plain.update(p)
    session.put(f)
    assert session.sync()
    assert paged.compact() == 1 and not paged._entries
    assert ids(paged) == ids(plain)
    assert [paged.index(paged[i]) for i in range(0, len(paged), 13)] == list(range(0, len(paged), 13))


def test_a_file_that_cannot_be_read_leaves_the_store_as_it_was(tmp_path):
    import sqlite3

    path = tmp_path / "bad.session"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8192)
    s = PagedFlowStore()
    f = make_flows(1)[0]
    s.add(f)
    with pytest.raises(sqlite3.Error):
        s.attach(str(path))
    assert not s.paging and list(s) == [f] and s.index(f) == 0


def test_rows_a_damaged_file_cannot_give_back_are_listed_as_flows_that_say_so(tmp_path):
    import sqlite3

    from interpose.tui.format import flow_row
    from tests.core.test_session_store import corrupt_copy

    path, flows = corrupt_copy(tmp_path)
    db = sqlite3.connect(path)  # overwrite leaves of the flows table, not the index the list is read from
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    leaves = [r[0] for r in db.execute("SELECT pageno FROM dbstat WHERE name = 'flows' AND pagetype = 'leaf' "
                                       "ORDER BY pageno")]
    db.close()
    with open(path, "r+b") as f:
        for page in leaves[len(leaves) // 2:len(leaves) // 2 + 3]:
            f.seek((page - 1) * page_size)
            f.write(b"\xff" * page_size)
    s = PagedFlowStore()
    s.attach(path)
    assert len(s) == len(flows)
    shown = [s[i] for i in range(len(s))]
    bad = [f for f in shown if f.error is not None and "could not be read" in f.error.msg]
    assert 0 < len(bad) < len(flows)
    assert all(flow_row(f, 120) for f in shown)  # every row can be drawn
    assert len(list(s)) == len(flows) - len(bad)  # iterating skips them


def test_rowids_take_four_bytes_and_widen_for_a_rowid_past_two_to_the_32():
    from interpose.store.session.pageindex import WIDE, rowid_array

    assert rowid_array(10_000_000).itemsize == 4
    assert rowid_array(WIDE).itemsize == 8
    keys = {1: 5, 2: 5, 3: 7, WIDE + 1: 6, WIDE + 2: 9}
    m = Merged(rowid_array(3, [1, 2, 3]), keys.__getitem__)
    m.add_row(6, WIDE + 1)  # one row past the 4-byte range: the array widens, nothing is lost
    assert m.rows.itemsize == 8
    m.add_rows([(9, WIDE + 2)])
    assert [e[1] for e in m] == [1, 2, WIDE + 1, 3, WIDE + 2]
    m.drop({2})
    assert list(m.rows) == [1, WIDE + 1, 3, WIDE + 2] and m.rows.typecode == "q"
    narrow = Merged(rowid_array(3, [1, 3]), keys.__getitem__)
    narrow.add_rows([(5, 2)])
    assert list(narrow.rows) == [1, 2, 3] and narrow.rows.itemsize == 4
    many = {r: r % 7 for r in range(1, 101)} | {WIDE + r: r % 7 for r in range(20)}
    listed = sorted(range(1, 101), key=lambda r: (many[r], r))
    m = Merged(rowid_array(100, listed), many.__getitem__)
    m.add_rows([(many[WIDE + r], WIDE + r) for r in range(20)])  # 20 rows spread through the list: one pass
    assert m.rows.itemsize == 8
    assert list(m.rows) == sorted(many, key=lambda r: (many[r], r))


def test_a_loaded_flow_leaves_its_big_bodies_in_the_session_until_they_are_read(tmp_path):
    import copy

    from interpose.http import Response
    from interpose.store.session.bodies import SessionBody
    from interpose.store.session.pagesql import LAZY_BODY
    from interpose.store.spill import is_spilled
    from tests.core.test_paging import record

    flows = make_flows(3, seed=4)
    big = bytes(range(256)) * (LAZY_BODY // 256 + 40)
    flows[1].response = Response.make(200, big, {"content-type": "application/octet-stream"})
    flows[1].request.raw_content = b"small"
    path = str(tmp_path / "big.session")
    record(path, flows)
    paged = PagedFlowStore()
    paged.attach(path)
    try:
        f = paged.get(flows[1].id)
        assert isinstance(f.response._spill, SessionBody) and is_spilled(f.response)  # not read yet
        assert f.request.raw_content == b"small" and not is_spilled(f.request)
        assert f.response.raw_content == big and f.response.content == big  # read when asked for
        dup = copy.copy(f)
        dup.response = copy.copy(f.response)
        assert dup.response.raw_content == big
    finally:
        paged.close()
