"""Widgets rendered at fixed sizes: the text of the urwid canvas, line by line, over real flows."""
from __future__ import annotations

import asyncio
import re
import time

import pytest
import urwid

from interpose.model.connection import TLSInfo
from interpose.store.view import FlowStore
from interpose.tui import format as fmt
from interpose.tui.widgets.flowlist import FlowListBox, FlowRow
from interpose.tui.widgets.flowview import FlowView
from interpose.tui.widgets.grid import GridEditor
from interpose.tui.widgets.panes import PendingPane, Prompt, StatusBar, help_widget
from interpose.websocket import WebSocketMessage
from tests.tui.test_format import (
    LONG_URL,
    T0,
    error_flow,
    hms,
    http_flow,
    tcp_flow,
    ws_flow,
)


def lines(widget: urwid.Widget, size: tuple[int, ...], focus: bool = False) -> list[str]:
    return [line.decode("utf-8") for line in widget.render(size, focus).text]


def trimmed(widget: urwid.Widget, size: tuple[int, ...], focus: bool = False) -> list[str]:
    return [line.rstrip() for line in lines(widget, size, focus)]


def attrs(canvas: urwid.Canvas, row: int) -> set[str | None]:
    """The display attributes used on one row of a rendered canvas."""
    return {attr for attr, _, _ in list(canvas.content())[row]}


# -- the flow list ------------------------------------------------------------------------------------------

@pytest.fixture
def store() -> FlowStore:
    s = FlowStore()
    s.add(http_flow(url="http://example.com/json", status=200, body=b'{"a": 1}', ctype="application/json", ts=T0))
    s.add(http_flow("POST", "http://example.com/api/login", status=404, req_body=b'{"user": "alice"}',
                    headers={"Content-Type": "application/json"}, ts=T0 + 1))
    s.add(error_flow("Connection refused.", ts=T0 + 2))
    s.add(http_flow(url=LONG_URL, ts=T0 + 3))
    s.add(tcp_flow(ts=T0 + 4))
    return s


def test_flow_list_at_80_columns(store):
    t = [hms(T0 + i) for i in range(5)]
    assert lines(FlowListBox(store), (80, 7)) == [
        f"{t[0]}     GET     http://example.com/json                   200     8b  250ms",
        f"{t[1]}     POST    http://example.com/api/login              404     0b  250ms",
        f"{t[2]}   ✗ GET     http://down.example/             Connection refused.   50ms",
        f"{t[3]}     GET     http://example.com/a/very/long/path/that/does/not… …       ",
        f"{t[4]}   ⇌ TCP     tcp://db.internal:5432                    2 msgs 10b  200ms",
        " " * 80,
        " " * 80,
    ]


def test_flow_list_at_140_columns_shows_the_client_and_whole_urls(store):
    out = lines(FlowListBox(store), (140, 5))
    assert all(len(line) == 140 for line in out)
    assert all(line.startswith(f"{hms(T0 + i)} 10.0.0.7        ") for i, line in enumerate(out))
    assert LONG_URL in out[3] and "…" not in out[3].replace(" …", "")
    assert out[0].endswith("200 json             8b  250ms")
    assert out[4].endswith("2 msgs 10b  200ms")


def test_flow_row_focus_paints_the_whole_row(store):
    assert attrs(FlowRow(store[0]).render((80,), focus=True), 0) == {"focus"}
    assert attrs(FlowRow(store[0]).render((80,), focus=False), 0) >= {"dim", "method", "url", "status_2xx"}


def test_flow_list_follows_the_store(store):
    lb = FlowListBox(store)
    assert lb.focused_flow is store[0]
    lb.focus_index(99)
    assert lb.focused_flow is store[4]
    store.set_filter("~tcp")
    lb.walker.changed()
    assert trimmed(lb, (80, 2)) == [lines(FlowListBox(store), (80, 1))[0].rstrip(), ""]
    assert lb.focused_flow is store[0] and store[0].type == "tcp"
    store.clear()
    lb.walker.changed()
    assert lb.empty() and lb.focused_flow is None
    assert trimmed(lb, (80, 2)) == ["", " no flows"]  # the app sets the onboarding text (welcome.py)


# -- the flow view -------------------------------------------------------------------------------------------

TAB_BAR = " Request   Response   Details"
WS_TAB_BAR = " Request   Response   Messages   Details"


def test_request_tab_pretty_prints_a_json_body(store):
    view = FlowView(store[1])
    assert trimmed(view, (70, 14)) == [
        TAB_BAR,
        "POST http://example.com/api/login HTTP/1.1",
        "Host: example.com",
        "Content-Type: application/json",
        "content-length: 17",
        "",
        "── JSON [m: auto]",
        "{",
        '  "user": "alice"',
        "}",
        "", "", "", "",
    ]


