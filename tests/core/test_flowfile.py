"""Flow files: exact round trips of every kind of flow, damage reported by line, appending, fsync batches,
and a fuzzer that proves the loader only ever yields flows or raises FlowFileError."""
from __future__ import annotations

import io
import json
from collections import deque
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interpose.errors import FlowFileError
from interpose.http import Headers, HTTPFlow, Request, Response
from interpose.model.connection import Client, Server, TLSInfo
from interpose.model.flow import Error, Flow
from interpose.store import flowcodec, flowfile
from interpose.store.flowfile import FlowWriter, load, read_flows
from interpose.tcp import TCPFlow, TCPMessage
from interpose.websocket import WebSocketFlow, WebSocketMessage

T0 = 1_700_000_000.123456


# -- flow factories (also used by test_har and the integration tests) ----------------------------------------
def make_conns(tls: bool = True) -> tuple[Client, Server]:
    client = Client(address=("127.0.0.1", 51234), sockname=("127.0.0.1", 8080), timestamp_start=T0,
                    timestamp_end=T0 + 2.5, alpn="h2" if tls else None,
                    tls=TLSInfo(sni="example.com", alpn="h2", version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256")
                    if tls else None)
    if tls:
        client.timestamp_tls_setup = T0 + 0.01  # type: ignore[attr-defined]  # the TLS layer sets it
    server = Server(address=("93.184.216.34", 443), sockname=("10.0.0.2", 40000), timestamp_start=T0 + 0.02,
                    timestamp_end=None, timestamp_tcp_setup=T0 + 0.03, timestamp_tls_setup=T0 + 0.05 if tls else None,
                    via=("10.0.0.1", 3128) if tls else None, alpn="h2" if tls else None,
                    tls=TLSInfo(sni="example.com", alpn="h2", version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384",
                                cert_subject="CN=example.com", cert_issuer="CN=Test CA", cert_not_after=T0 + 86400)
                    if tls else None)
    return client, server


def make_http_flow() -> HTTPFlow:
    """A flow with something odd in every field: TLS, duplicate and mixed-case headers, bytes that are not
    UTF-8 (body, header value, path), trailers, gzip, metadata, marks, replay."""
    client, server = make_conns()
    f = HTTPFlow(client, server, mode="upstream:http://10.0.0.1:3128")
    f.request = Request("POST", "https", "example.com", 443, "/api/v1?q=caf%C3%A9&q=2&x=\udcff", "HTTP/2.0",
                        Headers([(b"Host", b"example.com"), (b"X-Dup", b"1"), (b"x-dup", b"2"),
                                 (b"X-Latin", b"caf\xe9"), (b"Cookie", b"a=1; b=2")]),
                        b"\x00\xff binary \xfe", authority="example.com")
    f.request.timestamp_start, f.request.timestamp_end = T0 + 0.1, T0 + 0.2
    f.request.trailers = Headers([(b"X-Checksum", b"abc")])
    f.response = Response(200, "OK", "HTTP/2.0", Headers([(b"Content-Type", b"text/html; charset=utf-8"),
                                                          (b"Set-Cookie", b"s=1; Path=/; HttpOnly"),
                                                          (b"Set-Cookie", b"t=2")]), b"")
    f.response.content = "<p>h\u00e9llo \u2603</p>".encode() * 3  # re-encoded below
    f.response.encode("gzip")
    f.response.timestamp_start, f.response.timestamp_end = T0 + 0.3, T0 + 0.4
    f.response.stream = True
    f.marked = True
    f.comment = "the one with the 500; see ticket #42"
    f.is_replay = "request"
    f.metadata = {"note": "seen", "n": 3, "nested": {"list": [1, 2.5, None, True], "s": "é"}}
    f.timestamp_created = T0
    f.live = False
    return f


def make_failed_flow() -> HTTPFlow:
    client, server = make_conns(tls=False)
    server.address, server.error = ("127.0.0.1", 1), "connection refused"
    f = HTTPFlow(client, server)
    f.request = Request.make("GET", "http://127.0.0.1:1/", headers={"Accept": "*/*"})
    f.request.timestamp_start, f.request.timestamp_end = T0, T0 + 0.001
    f.request.raw_content = None  # a streamed request body is not kept
    f.error = Error("connection refused", T0 + 0.002)
    f.metadata = {"killed": True}
    f.timestamp_created = T0
    return f


def make_ws_flow(error: bool = False) -> HTTPFlow:
    client, server = make_conns(tls=False)
    hs = HTTPFlow(client, server)
    hs.request = Request.make("GET", "http://127.0.0.1:9000/chat", headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13"})
    hs.response = Response(101, "Switching Protocols", headers=Headers(
        [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")]), content=b"")
    hs.request.timestamp_start = hs.response.timestamp_start = T0
    hs.timestamp_created = T0
    ws = WebSocketFlow(hs)
    ws.timestamp_created = T0 + 0.5
    ws.add_message(WebSocketMessage(True, "h\u00e9llo".encode(), is_text=True, timestamp=T0 + 1))
    ws.add_message(WebSocketMessage(False, b"\x00\x01\xff", is_text=False, timestamp=T0 + 2))
    dropped = WebSocketMessage(True, b"drop me", is_text=True, timestamp=T0 + 3)
    dropped.dropped = True
    ws.add_message(dropped)
    injected = WebSocketMessage(False, b"", is_text=False, timestamp=T0 + 4)
    injected.injected = True
    ws.add_message(injected)
    if error:
        ws.error = Error("server disconnected without a close frame", T0 + 5)
    else:
        ws.close_code, ws.close_reason, ws.closed_by_client = 1001, "going away", False
    ws.metadata = {"ws": 1}
    ws.marked = True
    hs.websocket = ws
    return hs


def make_tcp_flow(error: bool = False) -> TCPFlow:
    client, server = make_conns(tls=False)
    f = TCPFlow(client, server)
    f.timestamp_created = T0
    f.add_message(TCPMessage(True, b"\x00\x01hello", timestamp=T0 + 1))
    f.add_message(TCPMessage(False, "ünïcode".encode(), timestamp=T0 + 2))
    m = TCPMessage(True, b"\xff" * 10, timestamp=T0 + 3)
    m.dropped = True
    f.add_message(m)
    m = TCPMessage(False, b"injected", timestamp=T0 + 4)
    m.injected = True
    f.add_message(m)
    if error:
        f.error = Error("server reset the connection", T0 + 5)
    return f


def every_kind() -> list[Flow]:
    return [make_http_flow(), make_failed_flow(), make_ws_flow(), make_ws_flow(error=True), make_tcp_flow(),
            make_tcp_flow(error=True)]


# -- comparing flows field by field ---------------------------------------------------------------------------
RUNTIME = {"_resume", "_backup", "_decoded", "hooking", "on_kill", "on_inject", "live", "intercepted"}
"""Attributes that describe a running flow, not the flow: they are not stored."""


def state(obj: Any) -> Any:
    """Every attribute of a flow, recursively, as plain data. New model fields show up here by themselves,
    so a field the flow file forgets fails the round-trip tests."""
    if obj is None or isinstance(obj, (str, int, float, bool, bytes)):
        return obj
    if isinstance(obj, (list, tuple, deque)):
        return [state(x) for x in obj]
    if isinstance(obj, dict):
        return {k: state(v) for k, v in obj.items()}
    if isinstance(obj, Headers):
        return ("Headers", list(obj.fields))
    if callable(obj) and not hasattr(obj, "__dict__"):
        return repr(obj)
    out: dict[str, Any] = {"__class__": type(obj).__name__}
    for k, v in vars(obj).items():
        if k in RUNTIME:
            continue
        if k == "handshake_flow":  # the back-reference: checked by identity instead
            continue
        out[k] = state(v)
    return out


def roundtrip(flows: list[Flow]) -> list[Flow]:
    buf = io.BytesIO()
    w = FlowWriter(buf)
    for f in flows:
        w.add(f)
    w.flush()
    buf.seek(0)
    return list(read_flows(buf))


# -- round trips --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flow", every_kind(), ids=lambda f: repr(f)[:40])
def test_round_trip_is_exact(flow):
    (loaded,) = roundtrip([flow])
    assert type(loaded) is type(flow)
    assert loaded.live is False and not loaded.intercepted
    assert state(loaded) == state(flow)
    ws = getattr(loaded, "websocket", None)
    if ws is not None:
        assert ws.handshake_flow is loaded
        assert ws.client_conn is loaded.client_conn and ws.server_conn is loaded.server_conn
        assert ws.live is False


def test_round_trip_through_a_file_keeps_order(tmp_path):
    flows = every_kind()
    path = tmp_path / "f.interpose"
    with FlowWriter(path) as w:
        for f in flows:
            w.add(f)
    loaded, warning = load(path)
    assert warning is None
    assert [state(f) for f in loaded] == [state(f) for f in flows]


def test_layout_header_then_one_line_per_flow(tmp_path):
    path = tmp_path / "f.interpose"
    with FlowWriter(path) as w:
        for f in every_kind():
            w.add(f)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # ends with a newline
    header = json.loads(lines[0])
    assert header["format"] == "interpose-flows" and header["version"] == 1 and "creator" in header
    records = [json.loads(line) for line in lines[1:-1]]
    assert [r["type"] for r in records] == ["http", "http", "http", "http", "tcp", "tcp"]
    http = records[0]
    assert http["request"]["content"] == {"b64": "AP8gYmluYXJ5IP4="}  # not UTF-8: base64
    assert http["request"]["headers"][3] == ["X-Latin", {"b64": "Y2Fm6Q=="}]
    assert http["request"]["headers"][1:3] == [["X-Dup", "1"], ["x-dup", "2"]]  # order, case, duplicates
    assert records[1]["request"]["content"] is None and records[1]["response"] is None
    assert records[1]["error"]["msg"] == "connection refused"
    ws = records[2]["websocket"]
    assert ws["messages"][0] == {"from_client": True, "content": {"text": "héllo"}, "timestamp": T0 + 1,
                                 "dropped": False, "injected": False, "type": "text"}
    assert ws["close_code"] == 1001 and ws["closed_by_client"] is False
    assert records[4]["messages"][3]["injected"] is True


def test_only_json_metadata_is_kept():
    f = make_failed_flow()
    f.metadata = {"ok": [1, "a"], "tuple": (1, 2), "obj": object(), 3: "int key", "nan": float("nan"), "d": {"x": None}}
    (loaded,) = roundtrip([f])
    assert loaded.metadata == {"ok": [1, "a"], "d": {"x": None}}


def test_message_counts_survive_a_capped_message_list():
    f = make_tcp_flow()
    f.messages = deque(list(f.messages)[-2:], maxlen=2)  # as with max_messages=2: totals stay
    (loaded,) = roundtrip([f])
    assert loaded.message_count == 4 and len(loaded.messages) == 2
    assert loaded.bytes_from_client == f.bytes_from_client


# -- damage ---------------------------------------------------------------------------------------------------
def write_file(path, flows) -> list[bytes]:
    with FlowWriter(path) as w:
        for f in flows:
            w.add(f)
    return path.read_bytes().splitlines(keepends=True)


def test_truncated_last_line_loads_the_complete_flows(tmp_path):
    path = tmp_path / "f.interpose"
    lines = write_file(path, every_kind()[:3])
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # killed mid-write
    got = []
    with pytest.raises(FlowFileError, match=r"line 4: incomplete record at the end of the file"):
        for f in read_flows(path):
            got.append(f)
    assert len(got) == 2
    flows, warning = load(path)
    assert len(flows) == 2
    assert "line 4" in warning and "loaded the 2 flows before it" in warning


def test_garbage_in_the_middle_stops_there_and_names_the_line(tmp_path):
    path = tmp_path / "f.interpose"
    lines = write_file(path, every_kind())
    path.write_bytes(b"".join(lines[:3]) + b"{not json at all\n" + b"".join(lines[3:]))
    flows, warning = load(path)
    assert len(flows) == 2
    assert "line 4: corrupt JSON" in warning


def test_invalid_utf8_line(tmp_path):
    path = tmp_path / "f.interpose"
    lines = write_file(path, every_kind()[:1])
    path.write_bytes(b"".join(lines) + b"\xff\xfe\n")
    flows, warning = load(path)
    assert len(flows) == 1 and "line 3: not UTF-8" in warning


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["request"].pop("method"), "line 2: missing field request.method"),
    (lambda r: r["request"].__setitem__("port", "443"), "line 2: request.port: expected an integer"),
    (lambda r: r.__setitem__("type", "gopher"), "line 2: type: unknown flow type 'gopher'"),
    (lambda r: r["request"]["headers"].append(["only-name"]), "request.headers[5]: expected a [name, value] pair"),
    (lambda r: r["request"].__setitem__("content", {"b64": "!!!"}), "request.content.b64: invalid base64"),
    (lambda r: r["client_conn"].__setitem__("address", ["h"]), "client_conn.address: expected null or [host, port]"),
    (lambda r: r.pop("client_conn"), "missing field client_conn"),
])
def test_a_bad_record_names_the_line_and_field(tmp_path, mutate, message):
    path = tmp_path / "f.interpose"
    lines = write_file(path, [make_http_flow()])
    record = json.loads(lines[1])
    mutate(record)
    path.write_bytes(lines[0] + json.dumps(record).encode() + b"\n")
    with pytest.raises(FlowFileError) as e:
        list(read_flows(path))
    assert message in str(e.value)
    assert str(path) in str(e.value)


def test_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "f.interpose"
    lines = write_file(path, [make_tcp_flow()])
    path.write_bytes(lines[0].replace(b'"version":1', b'"version":2') + lines[1])
    with pytest.raises(FlowFileError, match="line 1: flow file version 2 is newer than this interpose reads"):
        list(read_flows(path))
    with pytest.raises(FlowFileError, match="version 2"):
        load(path)


def test_not_a_flow_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\nworld\n")
    with pytest.raises(FlowFileError, match="line 1: not an interpose flow file"):
        load(path)
    with pytest.raises(FlowFileError, match="cannot read"):
        load(tmp_path / "missing")


def test_empty_file_has_no_flows(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert load(path) == ([], None)


def test_concatenated_files_read_as_one(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_file(a, [make_tcp_flow()])
    write_file(b, [make_failed_flow()])
    both = tmp_path / "both"
    both.write_bytes(a.read_bytes() + b.read_bytes())
    flows, warning = load(both)
    assert warning is None and [f.type for f in flows] == ["tcp", "http"]


# -- appending --------------------------------------------------------------------------------------------
def test_append_adds_flows_under_the_one_header(tmp_path):
    path = tmp_path / "f.interpose"
    write_file(path, [make_tcp_flow()])
    with FlowWriter(path, append=True) as w:
        w.add(make_failed_flow())
    assert path.read_bytes().count(b"interpose-flows") == 1
    assert [f.type for f in load(path)[0]] == ["tcp", "http"]
    with FlowWriter(tmp_path / "new", append=True) as w:  # appending to a new file starts it
        w.add(make_tcp_flow())
    assert len(load(tmp_path / "new")[0]) == 1


def test_append_drops_an_incomplete_last_record_first(tmp_path):
    path = tmp_path / "f.interpose"
    lines = write_file(path, [make_tcp_flow(), make_failed_flow()])
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:50])
    w = FlowWriter(path, append=True)
    assert "dropped an incomplete last record" in (w.warning or "")
    w.add(make_ws_flow())
    w.close()
    flows, warning = load(path)
    assert warning is None and [f.type for f in flows] == ["tcp", "http"] and flows[1].websocket is not None


def test_append_refuses_a_file_that_is_not_a_flow_file(tmp_path):
    path = tmp_path / "other"
    path.write_text("precious data\n")
    with pytest.raises(FlowFileError, match="not an interpose flow file"):
        FlowWriter(path, append=True)
    assert path.read_text() == "precious data\n"


def test_fsync_in_batches(tmp_path, monkeypatch):
    synced: list[int] = []
    monkeypatch.setattr(flowfile.os, "fsync", lambda fd: synced.append(fd))
    w = FlowWriter(tmp_path / "f", fsync_every=3, fsync_s=3600)
    for _ in range(7):
        w.add(make_tcp_flow())
    assert len(synced) == 2  # after flows 3 and 6
    w.sync_if_due()
    assert len(synced) == 2  # the interval has not passed
    w.close()
    assert len(synced) == 3  # close syncs the rest
    synced.clear()
    w = FlowWriter(tmp_path / "g", fsync_s=0)
    w.add(make_tcp_flow())
    w.add(make_tcp_flow())
    assert len(synced) == 2  # fsync_s=0: after every flow
    w.close()


# -- fuzzing ----------------------------------------------------------------------------------------------
def _valid_lines() -> list[bytes]:
    buf = io.BytesIO()
    w = FlowWriter(buf)
    for f in every_kind():
        w.add(f)
    return buf.getvalue().splitlines(keepends=True)


VALID = _valid_lines()


def only_flows_or_flowfile_error(data: bytes) -> None:
    try:
        for f in read_flows(io.BytesIO(data)):
            assert isinstance(f, Flow)
            flowcodec.dump(f)  # whatever loaded can be written again
    except FlowFileError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_give_flows_or_flowfileerror(data):
    only_flows_or_flowfile_error(data)
    only_flows_or_flowfile_error(VALID[0] + data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_lines_give_flows_or_flowfileerror(data):
    lines = list(VALID)
    i = data.draw(st.integers(1, len(lines) - 1))
    line = bytearray(lines[i])
    for _ in range(data.draw(st.integers(1, 5))):
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        pos = data.draw(st.integers(0, max(0, len(line) - 1)))
        if op == "flip" and line:
            line[pos] ^= data.draw(st.integers(1, 255))
        elif op == "delete" and line:
            del line[pos:pos + data.draw(st.integers(1, 20))]
        elif op == "insert":
            line[pos:pos] = data.draw(st.binary(min_size=1, max_size=10))
        else:
            del line[pos:]
    lines[i] = bytes(line)
    only_flows_or_flowfile_error(b"".join(lines))


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=10)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_records_with_wrong_values_give_flows_or_flowfileerror(data):
    """Valid JSON, wrong content: any value anywhere in a record replaced or removed."""
    i = data.draw(st.integers(1, len(VALID) - 1))
    record = json.loads(VALID[i])
    path = data.draw(st.sampled_from(_paths(record)[1:]))
    parent = record
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()):
        parent[path[-1]] = data.draw(JSON)
    elif isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])
    only_flows_or_flowfile_error(VALID[0] + json.dumps(record).encode() + b"\n")
