"""HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/): export HTTP flows, import HAR entries as flows.

Export writes every field HAR 1.2 requires. What HAR has no field for travels in custom fields, which
HAR reserves for names starting with `_` (the ones Chrome DevTools writes too):

- a failed flow has `response.status` 0, `statusText` "" and `response._error` (the error message);
- a WebSocket handshake has `_resourceType: "websocket"`, `_webSocketMessages` (Chrome's format) and
  `_webSocketClose` ({code, reason, closedByClient});
- a binary request body has `postData._encoding: "base64"`.

Import turns each entry back into a (not live) `HTTPFlow`: headers in order, bodies (base64 decoded, and
re-encoded per Content-Encoding, since HAR keeps the decoded body), and timestamps rebuilt from
`startedDateTime` and the timings: the request takes `send`; `blocked`, `dns`, `connect` and `wait`
pass before the response starts; the response takes `receive`.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import urllib.parse
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from interpose.errors import FlowFileError
from interpose.http import Headers, HTTPFlow, Request, Response
from interpose.model import encoding
from interpose.model.connection import Client, Server
from interpose.model.cookies import parse_set_cookie
from interpose.model.flow import Error, Flow
from interpose.model.messages import MessageFlow
from interpose.store.flowcodec import VERSION
from interpose.websocket import WebSocketFlow, WebSocketMessage

__all__ = ["entries_to_flows", "export", "read", "write"]


# -- export ---------------------------------------------------------------------------------------------------
def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(start: float | None, end: float | None) -> float:
    if start is None or end is None:
        return 0.0
    return max(0.0, round((end - start) * 1000, 3))


def _pairs(fields: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in fields]


def _body(data: bytes) -> tuple[str, bool]:
    """(text, is_base64)."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), True


def _head_size(first_line: str, headers: Headers, http_version: str) -> int:
    if not http_version.upper().startswith("HTTP/1"):
        return -1  # HTTP/2 heads are compressed frames: no byte count to give
    return len(first_line.encode("utf-8", "surrogateescape")) + 2 + len(bytes(headers)) + 2


def _request(req: Request) -> dict[str, Any]:
    raw = req.raw_content
    d: dict[str, Any] = {
        "method": req.method, "url": req.url, "httpVersion": req.http_version,
        "cookies": _pairs(req.cookies.items(multi=True)), "headers": _pairs(req.headers.items(multi=True)),
        "queryString": _pairs(req.query.items(multi=True)),
        "headersSize": _head_size(f"{req.method} {req.path} {req.http_version}", req.headers, req.http_version),
        "bodySize": len(raw) if raw is not None else -1,
    }
    content = req.content_or_raw()  # a body too large to decode goes in as it came (base64)
    if content:
        text, b64 = _body(content)
        post: dict[str, Any] = {"mimeType": req.headers.get("content-type") or "", "text": text}
        if b64:
            post["_encoding"] = "base64"
        elif req.content_type == "application/x-www-form-urlencoded":
            post["params"] = _pairs(req.urlencoded_form.items(multi=True))
        d["postData"] = post
    return d


def _cookie(header: str) -> dict[str, Any] | None:
    """A HAR cookie object from one Set-Cookie value."""
    cookie = parse_set_cookie(header)
    if cookie is None:
        return None
    c: dict[str, Any] = {"name": cookie.name, "value": cookie.value}
    for k, v in cookie.attributes:
        if k in ("path", "domain", "expires"):
            c[k] = v
        elif k == "httponly":
            c["httpOnly"] = True
        elif k == "secure":
            c["secure"] = True
    return c


