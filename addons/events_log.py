"""Log every addon event with its arguments (an example for addon writers).

Load it with `interpose-dump -s addons/events_log.py` (or `P` in the TUI) and watch the event log:
each event is one line, `<event> <what it got>`. Copy this file to start an addon of your own and
keep only the hooks you need; the others cost nothing when they are absent.

Hooks are methods (or module-level functions) named after the event; each may be `async def`.
Their arguments, in the order they happen for one connection:

    load(loader)                   the addon was added; declare options with loader.add_option(...)
    start()                        once, before other events; returning an object replaces the addon
    configure(options, updated)    every option name at startup, only the changed ones later
    tick()                         several times a second for as long as the proxy runs
    clientconnect(root_layer)      a client connected: root_layer.client_conn.address
    next_layer(layer)              the proxy picked layer.kind (tls, http1, http2, tcp, websocket,
                                   passthrough); `return layer.replace("tcp")` picks another
    http_connect(flow)             a CONNECT request; a non-2xx flow.response refuses it
    requestheaders(flow)           request head in, body not yet; set flow.response to answer
    request(flow)                  whole request in; set flow.response to answer without a server
    serverconnect(server_conn)     about to connect to server_conn.address (via server_conn.via)
    responseheaders(flow)          response head in; flow.response.stream = True streams the body
    response(flow)                 whole response in; edit it before it goes to the client
    error(flow)                    the flow failed: flow.error.msg (also after flow.kill())
    websocket_handshake(flow)      the HTTP upgrade request of a WebSocket (an HTTPFlow)
    websocket_start(flow)          the WebSocket is open (a WebSocketFlow; .handshake_flow)
    websocket_message(flow)        flow.messages[-1] just arrived; edit it or .drop() it
    websocket_end(flow)            closed normally: flow.close_code, flow.close_reason
    websocket_error(flow)          ended abnormally: flow.error.msg
    tcp_start(flow)                a raw TCP relay began (a TCPFlow)
    tcp_message(flow)              flow.messages[-1] just arrived; edit it or .drop() it
    tcp_end(flow) / tcp_error(flow)
    serverdisconnect(server_conn)  a server connection closed
    clientdisconnect(root_layer)   the client's connection closed
    log(entry)                     a log entry was added: entry.level, entry.msg
    done()                         the addon is unloaded or the proxy shuts down

Two hooks need care, and show how to handle hooks that fire a lot or feed back into themselves:
`tick` is logged only now and then, and `log` must not log (its entry would come straight back to it).
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from interpose import ctx
from interpose.http import HTTPFlow

TICK_EVERY_S = 30.0
"""`tick` fires several times a second: log the first one, then one line per this many seconds."""


def _short(data: bytes | str, limit: int = 40) -> str:
    """A message's content for a log line: repr, cut to `limit` characters."""
    text = repr(data)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _addr(address: tuple[str, int] | None) -> str:
    return f"{address[0]}:{address[1]}" if address else "?"


def _http(flow: HTTPFlow) -> str:
    """`GET http://example.com/ → 200` (with the error, if the flow has one)."""
    req = flow.request
    line = f"{req.method} {req.pretty_url}"
    if flow.response is not None:
        line += f" → {flow.response.status_code}"
    if flow.error is not None:
        line += f" ✗ {flow.error.msg}"
    return line


def _message(flow: Any) -> str:
    """The newest WebSocket/TCP message: direction, size and the start of its content."""
    msg = flow.messages[-1]
    arrow = "client → server" if msg.from_client else "server → client"
    return f"{arrow} {len(msg.content)} bytes {_short(msg.content)}"


