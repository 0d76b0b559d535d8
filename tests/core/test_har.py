"""HAR 1.2: the export holds every field the spec requires (checked by a hand-written validator, since
Chrome's importer cannot run here), flows survive export → import in every field HAR holds, and bad files
give clear errors."""
from __future__ import annotations

import json
import re
from typing import Any

import pytest

from interpose.errors import FlowFileError
from interpose.http import HTTPFlow
from interpose.store import har
from tests.core.test_flowfile import T0, every_kind, make_failed_flow, make_http_flow, make_ws_flow

ISO_8601 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


# -- a HAR 1.2 validator (http://www.softwareishard.com/blog/har-12-spec/) ------------------------------------
def _req(obj: dict[str, Any], where: str, **fields: Any) -> None:
    for name, types in fields.items():
        assert name in obj, f"{where}.{name} is required"
        assert isinstance(obj[name], types) and not (isinstance(obj[name], bool) and bool not in
                                                      (types if isinstance(types, tuple) else (types,))), \
            f"{where}.{name}: {obj[name]!r} is not {types}"


def _pairs(items: Any, where: str) -> None:
    assert isinstance(items, list), f"{where} must be a list"
    for i, p in enumerate(items):
        _req(p, f"{where}[{i}]", name=str, value=str)


def _custom_fields_only(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    for k in obj:
        assert k in allowed or k.startswith("_"), f"{where}.{k} is neither a HAR 1.2 field nor a _custom one"


NUM = (int, float)


def validate_har(doc: Any) -> None:
    assert isinstance(doc, dict) and set(doc) == {"log"}
    log = doc["log"]
    _req(log, "log", version=str, creator=dict, entries=list)
    assert log["version"] == "1.2"
    _req(log["creator"], "log.creator", name=str, version=str)
    _custom_fields_only(log, {"version", "creator", "browser", "pages", "entries", "comment"}, "log")
    for i, e in enumerate(log["entries"]):
        w = f"entries[{i}]"
        _req(e, w, startedDateTime=str, time=NUM, request=dict, response=dict, cache=dict, timings=dict)
        _custom_fields_only(e, {"pageref", "startedDateTime", "time", "request", "response", "cache", "timings",
                                "serverIPAddress", "connection", "comment"}, w)
        assert ISO_8601.match(e["startedDateTime"]), e["startedDateTime"]
        rq = e["request"]
        _req(rq, f"{w}.request", method=str, url=str, httpVersion=str, cookies=list, headers=list, queryString=list,
             headersSize=int, bodySize=int)
        _custom_fields_only(rq, {"method", "url", "httpVersion", "cookies", "headers", "queryString", "postData",
                                 "headersSize", "bodySize", "comment"}, f"{w}.request")
        _pairs(rq["headers"], f"{w}.request.headers")
        _pairs(rq["queryString"], f"{w}.request.queryString")
        _pairs(rq["cookies"], f"{w}.request.cookies")
        if "postData" in rq:
            _req(rq["postData"], f"{w}.request.postData", mimeType=str)
            assert "text" in rq["postData"] or "params" in rq["postData"]
        rs = e["response"]
        _req(rs, f"{w}.response", status=int, statusText=str, httpVersion=str, cookies=list, headers=list,
             content=dict, redirectURL=str, headersSize=int, bodySize=int)
        _pairs(rs["headers"], f"{w}.response.headers")
        _pairs(rs["cookies"], f"{w}.response.cookies")
        _req(rs["content"], f"{w}.response.content", size=int, mimeType=str)
        if "encoding" in rs["content"]:
            assert rs["content"]["encoding"] == "base64" and "text" in rs["content"]
        t = e["timings"]
        _req(t, f"{w}.timings", send=NUM, wait=NUM, receive=NUM)
        for k in ("send", "wait", "receive"):
            assert t[k] >= 0, f"{w}.timings.{k} must be >= 0"
        for k in ("blocked", "dns", "connect", "ssl"):
            if k in t:
                assert t[k] >= 0 or t[k] == -1, f"{w}.timings.{k} must be >= 0 or -1"
        total = sum(v for k, v in t.items() if v > 0 and k != "ssl")  # ssl is part of connect
        assert e["time"] == pytest.approx(total, abs=0.01), f"{w}.time must be the sum of the timings"
        if "serverIPAddress" in e:
            assert isinstance(e["serverIPAddress"], str)


def http_flows() -> list[HTTPFlow]:
    return [f for f in every_kind() if isinstance(f, HTTPFlow)]


# -- export ---------------------------------------------------------------------------------------------------
def test_export_is_valid_har_1_2():
    doc = har.export(every_kind())
    validate_har(doc)
    assert len(doc["log"]["entries"]) == 4  # TCP flows have no place in HAR
    json.dumps(doc)  # serialisable as is


def test_export_fields():
    flow = make_http_flow()
    # The proxy dialled the server after reading the request: 10ms TCP, 20ms TLS.
    flow.server_conn.timestamp_tcp_setup, flow.server_conn.timestamp_tls_setup = T0 + 0.21, T0 + 0.23
    (e,) = har.export([flow, flow])["log"]["entries"][:1]
    assert e["startedDateTime"] == "2023-11-14T22:13:20.223Z"
    assert e["serverIPAddress"] == "93.184.216.34"
    rq, rs = e["request"], e["response"]
    assert rq["url"] == flow.request.url and rq["httpVersion"] == "HTTP/2.0"
    assert rq["postData"] == {"mimeType": "", "text": "AP8gYmluYXJ5IP4=", "_encoding": "base64"}
    assert {"name": "q", "value": "café"} in rq["queryString"]
    assert rq["cookies"] == [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]
    assert rs["content"]["text"] == "<p>h\u00e9llo \u2603</p>" * 3  # decoded, as HAR wants
    assert rs["content"]["size"] == len(flow.response.content) and rs["bodySize"] == len(flow.response.raw_content)
    assert rs["content"]["compression"] == rs["content"]["size"] - rs["bodySize"]
    assert rs["cookies"][0] == {"name": "s", "value": "1", "path": "/", "httpOnly": True}
    t = e["timings"]
    assert t["send"] == pytest.approx(100) and t["receive"] == pytest.approx(100)
    assert t["connect"] == pytest.approx(30) and t["ssl"] == pytest.approx(20)  # ssl is inside connect
    assert t["wait"] == pytest.approx(70)  # 100ms between request and response, 30 of them connecting
    assert e["time"] == pytest.approx(100 + 30 + 70 + 100)
    second = har.export([flow, flow])["log"]["entries"][1]
    assert second["timings"]["connect"] == -1  # the connection is counted once
    assert t["blocked"] == t["dns"] == -1


def test_failed_flow_is_status_0_with_error():
    (e,) = har.export([make_failed_flow()])["log"]["entries"]
    assert e["response"]["status"] == 0 and e["response"]["statusText"] == ""
    assert e["response"]["_error"] == "connection refused"


def test_binary_response_is_base64():
    flow = make_failed_flow()
    from interpose.http import Response
    flow.error = None
    flow.response = Response.make(200, b"\x89PNG\x00\xff", {"Content-Type": "image/png"})
    (e,) = har.export([flow])["log"]["entries"]
    content = e["response"]["content"]
    assert content["encoding"] == "base64" and content["text"] == "iVBORwD/"
    assert content["mimeType"] == "image/png"


def test_websocket_messages_in_chrome_format():
    (e,) = har.export([make_ws_flow()])["log"]["entries"]
    assert e["_resourceType"] == "websocket"
    assert e["_webSocketMessages"][:2] == [
        {"type": "send", "time": 1700000001.123456, "opcode": 1, "data": "héllo"},
        {"type": "receive", "time": 1700000002.123456, "opcode": 2, "data": "AAH/"},
    ]


# -- import ---------------------------------------------------------------------------------------------------
def assert_same_in_har_fields(a: HTTPFlow, b: HTTPFlow) -> None:
    ra, rb = a.request, b.request
    assert (ra.method, ra.url, ra.http_version) == (rb.method, rb.url, rb.http_version)
    assert ra.headers.fields == rb.headers.fields
    assert (ra.content or b"") == (rb.content or b"")
    assert ra.timestamp_start == pytest.approx(rb.timestamp_start, abs=0.001)
    assert (ra.timestamp_end or ra.timestamp_start) == pytest.approx(rb.timestamp_end, abs=0.002)
    assert (a.response is None) == (b.response is None)
    if a.response is not None and b.response is not None:
        sa, sb = a.response, b.response
        assert (sa.status_code, sa.reason, sa.http_version) == (sb.status_code, sb.reason, sb.http_version)
        assert sa.headers.fields == sb.headers.fields
        assert sa.content == sb.content
        assert sa.timestamp_start == pytest.approx(sb.timestamp_start, abs=0.002)
        assert (sa.timestamp_end or sa.timestamp_start) == pytest.approx(sb.timestamp_end, abs=0.002)
    assert (a.error.msg if a.error else None) == (b.error.msg if b.error else None)
    assert (a.websocket is None) == (b.websocket is None)
    if a.websocket is not None and b.websocket is not None:
        wa, wb = a.websocket, b.websocket
        assert [(m.from_client, m.content, m.is_text, m.timestamp) for m in wa.messages] == \
            [(m.from_client, m.content, m.is_text, m.timestamp) for m in wb.messages]
        assert ((wa.close_code, wa.close_reason, wa.closed_by_client)
                == (wb.close_code, wb.close_reason, wb.closed_by_client))
        assert wb.handshake_flow is b


def test_round_trip_through_a_har_file(tmp_path):
    flows = http_flows()
    path = tmp_path / "flows.har"
    assert har.write(path, flows) == 4
    validate_har(json.loads(path.read_text(encoding="utf-8")))
    loaded = har.read(path)
    assert len(loaded) == 4
    for a, b in zip(flows, loaded, strict=True):
        assert_same_in_har_fields(a, b)
        assert b.live is False
    # Bodies are re-encoded per Content-Encoding: the raw body decodes to the same content.
    assert loaded[0].response.headers["content-encoding"] == "gzip"
    assert loaded[0].response.raw_content[:2] == b"\x1f\x8b"


def test_import_a_browser_har():
    entry = {
        "startedDateTime": "2024-03-01T10:00:00.000+01:00", "time": 60,
        "request": {"method": "GET", "url": "https://example.com:8443/a?x=1", "httpVersion": "http/2.0",
                    "headers": [{"name": ":authority", "value": "example.com:8443"},
                                {"name": ":method", "value": "GET"},
                                {"name": "accept", "value": "*/*"}],
                    "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 200, "statusText": "", "httpVersion": "http/2.0",
                     "headers": [{"name": "content-type", "value": "image/gif"}], "cookies": [],
                     "content": {"size": 3, "mimeType": "image/gif", "text": "R0lG", "encoding": "base64"},
                     "redirectURL": "", "headersSize": -1, "bodySize": -1, "_transferSize": 100, "_error": None},
        "cache": {},
        "timings": {"blocked": 5, "dns": 10, "ssl": -1, "connect": -1, "send": 1, "wait": 40, "receive": 4},
        "serverIPAddress": "[2001:db8::1]", "_initiator": {"type": "other"}}
    doc = {"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"}, "pages": [],
                   "entries": [entry]}}
    (flow,) = har.entries_to_flows(doc)
    req, resp = flow.request, flow.response
    assert req.url == "https://example.com:8443/a?x=1" and req.authority == "example.com:8443"
    assert req.headers.fields == [(b"accept", b"*/*")]  # pseudo-headers are not headers
    assert resp.status_code == 200 and resp.content == b"GIF" and flow.error is None
    start = 1709283600.0
    assert req.timestamp_start == start and req.timestamp_end == pytest.approx(start + 0.001)
    assert resp.timestamp_start == pytest.approx(start + 0.056) and resp.timestamp_end == pytest.approx(start + 0.060)


