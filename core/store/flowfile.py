"""Flow files: writing and reading flows as JSON Lines (the format is documented in docs/flowfile.md).

The first line is a header, `{"format": "interpose-flows", "version": 1, ...}`; every further line is
one finished flow. Appending is writing more lines, so a file written by a process that was killed is
still readable up to its last complete line. Loading runs no code from the file (no pickle).

    with FlowWriter("flows.interpose") as w:     # FlowWriter(path, append=True) adds to a file
        w.add(flow)
    for flow in read_flows("flows.interpose"):   # raises FlowFileError at the first damaged line
        ...
    flows, warning = load("flows.interpose")     # every complete flow, and what was wrong (or None)
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import IO, Any

from interpose.errors import FlowFileError
from interpose.model.flow import Flow
from interpose.store import flowcodec
from interpose.store.durability import FSYNC_EVERY, FSYNC_S

__all__ = ["FORMAT", "FSYNC_EVERY", "FSYNC_S", "VERSION", "FlowWriter", "check", "encode_line", "load", "read_flows"]

FORMAT = "interpose-flows"
VERSION = 1
"""The version this build writes and the newest it reads (see docs/flowfile.md, "Versioning")."""
_HEADER_MAX = 1 << 16


def encode_line(obj: dict[str, Any]) -> bytes:
    """One JSON object as one UTF-8 line. Strings that cannot be UTF-8 (lone surrogates from
    surrogateescape) fall back to \\u escapes, which read back exactly."""
    try:
        return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(obj, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def _header() -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "created": time.time(), "creator": f"interpose {flowcodec.VERSION}"}


def _check_header(line: bytes, name: str) -> None:
    """Raise FlowFileError unless `line` is a header this build can read."""
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        obj = None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise FlowFileError(f"{name}: line 1: not an interpose flow file (no {FORMAT!r} header)")
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FlowFileError(f"{name}: line 1: invalid flow file version {version!r}")
    if version > VERSION:
        raise FlowFileError(f"{name}: line 1: flow file version {version} is newer than this interpose reads "
                            f"(version {VERSION}); upgrade interpose to read it")


def check(path: str | os.PathLike[str]) -> None:
    """Raise FlowFileError unless `path` can be opened and is a flow file of a version this build reads.
    An empty file is a flow file without flows."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            first = f.readline(_HEADER_MAX)
    except OSError as e:
        raise FlowFileError(f"cannot read {name}: {e.strerror or e}") from None
    if first.strip():
        _check_header(first, name)


