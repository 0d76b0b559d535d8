"""The compact record of an HTTP flow (session schema 3): what `flowcodec.dump(flow, bodies=False)` holds,
made with a few C calls instead of a dict of dicts turned into JSON.

Making the JSON record was most of what recording cost the proxy's loop per flow (building ~10 dicts, then
the JSON encoder, where formatting the ~11 timestamps as decimal text alone took a third). This record is

    MAGIC, struct HEAD (flags, 11 timestamps as doubles, ids, ports, status, counts and lengths),
    the flow's strings joined by NUL (UTF-8, lone surrogates kept),
    the header names and values of request and response joined by NUL (bytes as they are),
    EXTRA: JSON of what a plain flow does not have (TLS, trailers, error, metadata, via, ...), often empty

and `decode()` turns it back into the very dict `flowcodec.dump` gives, so `flowcodec.load` checks every field
as it does for a flow file. `encode()` returns None for what it does not cover (WebSocket and TCP flows, a
NUL inside a string or header, a number out of range): those keep the JSON record, which every version
reads. Timestamps that are None are stored as NaN.
"""
from __future__ import annotations

import json
import math
import struct
from typing import Any

from interpose.http import HTTPFlow
from interpose.store import flowcodec

MAGIC = b"\x01IPR3"
HEAD = struct.Struct("<H11dqqiiiiiiHHIII")
_NAN = math.nan
_M, _CA, _CS, _SA, _SS, _RESP, _QSTREAM, _SSTREAM = (1 << i for i in range(8))
_STRINGS = 14


def _opt_f(v: float | None) -> float:
    return _NAN if v is None else v


def encode(flow: Any, extra: dict[str, Any] | None = None) -> bytes | None:
    """The compact record of a plain HTTP flow, or None (then the caller stores JSON). `extra`: more
    top-level keys for the record (the original of an edited flow)."""
    if type(flow) is not HTTPFlow or flow.websocket is not None:
        return None
    try:
        return _encode(flow, extra)
    except (struct.error, TypeError, ValueError, AttributeError):  # a field of an unexpected type: JSON
        return None


def _encode(flow: Any, extra: dict[str, Any] | None) -> bytes | None:
    c, s, q, r = flow.client_conn, flow.server_conn, flow.request, flow.response
    ca, cs, sa, ss = c.address, c.sockname, s.address, s.sockname
    flags = ((_M if flow.marked else 0) | (_CA if ca else 0) | (_CS if cs else 0) | (_SA if sa else 0)
             | (_SS if ss else 0) | (_QSTREAM if q.stream else 0))
    more: dict[str, Any] = {}
    if extra:
        more.update(extra)
    if flow.is_replay is not None:
        more["is_replay"] = flow.is_replay
    if flow.metadata:
        more["metadata"] = flowcodec.json_metadata(flow.metadata)
    if flow.error is not None:
        more["error"] = {"msg": flow.error.msg, "timestamp": flow.error.timestamp}
    if flow.comment:
        more["comment"] = flow.comment
    if c.tls is not None or c.alpn is not None or getattr(c, "timestamp_tls_setup", None) is not None \
            or s.tls is not None or s.alpn is not None or s.via or s.error is not None:
        cd, sd = flowcodec._conn_out(c), flowcodec._conn_out(s)
        more["client_conn"] = {k: cd[k] for k in ("tls", "alpn", "timestamp_tls_setup") if k in cd}
        more["server_conn"] = {k: sd[k] for k in ("tls", "alpn", "via", "error")}
    if q.trailers is not None:
        more["request.trailers"] = flowcodec.headers_out(q.trailers)
    hq = q.headers.fields
    hr: Any = ()
    if r is not None:
        flags |= _RESP | (_SSTREAM if r.stream else 0)
        hr = r.headers.fields
        if r.trailers is not None:
            more["response.trailers"] = flowcodec.headers_out(r.trailers)
        status, reason, rv, rts, rte = r.status_code, r.reason, r.http_version, r.timestamp_start, r.timestamp_end
    else:
        status, reason, rv, rts, rte = 0, "", "", _NAN, None
    strings = "\0".join((flow.id, ca[0] if ca else "", cs[0] if cs else "", sa[0] if sa else "",
                         ss[0] if ss else "", flow.mode, q.method, q.scheme, q.host, q.path, q.authority,
                         q.http_version, reason, rv))
    if strings.count("\0") != _STRINGS - 1:
        return None
    sb = strings.encode("utf-8", "surrogatepass")
    names = [x for kv in hq for x in kv]
    names += [x for kv in hr for x in kv]
    hb = b"\0".join(names)
    if hb.count(b"\0") != max(0, len(names) - 1):
        return None
    eb = json.dumps(more, ensure_ascii=True, separators=(",", ":")).encode() if more else b""
    head = HEAD.pack(flags, flow.timestamp_created, c.timestamp_start, _opt_f(c.timestamp_end),
                     s.timestamp_start, _opt_f(s.timestamp_end), _opt_f(s.timestamp_tcp_setup),
                     _opt_f(s.timestamp_tls_setup), q.timestamp_start, _opt_f(q.timestamp_end), rts,
                     _opt_f(rte), c.id, s.id, ca[1] if ca else 0, cs[1] if cs else 0, sa[1] if sa else 0,
                     ss[1] if ss else 0, q.port, status, len(hq), len(hr), len(sb), len(hb), len(eb))
    return b"".join((MAGIC, head, sb, hb, eb))


