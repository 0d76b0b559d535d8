"""The WebSocket repeater's connection: a new WebSocket to a flow's server, opened through the proxy so that
it shows up as a new flow, with messages typed by the user. No urwid here.

The handshake is raw HTTP/1.1 text the user may edit (parsed with h11 by `repeater.http.parse_request`);
wsproto writes the real handshake and frames every message. The path a connection takes:

    regular/upstream mode:  TCP to the proxy → CONNECT host:port (h11) → TLS if wss → wsproto
    other modes:            TCP to the server → TLS if wss → wsproto (no flow appears)

TLS through the proxy is checked against the proxy's own CA (and the usual store, for hosts whose TLS
the proxy passes through untouched); the proxy verifies the real server as its options say.
"""
from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from interpose.proxy import upstream
from interpose.proxy.upstream import make_client_tls_context
from interpose.tui.format import clock_ms
from interpose.tui.repeater.http import RepeaterError, parse_request

CONNECT_TIMEOUT_S = 20.0
CLOSE_TIMEOUT_S = 5.0
MAX_ENTRIES = 2000
# wsproto writes these itself; the subprotocols go in as a list, and extensions are not offered.
_GENERATED = {"host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
              "sec-websocket-extensions", "sec-websocket-protocol", "content-length", "transfer-encoding"}


