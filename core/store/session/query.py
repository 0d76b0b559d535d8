"""The flow list's questions asked of a session in SQL: which flows, in which order, one page at a time.

    page = ids(s, order="size", reverse=True, marked_only=False, text=None, offset=0, limit=50)
    n = count(s, marked_only=True)

Orders are the flow list's (`interpose.store.order.ORDERS`), on the columns the writer fills from the same
sort keys; ties keep recording order. `text` narrows to flows whose URL, headers, text bodies, messages or
comment contain it (the FTS5 index: flows recorded while traffic flows are indexed once it pauses).
This is the building block for a flow list that pages from the session; the TUI does not use it yet.
"""
from __future__ import annotations

from typing import Any

from interpose.store.session.store import Session

SORT_COLUMNS = {
    "time": "timestamp_created",
    "method": "coalesce(method, '')",
    "url": "coalesce(url, '')",
    "size": "coalesce(response_size, 0)",
    "duration": "coalesce(duration, 9e999)",
    "status": "coalesce(status_code, 0)",
}


def _where(marked_only: bool, text: str | None) -> tuple[str, list[Any]]:
    clauses, params = ["deleted = 0"], []
    if marked_only:
        clauses.append("marked = 1")
    if text:
        clauses.append("rowid IN (SELECT rowid FROM search WHERE search MATCH ?)")
        params.append('"' + text.replace('"', '""') + '"')
    return " AND ".join(clauses), params


def ids(s: Session, order: str = "time", reverse: bool = False, marked_only: bool = False, text: str | None = None,
        offset: int = 0, limit: int = 100) -> list[str]:
    """One page of flow ids in list order. KeyError for an order the list does not have."""
    column = SORT_COLUMNS[order]
    where, params = _where(marked_only, text)
    direction = "DESC" if reverse else "ASC"
    sql = (f"SELECT id FROM flows WHERE {where} ORDER BY {column} {direction}, rowid {direction} "
           "LIMIT ? OFFSET ?")
    with s._lock:
        return [r[0] for r in s._read.execute(sql, (*params, limit, offset))]


def count(s: Session, marked_only: bool = False, text: str | None = None) -> int:
    where, params = _where(marked_only, text)
    with s._lock:
        return int(s._read.execute(f"SELECT count(*) FROM flows WHERE {where}", params).fetchone()[0])
