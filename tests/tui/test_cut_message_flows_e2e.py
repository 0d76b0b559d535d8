"""cut.save / cut.clip over HTTP, WebSocket and TCP flows in the real `interpose` (pty): a field a flow of
that type lacks (a TCP flow's request.url) is an empty value in its row, never a crash; `messages`
cuts a WebSocket or TCP flow's messages; `b` on a TCP flow offers them; a field no flow has is one
error line."""
from __future__ import annotations

import base64
import re
from pathlib import Path

from interpose.store.cut import extract, render
from interpose.store.flowfile import FlowWriter
from tests.tui.pty_harness import Terminal
from tests.tui.test_format import T0, http_flow, tcp_flow, ws_flow


def _flows() -> list:
    hs, _ = ws_flow(T0 + 1)
    return [http_flow(url="http://example.com/a", status=200, body=b"ok", ts=T0), hs, tcp_flow(T0 + 2)]


def test_extract_gives_empty_values_for_parts_a_flow_type_lacks() -> None:
    http, ws, tcp = _flows()
    assert extract("request.url", tcp) == "" and extract("response.header[x]", tcp) == ""
    assert extract("server_conn.address.host", tcp) == "db.internal"
    assert extract("response.status_code", ws) == "101"
    assert extract("messages", tcp) == "client: hello\n\nserver: \x00\x01hi\n"
    assert extract("messages", ws) == 'client: {"sub": "prices"}\nserver: \x01\x02\n'
    assert extract("messages", http) == ""
    assert render([http, ws, tcp], ["type", "request.url"]) == (
        "http,http://example.com/a\nhttp,http://example.com/live\ntcp,\n")


async def test_cut_over_http_websocket_and_tcp_flows(tmp_path: Path) -> None:
    flows = tmp_path / "mixed.interpose"
    with FlowWriter(str(flows)) as w:
        for f in _flows():
            w.add(f)
    term = await Terminal().start("--confdir", str(tmp_path / "conf"), "-r", str(flows))
    try:
        await term.wait_for("db.internal")
        out = tmp_path / "all.csv"
        await term.press(":", *f"cut.save @all type,request.url,response.status_code {out}", "enter")
        await term.wait_until(out.exists, "the cut file")
        assert out.read_text() == "http,http://example.com/a,200\nhttp,http://example.com/live,101\ntcp,,\n"
        await term.press(":", *"cut.clip @all request.url", "enter")
        await term.wait_for("copied")
        copied = "http://example.com/a\nhttp://example.com/live\n\"\"\n"  # (CSV writes a lone empty field as "")
        assert base64.b64encode(copied.encode()) in bytes(term.raw)
        # the TCP flow (focused: the last one): no URL, its messages, and `b` offers them
        empty = tmp_path / "url.txt"
        await term.press(":", *f"cut.save @focus request.url {empty}", "enter")
        await term.wait_for("wrote 0 bytes")
        assert empty.read_bytes() == b""
        await term.press("enter")
        await term.wait_for("Messages")
        await term.press("b")
        await term.wait_for(": cut.save @focus messages")
        msgs = tmp_path / "tcp.txt"
        await term.press(*str(msgs), "enter")
        await term.wait_until(msgs.exists, "the messages file")
        assert msgs.read_text() == "client: hello\n\nserver: \x00\x01hi\n"
        # the WebSocket flow's messages
        await term.press("q", "k")
        ws_out = tmp_path / "ws.txt"
        await term.press(":", *f"cut.save @focus messages {ws_out}", "enter")
        await term.wait_until(ws_out.exists, "the WebSocket messages file")
        assert ws_out.read_text() == 'client: {"sub": "prices"}\nserver: \x01\x02\n'
        # a field no flow has: one error line
        await term.press(":", *f"cut.save @all nosuch {tmp_path / 'x'}", "enter")
        await term.wait_for(re.compile(r"cut 'nosuch': no field 'nosuch'"))
        assert term.proc is not None and term.proc.returncode is None  # still running
    finally:
        await term.stop()
