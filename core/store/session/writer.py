"""The writer thread of a session: takes snapshots off a queue and commits them in batches.

It commits at least every `COMMIT_S` seconds, or sooner when a batch holds `BATCH_BYTES` of bodies, so a
process that is killed loses at most that much of what it finished. A write that fails (disk full, the
file gone) stops recording: `failed` says why, `on_error` hears it once, the proxy carries on.
"""
from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from interpose.store import flowcodec
from interpose.store.session import rows

COMMIT_S = 0.25
"""Longest a finished flow waits in memory before it is committed."""
BATCH_BYTES = 64 << 20
"""A batch is committed early once it holds this many bytes of bodies and messages."""

_INSERT = (f"INSERT INTO flows (rowid, {', '.join(rows.COLUMNS)}, seq) "
           f"VALUES (?, {', '.join('?' * len(rows.COLUMNS))}, ?)")
_INSERT_HEAD = f"INSERT INTO flows (rowid, {', '.join(rows.COLUMNS)}, seq) VALUES "
_GROUPS = (64, 8, 1)
_STATEMENTS: dict[tuple[str, int, int], str] = {}


def insert_rows(db: sqlite3.Connection, head: str, width: int, flat: list[Any]) -> None:
    """INSERT rows of `width` columns, given one after the other in `flat`, with one statement per 64 rows
    (`head` + VALUES lists). `executemany` steps once per row, and the sqlite3 module gives up the GIL and
    takes it back for every step: a handoff with the proxy's loop each time, which cost the loop more than
    the rows cost SQLite."""
    i, n = 0, len(flat) // width
    for g in _GROUPS:
        if n - i < g:
            continue
        sql = _STATEMENTS.get((head, width, g))
        if sql is None:
            one = "(" + ", ".join("?" * width) + ")"
            sql = _STATEMENTS[(head, width, g)] = head + ", ".join([one] * g)
        while n - i >= g:
            db.execute(sql, flat[i * width:(i + g) * width])
            i += g


_UPDATE = f"UPDATE flows SET {', '.join(f'{c} = ?' for c in rows.COLUMNS[1:])}, seq = ?, deleted = 0 WHERE id = ?"


Flowed = tuple[Any, ...]
"""A flow waiting to be written: ("flow", messages, *columns, part, body, ...) (`rows.queued`)."""
_NCOL = len(rows.COLUMNS)
FLUSH_FLOWS = 256
"""Flows written into the open transaction at once (`insert_rows`: a statement per 64 rows and table)."""
SLICE_S = 0.05
"""Within a batch the writer wakes this often (or at once for a sync, a delete, ...), not for every flow:
a wake-up per flow cost more than writing it (a GIL handoff with the proxy's loop each time)."""
WAL_PAGES = 4096
"""The WAL is checkpointed into the database when it passes this many pages (64 MiB with the 16 KiB pages
of new sessions), or whenever the writer is idle (`IDLE_S`): under load, not every 1000 pages (SQLite's
default, 4 MiB with 4 KiB pages), which cost the writer about a fifth of its CPU."""
IDLE_S = 0.5
"""The search index is brought up to date once the queue has been empty this long (not while traffic
floods in: indexing is half of what recording a flow costs)."""
INDEX_BATCH = 200


def read_bodies(db: sqlite3.Connection, rowid: int, but: Collection[str] = ()) -> dict[str, bytes]:
    """The bodies of the flow `rowid`, by part ("request", "response"), but the parts in `but`."""
    parts: dict[str, list[bytes]] = {}
    skip = f" AND part NOT IN ({', '.join('?' * len(but))})" if but else ""
    for part, data in db.execute(f"SELECT part, data FROM bodies WHERE flow = ?{skip} ORDER BY part, chunk",
                                 (rowid, *but)):
        parts.setdefault(part, []).append(data)
    return {k: b"".join(v) for k, v in parts.items()}


def read_messages(db: sqlite3.Connection, rowid: int) -> list[tuple[int, str | None, float, int, int, bytes]]:
    return db.execute("SELECT from_client, kind, timestamp, dropped, injected, content FROM messages "
                      "WHERE flow = ? ORDER BY n", (rowid,)).fetchall()


def index_rows(db: sqlite3.Connection, after: int, limit: int | None = None) -> int:
    """Index the flows with a rowid above `after` (at most `limit`); returns the last rowid indexed."""
    q = "SELECT rowid, record, comment FROM flows WHERE rowid > ? AND deleted = 0 ORDER BY rowid"
    found = db.execute(q + (f" LIMIT {int(limit)}" if limit else ""), (after,)).fetchall()
    for rowid, record, comment in found:
        try:
            flow = rows.restore(record, comment, 0, read_bodies(db, rowid), read_messages(db, rowid))
        except flowcodec.BadRecord:
            continue
        index(db, rowid, rows.snapshot(flow, search=True))
    if limit is None or len(found) < limit:
        return int(db.execute("SELECT coalesce(max(rowid), 0) FROM flows").fetchone()[0])
    return int(found[-1][0]) if found else after


