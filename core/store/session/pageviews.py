"""`PagedViews`: the state of the paging flow list (paging.py) and what rebuilds its lists: attaching to a
session, the order and the view filter as SQL queries (pagesql.py) merged with the resident flows, a filter
the columns cannot answer walked over loaded flows, and following a session another process records into.

The list and the view are `Merged` lists (pageindex.py): the rowids of the compact flows, 4 bytes each, in the
order SQL gives them, with the resident entries merged in by position. The resident entries' keys are
Python's (`ORDERS`), the compact rows' keys the session's (`pagesql.KEY_COLUMNS`, the same values), read by
rowid when a binary search needs them and cached (`KEYS`).

Following (`poll`, `follow`): `PRAGMA data_version` says cheaply whether another connection committed; the
rows written since the last poll (`seq`) then join as compact rows, in the view too when the filter shows
them, and rows deleted or changed there leave (and come back changed).
"""
from __future__ import annotations

import asyncio
import itertools
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from interpose.flowfilter import Filter
from interpose.store.filtering import shows
from interpose.store.order import ORDERS
from interpose.store.session.fenced import FencedRows
from interpose.store.session.pageindex import Merged
from interpose.store.session.pagesql import Reader, to_sql
from interpose.store.view import FlowStore

__all__ = ["CACHE", "KEYS", "LIVE_SEQ", "PagedViews"]

CACHE = 512
"""Compact flows kept loaded (what is on screen and around it)."""
KEYS = 8192
"""Sort keys of compact rows kept (read by rowid for binary searches: the top levels are shared)."""
LIVE_SEQ = 1 << 48
"""Resident flows added live get seq numbers from here: after every rowid, ties in arrival order."""
FOLLOW_S = 0.25
"""How often `follow` polls."""
_MISSING = object()


