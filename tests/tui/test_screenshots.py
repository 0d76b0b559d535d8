"""screenshots/make.py runs the real `interpose` with real traffic and writes SVG screenshots: run it into a
temporary folder and check every file is a well-formed SVG showing what it should, in colour."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.tui.pty_harness import ROOT

SVG = "{http://www.w3.org/2000/svg}"

EXPECTED = {
    "flowlist.svg": ["GET", "POST", "PUT", "404", "502", "/static/app.js?v=3", "/live/prices", "TCP", "4 msgs",
                     "✗", "⇄", "⇌", "●", "flows: 9/9"],
    "onboarding.svg": ["No flows yet", "curl -x http://127.0.0.1:", "--cacert", "interpose-ca-cert.pem",
                       "http://interpose.it/ through the proxy"],
    "json-response.svg": ["Request", "Response", "Details", "HTTP/1.1 200 OK", '"name"', '"interpose"'],
    "websocket-messages.svg": ["Messages", "8 messages", '"subscribe"', "101.25", "echo: bye", "|..ping.|",
                               "closed by client: 1000"],
    "intercept-edit.svg": ["Request headers", "X-Request-Id", "7f3c9a", "enter: edit cell", "held: 1",
                           "intercept: ~u /hold"],
    "addon-picker.svg": ["Addons", "add_header", "Add a header to every response", "load a script from a path"],
    "help.svg": ["Keys", "flowlist keys", "next flow", "open the flow", "mark or unmark the flow"],
    "pending.svg": ["Pending", "request", "/echo/orders/hold", "held: 1"],
    "search.svg": ["Search: json", "matches", "/json"],
    "diff.svg": ["Diff of the two marked flows", "── request", "-POST", "+POST"],
    "repeater.svg": ["Request (edit freely)", "Response 1/1", "GET /json HTTP/1.1", '"interpose"', "ctrl s: send"],
    "ws-repeater.svg": ["WebSocket handshake (edit freely)", "GET /live/prices HTTP/1.1", "Messages: connected",
                        "101.5", "echo: hello"],
}


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    out = tmp_path_factory.mktemp("shots")
    proc = subprocess.run([sys.executable, str(ROOT / "screenshots" / "make.py"), str(out)], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_screenshot_is_an_svg_showing_the_screen(shots, name):
    path = shots / name
    assert path.is_file(), f"{name} was not written"
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    texts = list(root.iter(f"{SVG}text"))
    shown = "\n".join(t.text or "" for t in texts)
    for needle in EXPECTED[name]:
        assert needle in shown, f"{name} does not show {needle!r}"
    # in colour: several text colours, and backgrounds (the status bar at least) drawn as rectangles
    assert len({t.get("fill") for t in texts}) >= 3
    assert len(list(root.iter(f"{SVG}rect"))) >= 2
    # every piece of text sits on the 120x35 grid
    assert all(float(t.get("x")) >= 0 and float(t.get("y")) > 0 for t in texts)


def test_only_the_expected_files_are_written(shots):
    assert sorted(p.name for p in shots.iterdir()) == sorted(EXPECTED)
