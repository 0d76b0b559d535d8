"""The compact record of session schema 3 (core/store/session/record.py): it holds exactly what the flow
file record without contents holds, and what it does not cover falls back to JSON."""
from __future__ import annotations

import json

import pytest

from interpose.http import Headers
from interpose.store import flowcodec
from interpose.store.session import record, rows
from tests.core.test_flowfile import every_kind, make_failed_flow, make_http_flow, make_tcp_flow, make_ws_flow


def plain_record(flow):
    return json.loads(json.dumps(flowcodec.dump(flow, bodies=False)))


@pytest.mark.parametrize("flow", [make_http_flow(), make_failed_flow()], ids=["odd", "failed"])
def test_compact_record_holds_what_the_flow_file_record_holds(flow):
    blob = record.encode(flow)
    assert blob is not None and blob.startswith(record.MAGIC)
    assert record.decode(blob) == plain_record(flow)


def test_a_plain_flow_without_tls_or_extras_has_an_empty_extra():
    flow = make_failed_flow()
    flow.error, flow.metadata, flow.server_conn.error = None, {}, None
    blob = record.encode(flow)
    assert blob is not None and blob.endswith(b"\x00".join(v for kv in flow.request.headers.fields for v in kv))
    assert record.decode(blob) == plain_record(flow)


@pytest.mark.parametrize("flow", [make_ws_flow(), make_tcp_flow()], ids=["websocket", "tcp"])
def test_websocket_and_tcp_flows_keep_json(flow):
    assert record.encode(flow) is None
    assert isinstance(rows.snapshot(flow).record, str)


def test_a_nul_in_a_header_or_string_falls_back_to_json_and_round_trips():
    a, b = make_http_flow(), make_http_flow()
    a.request.headers = Headers([(b"X-Nul", b"a\x00b")])
    b.request.path = "/a\x00b"
    for flow in (a, b):
        assert record.encode(flow) is None
        snap = rows.snapshot(flow)
        back = rows.restore(snap.record, flow.comment, int(flow.marked), dict(snap.bodies), [])
        assert plain_record(back) == plain_record(flow)


@pytest.mark.parametrize("cut", [1, 10, 40, -1])
def test_a_damaged_compact_record_is_a_bad_record(cut):
    blob = record.encode(make_http_flow())
    with pytest.raises(flowcodec.BadRecord):
        rows.restore(blob[:cut] if cut > 0 else blob + b"x", "", 0, {}, [])


def test_every_kind_round_trips_through_a_snapshot():
    for flow in every_kind():
        snap = rows.snapshot(flow)
        back = rows.restore(snap.record, flow.comment, int(flow.marked), dict(snap.bodies), [])
        assert back.id == flow.id and type(back) is type(flow)


def test_a_field_of_an_unexpected_type_falls_back_to_json():
    flow = make_http_flow()
    flow.request.headers.fields[0] = ("Host", "not bytes")  # what an addon could leave behind
    assert record.encode(flow) is None
    flow = make_http_flow()
    flow.server_conn.address = ("example.com", 1 << 40)  # a port no struct field holds
    assert record.encode(flow) is None