def _response(flow: HTTPFlow) -> dict[str, Any]:
    resp = flow.response
    if resp is None:
        d: dict[str, Any] = {"status": 0, "statusText": "", "httpVersion": "", "cookies": [], "headers": [],
                             "content": {"size": 0, "mimeType": ""}, "redirectURL": "", "headersSize": -1,
                             "bodySize": -1}
    else:
        raw, body = resp.raw_content, resp.content_or_raw()  # too large to decode: as it came
        content: dict[str, Any] = {"size": len(body) if body is not None else 0,
                                   "mimeType": resp.headers.get("content-type") or ""}
        if raw is not None and body is not None and len(body) != len(raw):
            content["compression"] = len(body) - len(raw)
        if body:
            content["text"], b64 = _body(body)
            if b64:
                content["encoding"] = "base64"
        cookies = [c for c in map(_cookie, resp.headers.get_all("set-cookie")) if c is not None]
        d = {"status": resp.status_code, "statusText": resp.reason, "httpVersion": resp.http_version,
             "cookies": cookies, "headers": _pairs(resp.headers.items(multi=True)), "content": content,
             "redirectURL": resp.headers.get("location") or "",
             "headersSize": _head_size(f"{resp.http_version} {resp.status_code} {resp.reason}", resp.headers,
                                       resp.http_version),
             "bodySize": len(raw) if raw is not None else -1}
    if flow.error is not None:
        d["_error"] = flow.error.msg
    return d


def _timings(flow: HTTPFlow, servers_seen: set[int]) -> dict[str, float]:
    req, resp, server = flow.request, flow.response, flow.server_conn
    connect = ssl = -1.0
    req_end = req.timestamp_end if req.timestamp_end is not None else req.timestamp_start
    # Connection setup counts once, for the entry that opened the connection. The proxy dials after it
    # has read the request, so the dial starts at the later of the two.
    tcp_setup = server.timestamp_tcp_setup
    if tcp_setup is not None and tcp_setup >= req.timestamp_start and server.id not in servers_seen:
        servers_seen.add(server.id)
        connect = _ms(max(server.timestamp_start, req_end), server.timestamp_tls_setup or tcp_setup)
        if server.timestamp_tls_setup is not None:
            ssl = _ms(tcp_setup, server.timestamp_tls_setup)  # part of connect, per HAR 1.2
    send = _ms(req.timestamp_start, req_end)
    wait = receive = 0.0
    if resp is not None:
        gap = _ms(req_end, resp.timestamp_start)
        if connect > gap:  # clocks disagree: the dial cannot take longer than the whole wait
            connect, ssl = gap, min(ssl, gap)
        wait = max(0.0, round(gap - max(connect, 0.0), 3))
        receive = _ms(resp.timestamp_start, resp.timestamp_end)
    elif flow.error is not None:
        wait = _ms(req_end, flow.error.timestamp)
    return {"blocked": -1.0, "dns": -1.0, "connect": connect, "ssl": ssl, "send": send, "wait": wait,
            "receive": receive}


def _websocket(ws: MessageFlow) -> dict[str, Any]:
    assert isinstance(ws, WebSocketFlow)  # what HTTPFlow.websocket holds
    msgs = []
    for m in ws.messages:
        if m.is_text:
            data, opcode = m.content.decode("utf-8", "replace"), 1
        else:
            data, opcode = base64.b64encode(m.content).decode("ascii"), 2
        msgs.append({"type": "send" if m.from_client else "receive", "time": m.timestamp, "opcode": opcode,
                     "data": data})
    return {"_resourceType": "websocket", "_webSocketMessages": msgs,
            "_webSocketClose": {"code": ws.close_code, "reason": ws.close_reason,
                                "closedByClient": ws.closed_by_client}}


def entry(flow: HTTPFlow, servers_seen: set[int]) -> dict[str, Any]:
    timings = _timings(flow, servers_seen)
    e: dict[str, Any] = {
        "startedDateTime": _iso(flow.request.timestamp_start),
        # The total is every known timing; ssl is already inside connect.
        "time": round(sum(v for k, v in timings.items() if v > 0 and k != "ssl"), 3),
        "request": _request(flow.request), "response": _response(flow), "cache": {}, "timings": timings,
        "connection": str(flow.server_conn.id),
    }
    addr = flow.server_conn.address
    if addr:
        try:
            e["serverIPAddress"] = str(ipaddress.ip_address(addr[0]))
        except ValueError:
            pass  # a host name, not the address it resolved to
    if flow.websocket is not None:
        e.update(_websocket(flow.websocket))
    return e


def export(flows: Iterable[Flow]) -> dict[str, Any]:
    """A HAR 1.2 log of the HTTP flows among `flows` (TCP flows have no place in HAR; CONNECT is skipped)."""
    seen: set[int] = set()
    entries = [entry(f, seen) for f in flows
               if isinstance(f, HTTPFlow) and f.request is not None and f.request.method != "CONNECT"]
    return {"log": {"version": "1.2", "creator": {"name": "interpose", "version": VERSION}, "pages": [],
                    "entries": entries}}


