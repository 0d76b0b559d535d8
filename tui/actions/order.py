"""Ordering the flow list, for `o`, `view.order.set` and a reopened session's stored order alike: a big
list paging from a session is sorted off the UI thread (the store's set_order_sliced)."""
from __future__ import annotations

import asyncio
import weakref
from typing import Any

from interpose.tui.ui import UI

ORDERS = ("time", "method", "url", "size", "duration", "status")
SLICED_ORDER_ABOVE = 20_000
"""Above this many flows in a list paging from a session, a new order is sorted by SQL on a worker thread
(the store's set_order_sliced): the list keeps answering keys and shows the old order until the new one
is complete."""


_SORTING: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
"""The order each app's list is being sorted to, while the sort runs (`o` goes on from it)."""


def change_order(app: UI, order: str) -> asyncio.Future[Any] | None:
    """Order the list (`o`, `view.order.set`). A big paged list is sorted off the UI thread: the task that
    finishes the change is returned (None: the list is ordered already). The status bar says what happened."""
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; one of: {', '.join(ORDERS)}")
    store = app.store
    if getattr(store, "paging", False) and store.total > SLICED_ORDER_ABOVE:

        async def run() -> None:
            try:
                seconds = await store.set_order_sliced(order)  # type: ignore[attr-defined]
            finally:
                if _SORTING.get(app) == order:
                    del _SORTING[app]
            if store.order == order:
                _ordered(app, f"order: {order} ({seconds:.1f} s)")
            else:  # another order or filter change came first: this sort was dropped
                _ordered(app, f"sorting by {order} was overtaken by another change; order: {store.order}")
        app.notify(f"sorting {store.total:,} flows by {order}…")
        _SORTING[app] = order
        return app.spawn(run())
    store.set_order(order)
    _ordered(app, f"order: {order}")
    return None


def _ordered(app: UI, text: str) -> None:
    app.flowlist.walker.changed()
    app.notify(text)
    app.refresh_status()


def order_coming(app: UI) -> str:
    """The order the list is being sorted to, else its order."""
    return _SORTING.get(app, app.store.order)