def index(db: sqlite3.Connection, rowid: int, snap: rows.Snapshot) -> None:
    db.execute("DELETE FROM search WHERE rowid = ?", (rowid,))
    db.execute("INSERT INTO search (rowid, url, headers, body, messages, comment) VALUES (?, ?, ?, ?, ?, ?)",
               (rowid, *rows.search_text(snap)))



class Writer:
    def __init__(self, path: str, db: sqlite3.Connection, on_error: Callable[[str], None] | None) -> None:
        self.path = path
        self.on_error = on_error
        self.failed: str | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.put_flow = self._queue.put
        self.backlog = self._queue.qsize
        """Queue a flow (`rows.queued`; from the proxy's loop): no wake-up, the writer takes it in its next slice."""
        self._wake = threading.Event()
        self._checkpoint = False
        """Commits since the last checkpoint: one is made when the writer is idle."""
        db.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
        self._write = db
        self._seq = db.execute("SELECT max(seq) FROM flows").fetchone()[0] or 0
        row = db.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()
        self._indexed = int(row[0]) if row and str(row[0]).isdigit() else 0
        """Flows up to this rowid are in the search index; later ones are indexed when the queue is idle."""
        self._top = db.execute("SELECT coalesce(max(rowid), 0) FROM flows").fetchone()[0]
        self._thread = threading.Thread(target=self._writer, name="interpose-session", daemon=True)
        self._thread.start()

    def submit(self, *item: Any) -> None:
        self._queue.put(item)
        self._wake.set()

    def sync(self, timeout: float, index: bool = False) -> bool:
        """Wait until everything queued is committed (and, with `index`, in the search index too)."""
        done = threading.Event()
        self.submit("sync", done, index)
        return done.wait(timeout) and self.failed is None

    def close(self, timeout: float = 60.0) -> None:
        self.submit("close")
        self._thread.join(timeout)

    # -- the thread ------------------------------------------------------------------------------
    def _writer(self) -> None:
        db = self._write
        try:
            while True:
                if (self._indexed < self._top or self._checkpoint) and self.failed is None:
                    try:
                        item = self._queue.get(timeout=IDLE_S)
                    except queue.Empty:
                        self._catch_up(INDEX_BATCH)
                        self._checkpoint_now()
                        continue
                else:
                    item = self._queue.get()
                if item[0] == "close":
                    self._catch_up(None)
                    break
                if self.failed is not None:
                    self._release(item)
                    continue
                deadline = time.monotonic() + COMMIT_S
                size = 0
                waiting: list[threading.Event] = []
                closing = False
                batch: list[Flowed] = []
                try:
                    db.execute("BEGIN IMMEDIATE")
                    while True:
                        if item[0] == "close":
                            closing = True
                            break
                        if item[0] == "sync":
                            waiting.append(item[1])
                            self._flush(db, batch)
                            if item[2]:
                                self._indexed = index_rows(db, self._indexed)
                                db.execute("INSERT OR REPLACE INTO meta VALUES ('indexed', ?)", (str(self._indexed),))
                            break
                        if item[0] == "flow":
                            batch.append(item)
                            for i in range(_NCOL + 3, len(item), 2):
                                size += len(item[i])
                        else:
                            self._flush(db, batch)
                            self._apply(db, item)
                        left = deadline - time.monotonic()
                        if left <= 0 or size >= BATCH_BYTES:
                            break
                        nxt = self._next(db, batch, deadline)
                        if nxt is None:
                            break
                        item = nxt
                    self._flush(db, batch)
                    db.execute("COMMIT")
                    self._checkpoint = True
                except Exception as e:  # disk full, file removed, ...: recording stops, the proxy does not
                    self._fail(db, e)
                for ev in waiting:
                    ev.set()
                if closing:
                    break
        finally:
            self._drain()
            db.close()

    def _next(self, db: sqlite3.Connection, batch: list[Flowed], deadline: float) -> tuple[Any, ...] | None:
        """The next item of a batch, or None once the batch is due. When the queue is empty, the flows so far
        go into SQLite (in the open transaction) and the writer sleeps for a slice, or until something other
        than a flow is queued."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                item = None
            if item is not None:
                if len(batch) >= FLUSH_FLOWS:
                    self._flush(db, batch)
                return item
            self._flush(db, batch)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._wake.wait(min(left, SLICE_S))
            self._wake.clear()

    def _checkpoint_now(self) -> None:
        if self._checkpoint and self.failed is None:
            self._checkpoint = False
            try:
                self._write.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass  # readers busy, ...: the next idle moment, or SQLite's own at WAL_PAGES

    def _catch_up(self, limit: int | None) -> None:
        if self.failed is not None or self._indexed >= self._top:
            return
        db = self._write
        try:
            db.execute("BEGIN IMMEDIATE")
            self._indexed = index_rows(db, self._indexed, limit)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('indexed', ?)", (str(self._indexed),))
            db.execute("COMMIT")
        except Exception as e:
            self._fail(db, e)

    def _release(self, item: tuple[Any, ...]) -> None:
        if item[0] == "sync":
            item[1].set()

    def _drain(self) -> None:
        while True:
            try:
                self._release(self._queue.get_nowait())
            except queue.Empty:
                return

    def _fail(self, db: sqlite3.Connection, e: BaseException) -> None:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        self.failed = f"recording into {self.path} stopped: {e}; the proxy carries on without recording"
        if self.on_error is not None:
            self.on_error(self.failed)

    def _flush(self, db: sqlite3.Connection, batch: list[Flowed]) -> None:
        """Write the flows of `batch` (then empty it): new ones with a few multi-row INSERTs per table, flows
        recorded before one by one (their old bodies and messages replaced)."""
        if not batch:
            return
        last: dict[str, Flowed] = {}
        for item in batch:  # a flow queued twice in one batch: its newest state
            last.pop(item[2], None)
            last[item[2]] = item
        batch.clear()
        ids = list(last)
        known: dict[str, int] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            known.update(db.execute(f"SELECT id, rowid FROM flows WHERE id IN ({', '.join('?' * len(chunk))})",
                                    chunk).fetchall())
        top = max(self._top, db.execute("SELECT coalesce(max(rowid), 0) FROM flows").fetchone()[0])
        new_rows: list[Any] = []  # the rows' values one after the other (insert_rows)
        body_rows: list[Any] = []
        message_rows: list[Any] = []
        changed: list[int] = []
        for item in last.values():
            flow_id, columns, messages = item[2], item[2:_NCOL + 2], item[1]
            self._seq += 1
            rowid = known.get(flow_id)
            if rowid is None:
                top += 1
                rowid = top
                new_rows.append(rowid)
                new_rows += columns
                new_rows.append(self._seq)
            else:
                db.execute(_UPDATE, (*columns[1:], self._seq, flow_id))
                db.execute("DELETE FROM bodies WHERE flow = ?", (rowid,))
                db.execute("DELETE FROM messages WHERE flow = ?", (rowid,))
                if rowid <= self._indexed:
                    changed.append(rowid)
            for i in range(_NCOL + 2, len(item), 2):
                part, data = item[i], item[i + 1]
                if len(data) <= rows.CHUNK:
                    body_rows += (rowid, part, 0, data)
                else:
                    for n, c in enumerate(rows.chunks(data)):
                        body_rows += (rowid, part, n, c)
            for m in messages:
                message_rows.append(rowid)
                message_rows += m
        insert_rows(db, _INSERT_HEAD, len(rows.COLUMNS) + 2, new_rows)
        insert_rows(db, "INSERT INTO bodies VALUES ", 4, body_rows)
        insert_rows(db, "INSERT INTO messages VALUES ", 8, message_rows)
        for rowid in changed:
            index_rows(db, rowid - 1, 1)  # a flow already indexed that changed: at once
        self._top = top

    def _apply(self, db: sqlite3.Connection, item: tuple[Any, ...]) -> None:
        kind = item[0]
        self._seq += 1
        if kind == "delete":  # item[1]: the ids of the flows deleted
            ids = list(item[1])
            gone: list[int] = []
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                gone += [r[0] for r in db.execute(
                    f"SELECT rowid FROM flows WHERE deleted = 0 AND id IN ({', '.join('?' * len(part))})", part)]
            seqs = range(self._seq, self._seq + len(gone))
            self._seq += max(0, len(gone) - 1)
            db.executemany("UPDATE flows SET deleted = 1, seq = ? WHERE rowid = ?", zip(seqs, gone, strict=True))
            for table, column in (("bodies", "flow"), ("messages", "flow"), ("search", "rowid")):
                db.executemany(f"DELETE FROM {table} WHERE {column} = ?", ((r,) for r in gone))
            return
        if kind == "state":
            db.execute("INSERT OR REPLACE INTO workspace VALUES (?, ?)", (item[1], item[2]))
        elif kind == "meta":
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (item[1], item[2]))

