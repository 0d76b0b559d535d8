"""The session file's schema, how a file is recognised as a session, and the migrations between versions.

A session is an SQLite database whose `PRAGMA application_id` is `APPLICATION_ID` and whose
`schema_version` table holds the version it was written with. Version 1 had no full-text index;
version 2 added `search` (FTS5) and filled it from the flows already there; version 3 added `flows_time`, a
narrow index in the list's default order (the flow list reads every rowid in that order when it opens a
session: from this index instead of the wide rows), and writes the `record` of plain HTTP flows as a
compact BLOB (record.py) instead of JSON text (rows of version 2 stay as they are: both are read), so an
older interpose, which reads only JSON, refuses it. `migrate()` brings any older
file up to `VERSION`, one step at a time, each step in one transaction; a file from a newer interpose is
refused (it is never changed by an older one).
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from interpose.errors import FlowFileError

APPLICATION_ID = 0x49505345
"""`PRAGMA application_id` of every session file ("IPSE")."""
VERSION = 3
"""The schema this build writes and the newest it reads."""
SQLITE_MAGIC = b"SQLite format 3\x00"
PAGE_SIZE = 16384
"""Page size of new sessions. With SQLite's default (4096) a body of 1 KiB no longer fits in a page of the
`bodies` tree (WITHOUT ROWID: about 1000 bytes at most stay in the page) and took an overflow page of its
own: 5.4 KB on disk per 1 KiB flow, and most of what recording cost the writer. At 16384, 1.9 KB, and the
writer's CPU per such flow dropped from ~28 to ~11 µs (docs/benchmarks.md). Older files keep theirs."""


class SessionError(FlowFileError):
    """A file that cannot be used as a session: the message says which file and why, in one sentence."""


# Version 1: flows, their bodies (chunked), their messages, and the workspace.
SCHEMA_V1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL, applied REAL NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE flows (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    seq INTEGER NOT NULL,
    timestamp_created REAL NOT NULL,
    method TEXT, host TEXT, port INTEGER, url TEXT,
    status_code INTEGER,
    request_size INTEGER, response_size INTEGER,
    content_type TEXT,
    duration REAL,
    error TEXT,
    marked INTEGER NOT NULL DEFAULT 0,
    comment TEXT NOT NULL DEFAULT '',
    deleted INTEGER NOT NULL DEFAULT 0,
    record TEXT NOT NULL
);
CREATE INDEX flows_seq ON flows (seq);
CREATE TABLE bodies (
    flow INTEGER NOT NULL REFERENCES flows (rowid) ON DELETE CASCADE,
    part TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (flow, part, chunk)
) WITHOUT ROWID;
CREATE TABLE messages (
    flow INTEGER NOT NULL REFERENCES flows (rowid) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    from_client INTEGER NOT NULL,
    kind TEXT,
    timestamp REAL NOT NULL,
    dropped INTEGER NOT NULL DEFAULT 0,
    injected INTEGER NOT NULL DEFAULT 0,
    content BLOB NOT NULL,
    PRIMARY KEY (flow, n)
) WITHOUT ROWID;
CREATE TABLE workspace (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Version 2: global search over URLs, headers, decoded text bodies, messages and comments.
SEARCH_V2 = """
CREATE VIRTUAL TABLE search USING fts5 (url, headers, body, messages, comment, tokenize = 'trigram');
"""


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Each statement of `script` in the caller's transaction (`executescript` would commit first)."""
    for stmt in script.split(";"):
        if stmt.strip():
            db.execute(stmt)


# Version 3: the list's default order (time) without reading the wide rows; the rowid is the tie-break.
TIME_INDEX_V3 = """
CREATE INDEX flows_time ON flows (deleted, timestamp_created);
"""


def _to_v2(db: sqlite3.Connection, reindex: Callable[[sqlite3.Connection], None]) -> None:
    run_script(db, SEARCH_V2)
    reindex(db)


def _to_v3(db: sqlite3.Connection, reindex: Callable[[sqlite3.Connection], None]) -> None:
    """The time index; the JSON records of version 2 stay readable (new rows may be compact)."""
    run_script(db, TIME_INDEX_V3)


def create(db: sqlite3.Connection) -> None:
    """Lay out a new, empty session in `db` (inside the caller's transaction)."""
    run_script(db, SCHEMA_V1 + SEARCH_V2 + TIME_INDEX_V3)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("INSERT INTO schema_version VALUES (?, ?)", (VERSION, time.time()))
    db.execute("INSERT INTO meta VALUES ('created', ?)", (repr(time.time()),))


def version_of(db: sqlite3.Connection, name: str) -> int:
    """The schema version of an open database, or SessionError when it is not an interpose session."""
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if app_id != APPLICATION_ID or "schema_version" not in tables:
        what = f"application id {app_id:#x}" if app_id else f"tables {', '.join(sorted(tables)[:5]) or 'none'}"
        raise SessionError(f"{name} is an SQLite database of another application ({what}), not an interpose "
                           "session; it was left untouched")
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    if row is None or not isinstance(row[0], int):
        raise SessionError(f"{name}: the session has no schema version; it was left untouched")
    return int(row[0])


def migrate(db: sqlite3.Connection, name: str, reindex: Callable[[sqlite3.Connection], None]) -> int:
    """Bring a session up to `VERSION`; returns the version it had. SessionError for a newer one."""
    old = version_of(db, name)
    if old > VERSION:
        raise SessionError(f"{name} was written by a newer interpose (session schema {old}; this one reads up to "
                           f"{VERSION}); upgrade interpose to open it")
    steps = {1: _to_v2, 2: _to_v3}
    for v in range(old, VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            steps[v](db, reindex)
            db.execute("INSERT INTO schema_version VALUES (?, ?)", (v + 1, time.time()))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return old