def test_response_tab(store):
    view = FlowView(store[0])
    view.switch_tab(1)
    assert view.tab_name == "Response"
    assert trimmed(view, (70, 9)) == [
        TAB_BAR,
        "HTTP/1.1 200 OK",
        "Content-Type: application/json",
        "content-length: 8",
        "",
        "── JSON [m: auto]",
        "{",
        '  "a": 1',
        "}",
    ]


def test_tabs_cycle_both_ways(store):
    view = FlowView(store[0])
    names = []
    for _ in range(5):
        names.append(view.tab_name)
        view.switch_tab(1)
    assert names == ["Request", "Response", "Details", "Request", "Response"]
    view = FlowView(store[0])
    view.switch_tab(-1)
    assert view.tab_name == "Details"


def test_a_flow_without_a_response(store):
    view = FlowView(store[3])
    assert trimmed(view, (70, 3)) == [TAB_BAR, f"GET {LONG_URL[:66]}", f"{LONG_URL[66:]} HTTP/1.1"]
    view.show_tab("Response")
    assert trimmed(view, (70, 3)) == [TAB_BAR, "(no response yet)", ""]
    view.show_tab("Messages")  # a plain HTTP flow has no Messages tab
    assert view.tab_name == "Response"


def test_an_errored_flow(store):
    view = FlowView(store[2])
    view.show_tab("Response")
    assert trimmed(view, (70, 2)) == [TAB_BAR, "Error: Connection refused."]
    view.show_tab("Details")
    shown = trimmed(view, (70, 20))
    assert "Error: Connection refused." in shown
    assert "  TLS: no" in shown


def test_tcp_messages_tab(store):
    view = FlowView(store[4])
    assert view.tabs == ("Messages", "Details")
    stamp = hms(T0 + 4)
    assert trimmed(view, (80, 7)) == [
        " Messages   Details",
        "── 2 messages",
        f"→ {stamp}.100 6b binary",
        "    00000000  68 65 6c 6c 6f 0a                                 |hello.|",
        f"← {stamp}.200 4b binary",
        "    00000000  00 01 68 69                                       |..hi|",
        "",
    ]


def test_websocket_messages_tab_through_the_handshake_flow():
    hs, ws = ws_flow()
    ws.close_code, ws.closed_by_client = 1000, True
    view = FlowView(hs)
    view.show_tab("Messages")
    assert trimmed(view, (70, 7)) == [
        WS_TAB_BAR,
        "── 2 messages",
        f"→ {hms(T0)}.100 17b text",
        '    {"sub": "prices"}',
        f"← {hms(T0)}.200 2b binary",
        "    00000000  01 02                                             |..|",
        "closed by client: 1000",
    ]


