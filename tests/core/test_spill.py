"""core/store/spill.py: bodies of kept flows moved to a private temporary file and read back on access."""
from __future__ import annotations

import copy
import gc
import gzip
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from interpose.flowfilter import parse
from interpose.http import HTTPFlow, Request, Response
from interpose.model.connection import Client, Server
from interpose.runtime.options import Options, core_options
from interpose.store import export
from interpose.store.flowfile import FlowWriter, load
from interpose.store.spill import SPILL_MIN, BodySpill, SpillFile, is_spilled, spill, stored_size
from interpose.store.view import FlowStore, sort_key
from interpose.tcp import TCPFlow, TCPMessage
from interpose.tui.format import body_size, flow_row
from interpose.websocket import WebSocketFlow, WebSocketMessage

KiB = 1024


def http_flow(resp_body: bytes = b"", req_body: bytes = b"", live: bool = False, **resp_headers: str) -> HTTPFlow:
    f = HTTPFlow(Client(address=("127.0.0.1", 5000)), Server(address=("example.com", 80)), live=live)
    f.request = Request.make("POST" if req_body else "GET", "http://example.com/x", req_body)
    f.response = Response.make(200, resp_body, {"Content-Type": "application/octet-stream", **resp_headers})
    f.response.timestamp_end = f.response.timestamp_start
    return f


@pytest.fixture
def spill_dir(tmp_path: Path) -> Path:
    d = tmp_path / "tmp"
    d.mkdir()
    return d


@pytest.fixture
def bodies(spill_dir: Path):
    s = BodySpill(threshold=64 * KiB, memory_limit=None, directory=str(spill_dir))
    yield s
    s.close()


def test_bodies_at_the_threshold_are_spilled_and_read_back(bodies):
    big, small = os.urandom(64 * KiB), os.urandom(64 * KiB - 1)
    f, g = http_flow(big, req_body=big[:1000]), http_flow(small)
    bodies.keep(f)
    bodies.keep(g)
    assert is_spilled(f.response) and "raw_content" not in vars(f.response)
    assert not is_spilled(f.request)  # under the threshold
    assert not is_spilled(g.response)
    assert f.response.raw_content == big and f.response.content == big
    assert stored_size(f.response) == len(big) and body_size(f.response) == len(big)
    assert sort_key("size", f) == len(big)
    assert bodies.spilled_count == 1 and bodies.spilled_bytes == len(big)
    assert bodies.in_memory == 1000 + len(small)
    assert os.path.getsize(bodies.file.path) == len(big)


def roundtrip(flow, path: Path):
    with FlowWriter(path) as w:
        w.add(flow)
    flows, _ = load(path)
    return flows[0]


def test_a_spilled_body_works_everywhere_a_body_is_read(bodies, tmp_path):
    text = b'{"greeting": "hello from disk"}' + b" " * (100 * KiB)
    f = http_flow(text, **{"Content-Type": "application/json"})
    bodies.keep(f)
    assert is_spilled(f.response)
    assert f.response.text.startswith('{"greeting"')
    assert parse("~bs 'hello from disk'")(f)
    assert b"hello from disk" in export.raw_response(f)
    clone = roundtrip(f, tmp_path / "flows")
    assert clone.response.raw_content == text
    dup = f.copy()  # copies share the spilled body
    assert dup.response.raw_content == text and is_spilled(dup.response)
    assert copy.deepcopy(f.response).raw_content == text
    row = "".join(t for _, t in flow_row(f, 100))
    assert "100k" in row  # the size column, without reading the body back


def test_a_spilled_encoded_body_decodes_without_pinning_it_in_memory(bodies):
    plain = os.urandom(50 * KiB).hex().encode()
    f = http_flow(plain, **{"Content-Encoding": "gzip"})  # Response.make encodes it
    assert gzip.decompress(f.response.raw_content) == plain
    f.response.content  # noqa: B018 - fills the decode cache
    bodies.threshold = SPILL_MIN
    bodies.keep(f)
    assert is_spilled(f.response)
    assert f.response.content == plain
    assert f.response._decoded is None


