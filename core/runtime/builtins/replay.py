"""Replaying a request: a copy of the flow goes to the server again, through every hook, as a new flow.

The replay has no client connection behind it; `ReplayClient` plays the client's part in memory.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from interpose.http import HTTPFlow, Response
from interpose.model.connection import Client, Server
from interpose.proxy.layer import Context
from interpose.proxy.layers.http import HttpExchange
from interpose.proxy.layers.pool import ServerPool
from interpose.proxy.layers.sides import WholeResponse
from interpose.proxy.modes import Mode


class ReplayClient(WholeResponse):
    """`ClientSide` for a replayed request: the body comes from memory, the response is kept."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._started = False
        self.chunks: list[bytes] = []

    async def request_body(self) -> AsyncIterator[bytes]:
        if self.body:
            yield self.body

    @property
    def response_started(self) -> bool:
        return self._started

    async def send_response_head(self, flow: HTTPFlow, response: Response) -> None:
        self._started = True

    async def send_response_data(self, data: bytes) -> None:
        pass

    async def send_response_end(self) -> None:
        pass

    def abort(self) -> None:
        pass

    async def wait_closed(self) -> None:
        await asyncio.Event().wait()


def replay_copy(flow: HTTPFlow) -> HTTPFlow:
    """A fresh, live flow carrying the original request (as edited)."""
    new = HTTPFlow(Client(address=("replay", 0)), Server(address=(flow.request.host, flow.request.port)),
                   mode=flow.mode)
    req = flow.copy().request  # type: ignore[attr-defined]
    req.stream = False
    # The replay's own times: its duration and Details are about the replay, not the original recording.
    req.timestamp_start = new.timestamp_created
    req.timestamp_end = None
    new.request = req
    new.is_replay = "request"
    return new


async def replay(master: Any, flow: HTTPFlow) -> HTTPFlow:
    """Send the request again; the new flow passes every HTTP hook like a live one."""
    new = replay_copy(flow)
    mode = Mode.parse(master.options.mode)
    if mode.kind not in ("regular", "upstream"):
        mode = Mode("regular")
    ctx = Context(None, new.client_conn, master.options, master.addons, master.bus,  # type: ignore[arg-type]
                  master.add_log, mode)
    ctx.certs = master.certs
    pool = ServerPool(ctx)
    ctx.pool = pool
    body = new.request.raw_content or b""
    try:
        await HttpExchange(ctx, new, ReplayClient(body), pool).run()
    finally:
        await pool.close()
    return new
