"""The session store (core/store/session): round trips, chunked bodies, workspace state, search, the
schema version and its migration from version 1, and the files it refuses."""
from __future__ import annotations

import json
import os
import sqlite3
import stat

import pytest

from interpose.http import Response
from interpose.store import flowcodec
from interpose.store.session import Session, SessionError, rows, schema
from tests.core.test_flowfile import every_kind, make_http_flow, make_tcp_flow, make_ws_flow, state


def reopen(path, flows, readonly=True):
    s = Session.open(str(path))
    for f in flows:
        s.put(f)
    assert s.sync()
    s.close()
    r = Session.open(str(path), readonly=readonly)
    try:
        return list(r.flows()), r
    finally:
        r.close()


@pytest.mark.parametrize("flow", every_kind(), ids=lambda f: repr(f)[:40])
def test_round_trip_is_exact(tmp_path, flow):
    (loaded,), _ = reopen(tmp_path / "s.session", [flow])
    assert type(loaded) is type(flow)
    assert loaded.id == flow.id and not loaded.live
    assert state(loaded) == state(flow)


def test_new_file_is_private_wal_and_versioned(tmp_path):
    path = tmp_path / "s.session"
    s = Session.open(str(path))
    s.put(make_http_flow())
    assert s.sync()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(path) + "-wal").st_mode) == 0o600
    s.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
    assert db.execute("SELECT max(version) FROM schema_version").fetchone()[0] == schema.VERSION


def test_large_body_is_chunked_and_read_back(tmp_path):
    flow = make_http_flow()
    body = os.urandom(rows.CHUNK * 3 + 17)
    flow.response = Response.make(200, body, headers={"content-type": "application/octet-stream"})
    (loaded,), _ = reopen(tmp_path / "s.session", [flow])
    assert loaded.response.raw_content == body
    db = sqlite3.connect(tmp_path / "s.session")
    assert db.execute("SELECT count(*) FROM bodies WHERE part = 'response'").fetchone()[0] == 4


def test_updates_keep_one_row_marks_comments_metadata_and_deletes(tmp_path):
    path = str(tmp_path / "s.session")
    a, b = make_http_flow(), make_tcp_flow()
    s = Session.open(path)
    s.put(a)
    s.put(b)
    a.marked = True
    a.comment = "look here"
    a.metadata["addon"] = {"score": 3}
    a.metadata["not json"] = object()
    s.put(a)
    s.delete(b.id)
    assert s.sync()
    s.close()
    r = Session.open(path, readonly=True)
    (loaded,) = list(r.flows())
    assert loaded.id == a.id and loaded.marked and loaded.comment == "look here"
    assert loaded.metadata["addon"] == {"score": 3} and "not json" not in loaded.metadata
    assert r.search("look here") == [a.id]
    r.close()


def test_workspace_state_round_trips(tmp_path):
    path = str(tmp_path / "s.session")
    s = Session.open(path)
    s.set_state("view_filter", "~d example.com")
    s.set_state("options", {"intercept": "~q"})
    s.close()
    r = Session.open(path)
    assert r.state() == {"view_filter": "~d example.com", "options": {"intercept": "~q"}}
    r.close()


def test_search_finds_urls_headers_text_bodies_and_messages(tmp_path):
    http, ws = make_http_flow(), make_ws_flow()
    path = str(tmp_path / "s.session")
    reopen(path, [http, ws])
    r = Session.open(path, readonly=True)
    assert http.id in r.search(http.request.host)
    hname = http.request.headers.fields[0][0].decode()
    assert http.id in r.search(hname)
    text = next(m.content for m in ws.websocket.messages if m.is_text).decode()[:8]
    assert ws.id in r.search(text)
    assert r.search("no such thing anywhere") == []
    r.close()


def test_migration_from_version_1_builds_the_search_index(tmp_path):
    path = str(tmp_path / "v1.session")
    flow = make_http_flow()
    # A version-1 file, as the first release wrote it: no search table.
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    schema.run_script(db, schema.SCHEMA_V1)
    db.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
    db.execute("INSERT INTO schema_version VALUES (1, 0)")
    insert_json_row(db, 1, flow)
    db.close()
    s = Session.open(path)
    assert [f.id for f in s.flows()] == [flow.id]
    assert s.search(flow.request.host) == [flow.id]
    s.close()
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3]
    assert time_index_used(db)


