"""The TUI's temporary sessions: `CONFDIR/sessions/STAMP-PID.session`, deleted at a clean exit.

A file there whose process is gone and that was not closed cleanly (its `meta` row `clean` is not 1) was
left behind by a crash: `left_behind()` finds them so that the next start can say how to reopen them.
"""
from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time

DIR = "sessions"
_NAME = re.compile(r"^\d{8}-\d{6}-(\d+)\.session$")


def directory(confdir: str) -> str:
    return os.path.join(os.path.expanduser(confdir), DIR)


def new_path(confdir: str) -> str:
    """A fresh path for this process's temporary session (the directory is made, 0700)."""
    d = directory(confdir)
    os.makedirs(d, mode=0o700, exist_ok=True)
    return os.path.join(d, f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.session")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean(path: str) -> bool:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'clean'").fetchone()
    except sqlite3.Error:
        return False
    finally:
        db.close()
    return row is not None and row[0] == "1"


def left_behind(confdir: str) -> list[str]:
    """Temporary sessions whose process died without closing them, oldest first."""
    d = directory(confdir)
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return []
    found = []
    for name in names:
        m = _NAME.match(name)
        path = os.path.join(d, name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))) and not _clean(path):
            found.append(path)
    return found


def remove(path: str) -> None:
    """Delete a session file and its -wal and -shm companions."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)
