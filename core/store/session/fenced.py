"""`FencedRows`: the rowids of the paging list in time order, kept as fences and read back a block at a time,
so the list's memory does not grow with the number of flows.

The whole list in time order (the default, and what a session opens in) is `SELECT rowid ... ORDER BY
timestamp_created, rowid`, read from the narrow `flows_time` index. Instead of an array of every rowid
(pageindex.py's plain form, 4 bytes a flow), it is cut into blocks of `BLOCK` rows; each block keeps its
*fence*, the `(timestamp_created, rowid)` of its first row, and how many rows it has. A block's rowids are
read again from the session when they are needed (one index range between two fences: 2-4 ms) and the
`HOT` blocks used last stay in memory. The same query gives the same rows because the rows a block was
built from do not change behind it: rows recorded later have a larger rowid than `top` (left out), a
recorded flow's time never changes, and a block the list itself changes (a row added, removed) is
*pinned*: kept in memory from then on and never read again.

A block read again has the rows it was built with even when another process changed the file meanwhile
(the list follows it with `-r SESSION`): rows deleted there since the fences were built are still read (the
list takes the deletion in when it polls, as it does for a block in memory), and rows recorded since have a
larger rowid than `top`. Only a row deleted before and recorded again since (a flow loaded again into that
session) makes a block come back with another count; the list then places its resident flows again
(`on_shift`).

Memory: the fences (a float and two ints a block: about 20 bytes per 4096 flows), the hot blocks and the
pinned ones; reading the list once still walks every row (0.55 s of SQLite at 10M, plus Python's int per
row), but never holds them all.
"""
from __future__ import annotations

import bisect
import itertools
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import Any

__all__ = ["BLOCK", "HOT", "FencedRows", "before"]

BLOCK = 4096
"""Rows a block is built with (one index range read: 2-4 ms)."""
HOT = 32
"""Blocks kept read besides the pinned ones (128k rowids, 512 KiB)."""
WIDE = 1 << 32