def write(path: str | os.PathLike[str], flows: Iterable[Flow]) -> int:
    """Write a HAR file; returns how many entries it holds."""
    har = export(flows)
    tmp = f"{os.fspath(path)}.tmp"
    try:
        data = json.dumps(har, indent=1, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (bytes that were not UTF-8): escape everything instead
        data = json.dumps(har, indent=1).encode("ascii")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)  # never leave half a HAR file behind
    return len(har["log"]["entries"])


# -- import ---------------------------------------------------------------------------------------------------
class _Bad(ValueError):
    pass


def _get(d: Any, key: str, where: str, types: type | tuple[type, ...]) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise _Bad(f"{where}.{key} is missing")
    v = d[key]
    if not isinstance(v, types) or (
            isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,))):
        raise _Bad(f"{where}.{key} has the wrong type ({type(v).__name__})")
    return v


def _headers_in(d: dict[str, Any], where: str) -> Headers:
    fields = []
    for i, h in enumerate(d.get("headers") or []):
        name = _get(h, "name", f"{where}.headers[{i}]", str)
        value = _get(h, "value", f"{where}.headers[{i}]", str)
        if not name.startswith(":"):  # HTTP/2 pseudo-headers are not headers in our model
            fields.append((name, value))
    return Headers(fields)


