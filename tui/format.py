"""Flows as text: one flow-list row, sizes, durations, icons. Pure functions, no urwid."""
from __future__ import annotations

import time
from http import HTTPStatus
from typing import Any

from interpose.model.units import human_size
from interpose.store.spill import stored_size
from interpose.tui.contentviews.text import sanitize_segment

Markup = list[tuple[str, str]]

ICON_INTERCEPTED = "!"
ICON_MARKED = "●"
ICON_ERROR = "✗"
ICON_WEBSOCKET = "⇄"
ICON_TCP = "⇌"
ICON_REPLAY = "↻"


def human_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 100:
        return f"{seconds:.1f}s"
    return f"{seconds:.0f}s"


def reason(code: int, given: str = "") -> str:
    if given:
        return given
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def status_attr(code: int) -> str:
    return f"status_{min(max(code // 100, 1), 5)}xx"


def body_size(message: Any) -> int | None:
    if message is None:
        return None
    size = stored_size(message)  # a spilled body is not read back just for its length
    if size is not None:
        return size
    cl = message.headers.get("content-length")
    return int(cl) if cl and cl.isdigit() else None


def duration(flow: Any) -> float | None:
    if flow.type == "http":
        end = flow.response.timestamp_end if flow.response is not None else None
        if end is None and flow.error is not None:
            end = flow.error.timestamp
        return end - flow.request.timestamp_start if end else None
    msgs = flow.messages
    return msgs[-1].timestamp - flow.timestamp_created if msgs else None


def shown_flow(flow: Any) -> Any:
    """WebSocket flows are shown through their handshake flow."""
    return flow.handshake_flow if flow.type == "websocket" else flow


def is_intercepted(flow: Any) -> bool:
    if flow.intercepted:
        return True
    ws = getattr(flow, "websocket", None)
    held = getattr(ws if ws is not None else flow, "held_messages", None)
    return bool(held)


def icons(flow: Any) -> Markup:
    out: Markup = []
    out.append(("intercepted", ICON_INTERCEPTED) if is_intercepted(flow) else ("text", " "))
    out.append(("marked", ICON_MARKED) if flow.marked else ("text", " "))
    if flow.error is not None:
        out.append(("error", ICON_ERROR))
    elif flow.type == "tcp":
        out.append(("flow_tcp", ICON_TCP))
    elif flow.type == "websocket" or getattr(flow, "websocket", None) is not None:
        out.append(("flow_ws", ICON_WEBSOCKET))
    elif flow.is_replay:
        out.append(("dim", ICON_REPLAY))
    else:
        out.append(("text", " "))
    return out


def clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def clock_ms(ts: float) -> str:
    """`clock` with milliseconds: for messages, which come many a second."""
    return clock(ts) + f".{int(ts * 1000) % 1000:03d}"


def truncate(text: str, width: int) -> str:
    """Cut at the end with an ellipsis, as a browser's address bar does: the scheme, host and path read on."""
    if width <= 1:
        return text[:max(width, 0)]
    if len(text) <= width:
        return text
    return text[:width - 1] + "…"


def error_room(width: int) -> int:
    """Columns an error may take in a flow row: enough to say why, while the URL keeps some room."""
    return max(30, width // 2 - 10)


def flow_row(flow: Any, width: int, showhost: bool = False) -> Markup:
    """One line of the flow list, fitted to `width` columns. The URL names the address the request went to;
    with `showhost` (mitmproxy's option) the Host header's host instead."""
    left: Markup = [("dim", clock(flow.timestamp_created) + " ")]
    if width >= 110:  # wide terminals also show who the client is
        client = flow.client_conn.address
        left.append(("dim", f"{(client[0] if client else '?')[:15]:<15} "))
    left += icons(flow) + [("text", " ")]
    if flow.type == "tcp":
        addr = flow.server_conn.address
        target = f"tcp://{addr[0]}:{addr[1]}" if addr else "tcp://?"
        middle = ("method", "TCP    ")
        right_parts: Markup = [("dim", f"{flow.message_count} msgs "),
                               ("text", human_size(flow.bytes_from_client + flow.bytes_from_server))]
        if flow.error is not None:
            right_parts = [("error", truncate(sanitize_segment(flow.error.msg), error_room(width)))]
    else:
        req = flow.request
        middle = ("method", f"{sanitize_segment(req.method[:7]):<7}")
        target = req.pretty_url if showhost else req.url
        resp = flow.response
        if flow.error is not None and resp is None:
            right_parts = [("error", truncate(sanitize_segment(flow.error.msg), error_room(width)))]
        elif resp is not None and getattr(flow, "websocket", None) is not None:
            ws = flow.websocket  # a WebSocket: its messages, not the handshake's empty body
            right_parts = [(status_attr(resp.status_code), f"{resp.status_code} "),
                           ("dim", f"{ws.message_count} msgs "),
                           ("text", human_size(ws.bytes_from_client + ws.bytes_from_server))]
        elif resp is not None:
            right_parts = [(status_attr(resp.status_code), f"{resp.status_code} ")]
            if width >= 100:  # narrow terminals give the content type's columns to the URL
                ctype = sanitize_segment(resp.content_type.split("/")[-1][:12])
                right_parts.append(("dim", f"{ctype:<12} "))
            right_parts.append(("text", f"{human_size(body_size(resp)):>6}"))
        else:
            right_parts = [("dim", "…")]
    dur = human_duration(duration(flow))
    right_parts.append(("dim", f" {dur:>6}"))
    right_len = sum(len(t) for _, t in right_parts)
    left_len = sum(len(t) for _, t in left) + len(middle[1]) + 1
    url_width = max(width - left_len - right_len - 1, 8)
    note: Markup = []
    if flow.comment:
        c = "  # " + sanitize_segment(flow.comment)[:max(url_width // 2, 8)]
        url_width = max(url_width - len(c), 8)
        note = [("dim", c)]
    url = truncate(sanitize_segment(target), url_width)
    pad = " " * max(width - left_len - len(url) - sum(len(t) for _, t in note) - right_len, 1)
    return clip([*left, middle, ("text", " "), ("url", url), *note, ("text", pad), *right_parts], width)


def clip(markup: Markup, width: int) -> Markup:
    """`markup` cut to at most `width` characters (on narrow terminals the right-hand columns go)."""
    out: Markup = []
    room = width
    for attr, text in markup:
        if room <= 0:
            break
        out.append((attr, text[:room]))
        room -= len(out[-1][1])
    return out
