"""tui/format.py: flows as text. Pure functions over real flow objects."""
from __future__ import annotations

import time

import pytest

from interpose.http import HTTPFlow, Request, Response
from interpose.model.connection import Client, Server
from interpose.model.flow import Error
from interpose.tcp import TCPFlow, TCPMessage
from interpose.tui import format as fmt
from interpose.websocket import WebSocketFlow, WebSocketMessage

T0 = 1_700_000_000.0
LONG_URL = "http://example.com/a/very/long/path/that/does/not/fit/in/eighty/columns/at/all/index.html?q=1"


def hms(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def http_flow(method: str = "GET", url: str = "http://example.com/", *, status: int | None = None,
              body: bytes = b"", ctype: str | None = None, req_body: bytes = b"", headers=None,
              ts: float = T0, duration: float = 0.25, client: tuple[str, int] = ("10.0.0.7", 51234)) -> HTTPFlow:
    """A finished (not live) HTTP flow as the proxy would have recorded it."""
    f = HTTPFlow(Client(address=client), Server(address=("example.com", 80)), live=False)
    f.request = Request.make(method, url, req_body, headers)
    f.timestamp_created = f.request.timestamp_start = ts
    f.request.timestamp_end = ts + 0.01
    if status is not None:
        f.response = Response.make(status, body, {"Content-Type": ctype} if ctype else None)
        f.response.timestamp_start = ts + duration / 2
        f.response.timestamp_end = ts + duration
    return f


def error_flow(msg: str = "Connection refused.", ts: float = T0) -> HTTPFlow:
    f = http_flow(url="http://down.example/", ts=ts)
    f.error = Error(msg, ts + 0.05)
    return f


def tcp_flow(ts: float = T0) -> TCPFlow:
    f = TCPFlow(Client(address=("10.0.0.7", 40000)), Server(address=("db.internal", 5432)), live=False)
    f.timestamp_created = ts
    f.add_message(TCPMessage(True, b"hello\n", ts + 0.1))
    f.add_message(TCPMessage(False, b"\x00\x01hi", ts + 0.2))
    return f


def ws_flow(ts: float = T0) -> tuple[HTTPFlow, WebSocketFlow]:
    hs = http_flow(url="http://example.com/live", status=101, ts=ts, duration=0.01)
    ws = WebSocketFlow(hs, live=False)
    hs.websocket = ws
    ws.add_message(WebSocketMessage(True, b'{"sub": "prices"}', is_text=True, timestamp=ts + 0.1))
    ws.add_message(WebSocketMessage(False, b"\x01\x02", is_text=False, timestamp=ts + 0.2))
    return hs, ws


def plain(markup: fmt.Markup) -> str:
    return "".join(text for _, text in markup)


# -- sizes, durations, reasons ----------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (None, ""), (-1, ""), (0, "0ms"), (0.0123, "12ms"), (0.9994, "999ms"), (1.5, "1.5s"), (99.94, "99.9s"),
    (150, "150s"), (3600, "3600s"),
])
def test_human_duration(seconds, text):
    assert fmt.human_duration(seconds) == text


def test_reason_and_status_attr():
    assert fmt.reason(404) == "Not Found"
    assert fmt.reason(200, "Fine") == "Fine"
    assert fmt.reason(799) == ""
    assert [fmt.status_attr(c) for c in (101, 204, 302, 404, 503)] == [
        "status_1xx", "status_2xx", "status_3xx", "status_4xx", "status_5xx"]
    assert fmt.status_attr(42) == "status_1xx" and fmt.status_attr(799) == "status_5xx"


def test_body_size_and_duration():
    f = http_flow(status=200, body=b"x" * 41)
    assert fmt.body_size(f.response) == 41
    assert fmt.body_size(None) is None
    f.response.raw_content = None  # streamed: only Content-Length says how big it was
    f.response.headers["content-length"] = "1000"
    assert fmt.body_size(f.response) == 1000
    assert fmt.duration(http_flow(status=200, duration=0.25)) == pytest.approx(0.25)
    assert fmt.duration(http_flow()) is None
    assert fmt.duration(error_flow()) == pytest.approx(0.05)
    assert fmt.duration(tcp_flow()) == pytest.approx(0.2)
    assert fmt.duration(TCPFlow(Client(), Server(), live=False)) is None


def test_clock():
    assert fmt.clock(T0) == hms(T0)


# -- truncate -----------------------------------------------------------------------------------------------

def test_truncate_keeps_short_text():
    assert fmt.truncate("abc", 5) == "abc"
    assert fmt.truncate("abcde", 5) == "abcde"


@pytest.mark.parametrize("width", [2, 3, 8, 20, 50, len(LONG_URL) - 1])
def test_truncate_cuts_at_the_end_to_exactly_the_width(width):
    out = fmt.truncate(LONG_URL, width)
    assert len(out) == width
    assert out.endswith("…") and out.count("…") == 1
    assert LONG_URL.startswith(out[:-1])


def test_truncate_keeps_the_start_of_the_url():
    out = fmt.truncate(LONG_URL, 40)
    assert out.startswith("http://example.com/")
    assert out.endswith("…")


@pytest.mark.parametrize(("width", "out"), [(1, "h"), (0, ""), (-3, "")])
def test_truncate_tiny_widths(width, out):
    assert fmt.truncate(LONG_URL, width) == out


