"""The asyncio listener: accept clients, announce them, run their first layer, clean up.

Each client connection is one task and one coroutine tree. Its catch-all logs and closes only that
connection; the listener keeps serving.
"""
from __future__ import annotations

import asyncio
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

from interpose.model.connection import Client
from interpose.proxy.layer import EAGER, LAYERS, Context, Layer, Stream, choose
from interpose.proxy.layers import tunnel
from interpose.proxy.layers.shared import SharedPool
from interpose.proxy.modes import Mode
from interpose.proxy.transparent import NoOriginalDestination, original_destination
from interpose.runtime import hooks
from interpose.runtime.addonmanager import AddonManager
from interpose.runtime.bus import EventBus
from interpose.runtime.options import Options


class RootLayer:
    """What `clientconnect(root_layer)` gets: the client connection and the layer running on it."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.layer: Layer | None = None

    @property
    def client_conn(self) -> Client:
        return self.ctx.client_conn

    @property
    def server_conn(self) -> Any:
        return self.ctx.server_conn

    @property
    def mode(self) -> Mode:
        return self.ctx.mode

    def __repr__(self) -> str:
        return f"<RootLayer {self.client_conn!r}>"


class ProxyServer:
    def __init__(
        self, options: Options, addons: AddonManager, bus: EventBus, log: Callable[[str, str], None], certs: Any = None
    ) -> None:
        self.options = options
        self.certs = certs
        self.addons = addons
        self.bus = bus
        self.log = log
        self.mode = Mode.parse(options.mode)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.address: tuple[str, int] | None = None
        self.shared = SharedPool(addons)
        """Idle server connections kept between client connections (`server_reuse`)."""

    async def start(self) -> tuple[str, int]:
        self.mode = Mode.parse(self.options.mode)
        for kind in EAGER:
            LAYERS[kind]  # noqa: B018  (load the common layers now, not on the first connection)
        self._server = await self.listen(self.options.listen_host, self.options.listen_port)
        sock = self._server.sockets[0]
        self.address = sock.getsockname()[:2]
        return self.address

    async def listen(self, host: str, port: int) -> asyncio.Server:
        """A listener whose connections this server serves (OSError when it cannot bind)."""
        return await asyncio.start_server(self._handle, host, port, limit=2**20, backlog=1024)

    @property
    def listening(self) -> bool:
        return self._server is not None

    def close_listener(self) -> None:
        """Stop accepting (to open the port again at another address); connections carry on."""
        if self._server is not None:
            self._server.close()
            self._server = None

    def swap(self, server: asyncio.Server | None, mode: Mode) -> tuple[str, int]:
        """Serve new connections from `server` (None: the current listener) in `mode`. The old listener
        stops accepting; connections it accepted carry on in the mode they began in."""
        old = self._server
        if server is not None:
            self._server = server
            self.address = server.sockets[0].getsockname()[:2]
        self.mode = mode
        if old is not None and server is not None and old is not server:
            old.close()  # closes the listening socket only; the connections' tasks live on in self._tasks
        assert self.address is not None
        return self.address

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.shared.close()

    @property
    def connection_count(self) -> int:
        return len(self._tasks)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass  # shutdown: the task ends here; re-raising makes Python 3.11's start_server log a bogus traceback
        finally:
            self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = writer.get_extra_info("peername") or ("?", 0)
        sockname = writer.get_extra_info("sockname") or ("?", 0)
        client_conn = Client(address=tuple(peer[:2]), sockname=tuple(sockname[:2]))
        stream = Stream(reader, writer)
        ctx = Context(stream, client_conn, self.options, self.addons, self.bus, self.log, self.mode)
        ctx.certs = self.certs
        ctx.shared = self.shared
        root = RootLayer(ctx)
        await self.addons.trigger(hooks.ClientConnectHook(root))
        try:
            kind = self.mode.kind
            if kind == "reverse":
                # The client talks to us as if we were the server: TLS or plain, HTTP/1 or HTTP/2.
                ctx.tunnel, ctx.tunnel_scheme = self.mode.address, self.mode.request_scheme
                first: Layer | None = await tunnel.detect(ctx, timeout=self.options.idle_timeout_s, default="http1")
            elif kind == "transparent":
                first = await self._transparent(ctx, sock, sockname)
            elif kind == "socks5":
                first = LAYERS["socks5"](ctx)
            else:  # HTTP/1, or HTTP/2 with prior knowledge (h2c)
                first = await tunnel.detect_plain(ctx, timeout=self.options.idle_timeout_s)
            if first is None:
                return
            root.layer = await choose(first)
            await root.layer.run()
        except asyncio.CancelledError:
            raise
        except (ConnectionError, TimeoutError):
            pass
        except Exception as e:  # one connection's failure must never reach the listener
            tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            self.log(f"{client_conn.address}: internal error: {e}\n{tb}", "error")
        finally:
            try:
                await stream.drain()
            except (ConnectionError, OSError, asyncio.CancelledError):
                pass
            if ctx.pool is not None:
                await asyncio.shield(ctx.pool.close())
            ctx.client.close()
            stream.close()
            client_conn.timestamp_end = time.time()
            await asyncio.shield(self.addons.trigger(hooks.ClientDisconnectHook(root)))

    async def _transparent(self, ctx: Context, sock: Any, sockname: tuple[Any, ...]) -> Layer | None:
        """Transparent mode: the layer for a redirected connection, as inside a CONNECT tunnel to where the
        client was going; None (and a log line saying why) for a socket that was not redirected."""
        try:
            ctx.tunnel = original_destination(sock, sockname)
        except NoOriginalDestination as e:
            self.log(f"{ctx.client_conn.address}: transparent mode: {e}; connection closed", "warn")
            return None
        return await tunnel.detect(ctx)
