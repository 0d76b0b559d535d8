"""HTTP/1 wire helpers shared by both sides: h11 event pumping, header hygiene, framing."""
from __future__ import annotations

import re
from typing import Any

import h11

from interpose.errors import ServerProtocolError
from interpose.http import Message, Request, Response
from interpose.proxy.layer import Stream

# Hop-by-hop headers never cross the proxy (RFC 9110 §7.6.1); framing is redone per hop.
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te", b"trailer", b"upgrade", b"expect"}
)
NO_BODY_STATUS = frozenset({204, 304})
_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
TOKEN = re.compile(_TCHAR + b"+")
_NAMES = re.compile(_TCHAR + b"+(?:\n" + _TCHAR + b"+)*")
"""Header names joined by LF: one match checks them all."""
BAD_VALUE = re.compile(rb"[\x00\r\n]")
"""What no field value, reason phrase or pseudo-header may carry: it would end the line (response splitting)."""
BAD_TARGET = re.compile(rb"[\x00-\x20\x7f]")
JOIN_BELOW = 65536
"""A message smaller than this goes out in one write (one send()); a bigger one is not copied to join it."""


def write_parts(stream: Stream, parts: list[bytes]) -> None:
    """Write a whole message (head, framed body, end): joined when small, part by part when big."""
    if sum(map(len, parts)) < JOIN_BELOW:
        stream.write(b"".join(parts))
    else:
        for part in parts:
            stream.write(part)


async def next_event(conn: h11.Connection, stream: Stream) -> Any:
    """The next h11 event, reading from the socket as needed. b"" from the socket means EOF."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await stream.read())


def _connection_tokens(fields: list[tuple[bytes, bytes]]) -> set[bytes]:
    tokens: set[bytes] = set()
    for k, v in fields:
        if k.lower() == b"connection":
            tokens.update(t.strip().lower() for t in v.split(b","))
    return tokens


def is_upgrade(message: Message) -> bool:
    tokens = _connection_tokens(message.headers.fields)
    return b"upgrade" in tokens and "upgrade" in message.headers


def wire_headers(message: Message, *, length: int | None, keep_length: bool = False) -> list[tuple[bytes, bytes]]:
    """Header fields to put on the next hop. `length` sets Content-Length; `keep_length` keeps the
    message's own (streamed bodies); otherwise the body is framed by h11 (chunked or close)."""
    fields = message.headers.fields
    drop = HOP_BY_HOP | _connection_tokens(fields)
    upgrade = is_upgrade(message)
    if upgrade:
        drop = drop - {b"upgrade"}
    if length is not None or not keep_length:
        drop = drop | {b"content-length"}
    out = [(k, v) for k, v in fields if k.lower() not in drop]
    if upgrade:
        out.append((b"Connection", b"Upgrade"))
    if length is not None:
        out.append((b"Content-Length", str(length).encode()))
    return out


def request_length(req: Request, streamed: bool) -> tuple[int | None, bool]:
    """(Content-Length to send, keep the original one) for a request going to a server."""
    if streamed:
        return None, not callable(req.stream) and "content-length" in req.headers
    body = req.raw_content or b""
    if body or "content-length" in req.headers or "transfer-encoding" in req.headers:
        return len(body), False
    if req.method in ("POST", "PUT", "PATCH"):
        return 0, False
    return None, False


def response_length(request_method: str, resp: Response, streamed: bool) -> tuple[int | None, bool]:
    """(Content-Length to send, keep the original one) for a response going to a client."""
    if request_method == "HEAD" or resp.status_code in NO_BODY_STATUS or resp.status_code < 200:
        return None, True  # no body follows; keep what the server said about the resource
    if streamed:
        return None, not callable(resp.stream) and "content-length" in resp.headers
    return len(resp.raw_content or b""), False


def version(h11_version: bytes) -> str:
    return "HTTP/" + h11_version.decode("ascii", "replace")


REFUSALS = {400: "Bad Request", 408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large",
            405: "Method Not Allowed", 501: "Not Implemented", 502: "Bad Gateway"}
"""The reason phrases of the answers the proxy itself gives a client it refuses."""


