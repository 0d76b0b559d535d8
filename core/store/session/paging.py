"""`PagedFlowStore`: the flow list (`FlowStore`'s interface, unchanged for the TUI) paging from a session.

Without a session it is a `FlowStore`. Once `attach(session)` is called:

- Every entry stays `(sortkey, seq, ref)` in sort order, but `ref` is either a Flow (a *resident* flow:
  live, held, changed by the user and not yet recorded, or new) or, for a flow that lives only in the
  session, its rowid (a *compact* entry: `(key, rowid, rowid)`, no Flow object). Compact entries are
  built from an SQL query over the list columns, so reopening a session makes no Flow objects at all.
- A compact flow is loaded from the session when the list draws it or someone asks for it, and kept in
  a small LRU cache (`CACHE`). `update(flow)` of such a flow makes it resident again.
- Resident flows that are finished (not live, not held) and recorded as they are (the session's row has
  their mark and comment) are made compact again once there are more than `RESIDENT` of them.
- The order and the view filter are SQL queries (pagesql.py) merged with the resident flows; a filter
  the columns cannot answer loads the flows, in slices when applied with `set_filter_sliced`.

A compact entry is found again by its values (SQL gives the key and rowid of an id), never by identity.
"""
from __future__ import annotations

import asyncio
import bisect
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from interpose.flowfilter import Filter, parse
from interpose.store.filtering import shows
from interpose.store.order import ORDERS, Entry, find, gc_paused, insert
from interpose.store.session.pagesql import Reader, to_sql
from interpose.store.view import FlowStore

__all__ = ["CACHE", "RESIDENT", "PagedFlowStore"]

CACHE = 512
"""Compact flows kept loaded (what is on screen and around it)."""
RESIDENT = 1000
"""Above this many resident flows, the recorded and finished ones are made compact."""
_LIVE_SEQ = 1 << 48
"""Resident flows added live get seq numbers from here: after every rowid, ties in arrival order."""


def _find(lst: list[Entry], key: Any, seq: int) -> int | None:
    i = bisect.bisect_left(lst, (key, seq))
    return i if i < len(lst) and lst[i][0] == key and lst[i][1] == seq else None


