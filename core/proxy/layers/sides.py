"""What an HTTP exchange (`interpose.proxy.layers.http.HttpExchange`) needs from each side of it, whatever
the wire protocol: the client side (HTTP/1 with h11, an HTTP/2 stream, a replay) and the server side, a
sink a response body can be spliced into, and where server connections come from.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from interpose.http import HTTPFlow, Response

__all__ = ["BodySink", "ClientSide", "Pool", "ServerSide", "WholeRequest", "WholeResponse"]


class ClientSide(Protocol):
    def request_body(self) -> AsyncIterator[bytes]: ...
    async def send_response_head(self, flow: HTTPFlow, response: Response) -> None: ...
    async def send_response_data(self, data: bytes) -> None: ...
    async def send_response_end(self) -> None: ...
    async def send_whole_response(self, flow: HTTPFlow, response: Response) -> None: ...
    def body_sink(self) -> BodySink | None:
        """After send_response_head: a sink a server may splice the body into, if this side has one."""
    @property
    def response_started(self) -> bool: ...
    def abort(self) -> None: ...
    async def wait_closed(self) -> None:
        """Returns once the client is gone (never, while it is still there)."""


class ServerSide(Protocol):
    async def send_request_head(self, flow: HTTPFlow) -> None: ...
    async def send_request_data(self, data: bytes) -> None: ...
    async def send_request_end(self) -> None: ...
    async def send_whole_request(self, flow: HTTPFlow) -> None: ...
    def spliceable(self) -> int | None:
        """The response body's length, when splice_body can pass it on without it being seen."""
    async def splice_body(self, sink: BodySink) -> None: ...
    async def response_head(self, flow: HTTPFlow) -> Response: ...
    def response_body(self, streaming: bool = False) -> AsyncIterator[bytes]:
        """The body's chunks. `streaming`: they go straight on to the client (a side may read bigger
        chunks, or bypass its framing library, then)."""


class BodySink(Protocol):
    """Where a spliced response body goes: synchronous writes, with flow control."""

    def write(self, data: bytes) -> None: ...
    def congested(self) -> bool: ...
    async def drain(self) -> None: ...


class WholeResponse:
    """`send_whole_response` for a ClientSide that gains nothing from doing it in one go (and has no
    body sink for splicing)."""

    def body_sink(self) -> BodySink | None:
        return None

    async def send_whole_response(self: ClientSide, flow: HTTPFlow, response: Response) -> None:
        """A buffered response: head, body and end."""
        await self.send_response_head(flow, response)
        if response.raw_content:
            await self.send_response_data(response.raw_content)
        await self.send_response_end()


class WholeRequest:
    """`send_whole_request` for a ServerSide that gains nothing from doing it in one go (and cannot splice)."""

    def spliceable(self) -> int | None:
        return None

    async def splice_body(self, sink: BodySink) -> None:
        raise NotImplementedError

    async def send_whole_request(self: ServerSide, flow: HTTPFlow) -> None:
        """A buffered request: head, body and end."""
        await self.send_request_head(flow)
        if flow.request.raw_content:
            await self.send_request_data(flow.request.raw_content)
        await self.send_request_end()


class Pool(Protocol):
    """Where server connections come from (`interpose.proxy.layers.pool.ServerPool`)."""

    async def get(self, flow: HTTPFlow, fresh: bool = False) -> Any: ...
    async def release(self, flow: HTTPFlow, server: Any, ok: bool) -> None: ...
