"""Small real servers for tests: an HTTP/1.1 origin built on h11 and asyncio, recording what it got.

Routes (any method; HEAD gets the same headers without a body):
    /echo...            200 JSON {method, path, headers: [[k, v]...], body} of the request as received
    /bytes/N            N bytes of b"x" with Content-Length
    /chunked/N/K        N bytes in chunks of K with Transfer-Encoding: chunked
    /status/N           status N, empty body
    /gzip               a gzip-encoded text body
    /json               a small JSON document
    /bigjson            a large JSON array with "needle-in-the-haystack" near line 5,000 when pretty-printed
    /close              answers with Connection: close
    /hang               never answers (until the connection closes)
    /reset              resets the connection without answering
    /reset-mid-body     sends headers and part of the body, then resets
    /sink               counts the request body without keeping it; answers the count as text
                        (`received` records body=b"" and the count in `body_size`)
    anything else       200 text "ok <path>"
"""
from __future__ import annotations

import asyncio
import gzip
import json
import socket
import ssl as _ssl
import struct
from dataclasses import dataclass, field

import h11


@dataclass
class Received:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    body_size: int = 0

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


@dataclass
class Origin:
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    server: asyncio.Server | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    scheme: str = "http"
    handlers: set[asyncio.Task[None]] = field(default_factory=set)
    """The connections being served: `stop` ends them (a proxy may keep idle connections to this origin)."""

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    async def start(self, ssl: _ssl.SSLContext | None = None) -> Origin:
        """Listen on a free port; with `ssl`, speak TLS (then `url` is https)."""
        self.scheme = "https" if ssl is not None else "http"
        self.server = await asyncio.start_server(self._handle, self.host, 0, ssl=ssl)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and end the connections still served, before the test's loop closes (a handler
        left pending is finalised later by the garbage collector, wherever it happens to run)."""
        if self.server is not None:
            self.server.close()
        for task in list(self.handlers):
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        task = asyncio.current_task()
        if task is not None:
            self.handlers.add(task)  # type: ignore[arg-type]
            task.add_done_callback(self.handlers.discard)  # type: ignore[arg-type]
        try:
            while True:
                req = await self._next(conn, reader)
                if not isinstance(req, h11.Request):
                    return
                body = bytearray()
                sink = req.target.split(b"?")[0] == b"/sink"
                size = 0
                while True:
                    ev = await self._next(conn, reader)
                    if isinstance(ev, h11.Data):
                        size += len(ev.data)
                        if not sink:
                            body += ev.data
                    elif isinstance(ev, h11.EndOfMessage):
                        break
                    else:
                        return
                rec = Received(req.method.decode(), req.target.decode(),
                               [(k.decode(), v.decode()) for k, v in req.headers.raw_items()], bytes(body), size)
                self.received.append(rec)
                self.arrived.set()
                if not await self._respond(conn, writer, rec):
                    return
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            return
        finally:
            writer.close()

    @staticmethod
    async def _next(conn: h11.Connection, reader: asyncio.StreamReader) -> object:
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
                continue
            return ev

    async def _respond(self, conn: h11.Connection, writer: asyncio.StreamWriter, rec: Received) -> bool:
        path = rec.path.split("?")[0]
        parts = path.strip("/").split("/")
        def send(*events: object) -> None:
            for e in events:
                if rec.method == "HEAD" and isinstance(e, h11.Data):
                    continue  # a HEAD response has headers only
                writer.write(conn.send(e))
        if path.startswith("/echo"):
            body = json.dumps({"method": rec.method, "path": rec.path, "headers": rec.headers,
                               "body": rec.body.decode("latin-1")}).encode()
            send(h11.Response(status_code=200,
                              headers=[("Content-Type", "application/json"), ("Content-Length", str(len(body)))]),
                 h11.Data(data=body), h11.EndOfMessage())
        elif path == "/sink":
            body = str(rec.body_size).encode()
            send(h11.Response(status_code=200,
                              headers=[("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]),
                 h11.Data(data=body), h11.EndOfMessage())
        elif parts[0] == "bytes":
            n = int(parts[1])
            send(h11.Response(status_code=200,
                              headers=[("Content-Type", "application/octet-stream"), ("Content-Length", str(n))]))
            chunk = b"x" * 65536
            sent = 0
            while sent < n:
                k = min(len(chunk), n - sent)
                send(h11.Data(data=chunk[:k]))
                sent += k
                await writer.drain()
            send(h11.EndOfMessage())
        elif parts[0] == "chunked":
            n, k = int(parts[1]), int(parts[2])
            send(h11.Response(status_code=200,
                              headers=[("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")]))
            sent = 0
            while sent < n:
                size = min(k, n - sent)
                send(h11.Data(data=b"y" * size))
                sent += size
                await writer.drain()
            send(h11.EndOfMessage())
        elif parts[0] == "status":
            code = int(parts[1])
            headers = [] if code in (204, 304) else [("Content-Length", "0")]
            send(h11.Response(status_code=code, headers=headers), h11.EndOfMessage())
        elif path == "/gzip":
            body = gzip.compress(b"hello compressed world " * 20)
            send(h11.Response(status_code=200, headers=[("Content-Type", "text/plain"), ("Content-Encoding", "gzip"),
                                                        ("Content-Length", str(len(body)))]),
                 h11.Data(data=body), h11.EndOfMessage())
        elif path == "/bigjson":
            # 2000 objects, pretty-printed ~4 lines each: the marker sits near line 5,000.
            items = [{"i": i, "name": "needle-in-the-haystack" if i == 1250 else f"item {i}"} for i in range(2000)]
            body = json.dumps(items).encode()
            send(h11.Response(status_code=200,
                              headers=[("Content-Type", "application/json"), ("Content-Length", str(len(body)))]),
                 h11.Data(data=body), h11.EndOfMessage())
        elif path == "/json":
            body = json.dumps({"name": "interpose", "items": [1, 2, 3]}).encode()
            send(h11.Response(status_code=200,
                              headers=[("Content-Type", "application/json"), ("Content-Length", str(len(body)))]),
                 h11.Data(data=body), h11.EndOfMessage())
        elif path == "/close":
            send(h11.Response(status_code=200, headers=[("Content-Length", "2"), ("Connection", "close")]),
                 h11.Data(data=b"ok"), h11.EndOfMessage())
        elif path == "/hang":
            await asyncio.Event().wait()
        elif path == "/reset":
            _reset(writer)
            return False
        elif path == "/reset-mid-body":
            send(h11.Response(status_code=200, headers=[("Content-Length", "100000")]), h11.Data(data=b"z" * 1000))
            await writer.drain()
            _reset(writer)
            return False
        else:
            body = f"ok {rec.path}".encode()
            send(h11.Response(status_code=200,
                              headers=[("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]),
                 h11.Data(data=body), h11.EndOfMessage())
        await writer.drain()
        return True


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