def raw_error(status: int, reason: str, msg: str) -> bytes:
    """A complete error response written without h11 (used when h11 itself gave up on the request)."""
    body = f"interpose: {msg}\n".encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def check_fields(fields: list[tuple[bytes, bytes]], where: str) -> None:
    """Refuse (502) header fields that would not survive the wire intact: a name that is not a token, a
    value with CR, LF or NUL. The common case costs two joins and two regex passes for the whole head."""
    if not fields:
        return
    names, values = b"\n".join([k for k, _ in fields]), b"\t".join([v for _, v in fields])
    if _NAMES.fullmatch(names) and not BAD_VALUE.search(values):
        return
    for k, v in fields:
        if not TOKEN.fullmatch(k):
            raise ServerProtocolError(f"{where}: invalid header name {k!r}")
        if BAD_VALUE.search(v):
            raise ServerProtocolError(f"{where}: header {k.decode('latin-1')!r} has a value with CR, LF or NUL: {v!r}")


NOT_IN_TRAILERS = HOP_BY_HOP | {b"content-length", b"host", b"content-encoding", b"content-type",
                                b"content-range", b"authorization", b"set-cookie"}
"""Fields a trailer section may not carry on (RFC 9110 §6.5.1: framing, routing, how to read the content,
authentication): forwarded after the body, they would be read as if they were in the head."""


def trailer_fields(message: Message, where: str) -> list[tuple[bytes, bytes]]:
    """The message's trailers to put on the next hop (HTTP/1 chunked framing, HTTP/2's last HEADERS):
    pseudo-headers and the fields a trailer section may not carry are dropped; names and values are
    checked like the head's (ServerProtocolError, 502)."""
    trailers = message.trailers
    if not trailers:
        return []
    fields = [(k, v) for k, v in trailers.fields if not k.startswith(b":") and k.lower() not in NOT_IN_TRAILERS]
    check_fields(fields, where)
    return fields


def late_trailer_fields(message: Message, where: str) -> tuple[list[tuple[bytes, bytes]], str | None]:
    """`trailer_fields` for trailers known only once the head went out: a bad one is left off, as HTTP/2
    does (the head cannot be taken back), and the second item says why."""
    try:
        return trailer_fields(message, where), None
    except ServerProtocolError as e:
        return [], str(e)


def check_request_line(method: bytes, target: bytes, where: str) -> None:
    if not TOKEN.fullmatch(method):
        raise ServerProtocolError(f"{where}: invalid method {method!r}")
    if not target or BAD_TARGET.search(target):
        raise ServerProtocolError(f"{where}: invalid request target {target!r}")


def check_reason(reason: bytes, where: str) -> None:
    if BAD_VALUE.search(reason):
        raise ServerProtocolError(f"{where}: reason phrase with CR, LF or NUL: {reason!r}")


_FOLD_OR_END = re.compile(rb"\n(?:[ \t]|\r?\n)")
"""The first match in a head: an obs-fold (a line starting with whitespace) or the head's end."""
_CONTENT_LENGTH_LINE = re.compile(rb"\n(?i:content-length)[ \t]*:([^\r\n]*)")


def framing_problem(event: h11.Request, head: bytes) -> str | None:
    """Why a request head h11 accepted must still be refused (400, then close), or None.

    h11 refuses conflicting Content-Lengths and any Transfer-Encoding but a single `chunked`; it accepts
    (and an origin behind us may read differently) both framings at once, repeated equal Content-Lengths
    (merged into one), and obsolete line folding (unfolded). A proxy that passes such a head on lets the
    bytes one side sees as body become another request at the other side (request smuggling)."""
    head = head.lstrip(b"\r\n")  # (empty lines before a request line are allowed, and would look like its end)
    fold = _FOLD_OR_END.search(head)
    if fold is not None and fold.group()[1:2] in (b" ", b"\t"):
        return "obsolete line folding in the request head (RFC 9112 §5.2)"
    te = cl = False
    for name, _ in event.headers:  # h11 lower-cases names
        if name == b"transfer-encoding":
            te = True
        elif name == b"content-length":
            cl = True
    if te and cl:
        return "both Content-Length and Transfer-Encoding in one request (RFC 9112 §6.3)"
    if cl:
        end = fold.start() if fold is not None else len(head)
        values = _CONTENT_LENGTH_LINE.findall(head, 0, end)
        if len(values) > 1 or (values and b"," in values[0]):
            return "duplicate Content-Length (more than one header, or a list)"
    return None
