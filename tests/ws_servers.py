"""A small real WebSocket server for tests, built on the `websockets` package.

`WsServer()` echoes every message back; `WsServer(echo=False)` only records. Every message the server
receives lands in `received` (a queue, in order); every accepted connection lands in `connections`, so
a test can push messages, close or abort from the server's side while the proxy sits in between.
A custom `handler(ws)` replaces the echo loop entirely (it still gets queued in `connections`).
"""
from __future__ import annotations

import asyncio
import ssl as _ssl
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

Handler = Callable[["WsServer", ServerConnection], Awaitable[None]]


class WsServer:
    def __init__(self, handler: Handler | None = None, echo: bool = True, **serve_kwargs: Any) -> None:
        self.handler = handler
        self.echo = echo
        self.serve_kwargs = serve_kwargs
        self.received: asyncio.Queue[str | bytes] = asyncio.Queue()
        self.connections: asyncio.Queue[ServerConnection] = asyncio.Queue()
        self.closed: list[tuple[int | None, str | None]] = []
        """(close code, reason) the server saw, one per finished connection."""
        self.server: Server | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.scheme = "ws"

    async def start(self, ssl: _ssl.SSLContext | None = None) -> WsServer:
        """Listen on 127.0.0.1 (a free port). With `ssl`, `url` is wss://localhost:PORT."""
        self.server = await serve(self._handle, "127.0.0.1", 0, ssl=ssl, ping_interval=None, **self.serve_kwargs)
        self.port = next(iter(self.server.sockets)).getsockname()[1]
        if ssl is not None:
            self.scheme, self.host = "wss", "localhost"
        return self

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/"

    async def next_message(self, timeout: float = 10) -> str | bytes:
        async with asyncio.timeout(timeout):
            return await self.received.get()

    async def next_connection(self, timeout: float = 10) -> ServerConnection:
        async with asyncio.timeout(timeout):
            return await self.connections.get()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections.put_nowait(ws)
        try:
            if self.handler is not None:
                await self.handler(self, ws)
                return
            try:
                async for message in ws:
                    self.received.put_nowait(message)
                    if self.echo:
                        await ws.send(message)
            except ConnectionClosed:
                pass
        finally:
            self.closed.append((ws.close_code, ws.close_reason))
