"""mitmproxy's own flow files (what `mitmproxy -w` / `mitmdump -w` write) read into interpose flows.

Such a file is tnetstring dictionaries one after another (interpose.store.tnetstring), one per flow, each
`flow.get_state()` of mitmproxy with a `"version"` field. Versions 12 to 21 (mitmproxy 7.0 to 11) are read:

- 12-14 (mitmproxy 7): `mode` on HTTP flows, no `timestamp_created`; 12-13 have `marked` as a boolean and
  no `comment`; WebSocket messages lack the `injected` field before 15.
- up to 18 (mitmproxy 8, 9): the client's peer address is `client_conn.address`, the server's
  `ip_address`/`source_address`/`via2`, a cipher is `cipher_name`, and `server_conn.sni` may be `true`.
- 19 on (mitmproxy 10, 11): `peername`, `sockname`, `via`, `cipher`; 21 spells the QUIC version `QUICv1`.

Newer versions are read as 21 is; a field that does not fit is reported, never guessed. Nothing in the
file is executed: values are plain strings, numbers, lists and dictionaries. mitmproxy's UDP and DNS
flows have no interpose counterpart: `convert` returns None for them. Reading files: interpose.store.mitmfile.
"""
from __future__ import annotations

import warnings
from typing import Any

from interpose.http import Headers, HTTPFlow, Request, Response
from interpose.model.connection import Client, Server, TLSInfo
from interpose.model.flow import Error, Flow
from interpose.tcp import TCPFlow, TCPMessage
from interpose.websocket import WebSocketFlow, WebSocketMessage

__all__ = ["NEWEST", "OLDEST", "BadFlow", "convert"]

OLDEST, NEWEST = 12, 21
"""The flow format versions of mitmproxy 7.0 and of mitmproxy 11."""
_MODES = {"regular", "transparent", "upstream", "reverse", "socks5"}
_SKIPPED_TYPES = {"udp", "dns"}


class BadFlow(ValueError):
    """A tnetstring that is not a flow this reader understands; the message names the field."""


# -- typed field access --------------------------------------------------------------------------------------
_MISSING: Any = object()


