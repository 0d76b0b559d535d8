"""One flow ⇄ the rows a session keeps of it.

`snapshot(flow)` runs on the proxy's loop and only takes what the flow holds now: its record (the flow
file codec's record without contents: heads, connections, TLS, timestamps, error, metadata, and the
original of an edited flow; compact for plain HTTP flows (record.py), JSON for the others), the columns
the list sorts and filters by, and references to its bodies and messages (bytes are immutable: nothing
is copied). The writer thread then chunks the bodies and builds the search text (`search_text`), so
decoding a gzip body never delays a proxied request. `restore(...)` is the way back.
"""
from __future__ import annotations

import json
from typing import Any, NamedTuple

from interpose.http import HTTPFlow
from interpose.model import encoding
from interpose.model.flow import Flow
from interpose.model.messages import Message, MessageFlow
from interpose.store import flowcodec
from interpose.store.order import ORDERS
from interpose.store.session import record as compact
from interpose.tcp import TCPFlow, TCPMessage
from interpose.websocket import WebSocketMessage

CHUNK = 1 << 20
"""Bodies are stored in chunks of this many bytes (one row each), so a 100 MiB body is never one blob."""
SEARCH_BODY_MAX = 64 * 1024
"""Decoded text indexed for global search, per body and per flow's messages."""
_TEXTUAL = ("text/", "json", "xml", "javascript", "x-www-form-urlencoded", "graphql", "yaml", "csv")


class Snapshot(NamedTuple):
    """What the writer stores for one flow (`queued` is what waits in its queue)."""

    id: str
    type: str
    record: str | bytes
    columns: tuple[Any, ...]
    bodies: tuple[tuple[str, bytes], ...] = ()
    messages: tuple[tuple[int, int, str | None, float, int, int, bytes], ...] = ()
    search: tuple[Any, ...] = ()
    """url, headers text, [(raw body, Content-Encoding, Content-Type)], text messages, comment (only with
    `snapshot(search=True)`: the writer indexes later, from the stored rows)."""


NO_SEARCH_BODIES: list[Any] = []

COLUMNS = ("id", "type", "timestamp_created", "method", "host", "port", "url", "status_code", "request_size",
           "response_size", "content_type", "duration", "error", "marked", "comment", "record")


def _http(flow: Flow) -> HTTPFlow | None:
    if isinstance(flow, HTTPFlow):
        return flow
    hs = getattr(flow, "handshake_flow", None)
    return hs if isinstance(hs, HTTPFlow) else None


def _heads(http: HTTPFlow) -> str:
    lines: list[str] = []
    for part in (http.request, http.response):
        if part is not None:
            lines.extend(f"{k}: {v}" for k, v in part.headers.items(multi=True))
    return "\n".join(lines)


def snapshot(flow: Flow, search: bool = False) -> Snapshot:
    """With `search`, also what the search index needs (the writer indexes later, from the stored rows)."""
    http = _http(flow)
    if http is not None and flow is not http:
        flow = http  # a WebSocket is stored with its handshake flow
    comment = str(getattr(flow, "comment", "") or "")
    backup = flow._backup
    extra = {"original": flowcodec.dump(backup)} if backup is not None else None  # for `V` after a reopen
    text: str | bytes | None = compact.encode(flow, extra)
    if text is None:  # WebSocket, TCP, or something the compact record does not cover: JSON
        rec = flowcodec.dump(flow, bodies=False)
        if comment:
            rec["comment"] = comment
        if extra:
            rec.update(extra)
        text = json.dumps(rec, ensure_ascii=True, separators=(",", ":"))
    bodies: tuple[tuple[str, bytes], ...] = ()
    search_bodies: list[tuple[bytes, str | None, str]] = [] if search else NO_SEARCH_BODIES
    mflow: MessageFlow | None = None
    if http is not None:
        req, resp = http.request, http.response
        url, host, port, method = req.url, req.host, req.port, req.method
        status = resp.status_code if resp is not None else None
        ctype = resp.content_type if resp is not None else None
        for name, part in (("request", req), ("response", resp)):
            raw = part.raw_content if part is not None else None
            if raw is not None:
                bodies += ((name, raw),)
                if search:
                    assert part is not None
                    search_bodies.append((raw, part.headers.get("content-encoding"), part.content_type))
        heads = _heads(http) if search else ""
        mflow = http.websocket
    else:
        addr = flow.server_conn.address
        host, port = (addr[0], addr[1]) if addr else ("", 0)
        url, method, status, ctype, heads = f"tcp://{host}:{port}", "", None, None, ""
        mflow = flow if isinstance(flow, TCPFlow) else None
    msgs: tuple[Any, ...] = ()
    if mflow is not None and mflow.messages:
        msgs = tuple((i, int(m.from_client), m.type if isinstance(m, WebSocketMessage) else None, m.timestamp,
                      int(m.dropped), int(m.injected), m.content) for i, m in enumerate(mflow.messages))
    text_msgs = [m[6] for m in msgs if m[2] != "binary"] if search else []
    req_size = len(http.request.raw_content or b"") if http is not None else (mflow.bytes_from_client if mflow else 0)
    duration = ORDERS["duration"](flow)
    columns = (flow.id, flow.type, flow.timestamp_created, clean(method), clean(host), port, clean(url), status,
               req_size, ORDERS["size"](flow), clean(ctype), None if duration == float("inf") else duration,
               clean(flow.error.msg) if flow.error else None, int(flow.marked), clean(comment), text)
    if not search:  # only atomic values in plain tuples (see `queued`)
        return Snapshot(flow.id, flow.type, text, columns, bodies, msgs)
    return Snapshot(flow.id, flow.type, text, columns, bodies, msgs, (url, heads, search_bodies, text_msgs, comment))


