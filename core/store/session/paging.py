"""`PagedFlowStore`: the flow list (`FlowStore`'s interface, unchanged for the TUI) paging from a session.

Without a session it is a `FlowStore`. Once `attach(session)` is called (pageviews.py), the list and the view
hold the rowids of the flows that live only in the session (*compact*: 4 bytes a flow, no Flow object; so
reopening a session makes none, and memory does not grow with the flow count beyond that) with the
*resident* flows merged in: live, held, changed by the user and not yet recorded, or new.

- A compact flow is loaded from the session when the list draws it or someone asks for it, and kept in
  a small LRU cache (`CACHE`). `update(flow)` of such a flow makes it resident.
- Resident flows that are finished (not live, not held) and recorded as they are (the session's row has
  their mark and comment) are made compact again once there are more than `RESIDENT` of them.
- Order, view filter and following another process's recording: pageviews.py.

A compact flow is found again by its key and rowid (SQL gives both for an id), never by identity.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

from interpose.flowfilter import parse
from interpose.store.session.pageindex import Merged, rowid_array
from interpose.store.session.pageviews import CACHE, LIVE_SEQ, PagedViews

__all__ = ["CACHE", "RESIDENT", "LIVE_SEQ", "PagedFlowStore"]

RESIDENT = 1000
"""Above this many resident flows, the recorded and finished ones are made compact."""


class PagedFlowStore(PagedViews):
    __slots__ = ()

    # -- adding, changing and removing -------------------------------------------------------------------
    def add(self, flow: Any) -> None:
        if self._reader is None:
            super().add(flow)
            return
        if flow.id in self._entries or self._lookup(flow.id) is not None:
            self.update(flow)
            return
        e = (self._keyfn(flow), self._seq, flow)
        self._seq += 1
        self._entries[flow.id] = e
        self._pall.add_res(e)
        if self._view is not self._all and self._visible(flow):
            self._pview.add_res(e)
        self._changed()
        self._since_compact += 1
        if self._since_compact >= 64 and len(self._entries) > RESIDENT and not self.compact():
            self._since_compact = -1024  # none recorded as it is (say, live traffic with -r): try much later

    def update(self, flow: Any) -> None:
        if self._reader is None:
            super().update(flow)
            return
        old = self._entries.get(flow.id)
        if old is not None:
            seq = old[1]
            for m in self._lists():
                m.remove_res(old)
        else:
            found = self._lookup(flow.id)
            if found is None:
                return
            seq = found[1]
            self._cache.pop(seq, None)
            for m in self._lists():
                m.remove_row(*found)
        new = (self._keyfn(flow), seq, flow)
        self._entries[flow.id] = new
        self._pall.add_res(new)
        if self._view is not self._all and self._visible(flow):
            self._pview.add_res(new)
        self._changed()

    def remove(self, flow: Any) -> None:
        if self._reader is None:
            super().remove(flow)
            return
        e = self._entries.pop(flow.id, None)
        if e is not None:
            for m in self._lists():
                m.remove_res(e)
            found = self._reader.lookup(flow.id, self._order)
            if found is not None:  # recorded: its row stays out of later queries
                self._gone.add(found[0])
        else:
            key_row = self._lookup(flow.id)
            if key_row is None:
                return
            self._gone.add(key_row[1])
            self._cache.pop(key_row[1], None)
            for m in self._lists():
                m.remove_row(*key_row)
        self._changed()

    def clear(self) -> None:
        if self._reader is None:
            super().clear()
            return
        self._floor = max(self._floor, self._reader.top_rowid())
        self._cache.clear()
        self._entries.clear()
        self._set(all_=Merged(rowid_array(), self._key))
        shared = self._filter is None and not self._marked_only
        self._set(view=self._pall if shared else Merged(rowid_array(), self._key))
        self._changed()

    def delete_matching(self, expr: str | Callable[[Any], bool]) -> int:
        if self._reader is None:
            return super().delete_matching(expr)
        pred = parse(expr) if isinstance(expr, str) else expr
        rows: set[int] = set()
        resident = []
        for e in self._all:
            flow = self._flow(e)
            if flow is not None and pred(flow):
                (rows.add(e[1]) if isinstance(e[2], int) else resident.append(flow))
        for flow in resident:
            self.remove(flow)
        if rows:
            self._gone |= rows
            for m in self._lists():
                m.drop(rows)
            self._changed()
        return len(rows) + len(resident)

    def compact(self) -> int:
        """Make the resident flows that are finished, not held and recorded as they are compact again (the
        oldest first, down to half of `RESIDENT`). Returns how many."""
        self._since_compact = 0
        if self._reader is None or len(self._entries) <= RESIDENT or self._building:
            return 0
        excess = len(self._entries) - RESIDENT // 2
        candidates = [e for e in sorted(self._entries.values(), key=lambda e: e[1])
                      if not getattr(e[2], "live", False) and not getattr(e[2], "intercepted", False)]
        found = self._reader.recorded([e[2].id for e in candidates[:excess * 2]])
        listed: list[tuple[Any, int]] = []
        shown: list[tuple[Any, int]] = []
        for e in candidates:
            if len(listed) >= excess:
                break
            flow = e[2]
            row = found.get(flow.id)
            if row is None or row[1] != int(bool(flow.marked)) or row[2] != (getattr(flow, "comment", "") or ""):
                continue  # not recorded yet, or recorded before its last change
            self._keys.pop(row[0], None)  # its row may have changed while it was resident
            key_row = (self._key(row[0]), row[0])  # as the session sorts it
            if self._view is not self._all and self._pview.find_res(e) is not None:
                shown.append(key_row)
            for m in self._lists():
                m.remove_res(e)
            listed.append(key_row)
            del self._entries[flow.id]
        self._pall.add_rows(listed)
        if self._view is not self._all:
            self._pview.add_rows(shown)
        return len(listed)

    # -- lookup ------------------------------------------------------------------------------------------
    def get(self, flow_id: str) -> Any | None:
        e = self._entries.get(flow_id)
        if e is not None:
            return e[2]
        found = self._lookup(flow_id)
        return self._flow((None, found[1], found[1])) if found is not None else None

    def __contains__(self, flow: object) -> bool:
        flow_id = getattr(flow, "id", None)
        return isinstance(flow_id, str) and self.get(flow_id) is not None

    @property
    def total(self) -> int:
        return len(self._all) if self._reader is not None else len(self._entries)

    def __getitem__(self, i: int) -> Any:
        e = self._entry_at(i)
        flow = self._flow(e)
        return flow if flow is not None else _unreadable(e[1])

    def index(self, flow: Any) -> int | None:
        if self._reader is None:
            return super().index(flow)
        e = self._entries.get(flow.id)
        if e is not None:
            i = self._pview.find_res(e)
        else:
            found = self._lookup(flow.id)
            i = None if found is None else self._pview.find_row(*found)
        if i is None:
            return None
        return len(self._view) - 1 - i if self._reverse else i

    def __iter__(self) -> Iterator[Any]:
        view = reversed(self._view) if self._reverse else iter(self._view)
        return (f for f in map(self._flow, view) if f is not None)

    def all_flows(self) -> Iterator[Any]:
        view = reversed(self._all) if self._reverse else iter(self._all)
        return (f for f in map(self._flow, view) if f is not None)

    def marked(self) -> list[Any]:
        if self._reader is None:
            return super().marked()
        skip = self._resident_rowids()
        found = self._reader.keyed(self._order, self._where("deleted = 0 AND marked = 1"))
        chosen = [(k, r, r) for k, r in found if r not in skip]
        chosen += [e for e in self._entries.values() if getattr(e[2], "marked", False)]
        chosen.sort(key=lambda e: e[:2], reverse=self._reverse)
        return [f for f in map(self._flow, chosen) if f is not None]

    # -- global search -------------------------------------------------------------------------------------
    def search_candidates(self, text: str, limit: int = 10_000) -> list[Any] | None:
        """The visible flows (list order) that may contain `text`: those the search index finds, the resident
        ones and those recorded after the index was last brought up to date. None when the index cannot
        answer (no session, or text shorter than three characters: the index is by trigrams)."""
        if self._reader is None or len(text) < 3:
            return None
        found = self._reader.search(text, limit)
        view = self._pview
        if view.fenced:  # the whole list in time order: list order is (time, rowid), asked of SQL in one go
            skip = self._resident_rowids()
            ids = ",".join(map(str, found)) or "0"
            where = self._where(f"deleted = 0 AND rowid IN ({ids})")
            entries = [(k, r, r) for k, r in self._reader.keyed("time", where) if r not in skip]
            entries += view.res
            entries.sort(key=lambda e: (e[0], e[1]), reverse=self._reverse)
            return [f for f in map(self._flow, entries) if f is not None]
        picked = itertools.compress(range(len(view.rows)), map(found.__contains__, view.rows))
        chosen = [view.merged_of(c) for c in picked]
        chosen += [p + j for j, p in enumerate(view.pos)]
        chosen.sort(reverse=self._reverse)
        return [f for f in map(self._flow, map(view.__getitem__, chosen)) if f is not None]


def _unreadable(rowid: int) -> Any:
    """What the list shows for a row the session cannot give back (a damaged page): a flow that says so."""
    from interpose.http import HTTPFlow, Request
    from interpose.model.connection import Client, Server
    from interpose.model.flow import Error

    flow = HTTPFlow(Client(address=None), Server(address=None))
    flow.request = Request.make("GET", f"http://unreadable.invalid/row-{rowid}")
    flow.error = Error(f"row {rowid} of the session could not be read (the file is damaged there)")
    flow.timestamp_created = 0.0
    return flow
