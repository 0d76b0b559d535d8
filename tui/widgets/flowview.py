"""The flow view: tabs Request, Response, Messages (WebSocket/TCP stream) and Details.

Lines are built once per change of flow, tab or content mode, and drawn lazily.
"""
from __future__ import annotations

import re
import time
from typing import Any

import urwid

from interpose.model.units import human_size
from interpose.tui import contentviews
from interpose.tui.contentviews.text import sanitize_segment as safe
from interpose.tui.format import clock_ms, human_duration, reason, status_attr
from interpose.tui.widgets.common import LinesWalker, text_lines

TABS_HTTP = ("Request", "Response", "Details")
TABS_WEBSOCKET = ("Request", "Response", "Messages", "Details")
WRAP_AT = 4096
"""Split longer lines (minified bodies) so that a single urwid Text never holds megabytes."""
TABS_TCP = ("Messages", "Details")
Line = list[tuple[str, str]]


def _headers(headers: Any) -> list[Line]:
    return [[("header_name", f"{safe(k)}: "), ("header_value", safe(v))] for k, v in headers.items(multi=True)]


def _body(message: Any, mode: str, query: list[tuple[str, str]] | None = None) -> list[Line]:
    if message.raw_content is None and message.stream:
        return [[("dim", "(body streamed through, not kept)")]]
    body, too_large = contentviews.decoded_body(message)
    if too_large is not None:
        return [[("warn", too_large)]]
    rendered = contentviews.render(body, message.headers.get("content-type") or "", mode, query=query, wrap_at=WRAP_AT,
                                   headers=message.headers)
    out: list[Line] = [[("title", f"── {rendered.title} "), ("dim", f"[m: {mode}]")]]
    if rendered.error:
        out.append([("warn", rendered.error)])
    out.extend(rendered.lines)
    return out


def request_lines(flow: Any, mode: str, showhost: bool = False) -> list[Line]:
    """The Request tab. The request line names the address the request went to, as the flow list does; with
    `showhost` (mitmproxy's option) the Host header's host instead."""
    req = flow.request
    url = req.pretty_url if showhost else req.url
    lines: list[Line] = [[("method", safe(req.method) + " "), ("url", safe(url) + " "),
                          ("dim", safe(req.http_version))]]
    lines += _headers(req.headers)
    lines.append([])
    q = req.query.items(multi=True) if "?" in req.path else None
    lines += _body(req, mode, q)
    return lines + _trailers(req)


def _trailers(message: Any) -> list[Line]:
    """The trailer section after the body (HTTP/1 chunked, HTTP/2), when there is one."""
    if not message.trailers:
        return []
    return [[], [("dim", "trailers:")], *_headers(message.trailers)]


def response_lines(flow: Any, mode: str) -> list[Line]:
    resp = flow.response
    if resp is None:
        if flow.error is not None:
            return [[("error", f"Error: {safe(flow.error.msg)}")]]
        return [[("dim", "(no response yet)")]]
    lines: list[Line] = [[("dim", safe(resp.http_version) + " "),
                          (status_attr(resp.status_code),
                           f"{resp.status_code} {safe(reason(resp.status_code, resp.reason))}")]]
    lines += _headers(resp.headers)
    lines.append([])
    lines += _body(resp, mode) + _trailers(resp)
    if flow.error is not None:
        lines += [[], [("error", f"Error: {safe(flow.error.msg)}")]]
    return lines


def message_flow(flow: Any) -> Any | None:
    if flow.type in ("tcp", "websocket"):
        return flow
    return getattr(flow, "websocket", None)


