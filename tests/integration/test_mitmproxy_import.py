"""mitmproxy's own flow files, recorded for real with mitmdump 7.0.4, 8.1.1, 9.0.1, 10.4.2 and 11.0.2
(tests/data/mitmproxy/record.py lists the traffic), read by `interpose-dump -r`, the TUI's `-r` and `L`,
and the loader they share (interpose.runtime.builtins.readfile). Damaged and foreign files too."""
from __future__ import annotations

import base64
import io
import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from interpose.errors import FlowFileError
from interpose.http import HTTPFlow
from interpose.runtime.builtins import readfile
from interpose.store import mitmflows
from interpose.store.mitmfile import Reader
from interpose.store.tnetstring import dumps, records
from interpose.tcp import TCPFlow
from interpose.websocket import WebSocketFlow
from tests.integration.test_cli import run_dump

DATA = Path(__file__).resolve().parents[1] / "data" / "mitmproxy"
VERSIONS = {7: 14, 8: 17, 9: 18, 10: 20, 11: 21}
"""mitmproxy's major version → the flow format version it wrote."""


def states(major: int) -> list[dict[str, Any]]:
    with open(DATA / f"mitm{major}.flows", "rb") as f:
        return [v for _, v in records(f)]


def ports(major: int) -> tuple[int, int, int]:
    """The HTTP, HTTPS and TCP origin ports of that recording."""
    s = states(major)
    return s[0]["request"]["port"], s[2]["request"]["port"], s[5]["server_conn"]["address"][1]


# -- the loader ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("major", VERSIONS)
def test_every_field_of_a_real_file(major):
    raw = states(major)
    assert {s["version"] for s in raw} == {VERSIONS[major]}
    flows, warning = readfile.load(str(DATA / f"mitm{major}.flows"))
    assert warning is None
    assert [f.id for f in flows] == [s["id"] for s in raw]  # ids are kept
    http_port, https_port, tcp_port = ports(major)
    plain, form, secure, failed, ws_flow, tcp = flows
    assert all(isinstance(f, HTTPFlow) for f in flows[:5]) and isinstance(tcp, TCPFlow)
    assert all(not f.live for f in flows)

    assert isinstance(plain, HTTPFlow) and plain.response is not None
    assert plain.request.method == "GET" and plain.request.url == f"http://127.0.0.1:{http_port}/plain"
    assert plain.request.headers["host"] == f"127.0.0.1:{http_port}" and plain.request.http_version == "HTTP/1.1"
    assert plain.response.status_code == 200 and plain.response.reason == "OK"
    assert plain.response.content == b"ok /plain\n"
    assert plain.marked and plain.metadata["interpose-test"] == {"n": 1, "s": "x"}
    assert plain.comment == "recorded by record.py"  # type: ignore[attr-defined]
    created = raw[0].get("timestamp_created", raw[0]["request"]["timestamp_start"])
    assert plain.timestamp_created == pytest.approx(created)
    assert plain.request.timestamp_start <= plain.request.timestamp_end <= plain.response.timestamp_start  # type: ignore[operator]
    assert plain.client_conn.address is not None and plain.client_conn.address[0] == "127.0.0.1"
    assert plain.server_conn.address == ("127.0.0.1", http_port) and plain.server_conn.tls is None

    assert isinstance(form, HTTPFlow) and form.response is not None
    assert form.request.method == "POST" and form.request.content == b"a=1&b=2" and not form.marked
    assert form.response.headers["content-encoding"] == "gzip" and form.response.content == b"got a=1&b=2\n"

    assert isinstance(secure, HTTPFlow) and secure.response is not None
    assert secure.request.scheme == "https" and secure.response.content == b"ok /secure\n"
    client_tls, server_tls = secure.client_conn.tls, secure.server_conn.tls
    assert client_tls is not None and client_tls.sni == "localhost" and client_tls.version == "TLSv1.3"
    assert server_tls is not None and server_tls.sni == "localhost" and server_tls.cipher
    assert server_tls.cert_subject == "CN=localhost" and server_tls.cert_not_after is not None

    assert isinstance(failed, HTTPFlow) and failed.response is None and failed.error is not None
    assert "111" in failed.error.msg or "refused" in failed.error.msg.lower()

    assert isinstance(ws_flow, HTTPFlow) and ws_flow.response is not None and ws_flow.response.status_code == 101
    ws = ws_flow.websocket
    assert isinstance(ws, WebSocketFlow) and ws_flow.marked
    assert [(m.from_client, m.type, m.content) for m in ws.messages] == [
        (True, "text", b"hello"), (False, "text", b"hello"),
        (True, "binary", b"\x00\x01\xff"), (False, "binary", b"\x00\x01\xff")]
    assert ws.close_code == 1000 and ws.close_reason == "bye" and ws.closed_by_client is True
    assert ws.message_count == 4 and ws.error is None

    assert [(m.from_client, m.content) for m in tcp.messages] == [(True, b"ping\n"), (False, b"pong: ping\n")]
    assert tcp.server_conn.address == ("127.0.0.2", tcp_port)
    assert tcp.bytes_from_client == 5 and tcp.bytes_from_server == 11