def queued(flow: Flow) -> tuple[Any, ...]:
    """What `Session.put` queues for the writer: ("flow", messages, *columns, part, body, part, body, ...),
    one flat tuple of strings, numbers and bytes (the messages of a WebSocket or TCP flow are a tuple of
    tuples; without messages the shared empty tuple). The garbage collector stops tracking such a tuple at
    its first collection (it does that for exact tuples whose items it does not track: not for a NamedTuple
    or a dataclass, and a tuple holding tuples only at a later one), so the flows waiting for the writer
    cost it nothing and are not promoted to the older generations, whose collections walk everything."""
    s = snapshot(flow)
    if len(s.bodies) == 2:
        (p1, b1), (p2, b2) = s.bodies
        return ("flow", s.messages, *s.columns, p1, b1, p2, b2)
    return ("flow", s.messages, *s.columns, *[x for part in s.bodies for x in part])


def clean(text: Any) -> Any:
    """A string SQLite can store: lone surrogates (bytes that were not UTF-8) become U+FFFD."""
    if isinstance(text, str) and not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def search_text(snap: Snapshot) -> tuple[str, str, str, str, str]:
    """The columns of the flow's row in the full-text index (decoding bodies happens here, off the loop)."""
    url, heads, bodies, msgs, comment = snap.search
    texts = []
    for raw, ce, ctype in bodies:
        if not any(t in (ctype or "") for t in _TEXTUAL):
            continue
        try:
            data = encoding.decode(raw, ce, limit=SEARCH_BODY_MAX * 16) if ce else raw
        except Exception:  # a body that does not decode is not indexed, and nothing else changes
            continue
        texts.append(data[:SEARCH_BODY_MAX].decode("utf-8", "replace"))
    joined, size = [], 0
    for m in msgs:
        if size > SEARCH_BODY_MAX:
            break
        joined.append(m[:SEARCH_BODY_MAX].decode("utf-8", "replace"))
        size += len(m)
    return clean(url), clean(heads), "\n".join(texts), "\n".join(joined), clean(comment)


def chunks(data: bytes) -> list[bytes | memoryview]:
    if len(data) <= CHUNK:
        return [data]
    view = memoryview(data)
    return [view[i:i + CHUNK] for i in range(0, len(data), CHUNK)]


def restore(record: str | bytes, comment: str, marked: int, bodies: dict[str, bytes],
            messages: list[tuple[int, str | None, float, int, int, bytes]]) -> Flow:
    """The flow a row describes (not live), with its bodies and messages. Raises flowcodec.BadRecord."""
    if isinstance(record, bytes):
        obj = compact.decode(record)
    else:
        try:
            obj = json.loads(record)
        except (ValueError, RecursionError) as e:
            raise flowcodec.BadRecord(f"record: corrupt JSON ({e})") from None
    original = obj.pop("original", None) if isinstance(obj, dict) else None
    flow = flowcodec.load(obj)
    if isinstance(original, dict):
        try:  # what `V` (revert) brings back; a damaged original leaves the flow as it is
            flow._backup = flowcodec.load(original)
        except flowcodec.BadRecord:
            pass
    flow.marked = bool(marked)
    if comment:
        flow.comment = comment
    mflow: MessageFlow | None = None
    if isinstance(flow, HTTPFlow):
        flow.request.raw_content = bodies.get("request")
        if flow.response is not None:
            flow.response.raw_content = bodies.get("response")
        mflow = flow.websocket
    elif isinstance(flow, TCPFlow):
        mflow = flow
    if mflow is not None and messages:
        totals = mflow.message_count, mflow.bytes_from_client, mflow.bytes_from_server
        mflow.message_count = mflow.bytes_from_client = mflow.bytes_from_server = 0
        for from_client, kind, ts, dropped, injected, content in messages:
            m: Message
            if kind is None:
                m = TCPMessage(bool(from_client), content, timestamp=ts)
            else:
                m = WebSocketMessage(bool(from_client), content, is_text=kind == "text", timestamp=ts)
            m.dropped, m.injected = bool(dropped), bool(injected)
            mflow.add_message(m)
        mflow.message_count, mflow.bytes_from_client, mflow.bytes_from_server = totals
    return flow