def _timestamp(text: str, where: str) -> float:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _Bad(f"{where}.startedDateTime is not an ISO 8601 date: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _encode_for(headers: Headers, body: bytes) -> bytes:
    """HAR keeps decoded bodies: encode again per Content-Encoding so `raw_content` is what went on the wire."""
    ce = headers.get("content-encoding")
    if ce and ce.lower() != "identity" and encoding.supported(ce):
        try:
            return encoding.encode(body, ce)
        except ValueError:
            return body
    return body


def _decode_text(text: str, b64: bool, where: str) -> bytes:
    if b64:
        try:
            return base64.b64decode(text, validate=False)
        except (binascii.Error, ValueError):
            raise _Bad(f"{where} is not valid base64") from None
    return text.encode("utf-8", "surrogateescape")


def _num(d: dict[str, Any], key: str) -> float:
    v = d.get(key)
    return float(v) / 1000 if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else 0.0


def _entry_in(e: Any, where: str) -> HTTPFlow:
    req_d = _get(e, "request", where, dict)
    started = _timestamp(_get(e, "startedDateTime", where, str), where)
    url = _get(req_d, "url", f"{where}.request", str)
    method = _get(req_d, "method", f"{where}.request", str)
    version = req_d.get("httpVersion") if isinstance(req_d.get("httpVersion"), str) else "HTTP/1.1"
    server = Server(timestamp_start=started)
    flow = HTTPFlow(Client(timestamp_start=started), server, live=False)
    req = Request(method, "http", "", 80, "/", http_version=version or "HTTP/1.1", content=b"")
    try:
        req.url = url
    except ValueError:
        raise _Bad(f"{where}.request.url is not an absolute URL: {url!r}") from None
    req.headers = _headers_in(req_d, f"{where}.request")
    authority = next((h.get("value") for h in req_d.get("headers") or [] if h.get("name") == ":authority"), None)
    req.authority = authority if isinstance(authority, str) else ""
    post = req_d.get("postData")
    body = b""
    if isinstance(post, dict) and isinstance(post.get("text"), str):
        body = _decode_text(post["text"], post.get("_encoding") == "base64", f"{where}.request.postData.text")
    elif isinstance(post, dict) and isinstance(post.get("params"), list):  # some exporters give only the form
        fields = [(_get(p, "name", f"{where}.request.postData.params[{i}]", str), str(p.get("value", "")))
                  for i, p in enumerate(post["params"])]
        body = urllib.parse.urlencode(fields).encode("ascii")
    req.raw_content = _encode_for(req.headers, body)
    flow.request = req
    ip = e.get("serverIPAddress")
    server.address = (ip if isinstance(ip, str) and ip else req.host, req.port)
    timings = e.get("timings") if isinstance(e.get("timings"), dict) else {}
    req.timestamp_start = started
    req.timestamp_end = started + _num(timings, "send")
    flow.timestamp_created = started
    resp_start = req.timestamp_end + sum(_num(timings, k) for k in ("blocked", "dns", "connect", "wait"))
    resp_end = resp_start + _num(timings, "receive")
    resp_d: Any = e.get("response")
    if isinstance(resp_d, dict) and isinstance(resp_d.get("status"), int) and resp_d["status"] > 0:
        rv, reason = resp_d.get("httpVersion"), resp_d.get("statusText")
        resp = Response(resp_d["status"], reason if isinstance(reason, str) else "",
                        http_version=rv if isinstance(rv, str) and rv else version or "HTTP/1.1",
                        headers=_headers_in(resp_d, f"{where}.response"), content=b"")
        content: dict[str, Any] = resp_d["content"] if isinstance(resp_d.get("content"), dict) else {}
        if isinstance(content.get("text"), str):
            body = _decode_text(content["text"], content.get("encoding") == "base64", f"{where}.response.content.text")
            resp.raw_content = _encode_for(resp.headers, body)
        resp.timestamp_start, resp.timestamp_end = resp_start, resp_end
        flow.response = resp
    err = resp_d.get("_error") if isinstance(resp_d, dict) else None
    err = err if isinstance(err, str) and err else e.get("_error")
    if isinstance(err, str) and err:
        flow.error = Error(err, resp_start)
    elif flow.response is None:
        flow.error = Error("no response (HAR entry with status 0)", resp_start)
    if isinstance(e.get("_webSocketMessages"), list):
        flow.websocket = _websocket_in(flow, e, where)
    return flow


def _websocket_in(flow: HTTPFlow, e: dict[str, Any], where: str) -> WebSocketFlow:
    ws = WebSocketFlow(flow, live=False, max_messages=0)
    for i, m in enumerate(e["_webSocketMessages"]):
        w = f"{where}._webSocketMessages[{i}]"
        data = _get(m, "data", w, str)
        opcode = m.get("opcode", 1)
        content = (_decode_text(data, opcode == 2, f"{w}.data") if opcode == 2
                   else data.encode("utf-8", "surrogateescape"))
        ts = m.get("time")
        msg = WebSocketMessage(m.get("type") == "send", content, is_text=opcode != 2,
                               timestamp=float(ts) if isinstance(ts, (int, float)) else None)
        ws.add_message(msg)
    close = e.get("_webSocketClose")
    if isinstance(close, dict):
        ws.close_code = close.get("code") if isinstance(close.get("code"), int) else None
        ws.close_reason = close.get("reason") if isinstance(close.get("reason"), str) else None
        cbc = close.get("closedByClient")
        ws.closed_by_client = cbc if isinstance(cbc, bool) else None
    return ws


def entries_to_flows(har: Any, name: str = "HAR") -> list[HTTPFlow]:
    """The flows of a parsed HAR document. Raises FlowFileError naming the entry and field at fault."""
    if not isinstance(har, dict) or not isinstance(har.get("log"), dict):
        raise FlowFileError(f"{name}: not a HAR file (no \"log\" object)")
    entries = har["log"].get("entries")
    if not isinstance(entries, list):
        raise FlowFileError(f"{name}: not a HAR file (no log.entries list)")
    flows = []
    for i, e in enumerate(entries):
        try:
            flows.append(_entry_in(e, f"entries[{i}]"))
        except _Bad as exc:
            raise FlowFileError(f"{name}: {exc}") from None
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise FlowFileError(f"{name}: entries[{i}] is not a valid HAR entry ({exc})") from None
    return flows


def read(path: str | os.PathLike[str]) -> list[HTTPFlow]:
    """The flows of a HAR file. Raises FlowFileError with a clear message for unreadable or invalid files."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError as e:
        raise FlowFileError(f"cannot read {name}: {e.strerror or e}") from None
    try:
        har = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise FlowFileError(f"{name}: not a HAR file (not UTF-8 text)") from None
    except json.JSONDecodeError as e:
        raise FlowFileError(
            f"{name}: not a HAR file (invalid JSON at line {e.lineno} column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise FlowFileError(f"{name}: not a HAR file (JSON nested too deeply)") from None
    return entries_to_flows(har, name)