def _f(v: float) -> float | None:
    return None if v != v else v  # NaN: None


def _hf(b: bytes) -> Any:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return flowcodec._hfield_out(b)


def decode(blob: bytes) -> dict[str, Any]:
    """The flow-file record (`flowcodec.dump(flow, bodies=False)`) a compact record holds. BadRecord if it
    is damaged."""
    try:
        return _decode(blob)
    except (struct.error, ValueError, IndexError, TypeError, RecursionError) as e:
        raise flowcodec.BadRecord(f"record: damaged compact record ({e})") from None


def _decode(blob: bytes) -> dict[str, Any]:
    if not blob.startswith(MAGIC):
        raise ValueError("unknown format")
    at = len(MAGIC)
    (flags, t_created, c_ts, c_te, s_ts, s_te, s_tcp, s_tls, q_ts, q_te, r_ts, r_te, c_id, s_id, c_port, cs_port,
     s_port, ss_port, q_port, status, nq, nr, ls, lh, le) = HEAD.unpack_from(blob, at)
    at += HEAD.size
    strings = blob[at:at + ls].decode("utf-8", "surrogatepass").split("\0")
    at += ls
    hb = blob[at:at + lh]
    at += lh
    eb = blob[at:at + le]
    if len(strings) != _STRINGS or at + le != len(blob):
        raise ValueError("lengths do not match")
    fid, c_host, cs_host, s_host, ss_host, mode, method, scheme, host, path, authority, qv, reason, rv = strings
    names = [_hf(b) for b in hb.split(b"\0")] if (nq or nr) else []
    if len(names) != 2 * (nq + nr):
        raise ValueError("header count does not match")
    pairs = [[names[i], names[i + 1]] for i in range(0, len(names), 2)]
    more = json.loads(eb) if eb else {}
    if not isinstance(more, dict):
        raise ValueError("extra is not an object")

    def conn(cid: int, addr: Any, sock: Any, ts: float, te: float) -> dict[str, Any]:
        return {"id": cid, "address": addr, "sockname": sock, "timestamp_start": ts, "timestamp_end": _f(te),
                "tls": None, "alpn": None}

    client = conn(c_id, [c_host, c_port] if flags & _CA else None, [cs_host, cs_port] if flags & _CS else None,
                  c_ts, c_te)
    server = conn(s_id, [s_host, s_port] if flags & _SA else None, [ss_host, ss_port] if flags & _SS else None,
                  s_ts, s_te)
    server.update(via=None, timestamp_tcp_setup=_f(s_tcp), timestamp_tls_setup=_f(s_tls), error=None)
    client.update(more.pop("client_conn", {}))
    server.update(more.pop("server_conn", {}))
    request = {"method": method, "scheme": scheme, "host": host, "port": q_port, "path": path,
               "authority": authority, "http_version": qv, "headers": pairs[:nq], "content": None,
               "trailers": more.pop("request.trailers", None), "timestamp_start": q_ts, "timestamp_end": _f(q_te),
               "stream": bool(flags & _QSTREAM)}
    response = None
    if flags & _RESP:
        response = {"status_code": status, "reason": reason, "http_version": rv, "headers": pairs[nq:],
                    "content": None, "trailers": more.pop("response.trailers", None), "timestamp_start": r_ts,
                    "timestamp_end": _f(r_te), "stream": bool(flags & _SSTREAM)}
    rec: dict[str, Any] = {"type": "http", "id": fid, "timestamp_created": t_created, "marked": bool(flags & _M),
                           "is_replay": None, "metadata": {}, "error": None}
    rec.update(more)
    rec.update(client_conn=client, server_conn=server, mode=mode, request=request, response=response,
               websocket=None)
    return rec
