"""One flow ⇄ one JSON-ready dict: the record format of flow files (docs/flowfile.md lists every field).
`dump(flow)` never fails for a flow the proxy made; `load(obj)` checks every field it reads and raises
`BadRecord` naming the field (e.g. `request.port: expected an integer`), so a damaged file is reported,
never half-loaded into a broken flow. Bytes are stored as `{"text": ...}` when they are UTF-8, else as
`{"b64": ...}`; header names and values as plain strings when UTF-8, else as `{"b64": ...}`.
"""
from __future__ import annotations

import base64
import binascii
import json
from importlib import metadata as _metadata
from typing import Any

from interpose.http import Headers, HTTPFlow, Request, Response
from interpose.model.connection import Client, Connection, Server, TLSInfo
from interpose.model.flow import Error, Flow
from interpose.model.messages import Message, MessageFlow
from interpose.tcp import TCPFlow, TCPMessage
from interpose.websocket import WebSocketFlow, WebSocketMessage

try:
    VERSION = _metadata.version("interpose")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.1.0"


class BadRecord(ValueError):
    """A record that is not a valid flow; the message names the field."""


# -- bytes ------------------------------------------------------------------------------------------------
def bytes_out(data: bytes | None) -> dict[str, str] | None:
    try:
        return None if data is None else {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(data).decode("ascii")}  # type: ignore[arg-type]  # not None here


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise BadRecord(f"{where}.b64: expected a string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise BadRecord(f"{where}.b64: invalid base64") from None


def bytes_in(value: Any, where: str) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, dict) and len(value) == 1:
        if "text" in value:
            if not isinstance(value["text"], str):
                raise BadRecord(f"{where}.text: expected a string")
            try:
                return value["text"].encode("utf-8")
            except UnicodeEncodeError:
                raise BadRecord(f"{where}.text: not encodable as UTF-8") from None
        if "b64" in value:
            return _b64(value["b64"], where)
    raise BadRecord(f"{where}: expected null, {{\"text\": ...}} or {{\"b64\": ...}}")


def _hfield_out(b: bytes) -> str | dict[str, str]:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(b).decode("ascii")}


def _hfield_in(v: Any, where: str) -> bytes:
    if isinstance(v, str):
        try:
            return v.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRecord(f"{where}: not encodable as UTF-8") from None
    if isinstance(v, dict) and set(v) == {"b64"}:
        return _b64(v["b64"], where)
    raise BadRecord(f"{where}: expected a string or {{\"b64\": ...}}")


def headers_out(h: Headers | None) -> list[list[Any]] | None:
    if h is None:
        return None
    return [[_hfield_out(k), _hfield_out(v)] for k, v in h.fields]


def headers_in(v: Any, where: str) -> Headers:
    if not isinstance(v, list):
        raise BadRecord(f"{where}: expected a list of [name, value] pairs")
    fields: list[tuple[bytes, bytes]] = []
    for i, pair in enumerate(v):
        if not isinstance(pair, list) or len(pair) != 2:
            raise BadRecord(f"{where}[{i}]: expected a [name, value] pair")
        fields.append((_hfield_in(pair[0], f"{where}[{i}][0]"), _hfield_in(pair[1], f"{where}[{i}][1]")))
    return Headers.from_raw(fields)