def test_details_tab_shows_tls(store):
    flow = store[0]
    flow.client_conn.tls = TLSInfo(sni="example.com", alpn="h2", version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256")
    flow.server_conn.tls = TLSInfo(sni="example.com", version="TLSv1.3", cert_subject="CN=example.com",
                                   cert_issuer="CN=Test CA", cert_not_after=1893456000)  # 2030-01-01 UTC
    view = FlowView(flow)
    view.show_tab("Details")
    assert trimmed(view, (70, 22)) == [
        TAB_BAR,
        "Client",
        "  address: 10.0.0.7:51234",
        "  SNI: example.com",
        "  ALPN: h2",
        "  TLS version: TLSv1.3",
        "  cipher: TLS_AES_128_GCM_SHA256",
        "",
        "Server",
        "  address: example.com:80",
        "  SNI: example.com",
        "  TLS version: TLSv1.3",
        "  certificate: CN=example.com",
        "  issuer: CN=Test CA",
        "  expires: 2030-01-01",
        "",
        "Timing",
        f"  started: {time.strftime('%Y-%m-%d', time.localtime(T0))} {hms(T0)}",
        "  request complete: +10ms",
        "  response started: +125ms",
        "  response complete: +250ms",
        "",
    ]


def test_held_flow_shows_where_it_is_held():
    flow = http_flow("POST", "http://example.com/hold", req_body=b"x")
    flow.intercept()
    view = FlowView(flow)
    assert trimmed(view, (70, 2)) == [TAB_BAR + "   [held]", "POST http://example.com/hold HTTP/1.1"]
    view.held_stage = "request"
    view.refresh()
    assert trimmed(view, (70, 2))[0] == TAB_BAR + "   [held at request]"


def test_search_highlights_and_focuses(store):
    view = FlowView(store[1])
    assert view.find("alice", start=0)
    assert view.walker.focus == 7
    canvas = view.render((70, 14), True)
    assert attrs(canvas, 8) == {"highlight"}  # row 0 is the tab bar
    assert attrs(canvas, 6) != {"highlight"}
    assert not view.find("no such text")


# -- status bar, prompt, help --------------------------------------------------------------------------------

def test_status_bar_info_and_message():
    bar = StatusBar()
    bar.set_info([("statusbar_key", " 127.0.0.1:8080 "), ("statusbar", " regular "), ("statusbar", " flows: 3/5 ")])
    bar.set_message(("error", "invalid filter: ~c abc"))
    assert lines(bar, (50,)) == [
        " 127.0.0.1:8080  regular  flows: 3/5              ",
        "invalid filter: ~c abc                            ",
    ]
    info = next(iter(bar.render((50,)).content()))
    assert info[-1][0] == "statusbar" and info[-1][2].endswith(b"   ")  # the info line is a bar, the full width


def test_status_bar_clips_instead_of_wrapping():
    bar = StatusBar()
    bar.set_info([("statusbar", " " + "x" * 100 + " ?:help ")])
    assert len(lines(bar, (40,))) == 2


def test_status_bar_shows_a_prompt():
    answers = []
    bar = StatusBar()
    bar.set_info(" info ")
    prompt = Prompt("Filter: ", "~u x", answers.append)
    bar.show(prompt)
    assert trimmed(bar, (40,)) == [" info", "Filter: ~u x"]
    for key in ("end", "y", "z"):  # a pre-filled answer starts selected: End keeps it
        bar.keypress((40,), key)
    bar.keypress((40,), "enter")
    assert answers == ["~u xyz"]
    prompt.keypress((40,), "esc")
    assert answers == ["~u xyz", None]


def test_help_lists_the_keys_of_a_view_then_the_global_ones():
    out = trimmed(help_widget(["flowlist", "global"]), (80, 60))
    assert out[0].startswith("┌") and " Keys " in out[0]
    assert out[1].startswith("│Every flow through the proxy.")  # what the view is for comes first
    assert "│flowlist keys" + " " * 65 + "│" in out
    body = [line.strip("│").rstrip() for line in out]
    assert body.index("  e                edit the flow") < body.index("  j, down          next flow")
    assert "  j, down          next flow" in body
    assert "  page down, space page down" in body  # long key names stay apart from their help
    assert "  enter            open the flow" in body
    assert body.index("global keys") > body.index("flowlist keys")
    assert "  Q                quit (asks to confirm)" in body
    assert any("closes this help" in line for line in body)


def test_help_hides_keys_the_view_already_uses():
    body = [line.strip("│").rstrip() for line in trimmed(help_widget(["pending", "global"]), (80, 40))]
    assert "pending keys" in body and "flowlist keys" not in body
    assert "  a                forward it" in body
    assert sum(1 for line in body if line.startswith("  j, down")) == 1
    assert "  A                resume every held flow and message" in body


# -- the grid editor ---------------------------------------------------------------------------------------------

SIZE = (60, 8)


async def grid(rows=(("Host", "example.com"), ("Accept", "*/*"))) -> tuple[GridEditor, asyncio.Future]:
    done = asyncio.get_running_loop().create_future()
    return GridEditor("Headers", list(rows), done), done


GRID_COMMANDS = {"console.grideditor.add": GridEditor.add, "console.grideditor.delete": GridEditor.delete,
                 "console.grideditor.undo": GridEditor.undo, "console.grideditor.edit": GridEditor.edit_cell}


def press(g: GridEditor, *keys: str) -> None:
    """Keys as the app routes them: a grideditor binding runs its command, other keys go to the grid."""
    from interpose.tui import keymap

    for k in keys:
        cmd = keymap.lookup(["grideditor"], k) if g.editing is None else None
        if cmd in GRID_COMMANDS:
            GRID_COMMANDS[cmd](g)
        else:
            assert g.keypress(SIZE, k) is None, k


async def test_grid_renders_rows_in_two_columns():
    g, _ = await grid()
    assert trimmed(g, SIZE) == [
        "┌───────────────────────── Headers ────────────────────────┐",
        "│name                value                                 │",
        "│Host                example.com                           │",
        "│Accept              */*                                   │",
        "│                                                          │",
        "│enter: edit cell   a: add row   d: delete row   tab: other│",
        "│column   q: save   esc: cancel   u: undo delete   ?: keys │",
        "└──────────────────────────────────────────────────────────┘",
    ]
    assert "focus" in attrs(g.render(SIZE), 2) and "focus" not in attrs(g.render(SIZE), 3)  # the focused cell


async def test_grid_add_edit_delete_then_save():
    g, done = await grid()
    press(g, "j", "a", *"X-New", "enter", "tab", "enter", *"1", "enter")
    assert trimmed(g, SIZE)[4] == "│X-New               1                                     │"
    press(g, "k", "k", "d")
    assert not done.done()
    press(g, "q")
    assert done.result() == [("Accept", "*/*"), ("X-New", "1")]


async def test_grid_enter_then_esc_keeps_the_old_value_and_empty_rows_are_dropped():
    g, done = await grid()
    press(g, "tab", "enter", "backspace", "backspace", *"org", "esc")
    assert "example.com" in trimmed(g, SIZE)[2]
    press(g, "enter", "end", *["backspace"] * 3, *"org", "enter")  # end keeps the selected old text
    assert "example.org" in trimmed(g, SIZE)[2]
    press(g, "enter", *"example.net", "enter")  # typing replaces it
    assert "example.net" in trimmed(g, SIZE)[2]
    press(g, "enter", "end", *"x", "esc")
    press(g, "a", "enter")  # a new row left empty
    press(g, "q")
    assert done.result() == [("Host", "example.net"), ("Accept", "*/*")]


async def test_grid_esc_cancels_and_other_keys_pass_through():
    g, done = await grid(rows=())
    assert trimmed(g, SIZE)[2] == "│(no rows: a adds one)"+ " " * 37 + "│"
    assert [g.keypress(SIZE, k) for k in ("Z", "d", "j")] == ["Z", "d", "j"]  # nothing to act on: passed on
    press(g, "a", *"X-A", "enter", "tab", "enter", *"1")
    assert trimmed(g, SIZE)[2] == "│X-A                 1" + " " * 37 + "│"
    press(g, "enter")
    press(g, "esc")
    assert done.result() is None


# -- the pending pane --------------------------------------------------------------------------------------------

async def test_pending_pane_lists_held_flows_and_messages():
    flow = http_flow("POST", "http://example.com/hold", req_body=b"x")
    flow.intercept()
    _hs, ws = ws_flow()
    msg = WebSocketMessage(True, b'{"a":\n 1}', is_text=True)
    ws.add_message(msg)
    msg.intercept()
    raw = WebSocketMessage(False, b"\x00\x01\x02", is_text=False)
    ws.add_message(raw)
    raw.intercept()
    pane = PendingPane([(flow, None, "request"), (ws, msg, "websocket_message"), (ws, raw, "websocket_message")])
    assert trimmed(pane, (70, 6)) == [
        "┌────────────────────────────── Pending ─────────────────────────────┐",
        "│! request         POST http://example.com/hold                      │",
        '│! message →       {"a":  1}                                         │',
        "│! message ←       00 01 02                                          │",
        "│                                                                    │",
        "└────────────────────────────────────────────────────────────────────┘",
    ]
    assert pane.focused == (flow, None, "request")
    pane.walker.set_focus(1)
    assert pane.focused[1] is msg
    pane.set_items([])
    assert trimmed(pane, (40, 3))[1] == "│nothing is held                       │"
    assert pane.focused is None


async def test_pending_pane_neutralises_control_characters():
    _hs, ws = ws_flow()
    msg = WebSocketMessage(False, b"\x1b[2Jgotcha\x07", is_text=True)
    ws.add_message(msg)
    msg.intercept()
    pane = PendingPane([(ws, msg, "websocket_message")])
    text = "".join(t for line in pane.walker.lines for _, t in line)
    assert "gotcha" in text and not re.search("[\x00-\x1f\x7f]", text)


def test_messages_tab_marks_edited_and_injected_messages():
    hs, ws = ws_flow()
    ws.messages[0].edited = True
    ws.messages[1].injected = True
    view = FlowView(hs)
    view.show_tab("Messages")
    shown = trimmed(view, (70, 6))
    assert shown[2].startswith("✎ edited → ") and shown[4].startswith("+ injected ← ")


def test_websocket_row_shows_count_and_size():
    hs, _ = ws_flow()
    row = "".join(t for _, t in fmt.flow_row(hs, 100))
    assert "101 2 msgs 19b" in " ".join(row.split())


def test_the_flow_view_shows_trailers_after_the_body():
    from interpose.http import Headers

    f = http_flow("POST", "http://example.com/up", status=200, body=b"done", req_body=b"data", ctype="text/plain")
    f.request.trailers = Headers([("X-Checksum", "abc")])
    f.response.trailers = Headers([("X-Digest", "sha\x1b[2J")])
    view = FlowView(f)
    req = "\n".join(lines(view, (80, 14)))
    assert re.search(r"data\s*\n\s*\ntrailers:\s*\nX-Checksum: abc", req), req
    view.switch_tab(1)
    resp = "\n".join(lines(view, (80, 14)))
    assert "trailers:" in resp and "X-Digest: sha^[[2J" in resp and "\x1b" not in resp
