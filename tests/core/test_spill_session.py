"""core/store/session/bodies.py: with a session the TUI records into, bodies are read back from the session
instead of a spill file; one that the session does not hold (yet, or any more as it is) stays in memory
until it does, and goes to the spill file if it never does."""
from __future__ import annotations

import copy
import os

import pytest

from interpose.model.connection import Client, Server
from interpose.store.session import Session
from interpose.store.session.bodies import TRIES, HeldBody, SessionBody
from interpose.store.spill import BodySpill, is_spilled
from interpose.tcp import TCPFlow, TCPMessage
from interpose.websocket import WebSocketFlow, WebSocketMessage
from tests.core.test_spill import KiB, http_flow


@pytest.fixture
def session(tmp_path):
    s = Session.open(str(tmp_path / "s.session"))
    yield s
    s.close()


@pytest.fixture
def spill_dir(tmp_path):
    d = tmp_path / "tmp"
    d.mkdir()
    return d


@pytest.fixture
def bodies(session, spill_dir):
    b = BodySpill(threshold=64 * KiB, memory_limit=None, directory=str(spill_dir))
    b.attach(session)  # no loop: retried by hand (`retry`) here, on a timer in the TUI
    yield b
    b.close()


def recorded(session, *flows):
    for f in flows:
        session.put(f)
    assert session.sync()


def test_a_recorded_body_is_read_back_from_the_session_and_no_spill_file_is_made(session, bodies, spill_dir):
    big = os.urandom(300 * KiB)
    f = http_flow(big, req_body=b"q" * 1000)
    recorded(session, f)
    bodies.keep(f)
    assert is_spilled(f.response) and isinstance(f.response._spill, SessionBody)
    assert not is_spilled(f.request)  # under the threshold
    assert f.response.raw_content == big and f.response.content == big
    assert os.listdir(spill_dir) == [] and bodies.file is None
    assert bodies.spilled_count == 1 and bodies.session.dropped == 1


def test_a_body_not_recorded_yet_waits_in_memory_until_the_session_holds_it(session, bodies, spill_dir):
    big = os.urandom(100 * KiB)
    f = http_flow(big)
    bodies.keep(f)  # finished, but the recorder has not written it yet
    assert not is_spilled(f.response) and bodies.session.waiting == 1
    recorded(session, f)
    bodies.session.retry()
    assert is_spilled(f.response) and isinstance(f.response._spill, SessionBody)
    assert bodies.session.waiting == 0 and f.response.raw_content == big
    assert os.listdir(spill_dir) == []


def test_a_body_changed_since_it_was_recorded_is_not_taken_from_the_session(session, bodies, spill_dir):
    f = http_flow(os.urandom(100 * KiB))
    recorded(session, f)
    edited = os.urandom(100 * KiB)
    f.response.raw_content = edited  # not recorded again (yet)
    bodies.keep(f)
    assert not is_spilled(f.response)
    for _ in range(TRIES):  # never recorded as it is: the spill file takes it, as without a session
        bodies.session.retry()
    assert is_spilled(f.response) and not isinstance(f.response._spill, SessionBody)
    assert f.response.raw_content == edited and os.listdir(spill_dir) != []


def test_when_recording_failed_bodies_go_to_the_spill_file(session, bodies, spill_dir):
    f = http_flow(os.urandom(100 * KiB))
    bodies.keep(f)
    assert bodies.session.waiting == 1
    session._writer.failed = "recording into it stopped: database or disk is full"
    bodies.session.retry()
    assert is_spilled(f.response) and not isinstance(f.response._spill, SessionBody)
    g = http_flow(os.urandom(100 * KiB))
    bodies.keep(g)
    assert is_spilled(g.response) and not isinstance(g.response._spill, SessionBody)


def test_a_copy_keeps_its_body_when_the_original_leaves_the_session(session, bodies):
    big = os.urandom(100 * KiB)
    f = http_flow(big)
    recorded(session, f)
    bodies.keep(f)
    assert isinstance(f.response._spill, SessionBody)
    dup = f.copy()
    f.backup()
    assert isinstance(dup.response._spill, HeldBody) and isinstance(f._backup.response._spill, HeldBody)
    session.delete(f.id)
    assert session.sync()
    assert dup.response.raw_content == big and f._backup.response.raw_content == big
    with pytest.raises(ValueError, match="no longer in the session"):
        _ = f.response.raw_content
    assert copy.copy(f.response._spill) is f.response._spill  # nothing to hold: the handle itself


def test_websocket_and_tcp_messages_are_read_back_from_the_session(session, bodies, spill_dir):
    big, other = os.urandom(100 * KiB), os.urandom(70 * KiB)
    hs = http_flow()
    ws = WebSocketFlow(hs, live=False)
    hs.websocket = ws
    ws.add_message(WebSocketMessage(True, b"small", is_text=True))
    ws.add_message(WebSocketMessage(False, big))
    tcp = TCPFlow(Client(address=("127.0.0.1", 1)), Server(address=("example.com", 7)), live=False)
    tcp.add_message(TCPMessage(False, other))
    recorded(session, hs, tcp)
    bodies.keep(hs)
    bodies.keep(tcp)
    assert isinstance(ws.messages[1]._spill, SessionBody) and ws.messages[1].content == big
    assert ws.messages[0].content == b"small" and not is_spilled(ws.messages[0], "content")
    assert isinstance(tcp.messages[0]._spill, SessionBody) and tcp.messages[0].content == other
    assert os.listdir(spill_dir) == []