def test_assigning_a_spilled_body_stops_it_being_spilled(bodies):
    f = http_flow(b"a" * (80 * KiB))
    bodies.keep(f)
    assert is_spilled(f.response)
    f.response.content = b"edited"
    assert not is_spilled(f.response)
    assert f.response.raw_content == b"edited" and f.response.headers["content-length"] == "6"
    f.response.raw_content = b"b" * (70 * KiB)
    assert not is_spilled(f.response) and stored_size(f.response) == 70 * KiB
    f.response.raw_content = None
    assert f.response.raw_content is None and stored_size(f.response) is None


def test_unfinished_or_held_flows_are_left_alone(bodies):
    body = b"z" * (100 * KiB)
    live = http_flow(body, live=True)
    live.response.timestamp_end = None  # the body is still coming
    held = http_flow(body)
    held.intercepted = True
    for f in (live, held):
        bodies.keep(f)
        assert not is_spilled(f.response)
    assert bodies.file is None  # nothing spilled: no file made
    held.intercepted = False
    bodies.keep(held)
    assert is_spilled(held.response)


def test_websocket_and_tcp_messages_spill_once_the_connection_ended(bodies, tmp_path):
    hs = http_flow()
    ws = WebSocketFlow(hs, live=True)
    hs.websocket = ws
    big = os.urandom(100 * KiB)
    ws.add_message(WebSocketMessage(True, big))
    ws.add_message(WebSocketMessage(False, b"small", is_text=True))
    bodies.keep(hs)
    assert not is_spilled(ws.messages[0], "content")  # still open
    ws.live = False
    bodies.keep(hs)
    assert is_spilled(ws.messages[0], "content") and ws.messages[0].content == big
    assert ws.messages[1].content == b"small"
    assert roundtrip(hs, tmp_path / "flows").websocket.messages[0].content == big
    ws.messages[0].text = "edited"
    assert not is_spilled(ws.messages[0], "content") and ws.messages[0].content == b"edited"

    tcp = TCPFlow(Client(address=("127.0.0.1", 1)), Server(address=("example.com", 7)), live=False)
    tcp.add_message(TCPMessage(False, big))
    bodies.keep(tcp)
    assert is_spilled(tcp.messages[0], "content") and tcp.messages[0].content == big


def test_the_memory_limit_spills_the_oldest_kept_bodies_first(spill_dir):
    s = BodySpill(threshold=None, memory_limit=100 * KiB, directory=str(spill_dir))
    flows = [http_flow(bytes([i]) * (30 * KiB)) for i in range(6)]
    tiny = http_flow(b"t" * (SPILL_MIN - 1))
    s.keep(tiny)
    for f in flows[:3]:
        s.keep(f)
    assert s.in_memory == 90 * KiB and s.spilled_count == 0
    s.keep(flows[3])  # 120k > 100k: the oldest goes
    assert [is_spilled(f.response) for f in flows[:4]] == [True, False, False, False]
    assert s.in_memory == 90 * KiB
    for f in flows[4:]:
        s.keep(f)
    assert [is_spilled(f.response) for f in flows] == [True, True, True, False, False, False]
    assert not is_spilled(tiny.response)  # too small to be worth it, and not counted
    assert all(f.response.raw_content == bytes([i]) * (30 * KiB) for i, f in enumerate(flows))
    s.keep(flows[5])  # kept again (e.g. an error after the response): not counted twice
    assert s.in_memory == 90 * KiB
    # lowering the limit applies at once; a freed flow no longer counts
    del flows[4:], f
    gc.collect()
    assert s.in_memory == 30 * KiB
    s.memory_limit = 0
    s.keep(flows[3])
    assert is_spilled(flows[3].response) and s.in_memory == 0
    s.close()


