"""`Merged`: one sorted list of the paging flow list (paging.py), 4 bytes a flow.

A paging list is, in sort order, the *compact* flows (only in the session: their rowids, in an `array('I')`,
4 bytes a flow, or `array('q')` for a file whose rowids pass 2**32 (`rowid_array`), in the order SQL gave
them, `ORDER BY key, rowid`) with a few *resident* entries `(key, seq, flow)` merged in. No key is kept for
a compact flow: where one is needed (to place a resident flow, to find a compact one) it is read from the
session by rowid (`keyof`), so a binary search costs about log2(n) point queries, most of them cached. Each
resident entry remembers how many compact rows sort before it (`pos`), so the i-th element is found by a
binary search over the residents (a few hundred) and one array index.

A compact row compares as `(key, rowid)`, a resident entry as `(key, seq)`; a resident flow that is also in
the session has its rowid as seq, so the two orders agree. Keys must not change while a row is listed
(the session's sort columns do not change once a flow is recorded); `find_row(..., exact=False)` falls back
to a linear scan for a caller that knows a row changed.
"""
from __future__ import annotations

import bisect
import itertools
from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from interpose.store.order import Entry
from interpose.store.session.fenced import FencedRows, before

__all__ = ["Merged", "rowid_array"]

WIDE = 1 << 32
"""Rowids from here on need 8 bytes (`array('q')`); below, 4 (`array('I')`): every session short of four
billion recorded flows."""


def rowid_array(top: int = 0, items: Iterable[int] = ()) -> array[int]:
    """An array for rowids up to `top` (the file's largest): 4 bytes each when they fit, else 8."""
    return array("I" if top < WIDE else "q", items)


