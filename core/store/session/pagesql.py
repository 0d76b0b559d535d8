"""What the paging flow list (paging.py) asks a session file: the list's index in any order, a view filter as
SQL where the columns answer it, one flow by rowid, and the global search's candidates.

`Reader` opens the file read-only on connections of its own (never the recording `Session`'s), one for the
UI thread and one for the long queries that run on a worker thread, so neither waits for the other or for
the writer (WAL mode).

A view filter is translated to SQL when every operator in it reads a list column: `~c`, `~m`, `~d` (the
host column: a Host header that differs from the host is not seen), `~u` (the URL column), `~comment`,
`~marked`, `~e`, `~s`, `~q`, `~http`, `~tcp`, `~all`, with `!`, `&` and `|`. Regexes run as a Python
function (`regexp`), case-insensitively and searched, as the filter language does. Any other operator
makes the whole filter run in Python over loaded flows (`to_sql` returns None).
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import sqlite3
import threading
import time
import urllib.parse
from array import array
from operator import itemgetter
from typing import Any

from interpose.flowfilter import Filter
from interpose.model.filters import Combine, Leaf
from interpose.store.session import fenced, rows
from interpose.store.session.bodies import SessionBodies, SessionBody
from interpose.store.session.fenced import FencedRows
from interpose.store.session.pageindex import rowid_array
from interpose.store.session.writer import read_bodies, read_messages

__all__ = ["KEY_COLUMNS", "Reader", "to_sql"]

KEY_COLUMNS = {
    "time": "timestamp_created",
    "method": "coalesce(method, '')",
    "url": "coalesce(url, '')",
    "size": "coalesce(response_size, 0)",
    "duration": "coalesce(duration, 9e999)",
    "status": "coalesce(status_code, 0)",
}
"""Order name -> the SQL expression whose value equals `interpose.store.order.ORDERS[order](flow)`."""

_CHUNK = 16384
LAZY_BODY = 64 * 1024
"""Bodies larger than this are left in the session when a flow is loaded for the list (read when asked for)."""
"""Rows fetched between two chances for the UI thread to take the GIL."""
_FLAGS = {
    "all": "1",
    "marked": "marked = 1",
    "e": "error IS NOT NULL",
    "s": "status_code IS NOT NULL",
    "q": "(status_code IS NULL AND error IS NULL)",
    "http": "type = 'http'",
    "tcp": "type = 'tcp'",
}
_REGEX_COLUMNS = {"m": "method", "d": "host", "u": "url", "comment": "comment"}


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


def _regexp(pattern: str, value: Any) -> int:
    return int(isinstance(value, str) and _compiled(pattern).search(value) is not None)


def _node(node: Any, params: list[Any]) -> str | None:
    if isinstance(node, Combine):
        parts = [_node(c, params) for c in node.children]
        if any(p is None for p in parts):
            return None
        if node.op == "!":
            return f"NOT ({parts[0]})"
        return "(" + f" {'AND' if node.op == '&' else 'OR'} ".join(p for p in parts if p) + ")"
    if isinstance(node, Leaf):
        if node.arg is None:
            return _FLAGS.get(node.code)
        if node.code == "c":
            params.append(node.arg)
            return "coalesce(status_code = ?, 0)"
        column = _REGEX_COLUMNS.get(node.code)
        if column is None:
            return None
        params.append(node.arg)
        return f"regexp(?, {column})"
    return None


def to_sql(flt: Filter | None, marked_only: bool) -> tuple[str, list[Any]] | None:
    """The WHERE clause (over `flows`) that selects what a view with this filter shows, with its parameters;
    None when some operator of the filter cannot be answered from the columns."""
    clauses, params = ["deleted = 0"], list[Any]()
    if marked_only:
        clauses.append("marked = 1")
    if flt is not None:
        sql = _node(flt._root, params)
        if sql is None:
            return None
        clauses.append(sql)
    return " AND ".join(clauses), params


def _connect(path: str) -> sqlite3.Connection:
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 5000")
    db.create_function("regexp", 2, _regexp, deterministic=True)
    return db


class Reader:
    """Read-only access to one session file for the paging list."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.db = _connect(path)
        self.source: SessionBodies | None = None
        """Reads the bodies left in the session by `load` (on a connection of its own)."""
        found = self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'flows_time'").fetchone()
        self.time_index = found is not None
        """Whether the file has the time order's index (schema 3 on)."""
        """For the UI thread: one row at a time."""
        self.bg = _connect(path)
        """For whole-table queries, run on a worker thread (one at a time: `_bg_lock`)."""
        self._bg_lock = threading.Lock()

    def close(self) -> None:
        self.db.close()
        self.bg.close()
        if self.source is not None:
            self.source.close()

    # -- the index -------------------------------------------------------------------------------------
    def ordered(self, order: str, where: str = "deleted = 0", params: tuple[Any, ...] | list[Any] = (),
                skip: set[int] | frozenset[int] = frozenset()) -> array[int]:
        """Rowids of every flow `where` selects but those in `skip`, in list order (ties by rowid): the compact
        part of a paging list, 4 bytes a flow (8 past rowid 2**32). Runs on `bg` (call it off the UI thread).
        In time order with no other condition it reads the narrow `flows_time` index (schema 3), not the rows."""
        column = KEY_COLUMNS[order]
        with self._bg_lock:
            rows = rowid_array(self.top_rowid(self.bg))
            cur = self.bg.execute(f"SELECT rowid FROM flows WHERE {where} ORDER BY {column}, rowid", list(params))
            while chunk := cur.fetchmany(_CHUNK):
                rows.extend(map(itemgetter(0), chunk))
                time.sleep(0)  # hand the GIL to the UI thread between chunks (it may be waiting for it)
        if skip:
            rows = array(rows.typecode, itertools.filterfalse(skip.__contains__, rows))
        return rows

    def fenced(self, floor: int = 0, skip: set[int] | frozenset[int] = frozenset()) -> FencedRows | array[int]:
        """The flows not deleted above rowid `floor` in time order, as fences (fenced.py): the list without every
        rowid in memory. Its blocks are read again on the UI thread's connection from the `flows_time` index,
        as they were when the fences were built (`_time_block`). A file without that index (schema 1 and 2,
        opened read-only) gets the array. Runs on `bg` (call it off the UI thread)."""
        if not self.time_index:
            return self.ordered("time", f"deleted = 0 AND rowid > {floor}", (), skip)
        with self._bg_lock:
            self.bg.execute("BEGIN")  # one snapshot: the top, the last change and the rows agree
            try:
                top = self.top_rowid(self.bg)
                seq = int(self.bg.execute("SELECT coalesce(max(seq), 0) FROM flows").fetchone()[0])
                rows = FencedRows(functools.partial(self._time_block, floor, seq), top, frozenset(skip))
                above = f" AND rowid > {floor}" if floor else ""  # (the snapshot has nothing above top)
                cur = self.bg.execute(f"SELECT rowid FROM flows WHERE deleted = 0{above} "
                                      "ORDER BY timestamp_created, rowid")
                return fenced.build(cur, rows, self._time_keys)
            except sqlite3.DatabaseError:  # the fences' keys are in rows a damaged file cannot give back
                pass
            finally:
                if self.bg.in_transaction:  # read only: nothing to keep
                    with contextlib.suppress(sqlite3.Error):
                        self.bg.execute("ROLLBACK")
        return self.ordered("time", f"deleted = 0 AND rowid > {floor}", (), skip)

    def _time_keys(self, rowids: list[int]) -> dict[int, float]:
        ids = ",".join(map(str, rowids))
        return dict(self.bg.execute(f"SELECT rowid, timestamp_created FROM flows WHERE rowid IN ({ids})"))

    def _time_block(self, floor: int, seq: int, fence: tuple[float, int], nxt: tuple[float, int] | None,
                    top: int) -> list[int]:
        """The rowids from `fence` up to `nxt` (not included) in time order that were listed when the fences
        were built (rowids up to `top`, the last change `seq`): those not deleted now, and those deleted since
        (the list takes that in when it polls, as it would have without reading the block again)."""
        bounds = "rowid > ? AND rowid <= ? AND (timestamp_created, rowid) >= (?, ?)"
        params: list[Any] = [floor, top, *fence]
        if nxt is not None:
            bounds += " AND (timestamp_created, rowid) < (?, ?)"
            params += nxt
        sql = (f"SELECT timestamp_created, rowid FROM flows WHERE deleted = 0 AND {bounds} UNION ALL "
               f"SELECT timestamp_created, rowid FROM flows WHERE deleted = 1 AND seq > {seq} AND {bounds} "
               "ORDER BY 1, 2")
        return [r for _, r in self.db.execute(sql, params + params)]

    def key(self, order: str, rowid: int) -> Any:
        """The sort key in `order` of the row `rowid` (what `ordered` sorted it by)."""
        row = self.db.execute(f"SELECT {KEY_COLUMNS[order]} FROM flows WHERE rowid = ?", (rowid,)).fetchone()
        return row[0] if row is not None else None

    def keyed(self, order: str, where: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, int]]:
        """(sort key, rowid) of the few flows `where` selects, in list order (on the UI thread's connection)."""
        column = KEY_COLUMNS[order]
        sql = f"SELECT {column}, rowid FROM flows WHERE {where} ORDER BY {column}, rowid"
        return self.db.execute(sql, list(params)).fetchall()

    def changed_since(self, seq: int, order: str) -> list[tuple[int, int, str, int, Any]]:
        """(seq, rowid, id, deleted, sort key) of every row written after change `seq` (a follower's poll)."""
        return self.db.execute(f"SELECT seq, rowid, id, deleted, {KEY_COLUMNS[order]} FROM flows WHERE seq > ? "
                               "ORDER BY seq", (seq,)).fetchall()

    def top_seq(self) -> int:
        return int(self.db.execute("SELECT max(seq) FROM flows").fetchone()[0] or 0)

    def data_version(self) -> int:
        """Changes when another connection committed (the cheap test a follower polls)."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    # -- one flow --------------------------------------------------------------------------------------
    def lookup(self, flow_id: str, order: str) -> tuple[int, Any] | None:
        """(rowid, sort key in `order`) of the flow with this id, if the session holds it (not deleted)."""
        row = self.db.execute(f"SELECT rowid, {KEY_COLUMNS[order]} FROM flows WHERE id = ? AND deleted = 0",
                              (flow_id,)).fetchone()
        return (int(row[0]), row[1]) if row is not None else None

    def recorded(self, ids: list[str]) -> dict[str, tuple[int, int, str]]:
        """id -> (rowid, marked, comment) for those of `ids` the session holds."""
        out: dict[str, tuple[int, int, str]] = {}
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            q = ("SELECT id, rowid, marked, comment FROM flows WHERE deleted = 0 "
                 f"AND id IN ({','.join('?' * len(part))})")
            for flow_id, rowid, marked, comment in self.db.execute(q, part):
                out[flow_id] = (int(rowid), int(marked), comment or "")
        return out

    def load(self, rowid: int, db: sqlite3.Connection | None = None) -> Any | None:
        """The flow stored under `rowid`, with its messages and bodies: a body above `LAZY_BODY` stays in the
        session and is read when it is asked for (a `SessionBody` handle, as the spill leaves one), so the
        flows the list keeps loaded hold little more than their heads. None if it is gone or unreadable."""
        db = db or self.db
        try:
            row = db.execute("SELECT record, comment, marked FROM flows WHERE rowid = ?", (rowid,)).fetchone()
            if row is None:
                return None
            sizes = dict(db.execute("SELECT part, sum(length(data)) FROM bodies WHERE flow = ? GROUP BY part",
                                    (rowid,)))
            big = {part: size for part, size in sizes.items() if size > LAZY_BODY}
            flow = rows.restore(row[0], row[1], row[2], read_bodies(db, rowid, but=list(big)),
                                read_messages(db, rowid))
        except Exception:  # a damaged row: the list shows what it can
            return None
        for part, size in big.items():
            obj = getattr(flow, part, None)
            if obj is not None and obj.__dict__.get("raw_content", b"") is None:
                del obj.raw_content
                obj._spill = SessionBody(self._bodies(), flow.id, part, size)
        return flow

    def _bodies(self) -> SessionBodies:
        if self.source is None:
            self.source = SessionBodies(self.path)
        return self.source

    # -- search ------------------------------------------------------------------------------------------
    def top_rowid(self, db: sqlite3.Connection | None = None) -> int:
        return int((db or self.db).execute("SELECT coalesce(max(rowid), 0) FROM flows").fetchone()[0])

    def search(self, text: str, limit: int) -> set[int]:
        """Rowids of up to `limit` flows whose indexed text contains `text` (FTS5 trigram: at least three
        characters), and of every flow recorded after the index was last brought up to date (not in it yet). On
        the UI thread's connection: `bg` may be busy with a sort on the worker thread."""
        phrase = '"' + text.replace('"', '""') + '"'
        found = {r[0] for r in self.db.execute("SELECT rowid FROM search WHERE search MATCH ? LIMIT ?",
                                               (phrase, limit))}
        row = self.db.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()
        indexed = int(row[0]) if row and str(row[0]).isdigit() else 0
        found.update(r[0] for r in self.db.execute("SELECT rowid FROM flows WHERE rowid > ? AND deleted = 0",
                                                   (indexed,)))
        return found