class FencedRows:
    """A list of rowids in `(timestamp_created, rowid)` order with the operations `Merged` (pageindex.py)
    uses of an `array`: len, [i], iteration, insert, del, index."""

    __slots__ = ("_counts", "_data", "_dirty", "_hot", "_len", "_pinned", "_read", "_starts", "exclude", "fences",
                 "hot", "on_shift", "top", "typecode")

    def __init__(self, read: Callable[[tuple[float, int], tuple[float, int] | None, int], list[int]],
                 top: int, exclude: set[int] | frozenset[int] = frozenset(), hot: int | None = None) -> None:
        self._read = read
        """read(fence, next fence or None, top) -> the rowids between them, in order (`Reader._time_block`)."""
        self.top = top
        self.exclude = exclude
        """Rows left out when the list was built (resident ones): left out when a block is read again."""
        self.hot = HOT if hot is None else hot
        self.fences: list[tuple[float, int]] = []
        self._counts = array("q")
        self._starts = array("q")
        self._data: list[array[int] | None] = []
        self._pinned: set[int] = set()
        self._hot: OrderedDict[int, None] = OrderedDict()
        self._dirty = False
        self._len = 0
        self.typecode = "I" if top < WIDE else "q"
        self.on_shift: Callable[[], None] | None = None
        """Called when a block read again had other rows than it was built with."""

    # -- building ----------------------------------------------------------------------------------------
    def append_block(self, fence: tuple[float, int], rows: array[int]) -> None:
        """Add a block at the end while building (`rows` in order, `fence` the key and rowid of its first)."""
        b = len(self.fences)
        self.fences.append(fence)
        self._counts.append(len(rows))
        self._starts.append(self._len)
        self._len += len(rows)
        self._data.append(rows)
        self._touch(b)

    # -- reading -----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._len

    def _fix_starts(self) -> None:
        if self._dirty:
            self._starts = array("q", itertools.accumulate(self._counts, initial=0))
            self._starts.pop()
            self._dirty = False

    def _locate(self, i: int) -> tuple[int, int]:
        """(block, offset) of position i (0 <= i < len)."""
        self._fix_starts()
        b = bisect.bisect_right(self._starts, i) - 1
        while self._counts[b] == 0 or i - self._starts[b] >= self._counts[b]:
            b += 1  # empty blocks share their start with the next one
        return b, i - self._starts[b]

    def _touch(self, b: int) -> None:
        if b in self._pinned:
            return
        hot = self._hot
        hot[b] = None
        hot.move_to_end(b)
        while len(hot) > self.hot:
            old, _ = hot.popitem(last=False)
            self._data[old] = None

    def _block(self, b: int) -> array[int]:
        data = self._data[b]
        if data is None:
            nxt = self.fences[b + 1] if b + 1 < len(self.fences) else None
            got = self._read(self.fences[b], nxt, self.top)
            data = array(self.typecode, itertools.filterfalse(self.exclude.__contains__, got)
                         if self.exclude else got)
            self._data[b] = data
            if len(data) != self._counts[b]:  # changed behind the list (a follower that did not poll yet)
                self._len += len(data) - self._counts[b]
                self._counts[b] = len(data)
                self._dirty = True
                if self.on_shift is not None:
                    self.on_shift()
        self._touch(b)
        return data

    def __getitem__(self, i: int) -> int:
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError("row index out of range")
        b, off = self._locate(i)
        data = self._block(b)
        if off < len(data):
            return data[off]
        if not self._len:  # read again with fewer rows (see the module's notes): the nearest row there is
            raise IndexError("row index out of range")
        b, off = self._locate(min(i, self._len - 1))
        return self._block(b)[off]

    def __iter__(self) -> Iterator[int]:
        for b in range(len(self.fences)):
            yield from self._block(b)

    def __reversed__(self) -> Iterator[int]:
        for b in range(len(self.fences) - 1, -1, -1):
            yield from reversed(self._block(b))

    def index(self, rowid: int) -> int:
        self._fix_starts()
        for b in range(len(self.fences)):
            data = self._block(b)
            try:
                return self._starts[b] + data.index(rowid)
            except ValueError:
                continue
        raise ValueError(f"{rowid} is not listed")

    def first(self, b: int, keyof: Callable[[int], Any]) -> tuple[Any, int] | None:
        """(key, rowid) of block b's first row, None when it is empty (a pinned block may have changed)."""
        if b not in self._pinned:
            return self.fences[b] if self._counts[b] else None
        data = self._data[b]
        assert data is not None
        return (keyof(data[0]), data[0]) if data else None

    def cpos(self, key: Any, seq: int, keyof: Callable[[int], Any]) -> int:
        """How many rows sort before `(key, seq)`: a binary search over the blocks' first rows, then inside the
        one block that can hold it."""
        blocks = [b for b, n in enumerate(self._counts) if n]
        lo, hi = 0, len(blocks)
        while lo < hi:  # the first block whose first row does not sort before (key, seq)
            mid = (lo + hi) // 2
            f = self.first(blocks[mid], keyof)
            if f is not None and f < (key, seq):
                lo = mid + 1
            else:
                hi = mid
        if lo == 0:
            return 0
        b = blocks[lo - 1]
        data = self._block(b)
        at = before(data, key, seq, keyof, 0, len(data))
        self._fix_starts()
        return self._starts[b] + at

    # -- changing (the block is pinned: kept, never read again) ------------------------------------------
    def _pin(self, b: int) -> array[int]:
        data = self._block(b)
        self._pinned.add(b)
        self._hot.pop(b, None)
        return data

    def insert(self, c: int, rowid: int) -> None:
        if not self.fences:
            self.append_block((0.0, rowid), array(self.typecode))
        if c >= self._len:
            b = len(self.fences) - 1
            off = self._counts[b]
        else:
            b, off = self._locate(c)
        data = self._pin(b)
        if rowid >= WIDE and data.typecode != "q":
            data = self._data[b] = array("q", data)
            self.typecode = "q"
        data.insert(off, rowid)
        self._counts[b] += 1
        self._len += 1
        self._dirty = True

    def __delitem__(self, c: int) -> None:
        b, off = self._locate(c)
        del self._pin(b)[off]
        self._counts[b] -= 1
        self._len -= 1
        self._dirty = True

    def drop(self, rowids: set[int]) -> list[int]:
        """Take out every row in `rowids` (one pass over every block); returns their old positions, in order."""
        self._fix_starts()
        out: list[int] = []
        for b in range(len(self.fences)):
            data = self._block(b)
            at = [k for k, r in enumerate(data) if r in rowids]
            if not at:
                continue
            out.extend(self._starts[b] + k for k in at)
            data = self._pin(b)
            self._data[b] = array(data.typecode, itertools.filterfalse(rowids.__contains__, data))
            self._counts[b] -= len(at)
            self._len -= len(at)
        self._dirty = self._dirty or bool(out)
        return out

    @property
    def resident_blocks(self) -> int:
        """Blocks in memory now (hot and pinned)."""
        return sum(d is not None for d in self._data)


def before(rows: Any, key: Any, seq: int, keyof: Callable[[int], Any], lo: int, hi: int) -> int:
    """How many of `rows[lo:hi]` (rowids in `(key, rowid)` order) sort before `(key, seq)`, plus `lo`: a binary
    search reading each visited row's key with `keyof`."""
    while lo < hi:
        mid = (lo + hi) // 2
        r = rows[mid]
        if (keyof(r), r) < (key, seq):
            lo = mid + 1
        else:
            hi = mid
    return lo


def build(cursor: Any, rows: FencedRows, keys: Callable[[list[int]], dict[int, float]]) -> FencedRows:
    """Fill `rows` from `cursor` (rowids in time order) a block at a time, then give each block its fence, the
    key of its first row, from `keys(rowids)` (a few hundred at a time). Only the last `HOT` blocks stay in
    memory."""
    exclude, typecode = rows.exclude, rows.typecode
    while chunk := cursor.fetchmany(BLOCK):
        got = array(typecode, map(itemgetter(0), chunk))
        if exclude:
            got = array(typecode, itertools.filterfalse(exclude.__contains__, got))
        if got:
            rows.append_block((0.0, got[0]), got)
        time.sleep(0)  # hand the GIL to the UI thread between blocks (it may be waiting for it)
    firsts = [r for _, r in rows.fences]
    found: dict[int, float] = {}
    for i in range(0, len(firsts), 500):
        found.update(keys(firsts[i:i + 500]))
    rows.fences = [(found[r], r) for r in firsts]
    return rows
