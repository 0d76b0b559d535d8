"""`Session`: one session file, written by a thread of its own and read by whoever opened it.

    s = Session.open("work.session")            # creates it (0600), or reopens and migrates it
    s.put(flow)                                 # from the proxy's loop: a snapshot is queued, no disk I/O
    s.set_state("view_filter", "~d example.com")
    for flow in s.flows(): ...                  # what it holds, oldest first
    s.close()                                   # everything queued is committed, then the file closes

A writer thread (writer.py) commits what is queued at least every `COMMIT_S` seconds (WAL mode,
`synchronous=NORMAL`: a commit survives the process being killed). A write that fails (disk full, the
file gone) stops recording: `failed` says why, `on_error` hears it once, and the proxy carries on.
Reads use a connection of their own, so they never wait for the writer.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from interpose.model.flow import Flow
from interpose.store import flowcodec
from interpose.store.session import rows, schema
from interpose.store.session.schema import SessionError
from interpose.store.session.writer import COMMIT_S, Writer, index_rows, read_bodies, read_messages

__all__ = ["COMMIT_S", "Session", "check_file", "is_session_file"]


def _reindex(db: sqlite3.Connection) -> None:
    """Fill the search index from the flows (a migration from a session without one)."""
    top = index_rows(db, 0)
    db.execute("INSERT OR REPLACE INTO meta VALUES ('indexed', ?)", (str(top),))


def _damaged(name: str, e: BaseException, readonly: bool = False) -> SessionError:
    why = " ".join(str(e).replace("*** in database main ***", "").split())
    if readonly:
        return SessionError(f"{name} is damaged ({why}); no flow could be recovered from it")
    return SessionError(f"{name} is damaged ({why}); open it with -r to read what can be recovered; "
                        "it was left untouched")


def _connect(path: str, readonly: bool) -> sqlite3.Connection:
    if readonly:
        uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 5000")
    return db


def check_file(path: str) -> None:
    """SessionError unless `path` starts like an SQLite database (anything else is never opened as one)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(schema.SQLITE_MAGIC))
    except OSError as e:
        raise SessionError(f"cannot read {path}: {e.strerror or e}") from None
    if head != schema.SQLITE_MAGIC:
        raise SessionError(f"{path} is not a session file (not an SQLite database); it was left untouched")