class PagedViews(FlowStore):
    __slots__ = ("_building", "_cache", "_floor", "_follow", "_gone", "_keys", "_meanwhile", "_reader",
                 "_since_compact")

    def __init__(self) -> None:
        super().__init__()
        self._seq = LIVE_SEQ
        self._reader: Reader | None = None
        self._cache: OrderedDict[int, Any] = OrderedDict()
        self._keys: dict[int, Any] = {}
        self._gone: set[int] = set()
        """Rowids of compact flows removed here (the session marks them deleted a moment later)."""
        self._floor = 0
        """`clear()` forgot every row up to this rowid."""
        self._since_compact = 0
        self._building = 0
        """Rebuilds waiting for a worker thread or a slow walk: no compaction meanwhile."""
        self._follow = (-1, 0, 0)
        """(data_version, seq, rowid) seen by the last `poll`."""
        self._meanwhile: list[int] = []
        """Rows `poll` added while a rebuild was waiting (the rebuilt lists may lack them)."""

    @property
    def paging(self) -> bool:
        """Whether the list pages from a session."""
        return self._reader is not None

    # -- attaching ---------------------------------------------------------------------------------------
    def attach(self, session: Any) -> None:
        """Page from `session` (a `Session` or a session file's path; None for nothing): its flows join the
        list as compact rows."""
        if session is None or self._reader is not None:
            return
        reader = Reader(session if isinstance(session, str) else session.path)
        try:  # a file that cannot be read leaves the store as it was (sqlite3.Error)
            self._follow = (reader.data_version(), reader.top_seq(), reader.top_rowid())
            rows = reader.fenced(self._floor) if self._order == "time" else reader.ordered(self._order, self._where())
        except BaseException:
            reader.close()
            raise
        self._reader = reader
        self._set(all_=self._merged(rows, None, False))
        self._rebuild_view()
        self._changed()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    @property
    def _pall(self) -> Merged:
        """`_all` once attached (a `FlowStore` list before)."""
        return self._all  # type: ignore[return-value]

    @property
    def _pview(self) -> Merged:
        return self._view  # type: ignore[return-value]

    def _set(self, all_: Merged | None = None, view: Merged | None = None) -> None:
        """Put new lists in place (`_all` and `_view` are declared as `FlowStore`'s Python lists)."""
        if all_ is not None:
            self._all = all_  # type: ignore[assignment]
        if view is not None:
            self._view = view  # type: ignore[assignment]

    # -- keys, flows, lists ------------------------------------------------------------------------------
    def _where(self, where: str = "deleted = 0") -> str:
        return f"{where} AND rowid > {self._floor}" if self._floor else where

    def _key(self, rowid: int) -> Any:
        """The sort key of a compact row in the current order (from the session, cached)."""
        keys = self._keys
        k = keys.get(rowid, _MISSING)
        if k is _MISSING:
            assert self._reader is not None
            k = self._reader.key(self._order, rowid)
            if len(keys) >= KEYS:
                keys.clear()
            keys[rowid] = k
        return k

    def _flow(self, e: Any) -> Any:
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

    def _lists(self) -> list[Any]:
        return [self._all] if self._view is self._all else [self._all, self._view]

    def _lookup(self, flow_id: str) -> tuple[Any, int] | None:
        """(key, rowid) of a compact flow: one the session holds, not resident here and not removed."""
        if self._reader is None or flow_id in self._entries:
            return None
        found = self._reader.lookup(flow_id, self._order)
        if found is None or found[0] in self._gone or found[0] <= self._floor:
            return None
        return found[1], found[0]

    def _resident_rowids(self) -> set[int]:
        """Rowids of the resident flows the session holds (their rows are not listed twice), and removed ones."""
        assert self._reader is not None
        out = {e[1] for e in self._entries.values() if e[1] < LIVE_SEQ}
        live = [fid for fid, e in self._entries.items() if e[1] >= LIVE_SEQ]
        out.update(r[0] for r in self._reader.recorded(live).values())
        return out | self._gone

    def _merged(self, rows: array[int] | FencedRows, flt: Filter | None, marked_only: bool,
                skipped: set[int] | frozenset[int] = frozenset()) -> Merged:
        """A list of the compact `rows` (list order; those in `skipped` already left out) but the resident
        ones, with the resident flows `flt` shows merged in."""
        skip = self._resident_rowids() - skipped
        if isinstance(rows, FencedRows):
            skip -= rows.exclude
            if skip:  # resident since the fences were built (rare: a pass over every block)
                rows.drop(skip)
        elif skip:
            rows = array(rows.typecode, itertools.filterfalse(skip.__contains__, rows))
        m = Merged(rows, self._key)
        m.res = sorted((e for e in self._entries.values() if shows(e[2], flt, marked_only)), key=lambda e: e[:2])
        lo = 0
        for e in m.res:
            lo = m.cpos(e[0], e[1], lo)
            m.pos.append(lo)
        return m

    def _listing(self, order: str, where: str, skip: set[int] | frozenset[int] = frozenset()
                 ) -> array[int] | FencedRows:
        """The whole list's compact rows in `order`: fences in time order (its memory does not grow with the
        flows: fenced.py), else an array of every rowid. Runs on `bg` (call it off the UI thread)."""
        assert self._reader is not None
        if order == "time":
            return self._reader.fenced(self._floor, skip)
        return self._reader.ordered(order, where, (), skip)

    def _rekey(self) -> None:
        """The resident entries' keys in the (new) current order; the compact rows' keys are read again."""
        self._keys.clear()
        keyfn = self._keyfn
        for fid, e in self._entries.items():
            self._entries[fid] = (keyfn(e[2]), e[1], e[2])

    def _rebuild_view(self) -> float:
        if self._reader is None:
            return super()._rebuild_view()
        t0 = time.perf_counter()
        flt, marked_only = self._filter, self._marked_only
        if flt is None and not marked_only:
            self._set(view=self._pall)
        else:
            sql = to_sql(flt, marked_only)
            if sql is not None:
                rows = self._reader.ordered(self._order, self._where(sql[0]), sql[1])
            else:
                load = self._reader.load
                every = self._pall.rows
                rows = array(every.typecode, (r for r in every if shows(load(r), flt, marked_only)))
            self._set(view=self._merged(rows, flt, marked_only))
        self.last_refilter_s = time.perf_counter() - t0
        return self.last_refilter_s

    # -- filter, marked only, order ------------------------------------------------------------------------
    async def set_filter_sliced(self, expr: str | None, progress: Callable[[int, int], None] | None = None,
                                slice_s: float = 0.02) -> float:
        """The filter runs on a worker thread when SQL answers it, else in slices over loaded flows; the
        list keeps answering keys meanwhile and shows the old view until the new one is complete."""
        if self._reader is None:
            return await super().set_filter_sliced(expr, progress, slice_s)
        flt, t0, generation = self._filter_change(expr)
        if flt is None and not self._marked_only:
            return self.set_filter(None)
        marked_only, order = self._marked_only, self._order
        sql = to_sql(flt, marked_only)
        skip: set[int] = set()
        rows: array[int] | None
        self._building += 1
        try:
            if sql is not None:
                reader, where, skip = self._reader, self._where(sql[0]), self._resident_rowids()
                rows = await asyncio.get_running_loop().run_in_executor(
                    None, lambda: reader.ordered(order, where, sql[1], skip))
            else:
                rows = await self._walk(flt, marked_only, slice_s, progress, generation)
        finally:
            self._building -= 1
        if rows is None or self._generation != generation or self._reader is None:
            return time.perf_counter() - t0  # overtaken: the newer change decides the view
        self._filter = flt
        self._set(view=self._merged(rows, flt, marked_only, skip))
        self._caught_up()
        self.last_refilter_s = time.perf_counter() - t0
        self._changed()
        return self.last_refilter_s

    async def _walk(self, flt: Filter | None, marked_only: bool, slice_s: float,
                    progress: Callable[[int, int], None] | None, generation: int) -> array[int] | None:
        """The compact rows whose flows the filter shows, loaded and tested in slices of `slice_s`."""
        assert self._reader is not None
        rows = array(self._pall.rows.typecode, self._pall.rows)
        load, out, i, n = self._reader.load, array(rows.typecode), 0, len(rows)
        while i < n:
            deadline = time.perf_counter() + slice_s
            while i < n and time.perf_counter() < deadline:
                r = rows[i]
                i += 1
                flow = load(r)
                if flow is not None and shows(flow, flt, marked_only):
                    out.append(r)
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
            self._rekey()
            self._set(all_=self._merged(self._listing(order, self._where()), None, False))
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
        where, skip = self._where(), self._resident_rowids()
        shown_where = self._where(sql[0]) if sql is not None else ""
        self._building += 1
        try:
            rows = await loop.run_in_executor(None, lambda: self._listing(order, where, skip))
            shown = await loop.run_in_executor(
                None, lambda: reader.ordered(order, shown_where, sql[1], skip)) if sql is not None else None
        finally:
            self._building -= 1
        if self._generation != generation or self._reader is None:
            return time.perf_counter() - t0
        self._keyfn, self._order = ORDERS[order], order
        self._rekey()
        self._set(all_=self._merged(rows, None, False, skip))
        if shown is not None:
            self._set(view=self._merged(shown, flt, marked_only, skip))
        else:
            self._rebuild_view()
        self._caught_up()
        self.last_refilter_s = time.perf_counter() - t0
        self._changed()
        return self.last_refilter_s


    # -- following a session another process records into --------------------------------------------------
    def poll(self) -> int:
        """Take in what another process recorded into the session since the last poll: new rows join as
        compact flows, rows deleted there leave, changed ones are listed again. Returns how many rows."""
        reader = self._reader
        if reader is None:
            return 0
        version, top, last = self._follow
        now = reader.data_version()
        if now == version:
            return 0
        changes = reader.changed_since(top, self._order)
        added: list[tuple[Any, int]] = []
        for seq, rowid, flow_id, deleted, key in changes:
            top = max(top, seq)
            if flow_id in self._entries or rowid in self._gone or rowid <= self._floor:
                continue
            self._cache.pop(rowid, None)
            self._keys.pop(rowid, None)
            if rowid <= last:  # changed (or deleted) there: out first, wherever its old key put it
                for m in self._lists():
                    m.remove_row(key, rowid, exact=False)
            if not deleted:
                added.append((key, rowid))
        self._follow = (now, top, max([last, *(r for _, r in added)]))
        self._add_rows(added)
        if self._building:
            self._meanwhile.extend(r for _, r in added)
        if changes:
            self._changed()
        return len(changes)

    async def follow(self, interval: float = FOLLOW_S) -> None:
        """`poll` every `interval` seconds, until cancelled (the TUI's `-r SESSION`)."""
        while True:
            await asyncio.sleep(interval)
            self.poll()

    def _add_rows(self, rows: list[tuple[Any, int]]) -> None:
        """List these compact (key, rowid) rows, in the view too where the filter shows them (once)."""
        if not rows or self._reader is None:
            return
        for key, rowid in rows:
            self._keys[rowid] = key
        self._pall.add_rows([(k, r) for k, r in rows if self._pall.find_row(k, r) is None])
        if self._view is self._all:
            return
        flt, marked_only = self._filter, self._marked_only
        sql = to_sql(flt, marked_only)
        if sql is not None:
            ids = ",".join(str(r) for _, r in rows)
            shown = {r for _, r in self._reader.keyed(self._order, f"{sql[0]} AND rowid IN ({ids})", sql[1])}
        else:
            shown = {r for _, r in rows if shows(self._reader.load(r), flt, marked_only)}
        self._pview.add_rows([(k, r) for k, r in rows if r in shown and self._pview.find_row(k, r) is None])

    def _caught_up(self) -> None:
        """After a rebuild: the rows `poll` added while it waited, where the new lists lack them."""
        rows, self._meanwhile = self._meanwhile, []
        if rows and not self._building:
            self._add_rows([(self._key(r), r) for r in rows])