# -- writing -------------------------------------------------------------------------------------------
def _prepare_append(path: str) -> str | None:
    """Check the header of a file about to be appended to, and cut off an incomplete last record
    (left by a writer that was killed mid-line) so the new flows start on a line of their own.
    Returns a warning when something was cut."""
    with open(path, "r+b") as f:
        first = f.readline(_HEADER_MAX)
        _check_header(first, path)
        size = f.seek(0, os.SEEK_END)
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return None
        # Find the start of the last line.
        pos, block = size, 1 << 16
        start = 0
        while pos > 0:
            step = min(block, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            i = chunk.rfind(b"\n")
            if i >= 0:
                start = pos - step + i + 1
                break
            pos -= step
        f.seek(start)
        tail = f.read()
        try:
            json.loads(tail.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            if start == 0:
                raise FlowFileError(f"{path}: line 1: not an interpose flow file (incomplete header)") from None
            f.truncate(start)
            return f"{path}: dropped an incomplete last record ({len(tail)} bytes) before appending"
        f.write(b"\n")  # a complete record that only lacked its newline
        return None


class FlowWriter:
    """Writes flows to a flow file, one line each.

    Every `add` hands the whole line to the operating system at once, so a process that is killed loses
    nothing already added; `fsync` (which also survives power loss) runs every `fsync_every` flows or
    `fsync_s` seconds, whichever comes first, and on `flush`/`close`. Call `sync_if_due()` now and then
    (the save addon does on `tick`) so that the last flows of a burst do not wait for the next one.
    """

    def __init__(self, target: str | os.PathLike[str] | IO[bytes], append: bool = False, *,
                 fsync_every: int = FSYNC_EVERY, fsync_s: float = FSYNC_S) -> None:
        self.fsync_every = fsync_every
        self.fsync_s = fsync_s
        self.warning: str | None = None
        """Set when appending had to drop an incomplete last record."""
        self.count = 0
        self._unsynced = 0
        self._last_sync = time.monotonic()
        if isinstance(target, (str, os.PathLike)):
            path = os.fspath(target)
            self.name = path
            new = True
            if append and os.path.exists(path) and os.path.getsize(path) > 0:
                self.warning = _prepare_append(path)
                new = False
            # Flows hold cookies, credentials and bodies: a new file is readable by its owner only.
            flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
            self._f: IO[bytes] = os.fdopen(os.open(path, flags, 0o600), "ab" if append else "wb")
            self._owned = True
        else:
            self._f = target
            self._owned = False
            self.name = str(getattr(target, "name", "<stream>"))
            new = not append or not target.seekable() or target.tell() == 0
        if new:
            self._f.write(encode_line(_header()))
            self._f.flush()

    def add(self, flow: Flow) -> None:
        """Append one flow (an `HTTPFlow`, with its WebSocket if any, or a `TCPFlow`)."""
        self._f.write(encode_line(flowcodec.dump(flow)))
        self._f.flush()
        self.count += 1
        self._unsynced += 1
        if self._unsynced >= self.fsync_every or time.monotonic() - self._last_sync >= self.fsync_s:
            self._fsync()

    def sync_if_due(self) -> None:
        """fsync if flows are waiting and `fsync_s` has passed since the last fsync."""
        if self._unsynced and time.monotonic() - self._last_sync >= self.fsync_s:
            self._fsync()

    def _fsync(self) -> None:
        self._unsynced = 0
        self._last_sync = time.monotonic()
        try:
            fd = self._f.fileno()
        except (AttributeError, OSError, ValueError):
            return  # an in-memory stream: nothing to sync
        os.fsync(fd)

    def flush(self) -> None:
        """Write everything out and fsync it."""
        self._f.flush()
        self._fsync()

    def close(self) -> None:
        if self._f.closed:
            return
        self.flush()
        if self._owned:
            self._f.close()

    def __enter__(self) -> FlowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- reading -------------------------------------------------------------------------------------------
def _iter_lines(f: IO[bytes], name: str) -> Iterator[Flow]:
    lineno = 0
    for raw in f:
        lineno += 1
        complete = raw.endswith(b"\n")
        if lineno == 1:
            if raw.strip():
                _check_header(raw, name)
            continue
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            if not complete:
                raise FlowFileError(f"{name}: line {lineno}: incomplete record at the end of the file "
                                    f"(the writer stopped mid-line)") from None
            why = "not UTF-8" if isinstance(e, UnicodeDecodeError) else f"corrupt JSON ({e})"
            raise FlowFileError(f"{name}: line {lineno}: {why}") from None
        if isinstance(obj, dict) and obj.get("format") == FORMAT:
            _check_header(raw, name)  # concatenated files: a second header is fine if we read its version
            continue
        try:
            yield flowcodec.load(obj)
        except flowcodec.BadRecord as e:
            raise FlowFileError(f"{name}: line {lineno}: {e}") from None


def read_flows(source: str | os.PathLike[str] | IO[bytes]) -> Iterator[Flow]:
    """Yield every flow in a flow file, in order, as loaded (`live=False`) flows.

    At the first damaged line (incomplete last line, corrupt JSON, a record missing a field, a newer
    version) it raises FlowFileError naming the file, the line and why, after yielding every flow before it.
    """
    if not isinstance(source, (str, os.PathLike)):
        yield from _iter_lines(source, str(getattr(source, "name", "<stream>")))
        return
    name = os.fspath(source)
    try:
        f = open(name, "rb")
    except OSError as e:
        raise FlowFileError(f"cannot read {name}: {e.strerror or e}") from None
    with f:
        yield from _iter_lines(f, name)


def load(path: str | os.PathLike[str]) -> tuple[list[Flow], str | None]:
    """Every complete flow in the file, and a warning saying where and why reading stopped (or None).

    Raises FlowFileError when the file cannot be opened or is not a flow file at all.
    """
    check(path)
    flows: list[Flow] = []
    try:
        for flow in read_flows(path):
            flows.append(flow)
    except FlowFileError as e:
        return flows, f"{e}; loaded the {len(flows)} flows before it"
    return flows, None
