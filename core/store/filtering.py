"""Which flows a view shows: the filter and "marked only" test, and applying it to a big store in slices.

`matching_in_slices` walks the entries a few hundred at a time and gives the event loop back every
`slice_s` seconds, so keys keep working while a filter runs over a million flows (the store reconciles
the flows that changed meanwhile; see `FlowStore.set_filter_sliced`).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from interpose.flowfilter import Filter
from interpose.store.order import Entry

__all__ = ["matching_in_slices", "shows"]

_CHUNK = 256
"""Entries tested between two looks at the clock."""


def shows(flow: Any, flt: Filter | None, marked_only: bool) -> bool:
    """Whether a view with this filter and "marked only" setting shows `flow`."""
    if marked_only and not getattr(flow, "marked", False):
        return False
    return flt is None or flt(flow)


async def matching_in_slices(entries: list[Entry], flt: Filter | None, marked_only: bool, slice_s: float,
                             progress: Callable[[int, int], None] | None,
                             overtaken: Callable[[], bool]) -> list[Entry] | None:
    """The entries (in their order) whose flows a view with `flt` and `marked_only` shows, tested in slices of
    about `slice_s` seconds (at least one chunk each) with the event loop given back in between.
    `progress(done, total)` is called after each slice. Returns None as soon as `overtaken()` says so
    after a slice (a newer change made this walk pointless)."""
    matched: list[Entry] = []
    i, n = 0, len(entries)
    while True:
        deadline = time.perf_counter() + slice_s
        while i < n:  # at least one chunk per slice
            chunk = entries[i:i + _CHUNK]
            i += _CHUNK
            if marked_only:
                chunk = [e for e in chunk if getattr(e[2], "marked", False)]
            matched.extend(chunk if flt is None else [e for e in chunk if flt(e[2])])
            if time.perf_counter() >= deadline:
                break
        if progress is not None:
            progress(min(i, n), n)
        if i >= n:
            return matched
        await asyncio.sleep(0)
        if overtaken():
            return None
