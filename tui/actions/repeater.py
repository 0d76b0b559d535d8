"""Sending requests again: `r` replays a flow as it is; `R` opens it in the repeater, where the user edits
and sends it (HTTP), or opens a WebSocket with it and sends messages. The repeater view (tui/repeater/view.py)
never touches a socket: the callbacks here do, through the proxy."""
from __future__ import annotations

import base64
from typing import Any

from interpose.http import HTTPFlow
from interpose.model.connection import Client, Server
from interpose.proxy.modes import Mode
from interpose.tui.actions.registry import action, focused_flow
from interpose.tui.commands.run import run_command
from interpose.tui.repeater.http import RepeaterError, parse_request
from interpose.tui.repeater.view import RepeaterView, Tab, tab_for
from interpose.tui.repeater.websocket import (
    Entry,
    Route,
    WsSession,
    WsTab,
    parse_handshake,
    parse_outgoing,
    tls_context,
)
from interpose.tui.ui import UI


@action("flow.replay")
def flow_replay(app: UI, size: Any) -> None:
    flow = focused_flow(app)
    if flow is None or flow.type != "http":
        app.notify("only HTTP requests can be replayed")
        return
    app.spawn(app.core.replay(flow))
    app.notify("replaying the request")


@action("repeater.send")
def repeater_send(app: UI, size: Any) -> None:
    flow = focused_flow(app)
    if flow is None or flow.type not in ("http", "websocket"):
        app.notify("only HTTP requests and WebSockets go to the repeater")
        return
    view = _repeater(app)
    view.add(tab_for(flow))
    app.push(view)


def _repeater(app: UI) -> RepeaterView:
    view = app.repeater
    if view is None:
        view = RepeaterView(lambda tab: _repeater_send(app, tab), lambda tab, op, arg: _repeater_ws(app, tab, op, arg),
                            lambda line: run_command(app, line))
        app.repeater = view
    return view


repeater_view = _repeater
"""The app's repeater view, made on first use (tui/session.py puts a session's tabs back into it)."""


def _repeater_send(app: UI, tab: Tab) -> None:
    try:
        req = parse_request(tab.text.encode("utf-8", "surrogateescape"), tab.scheme, tab.host, tab.port)
    except RepeaterError as e:
        app.notify(str(e), "error")
        return
    flow = HTTPFlow(Client(address=("repeater", 0)), Server(address=(req.host, req.port)))
    flow.request = req

    async def send() -> None:
        new = await app.core.replay(flow)
        _repeater(app).record(tab, new)
        app.notify(f"{req.method} {req.pretty_url} → " +
                   (f"{new.response.status_code}" if new.response is not None else
                    f"error: {new.error.msg if new.error else '?'}"))
    app.spawn(send())
    app.notify("sending…")


def _ws_route(app: UI) -> Route:
    """Through the proxy's own listener (so the connection is a new flow) in the modes where a client may
    CONNECT; otherwise straight to the server."""
    opts = app.master.options
    certs = getattr(app.master, "certs", None)
    ctx = tls_context(bool(opts.ssl_insecure), opts.ssl_verify_upstream_trusted_ca,
                      getattr(certs, "ca_cert_path", None))
    if Mode.parse(opts.mode).kind not in ("regular", "upstream"):
        return Route(None, ctx)
    host, port = app.address
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    auth = None
    if opts.proxyauth and not opts.proxyauth.startswith("@"):
        creds = "repeater:repeater" if opts.proxyauth == "any" else opts.proxyauth
        auth = "Basic " + base64.b64encode(creds.encode()).decode()
    return Route((host, port), ctx, auth)


def _ws_entry(app: UI, tab: WsTab, entry: Entry) -> None:
    tab.add(entry)
    if entry.kind == "error":
        app.notify(f"WebSocket: {entry.note}", "error")
    _repeater(app).ws_changed(tab)
    app.redraw_soon()


def _repeater_ws(app: UI, tab: WsTab, op: str, arg: Any) -> bool:
    """A WebSocket tab's connection: connect (closing the old one first), send, disconnect, close."""
    old, old_task = tab.session, tab.task
    if op in ("disconnect", "close"):
        if old is not None and old.state in ("connecting", "open"):
            app.spawn(old.close(old_task))
            app.notify("closing the connection")
        elif op == "disconnect":
            app.notify("not connected")
        return True
    if op == "send":
        text, hex_mode = arg
        if old is None or old.state != "open":
            app.notify("not connected: ctrl s connects", "warn")
            return False
        try:
            old.send(parse_outgoing(text, hex_mode))
        except RepeaterError as e:
            app.notify(str(e), "error")
            return False
        return True
    assert op == "connect"
    try:
        handshake = parse_handshake(tab.text.encode("utf-8", "surrogateescape"), tab.scheme, tab.host, tab.port)
    except RepeaterError as e:
        app.notify(str(e), "error")
        return False
    session = WsSession(handshake, _ws_route(app), lambda e: _ws_entry(app, tab, e))
    tab.session = session

    async def connect() -> None:
        if old is not None:
            await old.close(old_task)
        if tab.session is session:  # not replaced by a newer ctrl s meanwhile
            await session.run()
    tab.task = app.spawn(connect())
    _repeater(app).ws_changed(tab)
    app.notify(f"connecting to {handshake.url}")
    return True