def is_session_file(path: str) -> bool:
    """Whether `path` is an SQLite database (a session, or a file to refuse with a clear message)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(schema.SQLITE_MAGIC)) == schema.SQLITE_MAGIC
    except OSError:
        return False


class Session:
    def __init__(self, path: str, db: sqlite3.Connection, readonly: bool,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.readonly = readonly
        self.on_error = on_error
        self.recovered: str | None = None
        """Set by `flows()` when rows could not be read: what was skipped."""
        self._read = db
        self._lock = threading.Lock()
        self._closed = False
        self._writer: Writer | None = None
        if not readonly:
            db = _connect(path, False)
            db.execute("PRAGMA synchronous = NORMAL")
            self._writer = Writer(path, db, on_error)
            self._writer.submit("meta", "pid", str(os.getpid()))
            self._writer.submit("meta", "clean", "0")  # set to 1 by close(): 0 on a file left by a crash

    @property
    def failed(self) -> str | None:
        """Why recording stopped (a write failed), or None while it works."""
        return self._writer.failed if self._writer is not None else None

    def backlog(self) -> int:
        """Flows and changes queued for the writer and not written yet."""
        w = self._recording()
        return w.backlog() if w is not None else 0

    def _recording(self) -> Writer | None:
        w = self._writer
        return w if w is not None and w.failed is None and not self._closed else None

    # -- opening -----------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str, readonly: bool = False, on_error: Callable[[str], None] | None = None) -> Session:
        """Open (or, unless `readonly`, create) a session. SessionError says why a file cannot be used."""
        path = os.path.expanduser(path)
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        if new and readonly:
            raise SessionError(f"no session at {path}" if not os.path.exists(path) else f"{path} is empty")
        if new:
            try:  # holds cookies, credentials and bodies: readable by its owner only (-wal and -shm follow it)
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
                os.chmod(path, 0o600)
            except OSError as e:
                raise SessionError(f"cannot create session {path}: {e.strerror or e}") from None
        else:
            check_file(path)
        try:
            db = _connect(path, readonly)
            if new:
                db.execute(f"PRAGMA page_size = {schema.PAGE_SIZE}")  # before WAL: it cannot change afterwards
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("BEGIN IMMEDIATE")
                schema.create(db)
                db.execute("COMMIT")
            else:
                schema.version_of(db, path)
                if not readonly:
                    bad = db.execute("PRAGMA quick_check(1)").fetchone()[0]
                    if bad != "ok":
                        raise _damaged(path, sqlite3.DatabaseError(bad))
                    db.execute("PRAGMA journal_mode = WAL")
                    schema.migrate(db, path, _reindex)
                else:
                    version = schema.version_of(db, path)
                    if version > schema.VERSION:
                        schema.migrate(db, path, _reindex)  # raises: too new
        except SessionError:
            raise
        except sqlite3.DatabaseError as e:
            raise _damaged(path, e, readonly) from None
        return cls(path, db, readonly, on_error)

    # -- writing (any thread; nothing here touches the disk) -------------------------------------------------
    def put(self, flow: Flow) -> None:
        """Record `flow` as it is now (a new flow, or a newer state of one already recorded)."""
        if (w := self._recording()) is not None:
            w.put_flow(rows.queued(flow))

    def delete(self, flow_ids: str | Iterable[str]) -> None:
        """Mark flows deleted (their bodies, messages and search entries go)."""
        if (w := self._recording()) is not None:
            w.submit("delete", [flow_ids] if isinstance(flow_ids, str) else list(flow_ids))

    def set_state(self, key: str, value: Any) -> None:
        """Store one piece of workspace state (JSON-serialisable)."""
        if (w := self._recording()) is not None:
            w.submit("state", key, json.dumps(value))

    def sync(self, timeout: float = 30.0, index: bool = True) -> bool:
        """Wait until everything queued so far is committed (with `index`, searchable too: the writer indexes
        new flows when traffic pauses). False when recording failed or timed out."""
        w = self._recording()
        return w.sync(timeout, index) if w is not None else self.failed is None

    def save(self, dest: str) -> None:
        """Copy the session, everything queued included, to `dest` (SQLite's backup API). SessionError if not."""
        dest = os.path.expanduser(dest)
        if os.path.exists(dest) and os.path.getsize(dest) > 0:
            raise SessionError(f"{dest} exists; a session file is never overwritten")
        self.sync()
        try:
            os.close(os.open(dest, os.O_WRONLY | os.O_CREAT, 0o600))
            target = sqlite3.connect(dest)
            try:
                with self._lock:
                    self._read.backup(target)
                target.execute("PRAGMA journal_mode = WAL")
            finally:
                target.close()
        except (OSError, sqlite3.Error) as e:
            raise SessionError(f"cannot save the session to {dest}: {getattr(e, 'strerror', None) or e}") from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            if self._writer.failed is None:
                self._writer.submit("meta", "clean", "1")
            self._writer.close()
        with self._lock:
            self._read.close()

    # -- reading -----------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The workspace state stored, key → value (entries that do not parse are left out)."""
        out: dict[str, Any] = {}
        with self._lock:
            try:
                found = self._read.execute("SELECT key, value FROM workspace").fetchall()
            except sqlite3.DatabaseError:
                return out
        for key, value in found:
            try:
                out[key] = json.loads(value)
            except (ValueError, RecursionError):
                continue
        return out

    def count(self) -> int:
        with self._lock:
            return int(self._read.execute("SELECT count(*) FROM flows WHERE deleted = 0").fetchone()[0])

    def top_seq(self) -> int:
        """The newest change recorded (what `changes()` takes to see only later ones)."""
        with self._lock:
            return int(self._read.execute("SELECT max(seq) FROM flows").fetchone()[0] or 0)

    def data_version(self) -> int:
        """Changes when another connection committed (the cheap test a follower polls)."""
        with self._lock:
            return int(self._read.execute("PRAGMA data_version").fetchone()[0])

    def _load(self, rowid: int, record: str, comment: str, marked: int) -> Flow:
        return rows.restore(record, comment, marked, read_bodies(self._read, rowid), read_messages(self._read, rowid))

    def flows(self) -> Iterator[Flow]:
        """Every flow not deleted, in the order they were first recorded. Rows that cannot be read (a damaged
        file) are skipped; `recovered` then says how many."""
        self.recovered = None
        skipped, last = 0, 0
        try:
            with self._lock:
                top = self._read.execute("SELECT max(rowid) FROM flows").fetchone()[0] or 0
        except sqlite3.DatabaseError as e:
            self.recovered = f"{self.path}: no flow could be read ({e})"
            return
        while last < top:
            try:
                with self._lock:
                    batch = self._read.execute(
                        "SELECT rowid, record, comment, marked, deleted FROM flows WHERE rowid > ? ORDER BY rowid "
                        "LIMIT 256", (last,)).fetchall()
            except sqlite3.DatabaseError:  # a damaged page: step over the rows one by one
                batch = None
            if batch is None:
                last += 1
                try:
                    with self._lock:
                        row = self._read.execute("SELECT rowid, record, comment, marked, deleted FROM flows "
                                                 "WHERE rowid = ?", (last,)).fetchone()
                except sqlite3.DatabaseError:
                    skipped += 1
                    continue
                batch = [row] if row is not None else []
            if not batch:
                break
            for rowid, record, comment, marked, deleted in batch:
                last = rowid
                if deleted:
                    continue
                try:
                    with self._lock:
                        flow = self._load(rowid, record, comment, marked)
                except (sqlite3.DatabaseError, flowcodec.BadRecord):
                    skipped += 1
                    continue
                yield flow
        if skipped:
            self.recovered = f"{self.path} is damaged: {skipped} flows could not be read and were skipped"

    def changes(self, since: int) -> tuple[int, list[Flow], list[str]]:
        """What changed after `since` (a `seq`; 0 for everything): the newest seq, flows new or changed,
        ids of flows deleted. A follower calls it when `data_version` moved."""
        with self._lock:
            found = self._read.execute("SELECT rowid, record, comment, marked, deleted, seq, id FROM flows "
                                       "WHERE seq > ? ORDER BY seq", (since,)).fetchall()
            flows, deleted = [], []
            top = since
            for rowid, record, comment, marked, gone, seq, flow_id in found:
                top = max(top, seq)
                if gone:
                    deleted.append(flow_id)
                    continue
                try:
                    flows.append(self._load(rowid, record, comment, marked))
                except (sqlite3.DatabaseError, flowcodec.BadRecord):
                    continue
        return top, flows, deleted

    def search(self, text: str, limit: int = 100) -> list[str]:
        """Ids of flows whose URL, headers, text bodies, messages or comment contain `text` (FTS5), oldest first."""
        phrase = '"' + text.replace('"', '""') + '"'
        with self._lock:
            found = self._read.execute("SELECT f.id FROM search JOIN flows f ON f.rowid = search.rowid "
                                       "WHERE search MATCH ? ORDER BY search.rowid LIMIT ?", (phrase, limit))
            return [r[0] for r in found]