def test_import_restores_a_failed_flow():
    (flow,) = har.entries_to_flows(har.export([make_failed_flow()]))
    assert flow.response is None and flow.error.msg == "connection refused"


@pytest.mark.parametrize("content, message", [
    (b"{nope", "not a HAR file (invalid JSON at line 1 column 2"),
    (b"\xff\xfe", "not a HAR file (not UTF-8 text)"),
    (b"[]", 'not a HAR file (no "log" object)'),
    (b'{"log": {}}', "not a HAR file (no log.entries list)"),
    (b'{"log": {"entries": [{"startedDateTime": "2024-01-01T00:00:00Z", "request": {"method": "GET"}}]}}',
     "entries[0].request.url is missing"),
    (b'{"log": {"entries": [{"startedDateTime": "yesterday", "request": {"method": "GET", "url": "http://a/"}}]}}',
     "entries[0].startedDateTime is not an ISO 8601 date"),
    (b'{"log": {"entries": [{"startedDateTime": "2024-01-01T00:00:00Z", '
     b'"request": {"method": "GET", "url": "/rel"}}]}}',
     "entries[0].request.url is not an absolute URL"),
    (b'{"log": {"entries": [{"startedDateTime": "2024-01-01T00:00:00Z", "request": {"method": 1, "url": "http://a/"}}]}}',
     "entries[0].request.method has the wrong type"),
])
def test_bad_har_files_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.har"
    path.write_bytes(content)
    with pytest.raises(FlowFileError) as e:
        har.read(path)
    assert message in str(e.value) and str(path) in str(e.value)


def test_missing_har_file(tmp_path):
    with pytest.raises(FlowFileError, match="cannot read"):
        har.read(tmp_path / "none.har")


def test_import_a_form_given_only_as_params():
    doc = {"log": {"entries": [{"startedDateTime": "2024-01-01T00:00:00Z", "request": {
        "method": "POST", "url": "http://a/x", "headers": [],
        "postData": {"mimeType": "application/x-www-form-urlencoded", "params": [{"name": "a b", "value": "1&2"}]}},
        "response": {"status": 0}}]}}
    (flow,) = har.entries_to_flows(doc)
    assert flow.request.raw_content == b"a+b=1%262"
    assert flow.response is None and flow.error is not None  # status 0: no response