def test_options_drive_it(spill_dir, monkeypatch):
    opts = Options()
    core_options(opts)
    assert opts.body_spill_threshold == "256k" and opts.flow_memory_limit == "512m"
    s = BodySpill.from_options(opts)
    s.directory = str(spill_dir)
    assert s.threshold == 256 * KiB and s.memory_limit == 512 * KiB * KiB
    f = http_flow(b"q" * (10 * KiB))
    s.keep(f)
    assert not is_spilled(f.response) and s.in_memory == 10 * KiB
    opts.set("flow_memory_limit=4k")  # the new limit applies at once
    assert is_spilled(f.response) and s.in_memory == 0
    opts.set("body_spill_threshold=1k")
    assert s.threshold == KiB
    opts.update(body_spill_threshold=None, flow_memory_limit=None)
    assert s.threshold is None and s.memory_limit is None
    s.close()


def test_the_file_is_private_and_removed_on_close(spill_dir):
    f = SpillFile(str(spill_dir))
    assert stat.S_IMODE(os.stat(f.dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(f.path).st_mode) == 0o600
    assert Path(f.dir).parent == spill_dir and Path(f.dir).name.startswith(f"interpose-spill-{os.getpid()}-")
    a, b = f.write(b"first"), f.write(b"second" * 1000)
    assert (a.offset, a.size, b.offset) == (0, 5, 5)
    assert b.read() == b"second" * 1000 and a.read() == b"first"
    f.close()
    assert not os.path.exists(f.dir)
    with pytest.raises(ValueError, match="closed"):
        a.read()


def test_the_file_is_removed_at_exit_and_leftovers_of_dead_processes_are_swept(spill_dir):
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from interpose.store.spill import SpillFile
        f = SpillFile({str(spill_dir)!r})
        f.write(b"x" * 1000)
        print(f.dir)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not os.path.exists(out.stdout.strip())  # removed when the interpreter exited
    # a process killed before it could clean up leaves its directory: the next spiller removes it
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = spill_dir / f"interpose-spill-{dead}-abc"
    stale.mkdir()
    (stale / "bodies").write_bytes(b"old")
    mine = spill_dir / f"interpose-spill-{os.getpid()}-keep"
    mine.mkdir()
    f = SpillFile(str(spill_dir))
    assert not stale.exists() and mine.exists()
    f.close()


def test_spill_ignores_small_and_missing_bodies(spill_dir):
    f = SpillFile(str(spill_dir))
    r = Request.make("GET", "http://example.com/")
    assert spill(r, f) == 0  # empty
    r.raw_content = None
    assert spill(r, f) == 0
    r.raw_content = b"x" * SPILL_MIN
    assert spill(r, f) == SPILL_MIN and is_spilled(r)
    assert spill(r, f) == 0  # already on disk
    assert r.raw_content == b"x" * SPILL_MIN
    f.close()


def test_store_keeps_spilled_flows_sortable_and_filterable(bodies):
    store = FlowStore()
    flows = [http_flow(b"%d" % i * (70 * KiB)) for i in range(1, 4)]
    for f in reversed(flows):
        store.add(f)
        bodies.keep(f)
    assert all(is_spilled(f.response) for f in flows)
    store.set_order("size")
    assert [stored_size(f.response) for f in store] == sorted(stored_size(f.response) for f in flows)
    store.set_filter("~bs 333")
    assert list(store) == [flows[2]]


def test_keep_shares_equal_header_fields_between_kept_flows(bodies):
    def fresh_flow() -> HTTPFlow:
        f = http_flow()
        f.request.headers.fields = [(bytes(bytearray(k)), bytes(bytearray(v))) for k, v in f.request.headers.fields]
        f.request.host = "".join(["example", ".com"])  # a new str, as parsing makes one
        return f

    a, b = fresh_flow(), fresh_flow()
    assert a.request.headers.fields[0] is not b.request.headers.fields[0]
    bodies.keep(a)
    bodies.keep(b)
    assert all(x is y for x, y in zip(a.request.headers.fields, b.request.headers.fields, strict=True))
    assert a.request.host is b.request.host and b.request.host == "example.com"
    assert b.request.headers["host"] == "example.com"
    assert b.response.headers["content-type"] == "application/octet-stream"