def _older(state: dict[str, Any], version: int) -> dict[str, Any]:
    """A mitmproxy 7.0.0 (format 12) or 7.0.2 (13) state made from a 7.0.4 one (14), by undoing what
    mitmproxy's io/compat.py says changed: 13→14 added `comment`, 12→13 made `marked` a string."""
    old = dict(state, version=version)
    old.pop("comment", None)
    if version == 12:
        old["marked"] = bool(state["marked"])
    return old


@pytest.mark.parametrize("version", [12, 13])
def test_the_formats_of_mitmproxy_7_0_0_and_7_0_2(tmp_path, version):
    path = tmp_path / f"v{version}.flows"
    path.write_bytes(b"".join(dumps(_older(s, version)) for s in states(7)))
    flows, warning = readfile.load(str(path))
    assert warning is None and len(flows) == 6
    assert [f.marked for f in flows] == [True, False, False, False, True, False]
    assert flows[0].comment == ""
    ws = flows[4].websocket  # type: ignore[attr-defined]
    assert ws is not None and len(ws.messages) == 4


def test_a_newer_format_is_read_as_the_newest_known():
    state = dict(states(11)[0], version=mitmflows.NEWEST + 1, some_new_field=[1, 2])
    flow = mitmflows.convert(state)
    assert isinstance(flow, HTTPFlow) and flow.request.path == "/plain"


@pytest.mark.parametrize("version, message", [
    (11, "version 11 is from mitmproxy 6 or older"),
    ([3, 0], "version 3.0 is from mitmproxy 3 or older"),
    ("x", "version: expected an integer"),
])
def test_formats_older_than_mitmproxy_7_are_refused_clearly(version, message):
    with pytest.raises(mitmflows.BadFlow, match=message):
        mitmflows.convert(dict(states(11)[0], version=version))


def test_udp_and_dns_flows_are_skipped_and_counted(tmp_path):
    raw = states(11)
    other = [dict(raw[5], type="udp"), dict(raw[5], type="dns")]
    path = tmp_path / "mixed.flows"
    path.write_bytes(b"".join(dumps(s) for s in [raw[0], *other, raw[1]]))
    flows, warning = readfile.load(str(path))
    assert [f.id for f in flows] == [raw[0]["id"], raw[1]["id"]]
    assert warning == "skipped 2 UDP/DNS flows (interpose has no such flows)"


@pytest.mark.parametrize("field, value, message", [
    ("request", {"method": b"GET"}, "missing field request.port"),
    ("request", [1], "request: expected a dictionary, got a list"),
    ("client_conn", {"peername": ["h", "port"]}, r"client_conn.peername: expected \[host, port\]"),
    ("metadata", [1], "metadata: expected a dictionary"),
    ("type", "quic", "unknown flow type 'quic'"),
    ("id", None, "id: expected the flow's id"),
    ("response", {"status_code": None}, "response.status_code"),
])
def test_a_record_that_does_not_fit_names_the_field(field, value, message):
    with pytest.raises(mitmflows.BadFlow, match=message):
        mitmflows.convert(dict(states(11)[0], **{field: value}))