def time_index_used(db: sqlite3.Connection) -> bool:
    """Whether the list's index query (every rowid in time order) reads `flows_time`, not the wide rows."""
    plan = db.execute("EXPLAIN QUERY PLAN SELECT rowid FROM flows WHERE deleted = 0 "
                      "ORDER BY timestamp_created, rowid").fetchall()
    return any("COVERING INDEX flows_time" in str(row[-1]) for row in plan) and not any(
        "TEMP B-TREE" in str(row[-1]) for row in plan)


def test_migration_from_version_2_adds_the_time_index_and_keeps_the_flows(tmp_path):
    path = str(tmp_path / "v2.session")
    flows = [make_http_flow() for _ in range(3)]
    s = Session.open(path)
    for f in flows:
        s.put(f)
    assert s.sync()
    s.close()
    db = sqlite3.connect(path, isolation_level=None)  # back to version 2, as that release wrote it
    db.execute("DROP INDEX flows_time")
    db.execute("UPDATE schema_version SET version = 2")
    assert not time_index_used(db)
    db.close()
    s = Session.open(path)
    assert sorted(f.id for f in s.flows()) == sorted(f.id for f in flows)
    s.close()
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("SELECT version FROM schema_version ORDER BY version")][-2:] == [2, 3]
    assert time_index_used(db)


def insert_json_row(db, rowid, flow):
    """The row versions 1 and 2 wrote: the record as JSON text."""
    snap = rows.snapshot(flow)
    rec = flowcodec.dump(flow, bodies=False)
    if flow.comment:
        rec["comment"] = flow.comment
    columns = (*snap.columns[:-1], json.dumps(rec, ensure_ascii=True))
    db.execute(f"INSERT INTO flows (rowid, {', '.join(rows.COLUMNS)}, seq) VALUES "
               f"(?, {', '.join('?' * len(rows.COLUMNS))}, ?)", (rowid, *columns, rowid))
    for part, data in snap.bodies:
        db.execute("INSERT INTO bodies VALUES (?, ?, 0, ?)", (rowid, part, data))


def test_migration_from_version_2_keeps_json_records_and_writes_compact_ones(tmp_path):
    path = str(tmp_path / "v2.session")
    old = make_http_flow()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    schema.run_script(db, schema.SCHEMA_V1 + schema.SEARCH_V2)
    db.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
    db.execute("INSERT INTO schema_version VALUES (1, 0)")
    db.execute("INSERT INTO schema_version VALUES (2, 0)")
    insert_json_row(db, 1, old)
    db.close()
    new = make_http_flow()
    new.request.path = "/after/the/migration"
    (a, b), _ = reopen(path, [new])
    assert (a.id, b.id) == (old.id, new.id)
    assert state(a) == state(old) and state(b) == state(new)
    db = sqlite3.connect(path)
    kinds = [r[0] for r in db.execute("SELECT typeof(record) FROM flows ORDER BY rowid")]
    assert kinds == ["text", "blob"]
    assert [r[0] for r in db.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3]
    assert time_index_used(db)


def test_newer_schema_is_refused_untouched(tmp_path):
    path = str(tmp_path / "s.session")
    Session.open(path).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schema_version VALUES (99, 0)")
    db.commit()
    db.close()
    with pytest.raises(SessionError, match="newer interpose"):
        Session.open(path)


def test_not_sqlite_is_refused_and_never_overwritten(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"my precious notes\n")
    with pytest.raises(SessionError, match="not an SQLite database"):
        Session.open(str(path))
    assert path.read_bytes() == b"my precious notes\n"


def test_foreign_sqlite_is_refused_untouched(tmp_path):
    path = str(tmp_path / "other.db")
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE contacts (name TEXT)")
    db.commit()
    db.close()
    before = open(path, "rb").read()
    for readonly in (False, True):
        with pytest.raises(SessionError, match="another application"):
            Session.open(path, readonly=readonly)
    assert open(path, "rb").read() == before


def corrupt_copy(tmp_path, n=300):
    """A session of `n` flows, checkpointed into the main file, with some pages in the middle overwritten."""
    path = str(tmp_path / "s.session")
    flows = [make_http_flow() for _ in range(n)]
    s = Session.open(path)
    for f in flows:
        f.id = os.urandom(8).hex()
        f.response.raw_content = os.urandom(3000)
        s.put(f)
    s.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path, flows


