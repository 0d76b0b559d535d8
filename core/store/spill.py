"""Bodies of kept flows on disk: spilled when the TUI keeps a finished flow, read back on demand.

The TUI keeps every flow it shows; a million of them with their bodies would not fit in memory.
`BodySpill.keep(flow)` is called for each kept flow once it is complete (its last hook has run and it
is not held). Bodies of at least `body_spill_threshold` bytes go to disk at once; and while the bodies
still in memory add up to more than `flow_memory_limit`, the oldest kept flows' bodies go too.
`keep` also makes equal header fields of kept flows one shared object (most of a flow's size beyond
its bodies is header fields, and most fields repeat from flow to flow: `Accept`, `User-Agent`, `Server`).

**The model side** is `interpose.model.body`: messages hold a `Spillable` descriptor under the body's
name, and spilling here deletes the instance attribute and leaves a `SpilledBody` (a `BodyHandle`)
in `_spill`, so that reads fall through to the descriptor, which reads the bytes back.

**The file.** One append-only file (`bodies`, 0600) in a private directory (`mkdtemp`: 0700) under
the system temp directory, written with `pwrite` and read with `pread` at the offsets the handles keep.
Bodies are written once and read rarely, never changed in place, so this needs no more: SQLite would
add a page cache, transactions and its own copy of every blob for nothing we use. A body's disk space
is given back as soon as nothing refers to it any more (its flows were deleted, or it was replaced):
the file is truncated when no body in it is left, else the body's range is punched out (Linux
`fallocate(PUNCH_HOLE)`, on file systems that have it). The file and its directory are removed when
the `BodySpill` is closed or the process exits (`weakref.finalize`), and directories left by a process
that died are removed by the next one that spills. **With a session** the TUI records into, bodies are
read back from the session instead, and no spill file is written (`attach`; store/session/bodies.py).
"""
from __future__ import annotations

import collections
import ctypes
import os
import shutil
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from interpose.model.body import BodyHandle
from interpose.runtime.options import Options, parse_size

__all__ = ["SPILL_MIN", "BodySpill", "SpillFile", "SpilledBody", "is_spilled", "share_fields", "spill", "stored_size"]

SPILL_MIN = 512
"""Smaller bodies are never spilled nor counted against the limit (a handle costs ~150 B, a read a syscall)."""

_PREFIX = "interpose-spill-"


# -- the file ----------------------------------------------------------------------------------------

_PUNCH_HOLE = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE (linux/falloc.h)


def _fallocate() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
    fn.restype = ctypes.c_int
    return fn


_fallocate_fn = _fallocate()


def _remove(fd: int, directory: str) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
    shutil.rmtree(directory, ignore_errors=True)