def json_metadata(meta: dict[Any, Any]) -> dict[str, Any]:
    """The entries of `flow.metadata` that survive a JSON round trip unchanged; the rest are left out."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if not isinstance(k, str):
            continue
        try:
            if json.loads(json.dumps(v)) == v:
                out[k] = v
        except (TypeError, ValueError, RecursionError):
            pass
    return out


# -- typed field access ------------------------------------------------------------------------------------
_MISSING: Any = object()


class _Obj:
    """Reads the fields of one JSON object; every error names the field's path."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise BadRecord(f"{where or 'record'}: expected an object")
        self.d: dict[str, Any] = value
        self.where = where

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        if key in self.d:
            return self.d[key]
        if default is _MISSING:
            raise BadRecord(f"missing field {self.path(key)}")
        return default

    def text(self, key: str, default: Any = _MISSING, null: bool = False) -> Any:
        v = self.raw(key, default)
        if isinstance(v, str) or (null and v is None) or (v is default and default is not _MISSING):
            return v
        raise BadRecord(f"{self.path(key)}: expected {'a string or null' if null else 'a string'}")

    def integer(self, key: str, default: Any = _MISSING, null: bool = False) -> Any:
        v = self.raw(key, default)
        if ((isinstance(v, int) and not isinstance(v, bool)) or (null and v is None)
                or (v is default and default is not _MISSING)):
            return v
        raise BadRecord(f"{self.path(key)}: expected {'an integer or null' if null else 'an integer'}")

    def number(self, key: str, default: Any = _MISSING, null: bool = False) -> Any:
        v = self.raw(key, default)
        if null and v is None:
            return None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if v is default and default is not _MISSING:
            return v
        raise BadRecord(f"{self.path(key)}: expected {'a number or null' if null else 'a number'}")

    def flag(self, key: str, default: Any = _MISSING, null: bool = False) -> Any:
        v = self.raw(key, default)
        if isinstance(v, bool) or (null and v is None):
            return v
        raise BadRecord(f"{self.path(key)}: expected {'true, false or null' if null else 'true or false'}")

    def obj(self, key: str, null: bool = False) -> _Obj | None:
        v = self.raw(key)
        if v is None and null:
            return None
        return _Obj(v, self.path(key))

    def array(self, key: str) -> list[Any]:
        v = self.raw(key)
        if not isinstance(v, list):
            raise BadRecord(f"{self.path(key)}: expected a list")
        return v

    def address(self, key: str) -> tuple[str, int] | None:
        v = self.raw(key)
        if v is None:
            return None
        if (not isinstance(v, list) or len(v) != 2 or not isinstance(v[0], str)
                or not isinstance(v[1], int) or isinstance(v[1], bool)):
            raise BadRecord(f"{self.path(key)}: expected null or [host, port]")
        return (v[0], v[1])


# -- connections and errors ---------------------------------------------------------------------------------
_TLS_STR = ("sni", "alpn", "version", "cipher", "cert_subject", "cert_issuer")


def _tls_out(t: TLSInfo | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {**{k: getattr(t, k) for k in _TLS_STR}, "cert_not_after": t.cert_not_after}


def _tls_in(o: _Obj | None) -> TLSInfo | None:
    if o is None:
        return None
    return TLSInfo(**{k: o.text(k, null=True) for k in _TLS_STR}, cert_not_after=o.number("cert_not_after", null=True))


def _conn_out(c: Connection) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": c.id, "address": list(c.address) if c.address else None,
        "sockname": list(c.sockname) if c.sockname else None,
        "timestamp_start": c.timestamp_start, "timestamp_end": c.timestamp_end,
        "tls": _tls_out(c.tls), "alpn": c.alpn,
    }
    if isinstance(c, Server):
        d.update(via=list(c.via) if c.via else None, timestamp_tcp_setup=c.timestamp_tcp_setup,
                 timestamp_tls_setup=c.timestamp_tls_setup, error=c.error)
    elif getattr(c, "timestamp_tls_setup", None) is not None:
        d["timestamp_tls_setup"] = c.timestamp_tls_setup  # type: ignore[attr-defined]  # set by the TLS layer
    return d


def _conn_fields(o: _Obj) -> dict[str, Any]:
    return dict(id=o.integer("id"), address=o.address("address"), sockname=o.address("sockname"),
                timestamp_start=o.number("timestamp_start"), timestamp_end=o.number("timestamp_end", null=True),
                tls=_tls_in(o.obj("tls", null=True)), alpn=o.text("alpn", null=True))


def _client_in(o: _Obj) -> Client:
    c = Client(**_conn_fields(o))
    ts = o.number("timestamp_tls_setup", None, null=True)
    if ts is not None:
        c.timestamp_tls_setup = ts  # type: ignore[attr-defined]
    return c