class _D:
    """One dictionary of the state; every error names the field's path (`server_conn.peername`)."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise BadFlow(f"{where or 'record'}: expected a dictionary, got {_kind(value)}")
        self.d = {(k.decode("utf-8", "surrogateescape") if isinstance(k, bytes) else k): v for k, v in value.items()}
        self.where = where

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, default: Any = _MISSING) -> Any:
        if key in self.d:
            return self.d[key]
        if default is _MISSING:
            raise BadFlow(f"missing field {self.path(key)}")
        return default

    def text(self, key: str, default: Any = _MISSING) -> Any:
        """A str (bytes are decoded as UTF-8, undecodable bytes kept as surrogates); None stays None."""
        v = self.get(key, default)
        if isinstance(v, bytes):
            return v.decode("utf-8", "surrogateescape")
        if isinstance(v, str) or v is None:
            return v
        raise BadFlow(f"{self.path(key)}: expected text, got {_kind(v)}")

    def data(self, key: str, default: Any = _MISSING) -> bytes | None:
        v = self.get(key, default)
        if isinstance(v, str):
            return v.encode("utf-8", "surrogateescape")
        if isinstance(v, bytes) or v is None:
            return v
        raise BadFlow(f"{self.path(key)}: expected bytes, got {_kind(v)}")

    def integer(self, key: str, default: Any = _MISSING) -> Any:
        v = self.get(key, default)
        if (isinstance(v, int) and not isinstance(v, bool)) or v is None:
            return v
        raise BadFlow(f"{self.path(key)}: expected an integer, got {_kind(v)}")

    def number(self, key: str, default: Any = _MISSING) -> float | None:
        v = self.get(key, default)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if v is None:
            return None
        raise BadFlow(f"{self.path(key)}: expected a number, got {_kind(v)}")

    def sub(self, key: str, default: Any = _MISSING) -> _D | None:
        v = self.get(key, default)
        return None if v is None else _D(v, self.path(key))

    def items(self, key: str) -> list[Any]:
        v = self.get(key, [])
        if v is None:
            return []
        if not isinstance(v, list):
            raise BadFlow(f"{self.path(key)}: expected a list, got {_kind(v)}")
        return v

    def address(self, *keys: str) -> tuple[str, int] | None:
        """The first of `keys` that is present and not null, as (host, port)."""
        for key in keys:
            v = self.d.get(key)
            if v is None:
                continue
            if (not isinstance(v, list) or len(v) < 2 or not isinstance(v[0], (str, bytes))
                    or not isinstance(v[1], int) or isinstance(v[1], bool)):
                raise BadFlow(f"{self.path(key)}: expected [host, port], got {_kind(v)}")
            host = v[0].decode("utf-8", "surrogateescape") if isinstance(v[0], bytes) else v[0]
            return host, v[1]
        return None


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", bytes: "bytes", str: "text",
            list: "a list", dict: "a dictionary"}.get(type(v), type(v).__name__)


def _headers(d: _D, key: str) -> Headers:
    fields: list[tuple[bytes, bytes]] = []
    for i, pair in enumerate(d.items(key)):
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(x, (bytes, str)) for x in pair)):
            raise BadFlow(f"{d.path(key)}[{i}]: expected a [name, value] pair")
        name, value = (x.encode("utf-8", "surrogateescape") if isinstance(x, str) else x for x in pair)
        fields.append((name, value))
    return Headers.from_raw(fields)


# -- connections ---------------------------------------------------------------------------------------------
def _cert_summary(certs: list[Any]) -> tuple[str | None, str | None, float | None]:
    """Subject, issuer and expiry of the first certificate (PEM, as mitmproxy stores them)."""
    if not certs or not isinstance(certs[0], (bytes, str)):
        return None, None, None
    from cryptography import x509  # only when a file has TLS flows

    pem = certs[0].encode("ascii", "replace") if isinstance(certs[0], str) else certs[0]
    try:
        with warnings.catch_warnings():  # an odd but readable certificate is still summarised
            warnings.simplefilter("ignore")
            cert = x509.load_pem_x509_certificate(pem)
            return (cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
                    cert.not_valid_after_utc.timestamp())
    except Exception:  # noqa: BLE001  # cryptography raises more than ValueError (InvalidVersion...)
        return None, None, None  # a summary only: a damaged certificate leaves it empty


def _tls(c: _D, with_cert: bool) -> TLSInfo | None:
    if not (c.get("tls", False) or c.get("tls_established", False)):
        return None
    alpn = c.data("alpn", None)
    version = c.text("tls_version", None)
    info = TLSInfo(sni=c.text("sni", None) if isinstance(c.get("sni", None), (str, bytes)) else None,
                   alpn=alpn.decode("ascii", "replace") if alpn else None,
                   version="QUICv1" if version == "QUIC" else version,
                   cipher=c.text("cipher", None) or c.text("cipher_name", None))
    if with_cert:
        info.cert_subject, info.cert_issuer, info.cert_not_after = _cert_summary(c.items("certificate_list"))
    return info


def _client(c: _D, fallback_ts: float) -> Client:
    tls = _tls(c, with_cert=False)
    client = Client(address=c.address("peername", "address"), sockname=c.address("sockname"),
                    timestamp_start=c.number("timestamp_start", None) or fallback_ts,
                    timestamp_end=c.number("timestamp_end", None), tls=tls, alpn=tls.alpn if tls else None)
    ts = c.number("timestamp_tls_setup", None)
    if ts is not None:
        client.timestamp_tls_setup = ts  # type: ignore[attr-defined]  # as the TLS layer sets it
    return client


def _server(c: _D, fallback_ts: float) -> Server:
    tls = _tls(c, with_cert=True)
    if tls is not None and c.get("sni", None) is True:  # mitmproxy up to 9: "the address's host"
        addr = c.address("address")
        tls.sni = addr[0] if addr else None
    via = c.sub("via", None) or c.sub("via2", None)
    return Server(address=c.address("address", "peername", "ip_address"),
                  sockname=c.address("sockname", "source_address"),
                  timestamp_start=c.number("timestamp_start", None) or fallback_ts,
                  timestamp_end=c.number("timestamp_end", None), tls=tls, alpn=tls.alpn if tls else None,
                  via=via.address("address") if via is not None and isinstance(via.d.get("address"), list)
                  else None,
                  timestamp_tcp_setup=c.number("timestamp_tcp_setup", None),
                  timestamp_tls_setup=c.number("timestamp_tls_setup", None), error=c.text("error", None))


# -- HTTP ----------------------------------------------------------------------------------------------------
def _message_times(m: Request | Response, d: _D, fallback: float) -> None:
    m.trailers = _headers(d, "trailers") if d.get("trailers", None) is not None else None
    start = d.number("timestamp_start", None)
    m.timestamp_start = start if start is not None else fallback
    m.timestamp_end = d.number("timestamp_end", None)


def _request(d: _D, fallback: float) -> Request:
    port = d.integer("port")
    if port is None or not 0 <= port <= 65535:
        raise BadFlow(f"{d.path('port')}: expected a port number, got {port!r}")
    r = Request(d.text("method") or "", d.text("scheme") or "", d.text("host") or "", port, d.text("path") or "",
                http_version=d.text("http_version") or "HTTP/1.1", headers=_headers(d, "headers"),
                content=d.data("content", None), authority=d.text("authority", "") or "")
    _message_times(r, d, fallback)
    return r


def _response(d: _D, fallback: float) -> Response:
    status = d.integer("status_code")
    if status is None:
        raise BadFlow(f"{d.path('status_code')}: expected an integer, got null")
    r = Response(status, d.text("reason", "") or "", http_version=d.text("http_version") or "HTTP/1.1",
                 headers=_headers(d, "headers"), content=d.data("content", None))
    _message_times(r, d, fallback)
    return r


def _websocket(flow: HTTPFlow, d: _D) -> WebSocketFlow:
    ws = WebSocketFlow(flow, live=False, max_messages=0)
    for i, raw in enumerate(d.items("messages")):
        where = f"{d.path('messages')}[{i}]"
        if (not isinstance(raw, list) or len(raw) < 4 or not isinstance(raw[0], int)
                or not isinstance(raw[1], bool) or not isinstance(raw[2], (bytes, str))
                or not isinstance(raw[3], (int, float)) or isinstance(raw[3], bool)):
            raise BadFlow(f"{where}: expected [type, from_client, content, timestamp, ...]")
        content = raw[2].encode("utf-8", "surrogateescape") if isinstance(raw[2], str) else raw[2]
        m = WebSocketMessage(raw[1], content, is_text=raw[0] == 1, timestamp=float(raw[3]))
        m.dropped = len(raw) > 4 and raw[4] is True
        m.injected = len(raw) > 5 and raw[5] is True
        ws.add_message(m)
    ws.close_code = d.integer("close_code", None)
    ws.close_reason = d.text("close_reason", None)
    closed_by_client = d.get("closed_by_client", None)
    ws.closed_by_client = closed_by_client if isinstance(closed_by_client, bool) else None
    ws.id, ws.timestamp_created = flow.id, flow.timestamp_created
    return ws


# -- flows ---------------------------------------------------------------------------------------------------
def _common(flow: Flow, d: _D) -> None:
    flow_id = d.text("id")
    if not flow_id:
        raise BadFlow("id: expected the flow's id")
    flow.id = flow_id
    marked = d.get("marked", False)
    flow.marked = bool(marked) if isinstance(marked, (bool, str)) else False
    replay = d.text("is_replay", None)
    flow.is_replay = replay if replay in ("request", "response") else None
    meta = d.get("metadata", {}) or {}
    if not isinstance(meta, dict):
        raise BadFlow(f"metadata: expected a dictionary, got {_kind(meta)}")
    flow.metadata = {(k.decode("utf-8", "surrogateescape") if isinstance(k, bytes) else k): v
                     for k, v in meta.items()}
    comment = d.text("comment", "")
    if comment:
        flow.comment = comment
    err = d.sub("error", None)
    if err is not None:
        ts = err.number("timestamp", None)
        flow.error = Error(err.text("msg") or "", ts if ts is not None else flow.timestamp_created)


def convert(state: Any) -> Flow | None:
    """The interpose flow for one of mitmproxy's flow states, or None for a flow type interpose has no
    counterpart for (UDP, DNS). Raises BadFlow naming the first field that does not fit."""
    d = _D(state, "")
    version = d.get("version")
    if isinstance(version, list):
        raise BadFlow(f"flow format version {'.'.join(map(str, version))} is from mitmproxy 3 or older; "
                      "open and save the file with mitmproxy 7 or newer first")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BadFlow(f"version: expected an integer, got {_kind(version)}")
    if version < OLDEST:
        raise BadFlow(f"flow format version {version} is from mitmproxy 6 or older; "
                      "open and save the file with mitmproxy 7 or newer first")
    kind = d.text("type")
    if kind in _SKIPPED_TYPES:
        return None
    try:
        return _convert(d, kind)
    except (TypeError, ValueError, OverflowError) as e:
        if isinstance(e, BadFlow):
            raise
        raise BadFlow(f"a value interpose cannot take ({e})") from None


def _convert(d: _D, kind: str) -> Flow:
    req = d.sub("request", None) if kind == "http" else None
    created = d.number("timestamp_created", None)
    if created is None:  # before version 16: the request's start, or the client's
        created = ((req.number("timestamp_start", None) if req is not None else None)
                   or (d.sub("client_conn") or _D({}, "")).number("timestamp_start", None) or 0.0)
    client = _client(d.sub("client_conn") or _D({}, "client_conn"), created)
    server = _server(d.sub("server_conn") or _D({}, "server_conn"), created)
    flow: Flow
    if kind == "http":
        if req is None:
            raise BadFlow("request: an HTTP flow without a request")
        mode = d.text("mode", "regular")
        http = HTTPFlow(client, server, live=False, mode=mode if mode in _MODES else "regular")
        http.request = _request(req, created)
        resp = d.sub("response", None)
        http.response = _response(resp, http.request.timestamp_end or created) if resp is not None else None
        flow = http
    elif kind == "tcp":
        tcp = TCPFlow(client, server, live=False, max_messages=0)
        for i, raw in enumerate(d.items("messages")):
            if (not isinstance(raw, list) or len(raw) < 3 or not isinstance(raw[0], bool)
                    or not isinstance(raw[1], (bytes, str)) or not isinstance(raw[2], (int, float))):
                raise BadFlow(f"messages[{i}]: expected [from_client, content, timestamp]")
            content = raw[1].encode("utf-8", "surrogateescape") if isinstance(raw[1], str) else raw[1]
            tcp.add_message(TCPMessage(raw[0], content, timestamp=float(raw[2])))
        flow = tcp
    else:
        raise BadFlow(f"type: unknown flow type {kind!r}")
    flow.timestamp_created = created
    _common(flow, d)
    if isinstance(flow, HTTPFlow):
        ws = d.sub("websocket", None)
        if ws is not None:
            flow.websocket = w = _websocket(flow, ws)
            if flow.response is not None and flow.response.status_code == 101:
                w.error, flow.error = flow.error, None  # mitmproxy keeps a WebSocket's error on the flow
    return flow
