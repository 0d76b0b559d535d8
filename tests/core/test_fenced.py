"""The paging list in time order as fences (interpose.store.session.fenced): only a few blocks of rowids stay in
memory, blocks read again from the session give the same rows, a block another process changed before the
list polled is taken as it is now (the resident flows placed again), and a file without the time index gets
the array."""
from __future__ import annotations

import shutil
import sqlite3

import pytest

from interpose.store.session import Session, fenced
from interpose.store.session.fenced import FencedRows
from interpose.store.session.pagesql import Reader
from interpose.store.session.paging import PagedFlowStore
from interpose.store.view import FlowStore
from tests.core.test_paging import ids, make_flows, record


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(fenced, "BLOCK", 16)
    monkeypatch.setattr(fenced, "HOT", 3)


@pytest.fixture
def recorded(tmp_path):
    flows = make_flows(600, seed=5)
    path = str(tmp_path / "s.session")
    record(path, flows)
    plain = FlowStore()
    for f in flows:
        plain.add(f)
    return path, flows, plain


def test_only_a_few_blocks_stay_in_memory_and_the_rest_reads_back_the_same(small_blocks, recorded):
    path, _, plain = recorded
    paged = PagedFlowStore()
    paged.attach(path)
    rows = paged._pall.rows
    assert isinstance(rows, FencedRows)
    assert len(rows.fences) == 600 // 16 + 1 and rows.resident_blocks <= 3
    every = [paged[i].id for i in range(len(paged))]  # every block read again, a few kept at a time
    assert every == ids(plain) and rows.resident_blocks <= 3
    assert [f.id for f in reversed(list(paged))] == ids(plain)[::-1]
    reader = Reader(path)
    try:
        assert list(rows) == list(reader.ordered("time"))  # the same rowids as the whole array
    finally:
        reader.close()
    paged.close()


def test_changed_blocks_stay_and_the_list_matches_the_memory_store(small_blocks, recorded):
    path, flows, plain = recorded
    session = Session.open(path)
    paged = PagedFlowStore()
    paged.attach(session)
    for f in (flows[3], flows[300], flows[599]):  # compact flows, one from each end and the middle, leave
        paged.remove(paged.get(f.id))
        plain.remove(plain.get(f.id))
    marked = paged[250]
    marked.marked = not marked.marked
    paged.update(marked)  # resident now, placed by the fences
    plain.get(marked.id).marked = marked.marked
    assert paged.delete_matching("~c 404") == plain.delete_matching("~c 404")
    assert [paged[i].id for i in range(len(paged))] == ids(plain)
    assert paged.index(paged.get(marked.id)) == plain.index(plain.get(marked.id))
    paged.close()
    session.close()


def test_blocks_read_again_give_the_rows_of_the_last_poll_while_another_process_changes_the_file(
        small_blocks, recorded):
    path, flows, plain = recorded
    writer = Session.open(path)
    back = plain[200]
    writer.delete([back.id])  # deleted before the list opens; recorded again later
    assert writer.sync()
    plain.remove(plain.get(back.id))
    paged = PagedFlowStore()
    paged.attach(path)  # read-only, as -r SESSION
    live = make_flows(1, seed=9)[0]
    live.timestamp_created = sorted(f.timestamp_created for f in flows)[450]
    paged.add(live)  # a resident flow among the compact ones
    plain.add(live)
    before = [paged[i].id for i in range(len(paged))]
    gone = [f for f in flows if f.id in set(before[10:30])]

    def evict(*blocks: int) -> None:
        for i in (100, 300, 400, 500):
            paged[i]  # other blocks read: these leave memory
        assert all(paged._pall.rows._data[b] is None for b in blocks)

    evict(0, 1)
    writer.delete([f.id for f in gone])
    assert writer.sync()
    assert [paged[i].id for i in range(len(paged))] == before  # not polled yet: as it was
    assert paged.poll() == len(gone)
    for f in gone:
        plain.remove(plain.get(f.id))
    assert ids(paged) == ids(plain) and paged.index(live) == plain.index(plain.get(live.id))
    evict(200 // 16)
    writer.put(back)  # a row deleted before the fences were built comes back: its block reads one more row
    assert writer.sync()
    n = len(paged)
    listed = [paged[i].id for i in range(n)]  # the block grows as it is read: no row out of range meanwhile
    assert len(paged) == n + 1 and back.id in [*listed, paged[n].id]
    paged.poll()
    fresh = PagedFlowStore()  # the file opened now, with the same live flow
    fresh.attach(path)
    fresh.add(live)
    assert ids(paged) == ids(fresh) and paged.index(live) == fresh.index(live)
    writer.close()
    paged.close()
    fresh.close()


def test_a_file_without_the_time_index_lists_an_array(recorded, tmp_path):
    path, _, plain = recorded
    old = str(tmp_path / "old.session")
    shutil.copy(path, old)
    db = sqlite3.connect(old)
    db.execute("DROP INDEX flows_time")  # as sessions of schema 1 and 2, opened read-only, are
    db.commit()
    db.close()
    paged = PagedFlowStore()
    paged.attach(old)
    assert not isinstance(paged._pall.rows, FencedRows)
    assert ids(paged) == ids(plain)
    paged.close()