class PagedFlowStore(FlowStore):
    __slots__ = ("_cache", "_gone", "_reader", "_since_compact")

    def __init__(self) -> None:
        super().__init__()
        self._seq = _LIVE_SEQ
        self._reader: Reader | None = None
        self._cache: OrderedDict[int, Any] = OrderedDict()
        self._gone: set[int] = set()
        """Rowids of compact flows removed here (the session marks them deleted a moment later)."""
        self._since_compact = 0

    @property
    def paging(self) -> bool:
        """Whether the list pages from a session."""
        return self._reader is not None

    # -- attaching ---------------------------------------------------------------------------------------
    def attach(self, session: Any) -> None:
        """Page from `session` (a `Session`, or None for nothing): its flows join the list as compact entries."""
        if session is None or self._reader is not None:
            return
        self._reader = Reader(session.path)
        self._rebuild_all()
        self._rebuild_view()
        self._changed()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    # -- flows from entries ------------------------------------------------------------------------------
    def _flow(self, e: Entry) -> Any:
        ref = e[2]
        if not isinstance(ref, int):
            return ref
        flow = self._cache.get(ref)
        if flow is not None:
            self._cache.move_to_end(ref)
            return flow
        assert self._reader is not None
        flow = self._reader.load(ref)
        if flow is not None:
            self._cache[ref] = flow
            if len(self._cache) > CACHE:
                self._cache.popitem(last=False)
        return flow

    def _compact_entry(self, flow_id: str) -> Entry | None:
        """The compact entry of a flow the session holds and that is not resident here."""
        if self._reader is None or flow_id in self._entries:
            return None
        found = self._reader.lookup(flow_id, self._order)
        if found is None or found[0] in self._gone:
            return None
        return (found[1], found[0], found[0])

    def _resident_rowids(self) -> set[int]:
        """Rowids of the resident flows the session holds (their rows are not listed twice)."""
        assert self._reader is not None
        out = {e[1] for e in self._entries.values() if e[1] < _LIVE_SEQ}
        live = [fid for fid, e in self._entries.items() if e[1] >= _LIVE_SEQ]
        out.update(r[0] for r in self._reader.recorded(live).values())
        return out | self._gone

    def _merge(self, compact: list[Any], flt: Filter | None, marked_only: bool) -> list[Entry]:
        """Compact entries from SQL (list order) with the resident flows `flt` shows, in one sorted list."""
        skip = self._resident_rowids()
        keyfn = self._keyfn
        with gc_paused():
            out: list[Entry] = [e for e in compact if e[1] not in skip] if skip else compact
            resident = [(keyfn(e[2]), e[1], e[2]) for e in self._entries.values() if shows(e[2], flt, marked_only)]
            if resident:
                out.extend(resident)
                out.sort(key=lambda e: (e[0], e[1]))
        return out

    def _rebuild_all(self) -> None:
        assert self._reader is not None
        self._all = self._merge(self._reader.keyed(self._order), None, False)
        self._keep_entries()

    def _keep_entries(self) -> None:
        for e in self._all:
            if not isinstance(e[2], int):
                self._entries[e[2].id] = e

    def _rebuild_view(self) -> float:
        if self._reader is None:
            return super()._rebuild_view()
        t0 = time.perf_counter()
        if self._filter is None and not self._marked_only:
            self._view = self._all
        else:
            sql = to_sql(self._filter, self._marked_only)
            if sql is not None:
                self._view = self._merge(self._reader.keyed(self._order, *sql), self._filter, self._marked_only)
            else:
                self._view = [e for e in self._all if shows(self._flow(e), self._filter, self._marked_only)]
        self.last_refilter_s = time.perf_counter() - t0
        return self.last_refilter_s

    # -- adding, changing and removing -------------------------------------------------------------------
    def add(self, flow: Any) -> None:
        if self._reader is not None and self._compact_entry(flow.id) is not None:
            self.update(flow)
            return
        super().add(flow)
        self._since_compact += 1
        if self._reader is not None and self._since_compact >= 64 and len(self._entries) > RESIDENT:
            self.compact()

    def update(self, flow: Any) -> None:
        old = self._compact_entry(flow.id)
        if old is None:
            super().update(flow)
            return
        self._cache.pop(old[1], None)
        new: Entry = (self._keyfn(flow), old[1], flow)
        self._entries[flow.id] = new
        for lst in [self._all] if self._view is self._all else [self._all, self._view]:
            i = _find(lst, old[0], old[1])
            if i is not None:
                del lst[i]
            if lst is self._all or self._visible(flow):
                insert(lst, new)
        self._changed()

    def remove(self, flow: Any) -> None:
        old = self._compact_entry(flow.id)
        if old is None:
            super().remove(flow)
            return
        self._gone.add(old[1])
        self._cache.pop(old[1], None)
        for lst in [self._all] if self._view is self._all else [self._all, self._view]:
            i = _find(lst, old[0], old[1])
            if i is not None:
                del lst[i]
        self._changed()

    def clear(self) -> None:
        if self._reader is not None:
            self._gone.update(e[1] for e in self._all if isinstance(e[2], int))
            self._cache.clear()
        super().clear()

    def delete_matching(self, expr: str | Callable[[Any], bool]) -> int:
        if self._reader is None:
            return super().delete_matching(expr)
        pred = parse(expr) if isinstance(expr, str) else expr
        gone = [self._flow(e) for e in self._all]
        gone = [f for f in gone if f is not None and pred(f)]
        for flow in gone:
            self.remove(flow)
        return len(gone)

    def compact(self) -> int:
        """Make the resident flows that are finished, not held and recorded as they are compact again (the
        oldest first, down to half of `RESIDENT`). Returns how many."""
        self._since_compact = 0
        if self._reader is None or len(self._entries) <= RESIDENT:
            return 0
        excess = len(self._entries) - RESIDENT // 2
        candidates = [e for e in sorted(self._entries.values(), key=lambda e: e[1])
                      if not getattr(e[2], "live", False) and not getattr(e[2], "intercepted", False)]
        found = self._reader.recorded([e[2].id for e in candidates[:excess * 2]])
        done = 0
        for e in candidates:
            if done >= excess:
                break
            flow = e[2]
            row = found.get(flow.id)
            if row is None or row[1] != int(bool(flow.marked)) or row[2] != (getattr(flow, "comment", "") or ""):
                continue  # not recorded yet, or recorded before its last change
            rowid = row[0]
            compact = (e[0], rowid, rowid)
            for lst in [self._all] if self._view is self._all else [self._all, self._view]:
                i = find(lst, e)
                if i is not None:
                    del lst[i]
                    insert(lst, compact)
            del self._entries[flow.id]
            done += 1
        return done

    # -- lookup ------------------------------------------------------------------------------------------
    def get(self, flow_id: str) -> Any | None:
        e = self._entries.get(flow_id)
        if e is not None:
            return e[2]
        compact = self._compact_entry(flow_id)
        return self._flow(compact) if compact is not None else None

    def __contains__(self, flow: object) -> bool:
        flow_id = getattr(flow, "id", None)
        return isinstance(flow_id, str) and self.get(flow_id) is not None

    @property
    def total(self) -> int:
        return len(self._all) if self._reader is not None else len(self._entries)

    def __getitem__(self, i: int) -> Any:
        return self._flow(self._entry_at(i))

    def index(self, flow: Any) -> int | None:
        e = self._entries.get(flow.id)
        if e is not None:
            i = find(self._view, e)
        else:
            compact = self._compact_entry(flow.id)
            i = None if compact is None else _find(self._view, compact[0], compact[1])
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
        marked = self._reader.rowids("deleted = 0 AND marked = 1", db=self._reader.db)
        entries = reversed(self._all) if self._reverse else iter(self._all)
        chosen = [e for e in entries if (e[2] in marked if isinstance(e[2], int) else getattr(e[2], "marked", False))]
        return [f for f in map(self._flow, chosen) if f is not None]

    # -- filter, marked only, order ------------------------------------------------------------------------
    async def set_filter_sliced(self, expr: str | None, progress: Callable[[int, int], None] | None = None,
                                slice_s: float = 0.02) -> float:
        """The filter runs on a worker thread when SQL answers it, else in slices over loaded flows; the
        list keeps answering keys meanwhile and shows the old view until the new one is complete."""
        if self._reader is None:
            return await super().set_filter_sliced(expr, progress, slice_s)
        flt = parse(expr) if expr is not None and expr.strip() else None
        t0 = time.perf_counter()
        self._generation += 1
        generation = self._generation
        if flt is None and not self._marked_only:
            return self.set_filter(None)
        marked_only, order = self._marked_only, self._order
        sql = to_sql(flt, marked_only)
        compact: list[Any] | None
        if sql is not None:
            reader = self._reader
            compact = await asyncio.get_running_loop().run_in_executor(None, lambda: reader.keyed(order, *sql))
        else:
            compact = await self._walk(flt, marked_only, slice_s, progress, generation)
        if compact is None or self._generation != generation or self._reader is None:
            return time.perf_counter() - t0  # overtaken: the newer change decides the view
        self._filter = flt
        self._view = self._merge(compact, flt, marked_only)
        self.last_refilter_s = time.perf_counter() - t0
        self._changed()
        return self.last_refilter_s

    async def _walk(self, flt: Filter | None, marked_only: bool, slice_s: float,
                    progress: Callable[[int, int], None] | None, generation: int) -> list[Entry] | None:
        """The compact entries whose flows the filter shows, loaded and tested in slices of `slice_s`."""
        assert self._reader is not None
        entries = [e for e in self._all if isinstance(e[2], int)]
        load, out, i, n = self._reader.load, [], 0, len(entries)
        while i < n:
            deadline = time.perf_counter() + slice_s
            while i < n and time.perf_counter() < deadline:
                e = entries[i]
                i += 1
                flow = load(e[1])
                if flow is not None and shows(flow, flt, marked_only):
                    out.append(e)
            if progress is not None:
                progress(i, n)
            await asyncio.sleep(0)
            if self._generation != generation:
                return None
        return out

    def set_marked_only(self, value: bool) -> None:
        if self._reader is None:
            super().set_marked_only(value)
            return
        value = bool(value)
        if value != self._marked_only:
            self._marked_only = value
            self._generation += 1
            self._rebuild_view()
            self._changed()

    def set_order(self, order: str) -> float:
        if self._reader is None:
            return super().set_order(order)
        if order not in ORDERS:
            raise ValueError(f"unknown order {order!r}; one of: {', '.join(ORDERS)}")
        t0 = time.perf_counter()
        if order != self._order:
            self._generation += 1
            self._keyfn = ORDERS[order]
            self._order = order
            self._rebuild_all()
            self._rebuild_view()
        self.last_refilter_s = time.perf_counter() - t0
        self._changed()
        return self.last_refilter_s

    async def set_order_sliced(self, order: str) -> float:
        """`set_order` with the SQL sort on a worker thread: the list keeps answering keys and shows the old
        order until the new one is complete. Overtaken by another order or filter change, it does nothing."""
        if self._reader is None or order == self._order:
            return self.set_order(order)
        if order not in ORDERS:
            raise ValueError(f"unknown order {order!r}; one of: {', '.join(ORDERS)}")
        t0 = time.perf_counter()
        self._generation += 1
        generation, reader = self._generation, self._reader
        flt, marked_only = self._filter, self._marked_only
        sql = to_sql(flt, marked_only) if flt is not None or marked_only else None
        loop = asyncio.get_running_loop()
        compact = await loop.run_in_executor(None, lambda: reader.keyed(order))
        shown = await loop.run_in_executor(None, lambda: reader.keyed(order, *sql)) if sql is not None else None
        if self._generation != generation or self._reader is None:
            return time.perf_counter() - t0
        self._keyfn, self._order = ORDERS[order], order
        self._all = self._merge(compact, None, False)
        self._keep_entries()
        if shown is not None:
            self._view = self._merge(shown, flt, marked_only)
        else:
            self._rebuild_view()
        self.last_refilter_s = time.perf_counter() - t0
        self._changed()
        return self.last_refilter_s

    # -- global search -------------------------------------------------------------------------------------
    def search_candidates(self, text: str, limit: int = 10_000) -> list[Any] | None:
        """The visible flows (list order) that may contain `text`: those the search index finds, the resident
        ones and those recorded after the index was last brought up to date. None when the index cannot
        answer (no session, or text shorter than three characters: the index is by trigrams)."""
        if self._reader is None or len(text) < 3:
            return None
        found, indexed = self._reader.search(text, limit)
        view = reversed(self._view) if self._reverse else iter(self._view)
        chosen = [e for e in view if not isinstance(e[2], int) or e[1] in found or e[1] > indexed]
        return [f for f in map(self._flow, chosen) if f is not None]
