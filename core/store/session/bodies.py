"""Spilled bodies read back from the session instead of a spill file (the TUI recording into a session).

When the TUI records into a session, every finished flow's bodies and messages are in the session already:
writing them again into a spill file (core/store/spill.py) would store each twice. So `BodySpill`, once
attached to the recording session (`BodySpill.attach`), hands each body it would spill to `SessionSpill`:

- a body is dropped from memory only once the session holds **exactly** these bytes for that flow (read back
  and compared: the flow may not be committed yet, or it was changed since it was recorded); it then reads
  back through a `SessionBody` handle (flow id, part or message number) on a read-only connection of its own;
- a body the session does not hold yet is tried again a little later (`RETRY_S`, at most `TRIES` times: a
  flow is committed within a second of its end), then, like every body when recording failed (disk full),
  spilled to the file as without a session;
- copies of a flow (`D`, the backup an edit keeps for `V`) get the bytes themselves (`HeldBody`), so
  deleting the original, whose bodies leave the session, does not take theirs.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import urllib.parse
import weakref
from typing import Any

RETRY_S = 0.3
TRIES = 20
Key = str | int
"""Where a body is in its flow's rows: "request"/"response", or a message's number."""


class SessionBodies:
    """Reads bodies and messages of a session file on a read-only connection of its own (any thread)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def read(self, flow_id: str, key: Key) -> bytes | None:
        """The bytes the session holds for this body now (None: it holds none)."""
        with self._lock:
            db = self._connection()
            row = db.execute("SELECT rowid FROM flows WHERE id = ? AND deleted = 0", (flow_id,)).fetchone()
            if row is None:
                return None
            if isinstance(key, str):
                parts = db.execute("SELECT data FROM bodies WHERE flow = ? AND part = ? ORDER BY chunk",
                                   (row[0], key)).fetchall()
                return b"".join(p[0] for p in parts) if parts else None
            msg = db.execute("SELECT content FROM messages WHERE flow = ? AND n = ?", (row[0], key)).fetchone()
            return bytes(msg[0]) if msg is not None else None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            uri = "file:" + urllib.parse.quote(os.path.abspath(self.path)) + "?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 5000")
        return self._db

    def holds(self, flow_id: str, key: Key, value: bytes) -> bool:
        """Whether the session holds exactly `value` for this body: compared a chunk at a time, so a big
        body is never read back whole for it."""
        if not isinstance(key, str):
            return self.read(flow_id, key) == value
        with self._lock:
            db = self._connection()
            row = db.execute("SELECT rowid FROM flows WHERE id = ? AND deleted = 0", (flow_id,)).fetchone()
            if row is None:
                return False
            view, at = memoryview(value), 0
            for (part,) in db.execute("SELECT data FROM bodies WHERE flow = ? AND part = ? ORDER BY chunk",
                                      (row[0], key)):
                if view[at:at + len(part)] != part:
                    return False
                at += len(part)
            return at == len(value) and at > 0

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class HeldBody:
    """A body handle that holds the bytes (a copy of a flow whose body was in the session)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self) -> bytes:
        return self.data


class SessionBody:
    """A body that is in the session (a `BodyHandle`)."""

    __slots__ = ("flow_id", "key", "size", "source")

    def __init__(self, source: SessionBodies, flow_id: str, key: Key, size: int) -> None:
        self.source, self.flow_id, self.key, self.size = source, flow_id, key, size

    def read(self) -> bytes:
        data = self.source.read(self.flow_id, self.key)
        if data is None or len(data) != self.size:
            raise ValueError(f"the body is no longer in the session {self.source.path}")
        return data

    def __copy__(self) -> Any:
        try:
            return HeldBody(self.read())
        except (ValueError, sqlite3.Error):
            return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self.__copy__()

    def __repr__(self) -> str:
        return f"<SessionBody {self.size} bytes of {self.flow_id} {self.key}>"


class SessionSpill:
    """What `BodySpill` spills while it is attached to a recording session (see the module docstring)."""

    def __init__(self, session: Any, owner: Any, loop: Any = None, minimum: int = 512) -> None:
        self.session = session
        self.minimum = minimum
        """Smaller bodies stay in memory (spill.SPILL_MIN)."""
        self.owner = owner
        """The `BodySpill`: its counters, and its file for what the session cannot take."""
        self.loop = loop
        self.source = SessionBodies(session.path)
        self.dropped = 0
        """Bodies now read back from the session."""
        self._pending: dict[int, tuple[weakref.ref[Any], Any, str, Key, int]] = {}
        self._scheduled = False
        self._numbers: tuple[Any, dict[int, int]] = (None, {})

    def spill(self, flow: Any, obj: Any, name: str) -> bool:
        """Drop `obj.name` if the session holds it, else try again later. False: spill it to the file."""
        if self.session.failed is not None:
            return False
        key = self._key(flow, obj)
        if key is None:
            return False
        if not self._try(flow, obj, name, key):
            self._pending[id(obj)] = (weakref.ref(flow), obj, name, key, 0)
            self._schedule()
        return True

    def _key(self, flow: Any, obj: Any) -> Key | None:
        if obj is getattr(flow, "request", None):
            return "request"
        if obj is getattr(flow, "response", None):
            return "response"
        msgs = _messages(flow)
        if self._numbers[0] is not flow or len(self._numbers[1]) != len(msgs):  # one pass per flow, not per message
            self._numbers = (flow, {id(m): i for i, m in enumerate(msgs)})
        return self._numbers[1].get(id(obj))

    def _try(self, flow: Any, obj: Any, name: str, key: Key) -> bool:
        value = obj.__dict__.get(name) if obj._spill is not None else getattr(obj, name)  # what it holds itself
        if not isinstance(value, bytes) or len(value) < self.minimum:
            return True  # nothing (left) to spill
        try:
            if not self.source.holds(flow.id, key, value):
                return False
        except sqlite3.Error:
            return False
        obj._spill = SessionBody(self.source, flow.id, key, len(value))
        delattr(obj, name)  # reads now fall through to the class's Spillable (interpose.model.body)
        if getattr(obj, "_decoded", None) is not None:
            obj._decoded = None
        self.owner.spilled_bytes += len(value)
        self.owner.spilled_count += 1
        self.dropped += 1
        return True

    def _schedule(self) -> None:
        if self._scheduled or not self._pending:
            return
        if self.loop is None or self.loop.is_closed():
            return  # retried at the next spill (`retry`)
        self._scheduled = True
        self.loop.call_later(RETRY_S, self.retry)

    def retry(self) -> None:
        """Try the bodies waiting for the session again; after `TRIES`, or once recording failed, they go to
        the spill file."""
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for k, (ref, obj, name, key, tries) in pending.items():
            flow = ref()
            if flow is None or obj is not _obj_at(flow, key):
                continue  # deleted, or the part was replaced
            if self.session.failed is None and self._try(flow, obj, name, key):
                continue
            if self.session.failed is not None or tries + 1 >= TRIES:
                self.owner._spill_file(obj, name)
            else:
                self._pending[k] = (ref, obj, name, key, tries + 1)
        self._schedule()

    @property
    def waiting(self) -> int:
        """Bodies waiting for the session to hold them."""
        return len(self._pending)

    def close(self) -> None:
        self._pending.clear()
        self.source.close()


def _messages(flow: Any) -> Any:
    stream = flow.websocket if getattr(flow, "request", None) is not None else flow
    return stream.messages if stream is not None else ()


def _obj_at(flow: Any, key: Key) -> Any:
    if isinstance(key, str):
        return getattr(flow, key, None)
    msgs = _messages(flow)
    return msgs[key] if key < len(msgs) else None
