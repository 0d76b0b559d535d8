"""Parsing an edited raw HTTP request for the repeater (pure; no urwid)."""
from __future__ import annotations

import h11

from interpose.http import Headers, Request


class RepeaterError(ValueError):
    pass


def fix_content_length(raw: bytes) -> bytes:
    """Make Content-Length agree with the body the user typed (and use CRLF line ends in the head)."""
    head, sep, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = [ln for ln in head.split(b"\n") if ln.strip() or ln is head.split(b"\n")[0]]
    lines = [ln for ln in lines if not ln.lower().startswith((b"content-length:", b"transfer-encoding:"))]
    if body or lines[0].split(b" ", 1)[0].upper() in (b"POST", b"PUT", b"PATCH"):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def parse_request(raw: bytes, scheme: str, default_host: str, default_port: int) -> Request:
    """The request a user wrote as HTTP/1.1 text. The Host header says where it goes."""
    data = fix_content_length(raw)
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    conn.receive_data(b"")
    try:
        event = conn.next_event()
        if not isinstance(event, h11.Request):
            raise RepeaterError("incomplete request: write a request line, headers, a blank line, then the body")
        body = b""
        while True:
            ev = conn.next_event()
            if isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                break
            else:
                raise RepeaterError("the body does not match its framing")
    except h11.RemoteProtocolError as e:
        raise RepeaterError(f"not a valid HTTP/1.1 request: {e}") from None
    headers = Headers.from_raw(list(event.headers.raw_items()))
    target = event.target.decode("utf-8", "surrogateescape")
    host_header = headers.get("host") or f"{default_host}:{default_port}"
    if target.startswith(("http://", "https://")):
        url = target
    else:
        url = f"{scheme}://{host_header}{target}"
    req = Request.make(event.method.decode(), url, body, headers)
    req.content = body if body else req.raw_content
    return req
