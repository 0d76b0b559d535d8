"""The event bus: every hook, plus UI-facing messages, fanned out to subscribers' asyncio queues.

`publish()` is synchronous (`put_nowait`), so the proxy never awaits the UI. With no subscriber it
costs one truth test.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FlowIntercepted:
    """A flow (or, with `message`, one of its messages) is now held."""
    flow: Any
    stage: str
    message: Any = None


@dataclass(frozen=True)
class FlowResumed:
    flow: Any
    message: Any = None


@dataclass(frozen=True)
class LogRecorded:
    entry: Any


@dataclass(frozen=True)
class AddonsChanged:
    pass


class EventBus:
    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[Any]] = []

    def subscribe(self, maxsize: int = 0) -> asyncio.Queue[Any]:
        q: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self._queues.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Any]) -> None:
        if q in self._queues:
            self._queues.remove(q)

    def publish(self, event: Any) -> None:
        if self._queues:
            for q in self._queues:
                try:
                    q.put_nowait(event)
                except asyncio.QueueFull:
                    pass  # a bounded subscriber chose to lose events rather than grow