def message_lines(flow: Any) -> tuple[list[Line], list[Any]]:
    """Lines of the Messages tab, and for each line the message it belongs to (for a, d, e)."""
    mf = message_flow(flow)
    if mf is None:
        return [[("dim", "(no messages: not a WebSocket or TCP flow)")]], [None]
    lines: list[Line] = [[("title", f"── {mf.message_count} messages"),
                          ("dim", f", newest {len(mf.messages)} kept" if mf.message_count > len(mf.messages) else "")]]
    owners: list[Any] = [None]
    for msg in list(mf.messages):
        arrow = ("method", "→ ") if msg.from_client else ("flow_ws", "← ")
        state = (("intercepted", "! held ") if msg.intercepted
                 else ("error", "✗ dropped ") if msg.dropped
                 else ("key", "+ injected ") if msg.injected
                 else ("warn", "✎ edited ") if getattr(msg, "edited", False) else ("text", ""))
        stamp = clock_ms(msg.timestamp)
        kind = "text" if msg.is_text else "binary"
        lines.append([state, arrow, ("dim", f"{stamp} {human_size(len(msg.content))} {kind}")])
        owners.append(msg)
        if msg.is_text:
            body = [safe(t) for t in msg.text.splitlines()] or [""]
            for t in body:
                lines.append([("text", "    " + t)])
                owners.append(msg)
        else:
            for ln in contentviews.render(msg.content, "", "hex").lines:
                lines.append([("text", "    "), *ln])
                owners.append(msg)
    close = getattr(mf, "close_code", None)
    if close is not None:
        who = "client" if mf.closed_by_client else "server"
        lines.append([("dim", f"closed by {who}: {close} {mf.close_reason or ''}")])
        owners.append(None)
    if mf.error is not None:
        lines.append([("error", f"Error: {mf.error.msg}")])
        owners.append(None)
    return lines, owners


def _conn_lines(title: str, conn: Any) -> list[Line]:
    if conn is None:
        return []
    addr = conn.address
    lines: list[Line] = [[("title", title)],
                         [("header_name", "  address: "), ("text", f"{addr[0]}:{addr[1]}" if addr else "?")]]
    via = getattr(conn, "via", None)
    if via:
        lines.append([("header_name", "  via: "), ("text", f"{via[0]}:{via[1]}")])
    tls = conn.tls
    if tls is not None:
        for label, value in (("SNI", tls.sni), ("ALPN", tls.alpn), ("TLS version", tls.version), ("cipher", tls.cipher),
                             ("certificate", tls.cert_subject), ("issuer", tls.cert_issuer),
                             ("expires", time.strftime("%Y-%m-%d", time.gmtime(tls.cert_not_after))
                              if tls.cert_not_after else None)):
            if value:
                lines.append([("header_name", f"  {label}: "), ("text", str(value))])
    else:
        lines.append([("header_name", "  TLS: "), ("dim", "no")])
    return lines


def detail_lines(flow: Any) -> list[Line]:
    lines = _conn_lines("Client", flow.client_conn) + [[]] + _conn_lines("Server", flow.server_conn) + [[]]
    lines.append([("title", "Timing")])
    start = flow.timestamp_created
    lines.append([("header_name", "  started: "), ("text", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start)))])
    if flow.type == "http":
        req, resp = flow.request, flow.response
        marks = [("request complete", req.timestamp_end), ("response started", resp.timestamp_start if resp else None),
                 ("response complete", resp.timestamp_end if resp else None)]
        for label, ts in marks:
            if ts:
                lines.append([("header_name", f"  {label}: "),
                              ("text", "+" + human_duration(ts - req.timestamp_start))])
    if flow.error is not None:
        lines += [[], [("error", f"Error: {safe(flow.error.msg)}")]]
    lines += [[], [("dim", f"flow id {flow.id}")]]
    return lines