def test_a_damaged_certificate_leaves_only_the_summary_empty():
    state = states(11)[2]
    pem = state["server_conn"]["certificate_list"][0]
    der = bytearray(base64.b64decode(b"".join(pem.splitlines()[1:-1])))
    assert der[8:13] == b"\xa0\x03\x02\x01\x02"  # [0] version: v3
    der[12] = 34  # the version the fuzzer found: cryptography raises InvalidVersion, not ValueError
    odd = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(bytes(der)) + b"-----END CERTIFICATE-----\n"
    for broken in (odd, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", b"junk", 7):
        conn = dict(state["server_conn"], certificate_list=[broken])
        flow = mitmflows.convert(dict(state, server_conn=conn))
        assert isinstance(flow, HTTPFlow) and flow.server_conn.tls is not None
        assert flow.server_conn.tls.cert_subject is None and flow.server_conn.tls.sni == "localhost"


def test_reading_from_a_stream():
    data = (DATA / "mitm11.flows").read_bytes()
    reader = Reader(io.BytesIO(data))
    assert [f.id for f in reader] == [s["id"] for s in states(11)] and reader.count == 6


# -- interpose-dump -r ---------------------------------------------------------------------------------------
HOOKS = '''
def _tag(flow):
    comment = getattr(flow, "comment", "")
    return f"{flow.id} marked={flow.marked} comment={comment!r} meta={sorted(flow.metadata)}"

def request(flow):
    print("request", flow.request.path, _tag(flow), flush=True)

def websocket_message(flow):  # interpose hands WebSocket hooks the WebSocketFlow
    m = flow.messages[-1]
    print("ws", m.from_client, m.type, m.content, flush=True)

def websocket_end(flow):
    print("ws-end", flow.close_code, flow.handshake_flow.request.path, flush=True)

def tcp_message(flow):
    m = flow.messages[-1]
    print("tcp", m.from_client, m.content, flush=True)

def tcp_end(flow):
    print("tcp-end", flow.server_conn.address[0], flush=True)
'''


@pytest.mark.parametrize("major", VERSIONS)
async def test_dump_r_prints_every_flow_and_passes_them_through_the_hooks(tmp_path, major):
    script = tmp_path / "hooks.py"
    script.write_text(HOOKS)
    path = DATA / f"mitm{major}.flows"
    code, out, err = await run_dump("-p", "0", "--confdir", str(tmp_path / "conf"), "-s", str(script), "-r", str(path))
    assert code == 0, err
    assert "Traceback" not in err and f"loaded 6 flows from {path}" in err
    http_port, https_port, _ = ports(major)
    raw = states(major)
    lines = [line for line in out.splitlines() if not line.startswith(("request ", "ws", "tcp"))]
    assert [re.sub(r"^127\.0\.0\.1:\d+ ", "", re.sub(r" \d+ms$", "", line)) for line in lines] == [
        f"GET http://127.0.0.1:{http_port}/plain → 200 OK text/plain 10b",
        f"POST http://127.0.0.1:{http_port}/form → 200 OK text/plain 32b",
        # the address the request went to (CONNECT 127.0.0.1); `Host: localhost` is shown with --showhost
        f"GET https://127.0.0.1:{https_port}/secure → 200 OK text/plain 11b",
        f"GET http://127.0.0.1:1/ → ✗ {raw[3]['error']['msg']}",
        f"GET http://127.0.0.1:{http_port}/ws → 101 Switching Protocols - 0b",
    ]
    hooks = [line for line in out.splitlines() if line.startswith(("request ", "ws", "tcp"))]
    assert hooks == [
        f"request /plain {raw[0]['id']} marked=True comment='recorded by record.py' meta=['interpose-test']",
        f"request /form {raw[1]['id']} marked=False comment='' meta=[]",
        f"request /secure {raw[2]['id']} marked=False comment='' meta=[]",
        f"request / {raw[3]['id']} marked=False comment='' meta=[]",
        f"request /ws {raw[4]['id']} marked=True comment='' meta=[]",
        "ws True text b'hello'", "ws False text b'hello'",
        "ws True binary b'\\x00\\x01\\xff'", "ws False binary b'\\x00\\x01\\xff'",
        "ws-end 1000 /ws",
        "tcp True b'ping\\n'", "tcp False b'pong: ping\\n'", "tcp-end 127.0.0.2",
    ]


def offsets(major: int) -> list[int]:
    """Where each record of that recording starts."""
    with open(DATA / f"mitm{major}.flows", "rb") as f:
        return [o for o, _ in records(f)]


def _cut_inside_flow(n: int) -> bytes:
    return (DATA / "mitm11.flows").read_bytes()[:offsets(11)[n] + 200]


async def test_a_truncated_file_loads_the_flows_before_the_cut(tmp_path):
    path = tmp_path / "cut.flows"
    path.write_bytes(_cut_inside_flow(3))
    code, out, err = await run_dump("-p", "0", "--confdir", str(tmp_path / "conf"), "-r", str(path))
    assert code == 0 and "Traceback" not in err
    assert len(out.splitlines()) == 3
    assert f"[warn] {path}: mitmproxy flow 4 (at byte " in err
    assert "truncated: the file ends inside it; the 3 flows before it were loaded" in err


async def test_a_corrupt_record_loads_the_flows_before_it(tmp_path):
    data, at = (DATA / "mitm11.flows").read_bytes(), offsets(11)[2]
    path = tmp_path / "corrupt.flows"
    path.write_bytes(data[:at] + b"X" + data[at + 1:])
    code, out, err = await run_dump("-p", "0", "--confdir", str(tmp_path / "conf"), "-r", str(path))
    assert code == 0 and "Traceback" not in err and len(out.splitlines()) == 2
    assert f"mitmproxy flow 3 (at byte {at}): corrupt: not a tnetstring" in err
    assert "the 2 flows before it were loaded" in err


@pytest.mark.parametrize("content, message", [
    (pickle.dumps({"version": 21}), "a Python pickle, not a flow file; interpose does not load pickles"),
    (dumps([1, 2, 3]), "not a mitmproxy flow file: the first record (at byte 0) is not a flow "
                       "(record: expected a dictionary, got a list)"),
    (dumps({"a": b"b"}), "not a mitmproxy flow file: the first record (at byte 0) is not a flow "
                         "(missing field version)"),
    (b"12:3:abc,", "mitmproxy flow 1 (at byte 0): truncated"),
    (None, "mitmproxy flow 1 (at byte 0): truncated"),  # None: the first flow cut short
])
async def test_a_file_that_cannot_be_read_at_all_exits_2_with_one_line(tmp_path, content, message):
    path = tmp_path / "bad.flows"
    path.write_bytes(_cut_inside_flow(0) if content is None else content)
    code, out, err = await run_dump("-p", "0", "--confdir", str(tmp_path / "conf"), "-r", str(path))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err


def test_a_pickle_is_refused_before_anything_reads_it(tmp_path):
    class Boom:
        def __reduce__(self) -> tuple[Any, ...]:
            return (exec, (f"open({str(tmp_path / 'ran')!r}, 'w').write('ran')",))
    path = tmp_path / "evil.flows"
    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(FlowFileError, match="does not load pickles"):
        readfile.load(str(path))
    assert not (tmp_path / "ran").exists()


# -- the TUI -------------------------------------------------------------------------------------------------
async def test_tui_r_and_L_read_mitmproxy_files_and_report_bad_ones(tmp_path):
    from tests.tui.pty_harness import Terminal

    http_port, _, _ = ports(11)
    term = Terminal(cols=320)  # the whole status line: two paths and the reason
    await term.start("--confdir", str(tmp_path / "conf"), "-r", str(DATA / "mitm11.flows"))
    try:
        await term.wait_for(f"http://127.0.0.1:{http_port}/plain")
        await term.wait_for("flows: 6/6")
        await term.press("L")
        await term.wait_for("Load flows from:")
        await term.press(*str(DATA / "mitm7.flows"), "enter")
        await term.wait_for("loaded 6 flows from")
        await term.wait_for("flows: 12/12")
        await term.wait_for(f"http://127.0.0.1:{ports(7)[0]}/plain")

        cut = tmp_path / "cut.flows"
        cut.write_bytes(_cut_inside_flow(3))
        await term.press("L")
        await term.wait_for("Load flows from:")
        await term.press(*str(cut), "enter")
        await term.wait_for("(3 already listed); ")
        at = offsets(11)[3]
        await term.wait_for(f"mitmproxy flow 4 (at byte {at}): truncated: the file ends inside it; "
                            "loaded the 3 flows before it")
        await term.wait_for("flows: 12/12")  # the 3 before the cut were listed already (same ids)

        evil = tmp_path / "evil.flows"
        evil.write_bytes(pickle.dumps({"x": 1}))
        await term.press("L")
        await term.wait_for("Load flows from:")
        await term.press(*str(evil), "enter")
        await term.wait_for("does not load pickles")
        assert "Traceback" not in term.text()
    finally:
        await term.stop()