def _server_in(o: _Obj) -> Server:
    return Server(**_conn_fields(o), via=o.address("via"),
                  timestamp_tcp_setup=o.number("timestamp_tcp_setup", null=True),
                  timestamp_tls_setup=o.number("timestamp_tls_setup", null=True), error=o.text("error", null=True))


def _error_out(e: Error | None) -> dict[str, Any] | None:
    return None if e is None else {"msg": e.msg, "timestamp": e.timestamp}


def _error_in(o: _Obj | None) -> Error | None:
    return None if o is None else Error(o.text("msg"), o.number("timestamp"))


# -- HTTP -------------------------------------------------------------------------------------------------------
def _message_fields_out(m: Request | Response, bodies: bool = True) -> dict[str, Any]:
    content = bytes_out(m.raw_content) if bodies else None
    return {"http_version": m.http_version, "headers": headers_out(m.headers), "content": content,
            "trailers": headers_out(m.trailers), "timestamp_start": m.timestamp_start,
            "timestamp_end": m.timestamp_end, "stream": bool(m.stream)}


def _message_fields_in(m: Request | Response, o: _Obj) -> None:
    m.trailers = None if o.raw("trailers") is None else headers_in(o.raw("trailers"), o.path("trailers"))
    m.timestamp_start = o.number("timestamp_start")
    m.timestamp_end = o.number("timestamp_end", null=True)
    m.stream = o.flag("stream", False)


def _request_out(r: Request, bodies: bool = True) -> dict[str, Any]:
    return {"method": r.method, "scheme": r.scheme, "host": r.host, "port": r.port, "path": r.path,
            "authority": r.authority, **_message_fields_out(r, bodies)}


def _request_in(o: _Obj) -> Request:
    r = Request(o.text("method"), o.text("scheme"), o.text("host"), o.integer("port"), o.text("path"),
                http_version=o.text("http_version"), headers=headers_in(o.raw("headers"), o.path("headers")),
                content=bytes_in(o.raw("content"), o.path("content")), authority=o.text("authority", ""))
    _message_fields_in(r, o)
    return r


def _response_out(r: Response, bodies: bool = True) -> dict[str, Any]:
    return {"status_code": r.status_code, "reason": r.reason, **_message_fields_out(r, bodies)}


def _response_in(o: _Obj) -> Response:
    r = Response(o.integer("status_code"), o.text("reason"), http_version=o.text("http_version"),
                 headers=headers_in(o.raw("headers"), o.path("headers")),
                 content=bytes_in(o.raw("content"), o.path("content")))
    _message_fields_in(r, o)
    return r


# -- flows ------------------------------------------------------------------------------------------------------
def _common_out(f: Flow) -> dict[str, Any]:
    return {"id": f.id, "timestamp_created": f.timestamp_created, "marked": f.marked, "is_replay": f.is_replay,
            "metadata": json_metadata(f.metadata), "error": _error_out(f.error),
            **({"comment": f.comment} if f.comment else {})}


def _common_in(f: Flow, o: _Obj) -> None:
    f.id = o.text("id")
    f.timestamp_created = o.number("timestamp_created")
    f.marked = o.flag("marked", False)
    f.comment = o.text("comment", "")
    f.is_replay = o.text("is_replay", None, null=True)
    meta = o.raw("metadata", {})
    if not isinstance(meta, dict):
        raise BadRecord(f"{o.path('metadata')}: expected an object")
    f.metadata = meta
    f.error = _error_in(o.obj("error", null=True))


def _messages_out(f: MessageFlow, bodies: bool = True) -> dict[str, Any]:
    msgs = []
    for m in (f.messages if bodies else ()):
        d: dict[str, Any] = {"from_client": m.from_client, "content": bytes_out(m.content), "timestamp": m.timestamp,
             "dropped": m.dropped, "injected": m.injected}
        if isinstance(m, WebSocketMessage):
            d["type"] = m.type
        msgs.append(d)
    return {"messages": msgs, "message_count": f.message_count, "bytes_from_client": f.bytes_from_client,
            "bytes_from_server": f.bytes_from_server}