# -- icons ---------------------------------------------------------------------------------------------------

def test_icons_of_a_plain_flow_are_blank():
    assert fmt.icons(http_flow(status=200)) == [("text", " "), ("text", " "), ("text", " ")]


def test_icon_intercepted_and_marked():
    f = http_flow()
    f.intercept()  # not live: no future, but the flow is held
    f.marked = True
    icons = fmt.icons(f)
    assert icons[0] == ("intercepted", fmt.ICON_INTERCEPTED)
    assert icons[1] == ("marked", fmt.ICON_MARKED)


@pytest.mark.parametrize(("make", "icon"), [
    (error_flow, ("error", fmt.ICON_ERROR)),
    (tcp_flow, ("flow_tcp", fmt.ICON_TCP)),
    (lambda: ws_flow()[0], ("flow_ws", fmt.ICON_WEBSOCKET)),
    (lambda: ws_flow()[1], ("flow_ws", fmt.ICON_WEBSOCKET)),
])
def test_type_icons(make, icon):
    assert fmt.icons(make())[2] == icon


def test_icon_replay():
    f = http_flow(status=200)
    f.is_replay = "request"
    assert fmt.icons(f)[2] == ("dim", fmt.ICON_REPLAY)


def test_an_error_outranks_the_type_icon():
    f = tcp_flow()
    f.error = Error("Connection reset by peer.")
    assert fmt.icons(f)[2] == ("error", fmt.ICON_ERROR)


async def test_a_held_message_marks_its_flow_intercepted():
    hs, ws = ws_flow()
    assert not fmt.is_intercepted(hs)
    ws.messages[0].intercept()
    assert fmt.is_intercepted(hs) and fmt.is_intercepted(ws)
    assert fmt.icons(hs)[0] == ("intercepted", "!")
    ws.messages[0].resume()
    assert not fmt.is_intercepted(hs)
    t = tcp_flow()
    t.messages[1].intercept()
    assert fmt.is_intercepted(t)
    t.messages[1].drop()
    assert not fmt.is_intercepted(t)


# -- flow rows -------------------------------------------------------------------------------------------------

def all_kinds() -> list:
    f_marked = http_flow("POST", "http://example.com/api/login", status=404, req_body=b"{}")
    f_marked.marked = True
    replay = http_flow(status=200)
    replay.is_replay = "request"
    return [
        http_flow(url="http://example.com/json", status=200, body=b'{"a": 1}', ctype="application/json"),
        f_marked, error_flow(), http_flow(url=LONG_URL), tcp_flow(), ws_flow()[0], replay,
        http_flow("VERYLONGMETHOD", "http://example.com/", status=599, body=b"x" * 5000, ctype="text/html"),
        http_flow(url="http://example.com/", client=("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 1)),
    ]


@pytest.mark.parametrize("width", [1, 20, 40, 60, 79, 80, 100, 109, 110, 120, 140, 200, 300])
def test_flow_row_is_exactly_the_width(width):
    for f in all_kinds():
        row = fmt.flow_row(f, width)
        assert len(plain(row)) == width, (f, plain(row))


def test_flow_row_at_80_columns():
    f = http_flow(url="http://example.com/json", status=200, body=b'{"a": 1}', ctype="application/json")
    row = fmt.flow_row(f, 80)
    # below 100 columns the content type gives its room to the URL
    assert plain(row) == (f"{hms(T0)}     GET     http://example.com/json"
                          "                   200     8b  250ms")
    assert "json  " in plain(fmt.flow_row(f, 100))
    assert ("status_2xx", "200 ") in row and ("method", "GET    ") in row and ("url", "http://example.com/json") in row


def test_flow_row_shows_the_client_only_when_wide():
    f = http_flow(url="http://example.com/json", status=200)
    assert "10.0.0.7" not in plain(fmt.flow_row(f, 109))
    wide = plain(fmt.flow_row(f, 110))
    assert wide.startswith(f"{hms(T0)} 10.0.0.7        ")


def test_flow_row_truncates_a_long_url_at_the_end():
    at60 = plain(fmt.flow_row(http_flow(url=LONG_URL), 60))
    assert len(at60) <= 60
    assert "http://example.com/a/very" in at60 and "…" in at60 and "index.html?q=1" not in at60
    at300 = plain(fmt.flow_row(http_flow(url=LONG_URL), 300))
    assert LONG_URL in at300


def test_flow_row_statuses_errors_and_streams():
    assert ("status_4xx", "404 ") in fmt.flow_row(http_flow(status=404), 80)
    assert ("status_5xx", "502 ") in fmt.flow_row(http_flow(status=502), 80)
    err = fmt.flow_row(error_flow("Connection refused."), 80)
    assert ("error", "Connection refused.") in err and ("error", "✗") in err
    waiting = fmt.flow_row(http_flow(), 80)
    assert ("dim", "…") in waiting
    tcp = plain(fmt.flow_row(tcp_flow(), 80))
    assert "TCP     tcp://db.internal:5432" in tcp and tcp.endswith("2 msgs 10b  200ms")


def test_flow_row_never_passes_control_characters_through():
    f = http_flow(url="http://example.com/\x1b[31mred", status=200)
    f.request.path = "/\x1b[2J\x07evil\u202e"
    text = plain(fmt.flow_row(f, 120))
    assert not any(c in text for c in "\x1b\x07\u202e")
