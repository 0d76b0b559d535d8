"""How the flow list is ordered: the sort keys (`ORDERS`) and the sorted list of entries they make.

Every flow in the store is one entry, the tuple `(sortkey, seq, flow)`. `seq` is a running insertion
number, so no two entries compare equal and the flow itself is never compared; ties keep insertion
order. Every key function returns one type for all flows (str, int or float), so keys always compare.
"""
from __future__ import annotations

import bisect
import contextlib
import gc
from collections.abc import Callable, Iterator
from typing import Any

from interpose.store.spill import stored_size

__all__ = ["ORDERS", "Entry", "discard", "find", "gc_paused", "insert", "key_time", "sort_key"]

Entry = tuple[Any, int, Any]
"""(sort key, insertion number, flow)."""

_INF = float("inf")


# -- sort keys -------------------------------------------------------------------------------------


def _http(flow: Any) -> Any:
    """The HTTP flow to read request/response from: the flow itself or a WebSocket's handshake."""
    return flow if getattr(flow, "request", None) is not None else getattr(flow, "handshake_flow", None)


def key_time(flow: Any) -> Any:
    return flow.timestamp_created


def _key_method(flow: Any) -> str:
    req = getattr(_http(flow), "request", None)
    return req.method if req is not None else ""


def _key_url(flow: Any) -> str:
    req = getattr(_http(flow), "request", None)
    return req.url if req is not None else ""


def _key_size(flow: Any) -> int:
    if hasattr(flow, "bytes_from_client"):  # WebSocket and TCP flows: bytes relayed both ways
        return int(flow.bytes_from_client + flow.bytes_from_server)
    resp = getattr(_http(flow), "response", None)
    if resp is None:
        return 0
    size = stored_size(resp)  # a spilled body is not read back just for its length
    if size is not None and not (resp.stream and not size):
        return size
    try:  # a streamed body is not kept: Content-Length says how big it was
        return int(resp.headers.get("content-length") or 0)
    except ValueError:
        return 0


def _key_duration(flow: Any) -> float:
    http = _http(flow)
    req, resp = getattr(http, "request", None), getattr(http, "response", None)
    if req is None or resp is None or resp.timestamp_end is None or req.timestamp_start is None:
        return _INF  # unknown durations sort last
    return float(resp.timestamp_end - req.timestamp_start)


def _key_status(flow: Any) -> int:
    resp = getattr(_http(flow), "response", None)
    return int(resp.status_code) if resp is not None else 0


ORDERS: dict[str, Callable[[Any], Any]] = {
    "time": key_time,
    "method": _key_method,
    "url": _key_url,
    "size": _key_size,
    "duration": _key_duration,
    "status": _key_status,
}
"""Order name -> sort key function. Ties keep insertion order."""


def sort_key(order: str, flow: Any) -> Any:
    """The key `flow` sorts by in `order` (exposed for tests and the UI's column display)."""
    return ORDERS[order](flow)


# -- sorted-list helpers ---------------------------------------------------------------------------


def insert(lst: list[Entry], e: Entry) -> None:
    if not lst or lst[-1] < e:
        lst.append(e)  # the fast path: newest flow at the end
    else:
        bisect.insort(lst, e)


def find(lst: list[Entry], e: Entry) -> int | None:
    i = bisect.bisect_left(lst, e)
    return i if i < len(lst) and lst[i] is e else None


def discard(lst: list[Entry], e: Entry) -> None:
    i = find(lst, e)
    if i is not None:
        del lst[i]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while making a million entries at once: each of them is a new tracked
    tuple, and the collections they would trigger re-walk every flow (nearly halves `set_order`)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