@dataclass(frozen=True)
class Handshake:
    """Where a WebSocket goes and what its opening request carries."""
    host: str
    port: int
    tls: bool
    target: str
    """The request target (path and query)."""
    host_header: str
    extra_headers: list[tuple[str, str]]
    subprotocols: list[str]

    @property
    def url(self) -> str:
        default = 443 if self.tls else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{'wss' if self.tls else 'ws'}://{self.host}{port}{self.target}"

    def request(self) -> Request:
        headers = [(k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
                   for k, v in self.extra_headers]
        return Request(host=self.host_header, target=self.target, extra_headers=headers,
                       subprotocols=list(self.subprotocols))


def parse_handshake(raw: bytes, scheme: str, default_host: str, default_port: int) -> Handshake:
    """The handshake request a user wrote, as HTTP/1.1 text. The Host header says where it goes."""
    req = parse_request(raw, "https" if scheme in ("https", "wss") else "http", default_host, default_port)
    if req.method != "GET":
        raise RepeaterError(f"a WebSocket handshake is a GET request, not {req.method}")
    extra: list[tuple[str, str]] = []
    protocols: list[str] = []
    for name, value in req.headers.items(multi=True):
        low = name.lower()
        if low == "sec-websocket-protocol":
            protocols += [p.strip() for p in value.split(",") if p.strip()]
        elif low not in _GENERATED:
            extra.append((name, value))
    host_header = req.headers.get("host") or req.host_header_value
    return Handshake(req.host, req.port, req.scheme == "https", req.path or "/", host_header, extra, protocols)


def parse_outgoing(text: str, hex_mode: bool) -> str | bytes:
    """What the message line says to send: its text, or in hex mode the bytes its hex digits spell."""
    if not hex_mode:
        return text
    try:
        return bytes.fromhex("".join(text.split()))
    except ValueError:
        raise RepeaterError("not hex: write pairs of hex digits, e.g. 00 ff 10") from None


@dataclass
class Entry:
    """One line of the live message list: a message either way, or what happened to the connection."""
    kind: str
    """"sent", "received", "info" or "error"."""
    content: bytes = b""
    is_text: bool = True
    note: str = ""
    timestamp: float = field(default_factory=time.time)


def show_content(entry: Entry, limit: int = 2000) -> str:
    """A message as one line: its text, or its bytes in hex when it is binary."""
    if entry.is_text:
        text = entry.content.decode("utf-8", "replace")
        return "".join(c if c.isprintable() else "\N{SYMBOL FOR NEWLINE}" if c == "\n" else "." for c in text[:limit])
    return entry.content[: limit // 3].hex(" ")


def entry_parts(entry: Entry) -> tuple[str, str, str, str]:
    """(arrow, time, size, content) of an entry, for the list."""
    clock = clock_ms(entry.timestamp)
    if entry.kind in ("sent", "received"):
        arrow = "→" if entry.kind == "sent" else "←"
        size = f"{len(entry.content)} B" + ("" if entry.is_text else " bin")
        return arrow, clock, size, show_content(entry)
    return "•" if entry.kind == "info" else "✗", clock, "", entry.note


@dataclass(frozen=True)
class Route:
    """How to reach the server: through the proxy listening at `proxy`, or directly when it is None."""
    proxy: tuple[str, int] | None
    tls_context: ssl.SSLContext
    proxy_authorization: str | None = None


def tls_context(insecure: bool, *cafiles: str | None) -> ssl.SSLContext:
    """A client TLS context trusting certifi's store plus `cafiles` (e.g. the proxy's CA), or nothing at all."""
    return make_client_tls_context(insecure, cafiles, ("http/1.1",))


class WsSession:
    """One WebSocket connection of a repeater tab. `run()` connects and reads until the connection ends;
    everything that happens arrives at `on_entry` (and `state` changes: connecting → open → closed/failed)."""

    def __init__(self, handshake: Handshake, route: Route, on_entry: Callable[[Entry], None]) -> None:
        self.handshake = handshake
        self.route = route
        self.on_entry = on_entry
        self.state = "connecting"
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.writer: asyncio.StreamWriter | None = None
        self._closing = False

    def _entry(self, kind: str, note: str = "") -> None:
        self.on_entry(Entry(kind, note=note))

    async def run(self) -> None:
        try:
            reader, _ = await asyncio.wait_for(self._open(), CONNECT_TIMEOUT_S)
            await self._read(reader)
        except asyncio.CancelledError:
            self.state = "closed"  # said by close(); at exit there is no one left to tell
            raise
        except TimeoutError:
            self._finish("failed", "connection timed out", error=True)
        except RepeaterError as e:
            self._finish("failed", str(e), error=True)
        except ssl.SSLCertVerificationError as e:
            self._finish("failed", f"certificate verify failed: {e.verify_message}", error=True)
        except ssl.SSLError as e:
            self._finish("failed", f"TLS handshake failed: {e.reason or e}", error=True)
        except ConnectionRefusedError:
            self._finish("failed", "connection refused", error=True)
        except OSError as e:
            self._finish("failed", f"connection error: {e.strerror or e}", error=True)
        except Exception as e:  # noqa: BLE001 - a wire or protocol surprise ends this connection, never the UI
            self._finish("failed", f"{type(e).__name__}: {e}", error=True)
        finally:
            self._close_transport()

    def _finish(self, state: str, note: str, error: bool = False) -> None:
        if self.state in ("closed", "failed"):
            return
        self.state = state
        self._entry("error" if error else "info", note)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        hs, route = self.handshake, self.route
        where = route.proxy or (hs.host, hs.port)
        reader, writer = await asyncio.open_connection(*where)
        self.writer = writer
        if route.proxy is not None:
            await self._connect_tunnel(reader, writer)
        if hs.tls:
            await writer.start_tls(route.tls_context, server_hostname=hs.host)
        writer.write(self.ws.send(hs.request()))
        await writer.drain()
        return reader, writer

    async def _connect_tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """CONNECT host:port through the proxy (the core's one CONNECT client); the tunnel then carries
        the WebSocket."""
        hs = self.handshake
        auth = self.route.proxy_authorization
        headers = [("Proxy-Authorization", auth)] if auth else []
        try:
            early = await upstream.connect_tunnel(reader, writer, hs.host, hs.port, headers, refusal_body=True)
        except upstream.TunnelRefused as e:
            why = e.body.decode("utf-8", "replace").strip() or e.reason
            raise RepeaterError(f"the proxy refused the tunnel: {e.status_code} {why}") from None
        except upstream.ServerConnectError:
            raise RepeaterError("the proxy closed the connection") from None
        if early:
            raise RepeaterError("the proxy sent data before the tunnel opened")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        parts: list[Any] = []
        reject: tuple[int, bytearray] | None = None
        while True:
            data = await reader.read(65536)
            self.ws.receive_data(data or None)
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    self.state = "open"
                    proto = f" (subprotocol {event.subprotocol})" if event.subprotocol else ""
                    self._entry("info", f"connected to {self.handshake.url}{proto}")
                elif isinstance(event, RejectConnection):
                    reject = (event.status_code, bytearray())
                    if not event.has_body:
                        self._rejected(*reject)
                        return
                elif isinstance(event, RejectData) and reject is not None:
                    reject[1].extend(event.data)
                    if event.body_finished:
                        self._rejected(*reject)
                        return
                elif isinstance(event, TextMessage | BytesMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        text = isinstance(event, TextMessage)
                        joined = "".join(parts).encode() if text else b"".join(parts)
                        parts = []
                        self.on_entry(Entry("received", joined, text))
                elif isinstance(event, Ping):
                    self._write(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    if not self._closing:
                        self._write(self.ws.send(event.response()))
                    why = f" ({event.reason})" if event.reason else ""
                    who = "closed" if self._closing else "the server closed the connection"
                    self._finish("closed", f"{who}: code {event.code}{why}")
                    return
            if not data:
                if reject is not None:
                    self._rejected(*reject)
                else:
                    self._finish("closed" if self.state == "open" else "failed",
                                 "the connection ended" if self.state == "open" else "the connection ended before "
                                 "the handshake finished", error=self.state != "open")
                return

    def _rejected(self, status: int, body: bytearray) -> None:
        text = bytes(body).decode("utf-8", "replace").strip().splitlines()
        self._finish("failed", f"handshake rejected: {status}" + (f": {text[0][:200]}" if text else ""), error=True)

    def _write(self, data: bytes) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(data)

    def send(self, content: str | bytes) -> Entry:
        """Send one message (text for `str`, binary for `bytes`); the entry is also given to `on_entry`."""
        if self.state != "open":
            raise RepeaterError("not connected: ctrl s connects")
        if isinstance(content, str):
            self._write(self.ws.send(TextMessage(data=content)))
            entry = Entry("sent", content.encode("utf-8", "surrogateescape"), True)
        else:
            self._write(self.ws.send(BytesMessage(data=content)))
            entry = Entry("sent", content, False)
        self.on_entry(entry)
        return entry

    async def close(self, task: asyncio.Task[None] | None = None) -> None:
        """Close cleanly: a close frame, the server's answer (or a timeout), then the socket; `task` is
        the one running `run()`, cancelled if it is still connecting or the server never answers."""
        if self.state == "open":
            self._closing = True
            with contextlib.suppress(Exception):
                self._write(self.ws.send(CloseConnection(code=1000, reason="")))
        if task is not None and not task.done():
            if self.state != "open" and not self._closing:
                task.cancel()
                self._finish("closed", "disconnected before the handshake finished")
            with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(task), CLOSE_TIMEOUT_S)
            if not task.done():
                self._finish("closed", "closed (the server did not answer the close in time)")
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._close_transport()

    def _close_transport(self) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.close()


@dataclass
class WsTab:
    """A repeater tab for a WebSocket: the handshake text, the live connection and what passed on it."""
    title: str
    scheme: str
    host: str
    port: int
    text: str
    entries: list[Entry] = field(default_factory=list)
    session: WsSession | None = None
    task: asyncio.Task[None] | None = None
    hex_mode: bool = False
    draft: str = ""
    """What the message line held when the tab was left."""

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)
        if len(self.entries) > MAX_ENTRIES:
            del self.entries[: len(self.entries) - MAX_ENTRIES]

    @property
    def state(self) -> str:
        return self.session.state if self.session is not None else "new"