class Merged:
    """A sorted list of compact rowids and resident entries; `m[i]` is an entry, `(None, rowid, rowid)` for a
    compact flow. `rows` may be replaced by a wider array (`_widen`): hold the `Merged`, not its `rows`."""

    __slots__ = ("_placing", "keyof", "pos", "res", "rows")

    def __init__(self, rows: array[int] | FencedRows, keyof: Callable[[int], Any]) -> None:
        self.rows = rows
        self.keyof = keyof
        self.res: list[Entry] = []
        self.pos: list[int] = []
        """pos[j]: how many compact rows sort before res[j] (never decreasing)."""
        self._placing = False
        if isinstance(rows, FencedRows):
            rows.on_shift = self.place_residents

    @property
    def fenced(self) -> bool:
        """Whether the compact rows are fences read back from the session (fenced.py), not an array."""
        return isinstance(self.rows, FencedRows)

    def place_residents(self) -> None:
        """Count again the compact rows before each resident entry (the rows changed behind the list)."""
        if self._placing:
            return
        self._placing = True
        try:
            lo, pos = 0, []
            for e in self.res:
                lo = self.cpos(e[0], e[1], lo)
                pos.append(lo)
            self.pos = pos
        finally:
            self._placing = False

    def __len__(self) -> int:
        return len(self.rows) + len(self.res)

    def _residents_before(self, i: int) -> int:
        """How many residents have a merged index below `i`."""
        pos, lo, hi = self.pos, 0, len(self.pos)
        while lo < hi:
            mid = (lo + hi) // 2
            if pos[mid] + mid < i:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def __getitem__(self, i: int) -> Entry:
        """The i-th element (0 <= i < len)."""
        if self.res:
            j = self._residents_before(i)
            if j < len(self.res) and self.pos[j] + j == i:
                return self.res[j]
            i -= j
        r = self.rows[i]
        return (None, r, r)

    def __iter__(self) -> Iterator[Entry]:
        it, c = iter(self.rows), 0
        for e, p in zip(self.res, self.pos, strict=True):
            for r in itertools.islice(it, p - c):
                yield (None, r, r)
            c = p
            yield e
        for r in it:
            yield (None, r, r)

    def __reversed__(self) -> Iterator[Entry]:
        it, c = reversed(self.rows), len(self.rows)
        for e, p in zip(reversed(self.res), reversed(self.pos), strict=True):
            for r in itertools.islice(it, c - p):
                yield (None, r, r)
            c = p
            yield e
        for r in it:
            yield (None, r, r)

    # -- compact rows ------------------------------------------------------------------------------------
    def cpos(self, key: Any, seq: int, lo: int = 0) -> int:
        """How many compact rows sort before `(key, seq)` (binary search, keys read by rowid)."""
        rows, keyof = self.rows, self.keyof
        hi = len(rows)
        if hi > lo:  # the common case: a live flow after every recorded one
            last = rows[hi - 1]
            if (keyof(last), last) < (key, seq):
                return hi
        if isinstance(rows, FencedRows):
            return rows.cpos(key, seq, keyof)
        return before(rows, key, seq, keyof, lo, hi)

    def merged_of(self, c: int) -> int:
        """Merged index of compact row `c`."""
        return c + bisect.bisect_right(self.pos, c)

    def find_row(self, key: Any, rowid: int, exact: bool = True) -> int | None:
        """Merged index of the compact row `rowid` whose key is `key`, or None if it is not here. With
        `exact=False` the key may have changed since the row was listed (a linear scan then)."""
        rows = self.rows
        c = self.cpos(key, rowid)
        if c >= len(rows) or rows[c] != rowid:
            if exact or self.fenced:  # fenced rows are in time order: a row's time never changes
                return None
            try:
                c = rows.index(rowid)
            except ValueError:
                return None
        return self.merged_of(c)

    def remove_row(self, key: Any, rowid: int, exact: bool = True) -> bool:
        i = self.find_row(key, rowid, exact)
        if i is None:
            return False
        c = self._compact_index(i)
        del self.rows[c]
        pos = self.pos
        for j in range(bisect.bisect_right(pos, c), len(pos)):
            pos[j] -= 1
        return True

    def _compact_index(self, i: int) -> int:
        """The compact index of the compact row at merged index `i`."""
        return i - self._residents_before(i)

    def add_row(self, key: Any, rowid: int) -> None:
        """List the compact row `rowid` (its key `key`, as the session has it)."""
        self._insert_at(self.cpos(key, rowid), key, rowid)

    def _widen(self, rowid: int) -> None:
        """Room for `rowid` in the array (8 bytes a row from the first that needs it on; fences do their own)."""
        if rowid >= WIDE and self.rows.typecode != "q" and isinstance(self.rows, array):
            self.rows = array("q", self.rows)

    def _insert_at(self, c: int, key: Any, rowid: int) -> None:
        self._widen(rowid)
        self.rows.insert(c, rowid)
        pos, res = self.pos, self.res
        j = bisect.bisect_left(pos, c)
        while j < len(pos) and pos[j] == c and (res[j][0], res[j][1]) < (key, rowid):
            j += 1
        for k in range(j, len(pos)):
            pos[k] += 1

    def drop(self, rowids: set[int]) -> None:
        """Take every compact row in `rowids` out at once (one pass, not one move of the array each)."""
        old, pos = self.rows, self.pos
        if isinstance(old, FencedRows):
            gone = old.drop(rowids)
            self.pos = [p - bisect.bisect_left(gone, p) for p in pos]
            return
        self.rows = array(old.typecode, itertools.filterfalse(rowids.__contains__, old))
        if pos:
            before, k, dropped = [], 0, 0
            for p in pos:  # residents' positions move back by the rows dropped before them
                while k < p:
                    dropped += old[k] in rowids
                    k += 1
                before.append(p - dropped)
            self.pos = before

    def add_rows(self, rows: list[tuple[Any, int]]) -> None:
        """List several compact (key, rowid) rows: one at a time when they are few or all go at the end (a
        follower's new rows), else in one pass over the array (not one move of it each)."""
        if not rows:
            return
        rows = sorted(rows)
        self._widen(max(r for _, r in rows))
        old = self.rows
        places = [self.cpos(k, r) for k, r in rows]
        if len(rows) <= 16 or places[0] == len(old) or isinstance(old, FencedRows):
            for k, r in reversed(rows):  # the last first: earlier places stay right
                self._insert_at(places.pop(), k, r)
            return
        out, prev = array(old.typecode), 0
        for c, (_, r) in zip(places, rows, strict=True):
            out += old[prev:c]
            out.append(r)
            prev = c
        out += old[prev:]
        self.rows = out
        i, n = 0, len(rows)
        for j, e in enumerate(self.res):  # both sorted: count the new rows before each resident
            while i < n and rows[i] < (e[0], e[1]):
                i += 1
            self.pos[j] += i

    # -- resident entries --------------------------------------------------------------------------------
    def _res_index(self, e: Entry) -> int | None:
        res = self.res
        j = bisect.bisect_left(res, (e[0], e[1]))
        return j if j < len(res) and res[j] is e else None

    def find_res(self, e: Entry) -> int | None:
        """Merged index of the resident entry `e`, or None."""
        j = self._res_index(e)
        return None if j is None else self.pos[j] + j

    def add_res(self, e: Entry) -> None:
        res = self.res
        if not res or (res[-1][0], res[-1][1]) < (e[0], e[1]):
            j = len(res)
        else:
            j = bisect.bisect_left(res, (e[0], e[1]))
        lo = self.pos[j - 1] if j else 0
        res.insert(j, e)
        self.pos.insert(j, self.cpos(e[0], e[1], lo))

    def remove_res(self, e: Entry) -> bool:
        j = self._res_index(e)
        if j is None:
            return False
        del self.res[j]
        del self.pos[j]
        return True