def _sweep_stale(parent: str) -> None:
    """Remove spill directories of processes that are gone (killed before they could clean up)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        if not name.startswith(_PREFIX):
            continue
        pid = name[len(_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        path = os.path.join(parent, name)
        try:
            if os.stat(path).st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


class SpillFile:
    """One append-only file of bodies in a private temporary directory."""

    def __init__(self, parent: str | None = None) -> None:
        parent = parent or tempfile.gettempdir()
        _sweep_stale(parent)
        self.dir = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=parent)  # mode 0700
        self.path = os.path.join(self.dir, "bodies")
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        self.size = 0
        """Bytes written so far (the offset of the next body)."""
        self.live = 0
        """Bytes of the bodies still referred to (the rest is given back, see `release`)."""
        self._lock = threading.RLock()
        """Bodies are released by the garbage collector, on any thread, even inside `write` (reentrant)."""
        self._finalizer = weakref.finalize(self, _remove, self._fd, self.dir)

    def write(self, data: bytes) -> SpilledBody:
        with self._lock:
            if not self._finalizer.alive:
                raise ValueError("spill file is closed")
            offset, view, done = self.size, memoryview(data), 0
            self.size += len(view)
            self.live += len(view)  # counted first: a release meanwhile (see _lock) cannot empty the file
            while done < len(view):
                done += os.pwrite(self._fd, view[done:], offset + done)
        return SpilledBody(self, offset, len(view))

    def release(self, offset: int, size: int) -> None:
        """Nothing refers to the body at `offset` any more: give its disk space back."""
        with self._lock:
            if not self._finalizer.alive:
                return
            self.live -= size
            if self.live <= 0:  # the last body: start over with an empty file
                self.live = self.size = 0
                os.ftruncate(self._fd, 0)
            elif _fallocate_fn is not None and size:
                _fallocate_fn(self._fd, _PUNCH_HOLE, offset, size)  # fails quietly where unsupported

    def read(self, offset: int, size: int) -> bytes:
        if not self._finalizer.alive:
            raise ValueError("spill file is closed: the body is gone")
        data = os.pread(self._fd, size, offset)
        if len(data) == size:
            return data
        parts = [data]  # a short read (a huge body): carry on
        got = len(data)
        while got < size:
            chunk = os.pread(self._fd, size - got, offset + got)
            if not chunk:
                raise OSError(f"spill file truncated at {offset + got}")
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        """Close and delete the file and its directory (bodies still spilled can't be read any more)."""
        self._finalizer()


class SpilledBody:
    """Where one spilled body is (a `BodyHandle`): immutable, so copies of a flow share it."""

    __slots__ = ("file", "offset", "size")

    def __init__(self, file: SpillFile, offset: int, size: int) -> None:
        self.file, self.offset, self.size = file, offset, size

    def read(self) -> bytes:
        return self.file.read(self.offset, self.size)

    def __del__(self) -> None:
        try:
            self.file.release(self.offset, self.size)
        except Exception:  # noqa: S110 (at interpreter exit, or the file already gone: nothing to give back)
            pass

    def __copy__(self) -> SpilledBody:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SpilledBody:
        return self

    def __repr__(self) -> str:
        return f"<SpilledBody {self.size} bytes at {self.offset}>"


# -- spilling ----------------------------------------------------------------------------------------


def _own(obj: Any, name: str) -> Any:
    """The value the instance holds itself (None if it has none: spilled)."""
    if obj._spill is None:  # never spilled: the plain attribute
        return getattr(obj, name)
    return obj.__dict__.get(name)


def is_spilled(obj: Any, name: str = "raw_content") -> bool:
    """Whether `obj.name` is on disk now (not assigned a new value since it was spilled)."""
    return obj._spill is not None and name not in obj.__dict__


def stored_size(obj: Any, name: str = "raw_content") -> int | None:
    """`len(obj.name)` (None if it is None) without reading a spilled body back."""
    ref = getattr(obj, "_spill", None)  # duck-typed messages (tests, addons) may not have one
    if ref is not None and name not in obj.__dict__:
        return int(ref.size)
    value = getattr(obj, name)
    return None if value is None else len(value)


def spill(obj: Any, file: SpillFile, name: str = "raw_content") -> int:
    """Move `obj.name` to `file` if it holds at least SPILL_MIN bytes in memory. Returns the bytes moved."""
    value = _own(obj, name)
    if not isinstance(value, bytes) or len(value) < SPILL_MIN:
        return 0
    handle: BodyHandle = file.write(value)
    obj._spill = handle
    delattr(obj, name)  # reads now fall through to the class's Spillable (interpose.model.body)
    if getattr(obj, "_decoded", None) is not None:
        obj._decoded = None  # the decoded-body cache would keep it in memory
    return len(value)


def _bodies(flow: Any) -> Iterator[tuple[Any, str]]:
    """The spillable (object, attribute) pairs of a complete flow: HTTP request/response bodies, and
    WebSocket/TCP message contents once the connection has ended."""
    req = getattr(flow, "request", None)
    if req is not None:
        yield req, "raw_content"
        if flow.response is not None:
            yield flow.response, "raw_content"
        stream = getattr(flow, "websocket", None)
    else:
        stream = flow  # a TCP flow
    if stream is not None and not stream.live and not stream.intercepted:
        for m in stream.messages:
            if not m.intercepted:
                yield m, "content"


def _complete(flow: Any) -> bool:
    if flow.intercepted:
        return False
    if getattr(flow, "request", None) is None:  # TCP
        return not flow.live
    resp = flow.response
    return flow.error is not None or not flow.live or (resp is not None and resp.timestamp_end is not None)


_SHARE_MAX = 50_000
"""Distinct header fields remembered for sharing; the memory starts afresh when it is full."""
_SHARE_LONGEST = 256


def share_fields(headers: Any, seen: dict[Any, Any]) -> None:
    """Replace each `(name, value)` field of `headers` by an equal one already in `seen` (tuples of bytes
    are immutable, so sharing them changes nothing a reader can see)."""
    fields = headers.fields
    for i, pair in enumerate(fields):
        if type(pair) is not tuple:
            continue
        shared = seen.get(pair)
        if shared is None:
            if len(pair[1]) > _SHARE_LONGEST:
                continue
            if len(seen) >= _SHARE_MAX:
                seen.clear()  # unique values (dates, cookies) filled it: the common ones come back soon
            seen[pair] = pair
        elif shared is not pair:
            fields[i] = shared


class _Kept(weakref.ref):
    """A kept flow in the memory-limit queue, with the bytes of its bodies counted in memory."""

    __slots__ = ("size",)
    size: int


class BodySpill:
    """Spills the bodies of kept flows (see the module docstring). Call `keep(flow)` whenever a kept
    flow may have completed; it does nothing for flows that are not complete yet and is cheap to repeat."""

    def __init__(self, threshold: int | None = 256 * 1024, memory_limit: int | None = 512 * 1024**2,
                 directory: str | None = None) -> None:
        self.threshold = threshold
        """Bodies of at least this many bytes are spilled when their flow is kept (None: never by size)."""
        self.memory_limit = memory_limit
        """The bodies of kept flows still in memory may take this many bytes (None: no limit)."""
        self.directory = directory
        self.file: SpillFile | None = None
        """Created on the first spill."""
        self.in_memory = 0
        """Bytes of kept flows' bodies (of at least SPILL_MIN bytes each) still in memory, as counted when kept."""
        self.spilled_bytes = 0
        self.spilled_count = 0
        self._queue: collections.deque[_Kept] = collections.deque()
        self._fields: dict[Any, Any] = {}
        self.session: Any = None  # a SessionSpill once attached to the session the TUI records into

    @classmethod
    def from_options(cls, options: Options) -> BodySpill:
        """Follow the `body_spill_threshold` and `flow_memory_limit` options (also when they change)."""
        self = cls(parse_size(options.body_spill_threshold), parse_size(options.flow_memory_limit))

        def changed(updated: set[str]) -> None:
            if updated & {"body_spill_threshold", "flow_memory_limit"}:
                self.threshold = parse_size(options.body_spill_threshold)
                self.memory_limit = parse_size(options.flow_memory_limit)
                self._enforce_limit()
        options.subscribe(changed)
        return self

    def _file(self) -> SpillFile:
        if self.file is None or self.file.closed:
            self.file = SpillFile(self.directory)
        return self.file

    def attach(self, session: Any, loop: Any = None) -> None:  # into the recording session, not a file
        from interpose.store.session.bodies import SessionSpill
        self.session = SessionSpill(session, self, loop, SPILL_MIN) if session is not None else None

    def _spill(self, obj: Any, name: str, flow: Any = None) -> int:
        if self.session is not None and flow is not None and self.session.spill(flow, obj, name):
            return 0  # in the session: dropped now, or once the session holds it
        return self._spill_file(obj, name)

    def _spill_file(self, obj: Any, name: str) -> int:
        n = spill(obj, self._file(), name)
        if n:
            self.spilled_bytes += n
            self.spilled_count += 1
        return n

    def _gone(self, ref: weakref.ref) -> None:
        """A counted flow was freed (deleted from the store and dropped): its bodies went with it."""
        assert isinstance(ref, _Kept)
        self.in_memory -= ref.size
        ref.size = 0

    def keep(self, flow: Any) -> None:
        """Spill what `flow` holds at or above the threshold and count the rest against the limit."""
        if not _complete(flow):
            return
        req, seen = getattr(flow, "request", None), self._fields
        if req is not None:
            share_fields(req.headers, seen)
            req.host = seen.setdefault(req.host, req.host)  # a new str per flow, from the URL or Host header
            if flow.response is not None:
                share_fields(flow.response.headers, seen)
                flow.response.reason = seen.setdefault(flow.response.reason, flow.response.reason)
        threshold = self.threshold
        big = None if threshold is None else max(threshold, SPILL_MIN)
        held = 0
        for obj, name in _bodies(flow):
            value = _own(obj, name)
            if value is None or len(value) < SPILL_MIN:
                continue
            if big is not None and len(value) >= big:
                self._spill(obj, name, flow)
            else:
                held += len(value)
        entry = next((r for r in weakref.getweakrefs(flow) if type(r) is _Kept and r.__callback__ == self._gone), None)
        if entry is not None:  # kept before (a WebSocket's handshake, then its end): count anew
            self.in_memory += held - entry.size
            entry.size = held
        elif held:
            entry = _Kept(flow, self._gone)
            entry.size = held
            self._queue.append(entry)
            self.in_memory += held
        self._enforce_limit()

    def _enforce_limit(self) -> None:
        limit, queue = self.memory_limit, self._queue
        while limit is not None and self.in_memory > limit and queue:
            entry = queue.popleft()
            flow = entry()
            if flow is None:
                continue
            for obj, name in _bodies(flow):
                self._spill(obj, name, flow)
            self.in_memory -= entry.size
            entry.size = 0

    def close(self) -> None:
        """Delete the spill file. Bodies spilled until now can no longer be read."""
        if self.file is not None:
            self.file.close()
        if self.session is not None:
            self.session.close()

    def __repr__(self) -> str:
        return (f"<BodySpill {self.in_memory} bytes in memory, {self.spilled_count} bodies "
                f"({self.spilled_bytes} bytes) spilled>")