class EventsLog:
    def __init__(self) -> None:
        self.ticks = 0
        self.last_tick_log = 0.0
        self.writing = False
        """True while this addon writes a log entry, so that `log` knows the entry is ours."""

    def emit(self, event: str, summary: str = "") -> None:
        """Log one event. Every line starts with the event name."""
        self.writing = True
        try:
            ctx.log.info(f"{event} {summary}".rstrip())
        finally:
            self.writing = False

    # -- lifecycle ---------------------------------------------------------------------------------
    def load(self, loader: Any) -> None:
        # An addon declares its options here, e.g.:
        #   loader.add_option("events_log_ticks", bool, False, "Log every tick.")
        self.emit("load", type(loader).__name__)

    def start(self) -> None:
        # Returning an object here would replace this addon with it; None keeps it.
        self.emit("start")

    def configure(self, options: Any, updated: set[str]) -> None:
        # At startup `updated` holds every option name (dozens); later only what changed.
        names = sorted(updated)
        shown = ", ".join(names[:5]) + (f", … ({len(names)} options)" if len(names) > 5 else "")
        self.emit("configure", shown)

    def tick(self) -> None:
        # Logging each tick would bury everything else: the first one, then one line now and then.
        self.ticks += 1
        now = time.monotonic()
        if self.ticks == 1 or now - self.last_tick_log >= TICK_EVERY_S:
            self.last_tick_log = now
            self.emit("tick", f"#{self.ticks}")

    def log(self, entry: Any) -> None:
        # Logging from here would call `log` again. The core drops such an entry, so instead the line
        # is written from the event loop right after this hook returns. Entries this addon wrote
        # itself are skipped: otherwise every line would beget another, forever.
        if self.writing:
            return
        summary = f"[{entry.level}] {_short(entry.msg, 60)}"
        try:
            asyncio.get_running_loop().call_soon(self.emit, "log", summary)
        except RuntimeError:
            pass  # no event loop (an entry logged before the proxy runs): nothing to schedule on

    def done(self) -> None:
        self.emit("done", f"(ticks seen: {self.ticks})")

    # -- connections -------------------------------------------------------------------------------
    def clientconnect(self, root_layer: Any) -> None:
        self.emit("clientconnect", _addr(root_layer.client_conn.address))

    def clientdisconnect(self, root_layer: Any) -> None:
        self.emit("clientdisconnect", _addr(root_layer.client_conn.address))

    def next_layer(self, layer: Any) -> None:
        # `return layer.replace("tcp")` would make the proxy run another kind of layer.
        extra = "".join(f" {k}={v}" for k, v in (("sni", layer.sni), ("alpn", layer.alpn)) if v)
        self.emit("next_layer", f"{layer.kind} for {_addr(layer.client_conn.address)}{extra}")

    def serverconnect(self, server_conn: Any) -> None:
        via = f" via {_addr(server_conn.via)}" if server_conn.via else ""
        self.emit("serverconnect", f"{_addr(server_conn.address)}{via}")

    def serverdisconnect(self, server_conn: Any) -> None:
        self.emit("serverdisconnect", _addr(server_conn.address))

    # -- HTTP --------------------------------------------------------------------------------------
    def http_connect(self, flow: HTTPFlow) -> None:
        self.emit("http_connect", f"CONNECT {flow.request.host}:{flow.request.port}")

    def requestheaders(self, flow: HTTPFlow) -> None:
        self.emit("requestheaders", f"{_http(flow)} ({len(flow.request.headers)} headers)")

    def request(self, flow: HTTPFlow) -> None:
        body = flow.request.raw_content
        self.emit("request", f"{_http(flow)} ({'streamed' if body is None else f'{len(body)} bytes'})")

    def responseheaders(self, flow: HTTPFlow) -> None:
        self.emit("responseheaders", _http(flow))

    def response(self, flow: HTTPFlow) -> None:
        assert flow.response is not None
        body = flow.response.raw_content
        self.emit("response", f"{_http(flow)} ({'streamed' if body is None else f'{len(body)} bytes'})")

    def error(self, flow: HTTPFlow) -> None:
        self.emit("error", _http(flow))

    # -- WebSocket ---------------------------------------------------------------------------------
    def websocket_handshake(self, flow: HTTPFlow) -> None:
        self.emit("websocket_handshake", _http(flow))

    def websocket_start(self, flow: Any) -> None:
        self.emit("websocket_start", flow.handshake_flow.request.pretty_url)

    def websocket_message(self, flow: Any) -> None:
        kind = "text" if flow.messages[-1].is_text else "binary"
        self.emit("websocket_message", f"{kind} {_message(flow)}")

    def websocket_end(self, flow: Any) -> None:
        self.emit("websocket_end", f"{flow.handshake_flow.request.pretty_url} "
                                   f"code={flow.close_code} reason={flow.close_reason!r}")

    def websocket_error(self, flow: Any) -> None:
        self.emit("websocket_error", f"{flow.handshake_flow.request.pretty_url} "
                                     f"✗ {flow.error.msg if flow.error else '?'}")

    # -- TCP ---------------------------------------------------------------------------------------
    def tcp_start(self, flow: Any) -> None:
        self.emit("tcp_start", f"{_addr(flow.client_conn.address)} ↔ {_addr(flow.server_conn.address)}")

    def tcp_message(self, flow: Any) -> None:
        self.emit("tcp_message", _message(flow))

    def tcp_end(self, flow: Any) -> None:
        self.emit("tcp_end", f"{_addr(flow.server_conn.address)} after {flow.message_count} messages")

    def tcp_error(self, flow: Any) -> None:
        self.emit("tcp_error", f"{_addr(flow.server_conn.address)} ✗ {flow.error.msg if flow.error else '?'}")


addons = [EventsLog()]
