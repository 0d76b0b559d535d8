"""Delivering one WebSocket or TCP message: record it, run its hook, hold it if asked, say whether to send."""
from __future__ import annotations

from interpose.model.messages import Message, MessageFlow
from interpose.proxy.layer import Context
from interpose.runtime import hooks
from interpose.runtime.bus import FlowIntercepted, FlowResumed


async def deliver(ctx: Context, flow: MessageFlow, msg: Message, hook: type[hooks.Hook]) -> bool:
    """True when `msg` (as it is now, perhaps edited) should be forwarded."""
    flow.add_message(msg)
    flow.hooking = msg
    try:
        await ctx.addons.trigger(hook(flow))  # type: ignore[call-arg]
    finally:
        flow.hooking = None
    if msg.intercepted:
        ctx.bus.publish(FlowIntercepted(flow, "messages", msg))
        await msg.wait_for_resume()
        ctx.bus.publish(FlowResumed(flow, msg))
    if flow.intercepted:  # the whole flow was held (outside a message hook): wait for it too
        ctx.bus.publish(FlowIntercepted(flow, "messages"))
        await flow.wait_for_resume()
        ctx.bus.publish(FlowResumed(flow))
    return not msg.dropped and not flow.killed


def side(from_client: bool) -> str:
    return "client" if from_client else "server"
