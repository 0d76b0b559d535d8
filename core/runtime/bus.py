"""The event bus: the core's typed messages, delivered to each subscriber on the subscriber's own loop.

This is the one queue from the core to the UI. The core publishes a frozen message for each thing a
viewer needs to know (the table below); the terminal UI, on another thread and another event loop,
consumes only these and never hook names.

    message            published when                                   carries
    FlowAdded          a flow is first seen (requestheaders, tcp_start)   flow
    FlowUpdated        a flow changed (request, response, error, ...)    flow, cause (the hook)
    FlowRemoved        a flow was deleted through the core               flow_id
    MessageAdded       a WebSocket or TCP message was recorded           flow, message
    FlowIntercepted    a flow, or one message, is now held               flow, stage, message, key
    FlowResumed        it was released (resumed, killed or dropped)      flow, message, key
    LogRecorded        a log entry was written                           entry
    AddonsChanged      an addon was loaded or unloaded                   names
    OptionsChanged     options changed                                   updated

`publish()` never blocks and never awaits, so the proxy never waits for a subscriber. Delivery to a
subscriber on the publisher's own loop is a deque append and, when the subscriber is waiting, one
future result. Delivery to another thread's loop is the same append plus at most one
`call_soon_threadsafe` per batch: while a wake-up is already on its way, further messages only append.
With no subscriber, `publish()` costs one truth test.
"""
from __future__ import annotations

import asyncio
import collections
import threading
from dataclasses import dataclass, field
from typing import Any

# -- the messages ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlowAdded:
    """A flow is new: the UI adds a row for it."""
    flow: Any


@dataclass(frozen=True, slots=True)
class FlowUpdated:
    """A flow changed; `cause` names the hook that changed it (for logs and tests, not for dispatch)."""
    flow: Any
    cause: str = ""


@dataclass(frozen=True, slots=True)
class FlowRemoved:
    """A flow was deleted (through `Core.remove_flows`): the UI drops its row."""
    flow_id: str


@dataclass(frozen=True, slots=True)
class MessageAdded:
    """A WebSocket or TCP message was recorded on `flow`."""
    flow: Any
    message: Any


@dataclass(frozen=True, slots=True)
class FlowIntercepted:
    """A flow (or, with `message`, one of its messages) is now held at `stage`.

    `key` identifies this hold until its `FlowResumed`: the flow's id for a held flow, the flow's id
    and the message's sequence number for a held message."""
    flow: Any
    stage: str
    message: Any = None
    key: str = ""

    def __post_init__(self) -> None:
        _keyed(self)


@dataclass(frozen=True, slots=True)
class FlowResumed:
    """The hold with `key` ended: the flow or message was resumed, killed or dropped."""
    flow: Any
    message: Any = None
    key: str = ""

    def __post_init__(self) -> None:
        _keyed(self)


@dataclass(frozen=True, slots=True)
class LogRecorded:
    entry: Any


@dataclass(frozen=True, slots=True)
class AddonsChanged:
    """The addon chain changed; `names` is the chain now, in order."""
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OptionsChanged:
    updated: frozenset[str] = field(default_factory=frozenset)


def _keyed(msg: FlowIntercepted | FlowResumed) -> None:
    if not msg.key:  # frozen: set once, here
        object.__setattr__(msg, "key", held_key(msg.flow, msg.message))


def held_key(flow: Any, message: Any = None) -> str:
    """The stable key of a hold: a flow is held at most once at a time; a message has its own number."""
    if message is None:
        return str(flow.id)
    return f"{flow.id}/{message.seq}"


# -- delivery ----------------------------------------------------------------------------------------


class Subscription:
    """One subscriber's messages, in order, awaited on the loop that subscribed.

    Quacks like the `asyncio.Queue` it replaced: `await get()`, `get_nowait()`, `empty()`, `qsize()`.
    A bounded subscription (`maxsize`) drops new messages while full rather than grow."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int = 0) -> None:
        self.loop = loop
        self.maxsize = maxsize
        self._items: collections.deque[Any] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._wake_pending = False
        self._thread = threading.get_ident()
        self.dropped = 0
        """Messages lost because a bounded subscription was full."""

    # the publisher's side (any thread)
    def put(self, message: Any) -> None:
        if self.maxsize and len(self._items) >= self.maxsize:
            self.dropped += 1
            return
        self._items.append(message)
        if threading.get_ident() == self._thread:
            self._wake()
        elif not self._wake_pending:
            self._wake_pending = True
            try:
                self.loop.call_soon_threadsafe(self._wake_from_afar)
            except RuntimeError:
                pass  # the subscriber's loop is closed: nobody is listening any more

    def _wake_from_afar(self) -> None:
        self._wake_pending = False
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # the subscriber's side (its own loop)
    async def get(self) -> Any:
        while not self._items:
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    def drain(self) -> list[Any]:
        """Every message waiting now, oldest first."""
        out = []
        while self._items:
            out.append(self._items.popleft())
        return out

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class EventBus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []

    def subscribe(self, maxsize: int = 0, loop: asyncio.AbstractEventLoop | None = None) -> Subscription:
        """A new subscription whose messages are awaited on `loop` (the caller's running loop by default)."""
        sub = Subscription(loop or asyncio.get_running_loop(), maxsize)
        self._subs = [*self._subs, sub]  # copy on write: publish() may run on another thread meanwhile
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs = [s for s in self._subs if s is not sub]

    @property
    def active(self) -> bool:
        """Whether anyone listens: publishers skip building messages when nobody does."""
        return bool(self._subs)

    def backlog(self) -> int:
        """Messages the slowest subscriber has not taken yet."""
        return max((s.qsize() for s in self._subs), default=0)

    def publish(self, message: Any) -> None:
        if self._subs:
            for s in self._subs:
                s.put(message)
