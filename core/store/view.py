"""`FlowStore`: the ordered, filtered flow list that the TUI pages through by index.

It has to stay fast at a million flows, so everything the TUI does per keypress is O(1) or O(log n):

- Every flow is kept as one entry, the tuple `(sortkey, seq, flow)`. `seq` is a running insertion
  number, so no two entries compare equal and the flow itself is never compared. The entry is the
  only per-flow object the store makes (plus the int `seq`); `_entries` maps id -> entry.
- `_all` holds every entry in sort order; `_view` holds the visible ones in the same order, and *is*
  `_all` (the same list) while no filter and no "marked only" is set, which costs nothing.
- Adding in time order appends (the common case: flows arrive in time order); anything else is a
  `bisect.insort`. `index(flow)` bisects with the flow's stored entry. Reversing the order only flips
  how indices map onto `_view`, so it is O(1) too.
- Changing the filter or the order walks every flow once; `set_filter` / `set_order` return the
  seconds it took (also kept in `last_refilter_s`) so the UI can show it.

A flow's sort key is computed when it is added or `update()`d; a flow that changes (a response
arrives, it gets marked) must be passed to `update()` to move or appear/disappear. The sort keys and
the sorted-list operations are in `interpose.store.order`; the sliced filter walk in `interpose.store.filtering`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from interpose.flowfilter import Filter, parse
from interpose.store.filtering import matching_in_slices, shows
from interpose.store.order import ORDERS, Entry, discard, find, gc_paused, insert, key_time, sort_key

__all__ = ["ORDERS", "FlowStore", "sort_key"]


# -- the store -------------------------------------------------------------------------------------


class FlowStore:
    """Flows in display order. Indexing and `len()` see only the visible flows; `total` counts all."""

    __slots__ = ("_all", "_entries", "_filter", "_generation", "_keyfn", "_listeners", "_marked_only",
                 "_order", "_reverse", "_seq", "_touched", "_view", "last_refilter_s")

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._all: list[Entry] = []
        self._view: list[Entry] = self._all
        self._seq = 0
        self._order = "time"
        self._keyfn: Callable[[Any], Any] = key_time
        self._reverse = False
        self._filter: Filter | None = None
        self._marked_only = False
        self._listeners: list[Callable[[], None]] = []
        self.last_refilter_s: float = 0.0
        """Seconds the last filter/order change took to walk all flows."""
        self._touched: list[set[str]] = []
        """One set per sliced refilter in progress: ids of flows added, changed or removed meanwhile."""
        self._generation = 0
        """Bumped by changes a sliced refilter cannot reconcile (order, marked-only, a new filter)."""

    # -- change notification ---------------------------------------------------------------------
    def on_change(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call `fn()` after every change. Returns a function that unsubscribes it."""
        self._listeners.append(fn)

        def unsubscribe() -> None:
            if fn in self._listeners:
                self._listeners.remove(fn)

        return unsubscribe

    def _changed(self) -> None:
        for fn in list(self._listeners):
            fn()

    def _touch(self, flow_id: str) -> None:
        for touched in self._touched:
            touched.add(flow_id)

    # -- visibility ------------------------------------------------------------------------------
    def _visible(self, flow: Any) -> bool:
        return shows(flow, self._filter, self._marked_only)

    def _rebuild_view(self) -> float:
        t0 = time.perf_counter()
        flt, entries = self._filter, self._all
        if not self._marked_only:
            self._view = entries if flt is None else [e for e in entries if flt(e[2])]
        elif flt is None:
            self._view = [e for e in entries if getattr(e[2], "marked", False)]
        else:
            self._view = [e for e in entries if getattr(e[2], "marked", False) and flt(e[2])]
        self.last_refilter_s = time.perf_counter() - t0
        return self.last_refilter_s

    # -- adding and removing ---------------------------------------------------------------------
    def add(self, flow: Any) -> None:
        """Add a flow (a flow already here by id is `update()`d instead)."""
        if flow.id in self._entries:
            self.update(flow)
            return
        e: Entry = (self._keyfn(flow), self._seq, flow)
        self._seq += 1
        self._entries[flow.id] = e
        if self._touched:
            self._touch(flow.id)
        insert(self._all, e)
        if self._view is not self._all and self._visible(flow):
            insert(self._view, e)
        self._changed()

    def update(self, flow: Any) -> None:
        """Re-read `flow`: re-evaluate the filter for it and move it if its sort key changed.
        Unknown flows are ignored."""
        old = self._entries.get(flow.id)
        if old is None:
            return
        if self._touched:
            self._touch(flow.id)
        key = self._keyfn(flow)
        separate = self._view is not self._all
        visible = self._visible(flow) if separate else True
        if old[2] is flow and key == old[0]:
            if separate:
                i = find(self._view, old)
                if visible and i is None:
                    insert(self._view, old)
                elif not visible and i is not None:
                    del self._view[i]
        else:  # new key (or a new object under the same id): a new entry in the same tie position
            new: Entry = (key, old[1], flow)
            self._entries[flow.id] = new
            discard(self._all, old)
            insert(self._all, new)
            if separate:
                discard(self._view, old)
                if visible:
                    insert(self._view, new)
        self._changed()

    def remove(self, flow: Any) -> None:
        """Forget a flow (no error if it is not here)."""
        e = self._entries.pop(flow.id, None)
        if e is None:
            return
        if self._touched:
            self._touch(flow.id)
        discard(self._all, e)
        if self._view is not self._all:
            discard(self._view, e)
        self._changed()

    def clear(self) -> None:
        """Forget every flow."""
        self._entries.clear()
        self._all = []
        self._view = [] if self._filter is not None or self._marked_only else self._all
        self._changed()

    def delete_matching(self, expr: str | Callable[[Any], bool]) -> int:
        """Remove every flow (visible or not) matching a filter expression or predicate.
        Returns how many were removed. A bad expression raises FilterError and removes nothing."""
        pred = parse(expr) if isinstance(expr, str) else expr
        keep: list[Entry] = []
        removed = 0
        for e in self._all:
            if pred(e[2]):
                del self._entries[e[2].id]
                removed += 1
            else:
                keep.append(e)
        if not removed:
            return 0
        entries = self._entries
        was_all = self._view is self._all
        self._all = keep
        self._view = keep if was_all else [e for e in self._view if entries.get(e[2].id) is e]
        self._changed()
        return removed

    # -- lookup ------------------------------------------------------------------------------------
    def get(self, flow_id: str) -> Any | None:
        e = self._entries.get(flow_id)
        return e[2] if e is not None else None

    def __contains__(self, flow: object) -> bool:
        return getattr(flow, "id", None) in self._entries

    @property
    def total(self) -> int:
        """How many flows the store holds, visible or not."""
        return len(self._entries)

    def __len__(self) -> int:
        """How many flows are visible."""
        return len(self._view)

    def __getitem__(self, i: int) -> Any:
        """The i-th visible flow in the current order (negative indices count from the end)."""
        return self._entry_at(i)[2]

    def _entry_at(self, i: int) -> Entry:
        """The entry of the i-th visible flow, the order's direction applied."""
        n = len(self._view)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"flow index {i} out of range (0..{n - 1})")
        return self._view[n - 1 - i if self._reverse else i]

    def index(self, flow: Any) -> int | None:
        """Position of `flow` among the visible flows, or None if it is hidden or not here. O(log n)."""
        e = self._entries.get(flow.id)
        if e is None:
            return None
        i = find(self._view, e)
        if i is None:
            return None
        return len(self._view) - 1 - i if self._reverse else i

    def __iter__(self) -> Iterator[Any]:
        """The visible flows in the current order. Don't change the store while iterating."""
        view = reversed(self._view) if self._reverse else iter(self._view)
        return (e[2] for e in view)

    def all_flows(self) -> Iterator[Any]:
        """Every flow, visible or not, in the current order."""
        view = reversed(self._all) if self._reverse else iter(self._all)
        return (e[2] for e in view)

    def marked(self) -> list[Any]:
        """Every marked flow, visible or not, in the current order."""
        return [f for f in self.all_flows() if getattr(f, "marked", False)]

    # -- filter ------------------------------------------------------------------------------------
    @property
    def filter_expr(self) -> str | None:
        """The view filter's source text, or None when every flow is shown."""
        return self._filter.expr if self._filter is not None else None

    def set_filter(self, expr: str | None) -> float:
        """Show only flows matching `expr` (None or blank: all). A bad expression raises FilterError
        and keeps the old filter. Returns the seconds it took to walk all flows."""
        flt = parse(expr) if expr is not None and expr.strip() else None
        self._filter = flt
        self._generation += 1
        elapsed = self._rebuild_view()
        self._changed()
        return elapsed

    def _filter_change(self, expr: str | None) -> tuple[Filter | None, float, int]:
        """A filter change begins: its parsed filter (a bad one raises first), its start and its generation,
        which overtakes any change still running."""
        flt = parse(expr) if expr is not None and expr.strip() else None
        self._generation += 1
        return flt, time.perf_counter(), self._generation

    async def set_filter_sliced(self, expr: str | None, progress: Callable[[int, int], None] | None = None,
                                slice_s: float = 0.02) -> float:
        """`set_filter` for a big store, without stopping the event loop: the flows are walked in slices of
        about `slice_s` seconds with the loop given back in between, and `progress(done, total)` is called
        after each. The old view stays until the new one is complete; flows added, changed or removed
        meanwhile are re-read at the end. Cancelled, or overtaken by another filter, order or marked-only
        change, it leaves the store as that change made it. Returns the seconds it took."""
        flt, t0, generation = self._filter_change(expr)
        if flt is None and not self._marked_only:
            return self.set_filter(None)
        marked_only = self._marked_only
        touched: set[str] = set()
        self._touched.append(touched)
        try:
            matched = await matching_in_slices(list(self._all), flt, marked_only, slice_s, progress,
                                               lambda: self._generation != generation)
        finally:
            self._touched.remove(touched)
        if matched is None:
            return time.perf_counter() - t0  # overtaken: the newer change decides the view
        entries = self._entries
        view = [e for e in matched if entries.get(e[2].id) is e]  # drops flows removed meanwhile
        for flow_id in touched:
            e = entries.get(flow_id)
            if e is None:
                continue
            shown = shows(e[2], flt, marked_only)
            i = find(view, e)
            if shown and i is None:
                insert(view, e)
            elif not shown and i is not None:
                del view[i]
        self._filter = flt
        self._view = view
        self.last_refilter_s = time.perf_counter() - t0
        self._changed()
        return self.last_refilter_s

    @property
    def show_marked_only(self) -> bool:
        """Show only marked flows (on top of the filter)."""
        return self._marked_only

    @show_marked_only.setter
    def show_marked_only(self, value: bool) -> None:
        self.set_marked_only(value)

    marked_only = show_marked_only

    def set_marked_only(self, value: bool) -> None:
        value = bool(value)
        if value == self._marked_only:
            return
        self._marked_only = value
        self._generation += 1
        t0 = time.perf_counter()
        if value:  # narrowing: only the flows shown now can stay
            self._view = [e for e in self._view if getattr(e[2], "marked", False)]
            self.last_refilter_s = time.perf_counter() - t0
        else:
            self._rebuild_view()
        self._changed()

    # -- order -------------------------------------------------------------------------------------
    @property
    def order(self) -> str:
        return self._order

    def set_order(self, order: str) -> float:
        """Sort by one of ORDERS. Returns the seconds it took."""
        if order not in ORDERS:
            raise ValueError(f"unknown order {order!r}; one of: {', '.join(ORDERS)}")
        t0 = time.perf_counter()
        if order != self._order:
            self._generation += 1
            keyfn = self._keyfn = ORDERS[order]
            self._order = order
            was_all = self._view is self._all
            shown = None if was_all else {e[1] for e in self._view}
            with gc_paused():
                new_all = [(keyfn(e[2]), e[1], e[2]) for e in self._all]
                new_all.sort()
                entries = self._entries
                for e in new_all:
                    entries[e[2].id] = e
            self._all = new_all
            self._view = new_all if shown is None else [e for e in new_all if e[1] in shown]
        self.last_refilter_s = time.perf_counter() - t0
        self._changed()
        return self.last_refilter_s

    @property
    def reverse(self) -> bool:
        """Show the order back to front (O(1); unknown durations then come first)."""
        return self._reverse

    @reverse.setter
    def reverse(self, value: bool) -> None:
        self.set_reverse(value)

    def set_reverse(self, value: bool) -> None:
        self._reverse = bool(value)
        self._changed()

    def __repr__(self) -> str:
        return f"<FlowStore {len(self)}/{self.total} flows, order={self._order}{' reversed' if self._reverse else ''}>"
