"""Every addon event as a dataclass. `name` is the SPEC hook name; fields are its arguments, in order.

The addon manager looks hooks up on addons by `name` and calls them with `args()`. After the addons have
run, `bus_message(hook)` says which typed message (runtime/bus.py) the hook means for a viewer, if any:
this table is the one place where hook names turn into "flow added", "flow updated" and so on.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from interpose.runtime.bus import FlowAdded, FlowUpdated, LogRecorded, MessageAdded, OptionsChanged

# Names of every hook in SPEC's Addon API, the 26 events users' scripts rely on.
ALL: dict[str, type[Hook]] = {}


@dataclass
class Hook:
    name: ClassVar[str]

    def args(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            ALL[cls.name] = cls


# -- lifecycle ---------------------------------------------------------------
@dataclass
class LoadHook(Hook):
    """An addon was added. It may declare options: `loader.add_option(...)`."""
    name = "load"
    loader: Any


@dataclass
class StartHook(Hook):
    """Once, before other events reach the addon. Returning a value replaces the addon with it."""
    name = "start"


@dataclass
class ConfigureHook(Hook):
    """Options changed. `updated` holds every name at startup and only the changed ones later."""
    name = "configure"
    options: Any
    updated: set[str]


@dataclass
class TickHook(Hook):
    """Fires a few times a second for as long as the proxy runs."""
    name = "tick"


@dataclass
class DoneHook(Hook):
    """The addon is unloaded or the proxy is shutting down."""
    name = "done"


@dataclass
class LogHook(Hook):
    """A log entry was added: `entry.msg`, `entry.level` (debug, info, warn, error)."""
    name = "log"
    entry: Any


# -- connections ------------------------------------------------------------
@dataclass
class ClientConnectHook(Hook):
    """A client connected. `root_layer.client_conn.address` is its address."""
    name = "clientconnect"
    root_layer: Any


@dataclass
class ClientDisconnectHook(Hook):
    """A client's connection closed."""
    name = "clientdisconnect"
    root_layer: Any


@dataclass
class NextLayerHook(Hook):
    """The proxy chose the next protocol layer. Return (or set `layer.replacement` to) another layer to swap it."""
    name = "next_layer"
    layer: Any


@dataclass
class ServerConnectHook(Hook):
    """The proxy is about to connect to a server; `server_conn.address` is set and may be changed."""
    name = "serverconnect"
    server_conn: Any


@dataclass
class ServerDisconnectHook(Hook):
    """The proxy closed a server connection."""
    name = "serverdisconnect"
    server_conn: Any


# -- HTTP -------------------------------------------------------------------
@dataclass
class HttpConnectHook(Hook):
    """A CONNECT request arrived. A non-2xx `flow.response` refuses it."""
    name = "http_connect"
    flow: Any


@dataclass
class RequestHeadersHook(Hook):
    """Request headers are in, the body is not. Set `flow.request.stream` to stream it; set `flow.response` to
    answer."""
    name = "requestheaders"
    flow: Any


@dataclass
class RequestHook(Hook):
    """The whole request is in. Edits are forwarded; setting `flow.response` answers without a server."""
    name = "request"
    flow: Any


@dataclass
class ResponseHeadersHook(Hook):
    """Response headers are in, the body is not. Set `flow.response.stream` to stream it."""
    name = "responseheaders"
    flow: Any


@dataclass
class ResponseHook(Hook):
    """The whole response is in. Edits reach the client."""
    name = "response"
    flow: Any


@dataclass
class ErrorHook(Hook):
    """The flow failed: `flow.error.msg` says why. A valid HTTP error response is not an error."""
    name = "error"
    flow: Any


# -- WebSocket --------------------------------------------------------------
@dataclass
class WebsocketHandshakeHook(Hook):
    """A client asks to upgrade to WebSocket; the handshake `HTTPFlow`'s headers may be edited."""
    name = "websocket_handshake"
    flow: Any


@dataclass
class WebsocketStartHook(Hook):
    """Both sides agreed on the upgrade; gets the `WebSocketFlow`."""
    name = "websocket_start"
    flow: Any


@dataclass
class WebsocketMessageHook(Hook):
    """A complete message arrived: `flow.messages[-1]`, editable or droppable."""
    name = "websocket_message"
    flow: Any


@dataclass
class WebsocketEndHook(Hook):
    """The WebSocket closed cleanly."""
    name = "websocket_end"
    flow: Any


@dataclass
class WebsocketErrorHook(Hook):
    """The WebSocket ended abruptly."""
    name = "websocket_error"
    flow: Any


# -- TCP ----------------------------------------------------------------------
@dataclass
class TcpStartHook(Hook):
    """A raw TCP relay started."""
    name = "tcp_start"
    flow: Any


@dataclass
class TcpMessageHook(Hook):
    """A chunk arrived: `flow.messages[-1]`, editable or droppable."""
    name = "tcp_message"
    flow: Any


@dataclass
class TcpEndHook(Hook):
    """The TCP relay ended cleanly."""
    name = "tcp_end"
    flow: Any


@dataclass
class TcpErrorHook(Hook):
    """The TCP relay ended with an error."""
    name = "tcp_error"
    flow: Any


# -- what each hook means for a viewer ------------------------------------------------------------------
_ADDED = {"requestheaders", "tcp_start"}
_UPDATED = {"request", "responseheaders", "response", "error", "websocket_handshake", "websocket_start",
            "websocket_end", "websocket_error", "tcp_end", "tcp_error"}
_MESSAGE = {"websocket_message", "tcp_message"}


def bus_message(hook: Hook) -> Any | None:
    """The bus message that tells a viewer what `hook` changed, or None (connection and lifecycle hooks)."""
    name = hook.name
    if name in _UPDATED:
        return FlowUpdated(hook.flow, name)  # type: ignore[attr-defined]
    if name in _MESSAGE:
        flow = hook.flow  # type: ignore[attr-defined]
        return MessageAdded(flow, flow.hooking or flow.messages[-1])
    if name in _ADDED:
        return FlowAdded(hook.flow)  # type: ignore[attr-defined]
    if name == "log":
        return LogRecorded(hook.entry)  # type: ignore[attr-defined]
    if name == "configure":
        return OptionsChanged(frozenset(hook.updated))  # type: ignore[attr-defined]
    return None
