"""mitmproxy's cut specifications: pick fields out of flows (`request.url`, `response.header[content-type]`,
`response.content`, `server_conn.address.host`, ...). One flow and one cut give the value as it is (bytes
stay bytes); more give CSV rows, one per flow."""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from interpose.errors import InterposeError

SPECS = (
    "request.method", "request.scheme", "request.host", "request.port", "request.path", "request.url",
    "request.pretty_url", "request.http_version", "request.headers", "request.header[NAME]", "request.text",
    "request.content", "request.raw_content", "request.timestamp_start", "request.timestamp_end",
    "response.status_code", "response.reason", "response.http_version", "response.headers",
    "response.header[NAME]", "response.text", "response.content", "response.raw_content",
    "response.timestamp_start", "response.timestamp_end", "client_conn.address", "client_conn.address.host",
    "client_conn.address.port", "server_conn.address", "server_conn.address.host", "server_conn.address.port",
    "server_conn.sni", "id", "type", "marked", "comment", "timestamp_created", "messages",
)
"""What the prompt completes (any attribute path works)."""


class CutError(InterposeError):
    pass


PARTS = frozenset({"request", "response", "websocket", "handshake_flow", "messages", "error"})
"""What one type of flow has and another lacks (a TCP flow has no request): such a cut is empty for
that flow, so `cut.save @all request.url,...` works on a list of HTTP, WebSocket and TCP flows alike."""


def _headers(headers: Any) -> str:
    return "\n".join(f"{k}: {v}" for k, v in headers.items(multi=True))


def _messages(flow: Any) -> str:
    """`messages`: a WebSocket or TCP flow's kept messages, one a line: who sent it, then its text
    (bytes that are not UTF-8 as \\x escapes; the rest as it is)."""
    held = getattr(flow, "messages", None)
    if held is None:
        held = getattr(getattr(flow, "websocket", None), "messages", None)
    if held is None:
        return ""
    return "".join(f"{'client' if m.from_client else 'server'}: "
                   f"{m.content.decode('utf-8', 'backslashreplace')}\n" for m in held)


def extract(spec: str, flow: Any) -> str | bytes:
    """One cut of one flow: text, or bytes for `content`/`raw_content`. A missing part (no response yet, a
    TCP flow's request) gives ""; a field no flow has is a CutError."""
    if spec == "messages":
        return _messages(flow)
    obj: Any = flow
    parts = spec.split(".")
    for i, part in enumerate(parts):
        if obj is None:
            return ""
        if part.startswith("header[") and part.endswith("]"):
            if not hasattr(obj, "headers"):
                raise CutError(f"cut {spec!r}: {'.'.join(parts[:i]) or 'flow'} has no headers")
            return str(obj.headers.get(part[7:-1], ""))
        if isinstance(obj, tuple) and part in ("host", "port"):
            obj = obj[0 if part == "host" else 1]
            continue
        if part == "headers" and hasattr(obj, "headers"):
            return _headers(obj.headers)
        if i == 0 and part in PARTS and not hasattr(obj, part):
            return ""
        if not hasattr(obj, part) or part.startswith("_"):
            raise CutError(f"cut {spec!r}: no field {part!r} (e.g. {', '.join(SPECS[:6])}, ...)")
        obj = getattr(obj, part)
    if obj is None:
        return ""
    if isinstance(obj, bytes):
        return obj
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, tuple) and len(obj) == 2:
        return f"{obj[0]}:{obj[1]}"
    return str(obj)


def cut(flows: Sequence[Any], specs: Sequence[str]) -> list[list[str | bytes]]:
    return [[extract(s, f) for s in specs] for f in flows]


def render(flows: Sequence[Any], specs: Sequence[str]) -> str | bytes:
    """The text cut.clip copies and cut.save writes: one value as is, else CSV (UTF-8 text)."""
    rows = cut(flows, specs)
    if len(rows) == 1 and len(specs) == 1:
        return rows[0][0]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow([v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in row])
    return buf.getvalue()
