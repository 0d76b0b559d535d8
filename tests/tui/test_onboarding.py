"""Onboarding in the real TUI: the empty list says how to use the proxy; the onboarding page and a client that
does not trust the CA show up as flows that say what happened."""
from __future__ import annotations

import re

from tests.conftest import curl
from tests.tls_servers import TestCA, start_h1_origin
from tests.tui.pty_harness import Terminal


async def test_the_empty_list_says_how_to_use_the_proxy(tmp_path):
    term = Terminal(cols=140, rows=30)
    await term.start("--confdir", str(tmp_path / "conf"))
    try:
        screen = await term.wait_for("No flows yet")
        ca = str(tmp_path / "conf" / "interpose-ca-cert.pem")
        assert f"listening at    127.0.0.1:{term.port}" in screen
        text = re.sub(r"\s+", " ", screen)  # long lines wrap: read the words in order
        assert f"curl -x http://127.0.0.1:{term.port} --cacert {ca} https://example.com" in text
        assert "Manual proxy configuration" in text  # how to set it in a browser
        assert "http://interpose.it/ through the proxy" in text
        # the first flow replaces the text; the onboarding page is answered by the proxy itself
        code, out, err = await curl("-x", term.url, "http://interpose.it/cert/pem")
        assert code == 0 and out == (tmp_path / "conf" / "interpose-ca-cert.pem").read_bytes()
        screen = await term.wait_for(re.compile(r"GET\s+http://interpose\.it/cert/pem\s+200"))
        assert "No flows yet" not in screen
        # a view filter that hides everything says so, rather than showing the onboarding text
        await term.press("f", *"~d nothing.test", "enter")
        screen = await term.wait_for("No flow matches the view filter")
        assert "No flows yet" not in screen
    finally:
        await term.stop()


async def test_onboarding_off_leaves_the_page_out_of_the_text(tmp_path):
    term = Terminal(cols=140, rows=30)
    await term.start("--confdir", str(tmp_path / "conf"), "--set", "onboarding=false")
    try:
        screen = await term.wait_for("No flows yet")
        assert "interpose.it" not in screen
    finally:
        await term.stop()


async def test_a_client_that_does_not_trust_the_ca_shows_as_a_flow_with_the_reason(tmp_path):
    origin = await start_h1_origin(TestCA(tmp_path / "origin-ca"))
    term = Terminal(cols=160, rows=30)
    await term.start("--confdir", str(tmp_path / "conf"))
    try:
        code, out, err = await curl("-x", term.url, f"https://localhost:{origin.port}/")
        assert code != 0
        screen = await term.wait_for(re.compile(rf"✗ CONNECT localhost:{origin.port}\s+the client does not trust"))
        assert "interpose's CA" in screen
        await term.press("enter")
        await term.press("tab", "tab")
        screen = await term.wait_for("Error: the client does not trust interpose's CA")
        assert f"install {tmp_path / 'conf' / 'interpose-ca-cert.pem'} or visit" in "".join(screen.splitlines())
    finally:
        await term.stop()
        await origin.stop()