class FlowView(urwid.WidgetWrap):
    context = "flowview"

    def __init__(self, flow: Any, options: Any = None) -> None:
        self.flow = flow
        self.options = options
        """The proxy's options, read when the lines are built (showhost)."""
        self._tab = "Messages" if flow.type == "tcp" else "Request"
        self.mode = "auto"
        self.search: str | None = None
        self._pattern: re.Pattern[str] | None = None
        self.held_stage: str | None = None
        """The stage the flow is held at (set by the app from the bus)."""
        self.owners: list[Any] = []
        self.walker = LinesWalker([], highlight=self._is_match)
        self.listbox = urwid.ListBox(self.walker)
        self.header = urwid.Text("")
        super().__init__(urwid.Frame(self.listbox, header=self.header))
        self.refresh()

    @property
    def tabs(self) -> tuple[str, ...]:
        """The Messages tab only for flows that have messages (a WebSocket's handshake grows it when it opens)."""
        if self.flow.type == "tcp":
            return TABS_TCP
        return TABS_WEBSOCKET if message_flow(self.flow) is not None else TABS_HTTP

    @property
    def tab(self) -> int:
        """The shown tab's index; the tab is kept by name, so it stays put when the Messages tab appears."""
        tabs = self.tabs
        return tabs.index(self._tab) if self._tab in tabs else 0

    @tab.setter
    def tab(self, i: int) -> None:
        self._tab = self.tabs[i]

    @property
    def tab_name(self) -> str:
        return self.tabs[self.tab]

    def _is_match(self, i: int) -> bool:
        return self._pattern is not None and self._pattern.search(self._plain[i]) is not None

    def refresh(self) -> None:
        name = self.tab_name
        if name == "Request":
            lines = request_lines(self.flow, self.mode, bool(getattr(self.options, "showhost", False)))
            self.owners = []
        elif name == "Response":
            lines = response_lines(self.flow, self.mode)
            self.owners = []
        elif name == "Messages":
            lines, self.owners = message_lines(self.flow)
        else:
            lines = detail_lines(self.flow)
            self.owners = []
        focus = self.walker.focus
        self.walker.lines = lines
        self._plain = text_lines(lines)
        self.walker.focus = min(focus, max(len(lines) - 1, 0))
        self.walker._modified()
        bar: list[Any] = []
        for i, t in enumerate(self.tabs):
            bar.append(("tab_active" if i == self.tab else "tab", f" {t} "))
            bar.append(("text", " "))
        if self.flow.intercepted:
            bar.append(("intercepted", f" [held at {self.held_stage}] " if self.held_stage else " [held] "))
        self.header.set_text(bar)

    def switch_tab(self, step: int) -> None:
        self.tab = (self.tab + step) % len(self.tabs)
        self.walker.focus = 0
        self.refresh()

    def show_tab(self, name: str) -> None:
        if name in self.tabs:
            self.tab = self.tabs.index(name)
            self.walker.focus = 0
            self.refresh()

    def cycle_mode(self) -> str:
        names = contentviews.view_names()
        self.mode = names[(names.index(self.mode) + 1) % len(names)] if self.mode in names else "auto"
        self.refresh()
        return self.mode

    def find(self, text: str, start: int | None = None, pattern: re.Pattern[str] | None = None) -> bool:
        """Focus the next line containing `text` (case-insensitive; or matching `pattern`), wrapping around."""
        self.search = text
        self._pattern = pattern or re.compile(re.escape(text), re.IGNORECASE)
        n = len(self._plain)
        begin = (self.walker.focus + 1) if start is None else start
        for k in range(n):
            i = (begin + k) % n
            if self._pattern.search(self._plain[i]):
                self.listbox.set_focus(i)
                self.listbox.set_focus_valign("middle")
                self.walker._modified()
                return True
        self.walker._modified()
        return False

    @property
    def focused_message(self) -> Any | None:
        if self.tab_name != "Messages" or not self.owners:
            return None
        i = self.walker.focus
        if i < len(self.owners) and self.owners[i] is not None:
            return self.owners[i]
        held = [m for m in self.owners if m is not None and m.intercepted]
        return held[0] if held else None

    def scroll(self, action: str, size: tuple[int, int] | None) -> None:
        lb = self.listbox
        n = len(self.walker.lines)
        rows = size[1] - 1 if size else 20
        f = self.walker.focus
        target = {"scroll.down": f + 1, "scroll.up": f - 1, "scroll.page_down": f + rows, "scroll.page_up": f - rows,
                  "scroll.top": 0, "scroll.bottom": n - 1}[action]
        if n:
            lb.set_focus(max(0, min(target, n - 1)))
