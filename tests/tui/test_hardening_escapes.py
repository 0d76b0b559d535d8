"""Terminal escapes a peer sends never reach the terminal from the TUI: the flow list, the flow view, the
status bar and the event log show them escaped (`^[`). A body past `decode_limit` is not decoded."""
from __future__ import annotations

import gzip
import zlib

import pytest

from interpose.model import encoding
from interpose.runtime.log import LogEntry
from interpose.runtime.options import Options, core_options
from interpose.store.view import FlowStore
from interpose.tui.widgets.flowlist import FlowListBox
from interpose.tui.widgets.flowview import FlowView
from interpose.tui.widgets.panes import EventLog, StatusBar
from tests.tui.test_format import T0, error_flow, http_flow
from tests.tui.test_widgets import lines

EVIL_CT = "text/html\x1b[2J\x1bc"


def evil_flow():
    f = http_flow("GET", "http://example.com/a", status=200, body=b"<p>\x1b]0;pwned\x07hi</p>", ctype=EVIL_CT, ts=T0)
    f.request.headers["Host"] = "evil\x1bc"
    f.request.method = "GE\x1bT\r\n"
    f.response.headers["X-Evil"] = "a\x1b[31mred\x9b1m"
    return f


def screen(widget, size) -> str:
    return "\n".join(lines(widget, size))


def test_flow_list_row_escapes_method_host_and_content_type():
    store = FlowStore()
    store.add(evil_flow())
    store.add(error_flow("refused\x1b[2J\r\nforged", ts=T0 + 1))
    text = screen(FlowListBox(store), (140, 3))
    assert "\x1b" not in text and "\x9b" not in text
    assert "GE^[T^M^J" in text and "html^[[2j^[c" in text and "refused^[[2J^M^Jforged" in text
    assert len(text.splitlines()) == 3
    assert "evil" not in text  # the row names the address the request went to (example.com)...
    opts = Options()
    core_options(opts)
    opts.showhost = True  # ...and with showhost the Host header's host, escaped too
    shown = screen(FlowListBox(store, opts), (140, 3))
    assert "\x1b" not in shown and "http://evil^[c/a" in shown


def test_flow_view_escapes_headers_url_and_body():
    opts = Options()
    core_options(opts)
    opts.showhost = True  # the request line names the Host header's host (escaped), as the list does then
    view = FlowView(evil_flow(), opts)
    req = screen(view, (100, 10))
    assert "\x1b" not in req and "Host: evil^[c" in req and "GE^[T^M^J http://evil^[c/a" in req
    view.switch_tab(1)
    resp = screen(view, (100, 10))
    assert "\x1b" not in resp and "\x9b" not in resp and "\x07" not in resp
    assert f"Content-Type: {EVIL_CT.replace(chr(27), '^[')}" in resp and "X-Evil: a^[[31mred\\x9b1m" in resp


def test_status_bar_and_event_log_escape():
    bar = StatusBar()
    bar.set_info([("statusbar", " filter: ~d evil\x1bc ")])
    bar.set_message(("error", "cannot load x\x1b[2J\nforged"))
    text = screen(bar, (60,))
    assert "\x1b" not in text and "evil^[c" in text and "x^[[2J^Jforged" in text
    log = EventLog()
    log.add(LogEntry("client said \x1b]0;title\x07 and \r[error] forged", "warn", T0))
    log.add(LogEntry("second\x9b2J", "info", T0 + 1))
    log.refresh()
    text = screen(log, (80, 5))
    assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text and "\r" not in text
    # The event log shows a message's first line only: what follows a CR or LF is not shown as a line.
    assert "client said ^[]0;title^G and " in text and "forged" not in text and "second\\x9b2J" in text


@pytest.fixture
def small_limit():
    encoding.set_decode_limit(1024 * 1024)
    yield
    encoding.set_decode_limit(encoding.DEFAULT_DECODE_LIMIT)


def test_flow_view_says_a_bomb_is_too_large_to_decode(small_limit):
    bomb = gzip.compress(gzip.compress(bytes(8 * 1024 * 1024)))
    f = http_flow("GET", "http://example.com/bomb", status=200, ctype="text/plain", ts=T0)
    f.response.headers["Content-Encoding"] = "gzip, gzip"
    f.response.raw_content = bomb
    view = FlowView(f)
    view.switch_tab(1)
    text = screen(view, (100, 8))
    assert f"body too large to decode ({len(bomb)}b, limit 1.0m)" in text
    # A normal compressed body next to it still decodes.
    f.response.headers["Content-Encoding"] = "deflate"
    f.response.raw_content = zlib.compress(b"fine")
    view = FlowView(f)
    view.switch_tab(1)
    assert "fine" in screen(view, (100, 8))
