"""Sessions: every flow and the workspace, in one SQLite file (docs/sessions.md; SPEC "Sessions").

`Session` (store.py) writes and reads one file; `rows` turns flows into rows and back; `schema` holds the
layout, its version and the migrations; `temp` keeps the TUI's temporary sessions under CONFDIR/sessions.
"""
from interpose.store.session.schema import SessionError
from interpose.store.session.store import Session, check_file, is_session_file

__all__ = ["Session", "SessionError", "check_file", "is_session_file"]
