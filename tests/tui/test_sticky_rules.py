"""Sticky rules without the UI: saved responses made from flows, persisted, and answering requests."""
from __future__ import annotations

import base64
import json

import pytest

from interpose.flowfilter import FilterError
from interpose.tui.sticky import Rule, StickyRules, default_filter, rule_from_response
from interpose.tui.widgets.rules import RulesView
from tests.tui.test_format import http_flow


def finished(body: bytes = b"\x00\xffbinary body") -> object:
    f = http_flow("GET", "http://example.com/api?x=1", status=404, body=body, ctype="application/octet-stream")
    f.response.headers["Set-Cookie"] = "a=1"
    f.response.headers.add("Set-Cookie", "b=2")
    f.response.headers["Transfer-Encoding"] = "chunked"
    f.response.headers["Connection"] = "close"
    return f


def test_default_filter_matches_the_same_method_and_url_only():
    from interpose.flowfilter import parse

    flt = parse(default_filter(finished()))
    assert flt(http_flow("GET", "http://example.com/api?x=1"))
    assert not flt(http_flow("POST", "http://example.com/api?x=1"))
    assert not flt(http_flow("GET", "http://example.com/api?x=12"))


def test_rule_from_response_keeps_status_headers_and_body_but_not_framing():
    rule = rule_from_response(finished(), "~u /api")
    resp = rule.make_response()
    assert (resp.status_code, resp.reason, resp.raw_content) == (404, "Not Found", b"\x00\xffbinary body")
    assert resp.headers.get_all("set-cookie") == ["a=1", "b=2"]
    assert "transfer-encoding" not in resp.headers and "connection" not in resp.headers
    assert resp.headers["content-length"] == str(len(b"\x00\xffbinary body"))
    assert rule.describe() == "respond ~u /api: saved response 404 Not Found, 4 headers, 13 bytes (server not asked)"


def test_rule_from_response_refuses_what_it_cannot_keep():
    with pytest.raises(FilterError):
        rule_from_response(finished(), "~c abc")
    with pytest.raises(ValueError, match="no response"):
        rule_from_response(http_flow(), "~all")
    streamed = finished()
    streamed.response.raw_content = None
    with pytest.raises(ValueError, match="streamed"):
        rule_from_response(streamed, "~all")


def test_saved_response_answers_matching_requests_and_persists_as_base64(tmp_path):
    rules = StickyRules(str(tmp_path))
    rules.add(rule_from_response(finished(), "~d example.com & ~m GET"))
    data = json.loads((tmp_path / "sticky-rules.json").read_text())
    assert data[0]["part"] == "saved_response"
    assert base64.b64decode(data[0]["body_b64"]) == b"\x00\xffbinary body"
    again = StickyRules(str(tmp_path))  # loaded back from the file
    assert again.rules == rules.rules
    hit = http_flow("GET", "http://example.com/other")
    again.request(hit)
    assert hit.response is not None and hit.response.status_code == 404
    assert hit.response.raw_content == b"\x00\xffbinary body" and hit.metadata["sticky"] == "saved response"
    other = http_flow("POST", "http://example.com/other")
    again.request(other)
    assert other.response is None
    # each answer is a fresh copy: editing one does not change the rule
    hit.response.content = b"changed"
    second = http_flow("GET", "http://example.com/")
    again.request(second)
    assert second.response.raw_content == b"\x00\xffbinary body"
    again.remove(0)
    third = http_flow("GET", "http://example.com/")
    again.request(third)
    assert third.response is None
    assert json.loads((tmp_path / "sticky-rules.json").read_text()) == []


def test_old_rule_files_still_load_and_a_response_already_set_is_left_alone(tmp_path):
    (tmp_path / "sticky-rules.json").write_text(json.dumps([
        {"filter": "~all", "part": "request", "set_headers": [["X-A", "1"]], "remove_headers": [], "body": None},
    ]))
    rules = StickyRules(str(tmp_path))
    assert rules.rules == [Rule("~all", "request", [("X-A", "1")], [], None)]
    rules.add(rule_from_response(finished(), "~all"))
    flow = http_flow("GET", "http://example.com/", status=200, body=b"from an addon")
    rules.request(flow)
    assert flow.request.headers["X-A"] == "1" and flow.response.content == b"from an addon"


def test_rules_view_lists_saved_responses(tmp_path):
    rules = StickyRules(str(tmp_path))
    view = RulesView(rules)
    text = "\n".join(line.decode() for line in view.render((100, 6)).text)
    assert "no rules yet" in text and "K keeps a response" in text
    rules.add(rule_from_response(finished(), "~u /api"))
    view.reload()
    text = "\n".join(line.decode() for line in view.render((100, 6)).text)
    assert "1 respond ~u /api: saved response 404 Not Found" in text