def test_damaged_file_is_refused_for_recording_and_partly_recovered_when_read(tmp_path):
    path, flows = corrupt_copy(tmp_path)
    db = sqlite3.connect(path)  # the pages in the middle of the flows table (where they are depends on the writer)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    leaves = [r[0] for r in db.execute("SELECT pageno FROM dbstat WHERE name = 'flows' AND pagetype = 'leaf' "
                                       "ORDER BY pageno")]
    db.close()
    assert len(leaves) > 8
    with open(path, "r+b") as f:
        for page in leaves[len(leaves) // 2:len(leaves) // 2 + 3]:
            f.seek((page - 1) * page_size)
            f.write(b"\xff" * page_size)
    with pytest.raises(SessionError, match="damaged.*-r"):
        Session.open(path)
    r = Session.open(path, readonly=True)
    got = list(r.flows())
    assert 0 < len(got) < len(flows)
    assert r.recovered and "could not be read" in r.recovered
    r.close()


def test_truncated_file_gets_one_clear_error(tmp_path):
    path, _ = corrupt_copy(tmp_path)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 3)
    with pytest.raises(SessionError, match="damaged.*-r"):
        Session.open(path)
    try:
        r = Session.open(path, readonly=True)
    except SessionError as e:  # not even the schema could be read
        assert "no flow could be recovered" in str(e)
    else:
        got = list(r.flows())
        assert r.recovered and got  # what could be read was, and it says what was not
        r.close()


def test_save_copies_with_the_backup_api_and_never_overwrites(tmp_path):
    path, copy = str(tmp_path / "s.session"), str(tmp_path / "kept.session")
    s = Session.open(path)
    flow = make_http_flow()
    s.put(flow)
    s.save(copy)
    with pytest.raises(SessionError, match="never overwritten"):
        s.save(copy)
    s.close()
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600
    r = Session.open(copy, readonly=True)
    assert [f.id for f in r.flows()] == [flow.id]
    r.close()


def test_a_failed_write_stops_recording_with_a_message(tmp_path):
    path = str(tmp_path / "s.session")
    heard = []
    s = Session.open(path, on_error=heard.append)
    s.put(make_http_flow())
    assert s.sync()
    s._writer._write.execute("PRAGMA max_page_count = 1")  # the database cannot grow: what a full disk looks like to it
    big = make_http_flow()
    big.response.raw_content = os.urandom(1 << 20)
    s.put(big)
    assert not s.sync()
    assert s.failed and "stopped" in s.failed and heard == [s.failed]
    s.put(make_http_flow())  # ignored, no error
    s.close()


def test_queries_page_sort_mark_and_search_in_sql(tmp_path):
    from interpose.store.order import ORDERS
    from interpose.store.session import query

    path = str(tmp_path / "q.session")
    flows = []
    for i in range(60):
        f = make_http_flow()
        f.id = f"flow-{i:03d}"
        f.timestamp_created += i
        f.response.raw_content = b"y" * ((i * 37) % 50)
        f.request.path = f"/item/{i}" + ("/needle" if i % 7 == 0 else "")
        f.marked = i % 5 == 0
        flows.append(f)
    s = Session.open(path)
    for f in flows:
        s.put(f)
    assert s.sync()
    r = Session.open(path, readonly=True)
    try:
        for order in ORDERS:
            for reverse in (False, True):
                want = [f.id for f in sorted(flows, key=ORDERS[order])]
                if reverse:  # the list reverses the whole order, ties included
                    want = [f.id for f in sorted(flows, key=ORDERS[order], reverse=True)]
                got = query.ids(r, order, reverse, limit=1000)
                assert [ORDERS[order](next(f for f in flows if f.id == x)) for x in got] == \
                    [ORDERS[order](next(f for f in flows if f.id == x)) for x in want], order
        assert query.ids(r, offset=10, limit=5) == [f.id for f in flows[10:15]]
        assert query.count(r, marked_only=True) == 12
        assert query.ids(r, marked_only=True, limit=3) == ["flow-000", "flow-005", "flow-010"]
        needles = [f.id for f in flows if "needle" in f.request.path]
        assert query.ids(r, text="needle", limit=100) == needles and query.count(r, text="needle") == len(needles)
    finally:
        r.close()
        s.close()
