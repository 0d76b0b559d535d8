"""Delivering one WebSocket or TCP message: record it, run its hook, hold it if asked, say whether to send.

While a message (or its flow) is held, the relay keeps watching the connection through a `Watch`: when a
peer goes away the hold ends by itself (the message is dropped, `FlowResumed` published) and the layer
ends the flow with an error saying why, instead of waiting for a release that could only fail.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from interpose.model.flow import Error
from interpose.model.messages import Message, MessageFlow
from interpose.proxy.layer import Context
from interpose.runtime import hooks
from interpose.runtime.bus import FlowIntercepted, FlowResumed

WATCH_BUFFER = 1 << 20
"""While a message is held, at most this much of what its sender sends next is read ahead (to see it leave)."""


class Watch:
    """The connection ending while something is held. `end(who)` says which side went; the first call wins."""

    def __init__(self) -> None:
        self.gone: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.broke = False
        """True once a hold ended because of it: the layer then ends the flow."""

    def end(self, who: str) -> None:
        if not self.gone.done():
            self.gone.set_result(who)

    @property
    def ended(self) -> bool:
        return self.gone.done()


async def _sender_left(src: Any, who: str, watch: Watch, eof_ends: bool) -> None:
    """Read ahead (without consuming: the bytes stay in `src.pending`) until the sender leaves."""
    while len(src.pending) < WATCH_BUFFER:
        n = len(src.pending) + 1
        try:
            got = await src.peek(n)
        except (ConnectionError, OSError):
            watch.end(who)
            return
        if len(got) < n:  # EOF
            if eof_ends:
                watch.end(who)
            return
    await asyncio.Event().wait()


async def _held(wait: Awaitable[None], watch: Watch | None, src: Any, who: str, eof_ends: bool) -> bool:
    """Wait for the release; False when the connection ended first."""
    if watch is None:
        await wait
        return True
    waiter = asyncio.ensure_future(wait)
    reader = asyncio.ensure_future(_sender_left(src, who, watch, eof_ends)) if src is not None else None
    try:
        await asyncio.wait((waiter, watch.gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not waiter.done() and not watch.gone.done():
            waiter.cancel()  # we were cancelled ourselves
        if reader is not None:
            reader.cancel()
            await asyncio.wait((reader,))  # its read must be over before the pump reads again
    if waiter.done():
        return True
    waiter.cancel()
    return False


async def deliver(ctx: Context, flow: MessageFlow, msg: Message, hook: type[hooks.Hook],
                  watch: Watch | None = None, src: Any = None, eof_ends: bool = True) -> bool:
    """True when `msg` (as it is now, perhaps edited) should be forwarded. With a `watch`, a hold also ends
    when the connection does (and `src`, the sender's stream, is watched for leaving meanwhile)."""
    flow.add_message(msg)
    flow.hooking = msg
    try:
        await ctx.addons.trigger(hook(flow))  # type: ignore[call-arg]
    finally:
        flow.hooking = None
    who = side(msg.from_client)
    broke = False
    if msg.intercepted:
        ctx.bus.publish(FlowIntercepted(flow, "messages", msg))
        if not await _held(msg.wait_for_resume(), watch, src, who, eof_ends):
            msg.drop()
            _gone(flow, watch)
            broke = True
        ctx.bus.publish(FlowResumed(flow, msg))
    if flow.intercepted and not broke:
        # The whole flow was held (outside a message hook): wait for it too.
        ctx.bus.publish(FlowIntercepted(flow, "messages"))
        if not await _held(flow.wait_for_resume(), watch, src, who, eof_ends):
            msg.dropped = True
            flow.resume()
            _gone(flow, watch)
        ctx.bus.publish(FlowResumed(flow))
    return not msg.dropped and not flow.killed


def _gone(flow: MessageFlow, watch: Watch | None) -> None:
    assert watch is not None
    watch.broke = True
    if flow.error is None:
        flow.error = Error(f"{watch.gone.result()} went away while a message was held (it was not sent)")


def side(from_client: bool) -> str:
    return "client" if from_client else "server"