def _messages_in(f: MessageFlow, o: _Obj, websocket: bool) -> None:
    for i, raw in enumerate(o.array("messages")):
        mo = _Obj(raw, f"{o.path('messages')}[{i}]")
        content = bytes_in(mo.raw("content"), mo.path("content"))
        if content is None:
            raise BadRecord(f"{mo.path('content')}: a message's content cannot be null")
        m: Message
        if websocket:
            kind = mo.text("type")
            if kind not in ("text", "binary"):
                raise BadRecord(f"{mo.path('type')}: expected \"text\" or \"binary\"")
            m = WebSocketMessage(mo.flag("from_client"), content, is_text=kind == "text",
                                 timestamp=mo.number("timestamp"))
        else:
            m = TCPMessage(mo.flag("from_client"), content, timestamp=mo.number("timestamp"))
        m.dropped = mo.flag("dropped", False)
        m.injected = mo.flag("injected", False)
        f.add_message(m)
    f.message_count = o.integer("message_count", f.message_count)
    f.bytes_from_client = o.integer("bytes_from_client", f.bytes_from_client)
    f.bytes_from_server = o.integer("bytes_from_server", f.bytes_from_server)


def _websocket_out(ws: MessageFlow, bodies: bool = True) -> dict[str, Any]:
    assert isinstance(ws, WebSocketFlow)  # what HTTPFlow.websocket holds
    return {**_common_out(ws), "close_code": ws.close_code, "close_reason": ws.close_reason,
            "closed_by_client": ws.closed_by_client, **_messages_out(ws, bodies)}


def _websocket_in(hs: HTTPFlow, o: _Obj) -> WebSocketFlow:
    ws = WebSocketFlow(hs, live=False, max_messages=0)
    _common_in(ws, o)
    ws.close_code = o.integer("close_code", null=True)
    ws.close_reason = o.text("close_reason", null=True)
    ws.closed_by_client = o.flag("closed_by_client", null=True)
    _messages_in(ws, o, websocket=True)
    return ws


def dump(flow: Flow, bodies: bool = True) -> dict[str, Any]:
    """The record of an `HTTPFlow` (its WebSocket inside it) or a `TCPFlow`; `bodies=False`: no contents."""
    common = {**_common_out(flow), "client_conn": _conn_out(flow.client_conn),
              "server_conn": _conn_out(flow.server_conn)}
    if isinstance(flow, HTTPFlow):
        return {"type": "http", **common, "mode": flow.mode, "request": _request_out(flow.request, bodies),
                "response": _response_out(flow.response, bodies) if flow.response is not None else None,
                "websocket": _websocket_out(flow.websocket, bodies) if flow.websocket is not None else None}
    if isinstance(flow, TCPFlow):
        return {"type": "tcp", **common, **_messages_out(flow, bodies)}
    if isinstance(flow, WebSocketFlow):
        return dump(flow.handshake_flow, bodies)  # a WebSocket is stored inside its handshake flow
    raise TypeError(f"cannot store a {type(flow).__name__}")


def load(obj: Any) -> Flow:
    """The flow a record describes (not live). Raises BadRecord naming the first bad field."""
    try:
        o = _Obj(obj, "")
        kind = o.text("type")
        client, server = _client_in(o.obj("client_conn")), _server_in(o.obj("server_conn"))  # type: ignore[arg-type]
        flow: Flow
        if kind == "http":
            http = HTTPFlow(client, server, live=False, mode=o.text("mode", "regular"))
            http.request = _request_in(o.obj("request"))  # type: ignore[arg-type]
            resp = o.obj("response", null=True)
            http.response = _response_in(resp) if resp is not None else None
            ws = o.obj("websocket", null=True)
            http.websocket = _websocket_in(http, ws) if ws is not None else None
            flow = http
        elif kind == "tcp":
            tcp = TCPFlow(client, server, live=False, max_messages=0)
            _messages_in(tcp, o, websocket=False)
            flow = tcp
        else:
            raise BadRecord(f"type: unknown flow type {kind!r}")
        _common_in(flow, o)
        return flow
    except BadRecord:
        raise
    except (TypeError, ValueError, OverflowError, RecursionError) as e:  # a value the model itself refused
        raise BadRecord(f"invalid record ({e})") from None
