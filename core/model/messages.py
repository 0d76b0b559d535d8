"""What WebSocket and TCP flows share: a stream of messages, each of which can be held on its own.

`flow.messages` keeps the newest `max_messages` messages, and at most `max_bytes` of their contents
(the oldest go first; the newest always stays; counters keep the totals). Inside a
`websocket_message`/`tcp_message` hook, `flow.intercept()` holds that one message: later messages in
the same direction queue behind it, the other direction keeps flowing. `resume()` sends it on as it
then is; `drop()` discards it.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from interpose.model.body import BodyHandle, Spillable
from interpose.model.connection import Client, Server
from interpose.model.flow import Flow

DEFAULT_MAX_MESSAGES = 10_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024


class Message:
    """One message (WebSocket) or chunk (TCP), as it went or is about to go from one side to the other.
    A kept flow's large `content` may be spilled to disk and read back on access (interpose.model.body)."""

    if TYPE_CHECKING:
        content: bytes
    else:
        content = Spillable()
    _spill: BodyHandle | None = None
    _kept = 0
    """Its size when its flow recorded it: what it counts towards the flow's `max_bytes`."""

    def __init__(self, from_client: bool, content: bytes, timestamp: float | None = None) -> None:
        self.from_client = from_client
        self.content = content
        self.timestamp = timestamp if timestamp is not None else time.time()
        self.dropped = False
        self.injected = False
        self.intercepted = False
        self._resume: asyncio.Future[None] | None = None
        self.seq = 0
        """Its number in its flow (1, 2, ...), set when the flow records it: with the flow's id, a stable key."""

    @property
    def is_text(self) -> bool:
        return False

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    @text.setter
    def text(self, value: str) -> None:
        self.content = value.encode("utf-8")

    def drop(self) -> None:
        """Don't forward this message (it stays in the flow, marked dropped)."""
        self.dropped = True
        self.resume()

    def intercept(self) -> None:
        if not self.intercepted:
            self.intercepted = True
            self._resume = asyncio.get_running_loop().create_future()

    def resume(self) -> None:
        self.intercepted = False
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

    async def wait_for_resume(self) -> None:
        if self._resume is not None and self.intercepted:
            await self._resume
        self._resume = None

    def __repr__(self) -> str:
        arrow = "->" if self.from_client else "<-"
        return f"<{type(self).__name__} {arrow} {self.content[:40]!r}{' dropped' if self.dropped else ''}>"


class MessageFlow(Flow):
    """Base of `WebSocketFlow` and `TCPFlow`."""

    def __init__(self, client_conn: Client, server_conn: Server, live: bool = True,
                 max_messages: int = DEFAULT_MAX_MESSAGES, max_bytes: int | None = None) -> None:
        super().__init__(client_conn, server_conn, live)
        self.messages: deque[Message] = deque(maxlen=max_messages or None)
        self.max_bytes = max_bytes
        """Bytes of content kept in `messages` (the newest always stays); None keeps all."""
        self.kept_bytes = 0
        self._evicted_held: list[Message] = []
        """Held messages that left `messages` while held: still found by `resume()` and `kill()`."""
        self.message_count = 0
        self.bytes_from_client = 0
        self.bytes_from_server = 0
        self.hooking: Message | None = None
        """The message whose hook is running: `intercept()` then holds just that message."""
        self.on_kill: Callable[[], None] | None = None
        self.on_inject: Callable[[Message], None] | None = None

    def add_message(self, msg: Message) -> None:
        messages = self.messages
        if not messages:
            self.kept_bytes = 0  # `messages` may have been cleared (or replaced) from outside
        elif len(messages) == messages.maxlen:
            self._forget(messages[0])  # append() is about to push it out
        messages.append(msg)
        self.message_count += 1
        msg.seq = self.message_count
        msg._kept = n = len(msg.content)
        if msg.from_client:
            self.bytes_from_client += n
        else:
            self.bytes_from_server += n
        self.kept_bytes += n
        max_bytes = self.max_bytes
        if max_bytes is not None and self.kept_bytes > max_bytes:
            while len(messages) > 1 and self.kept_bytes > max_bytes:
                self._forget(messages.popleft())

    def _forget(self, old: Message) -> None:
        """`old` leaves `messages` (the oldest, beyond `max_messages` or `max_bytes`)."""
        self.kept_bytes -= old._kept
        if self._evicted_held:
            self._evicted_held = [m for m in self._evicted_held if m.intercepted]
        if old.intercepted:
            self._evicted_held.append(old)

    @property
    def held_messages(self) -> list[Message]:
        # list() copies the deque in one step: a viewer on another thread may ask while messages arrive.
        return [m for m in [*self._evicted_held, *list(self.messages)] if m.intercepted]

    def intercept(self) -> None:
        if self.hooking is not None:
            self.hooking.intercept()
        else:
            super().intercept()

    def resume(self) -> None:
        for m in self.held_messages:
            m.resume()
        super().resume()

    def kill(self) -> None:
        super().kill()
        for m in self.held_messages:
            m.drop()
        if self.on_kill is not None:
            self.on_kill()

    def _inject(self, msg: Message) -> None:
        if self.on_inject is None or not self.live:
            raise RuntimeError("cannot inject into a flow that is not live")
        msg.injected = True
        self.on_inject(msg)
