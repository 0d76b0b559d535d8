"""The real `interpose` in a pty: the flow list names the address a request went to, and with the option
`showhost` (mitmproxy's; `--showhost`, `set showhost=true`, the O editor, config.yaml) the Host header's host."""
from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import curl
from tests.tui.pty_harness import Terminal


async def test_showhost_switches_the_rows_url_to_the_host_header(tmp_path: Path, origin) -> None:
    term = await Terminal().start("--confdir", str(tmp_path / "conf"))
    try:
        code, _, err = await curl("-x", term.url, "-H", "Host: elsewhere.test", f"{origin.url}/json")
        assert code == 0, err
        screen = await term.wait_for(re.compile(r"GET\s+" + re.escape(f"{origin.url}/json")))
        assert "elsewhere.test" not in screen
        await term.press(":", *"set showhost=true", "enter")
        row = await term.wait_for(re.compile(r"GET\s+" + re.escape(f"http://elsewhere.test:{origin.port}/json")))
        assert f"{origin.url}/json" not in row
        await term.press(":", *"set showhost=false", "enter")
        await term.wait_for(re.compile(r"GET\s+" + re.escape(f"{origin.url}/json")))
        await term.wait_gone("elsewhere.test")
    finally:
        await term.stop()


async def test_showhost_flag_and_the_options_editor(tmp_path: Path, origin) -> None:
    term = await Terminal().start("--confdir", str(tmp_path / "conf"), "--showhost")
    try:
        code, _, err = await curl("-x", term.url, "-H", "Host: elsewhere.test", f"{origin.url}/json")
        assert code == 0, err
        await term.wait_for(re.compile(r"GET\s+" + re.escape(f"http://elsewhere.test:{origin.port}/json")))
        await term.press("O")
        await term.wait_for("Options (")
        await term.press("page down")
        screen = await term.wait_for(re.compile(r"showhost\s+true"))
        assert "Host header's host" in screen
    finally:
        await term.stop()


async def test_the_flow_views_request_line_follows_showhost(tmp_path: Path, origin) -> None:
    """The Request tab's first line names what the list names: the address, or with showhost the Host
    header's host; switching the option while the flow view is open rebuilds it at once."""
    term = await Terminal().start("--confdir", str(tmp_path / "conf"))
    try:
        code, _, err = await curl("-x", term.url, "-H", "Host: elsewhere.test", f"{origin.url}/json")
        assert code == 0, err
        await term.wait_for(re.compile(r"GET\s+" + re.escape(f"{origin.url}/json")))
        await term.press("enter")
        screen = await term.wait_for(re.compile(r"GET " + re.escape(f"{origin.url}/json") + r" HTTP/1\.1"))
        assert "Host: elsewhere.test" in screen  # the header is there; the request line names the address
        await term.press(":", *"set showhost=true", "enter")
        screen = await term.wait_for(re.compile(r"GET " + re.escape(f"http://elsewhere.test:{origin.port}/json")
                                                + r" HTTP/1\.1"))
        assert f"GET {origin.url}/json" not in screen
        await term.press("q")  # back in the list: the row says the same
        await term.wait_for(re.compile(r"GET\s+" + re.escape(f"http://elsewhere.test:{origin.port}/json")))
        await term.press("enter")  # a flow view opened with the option on starts with it
        await term.wait_for(re.compile(r"GET " + re.escape(f"http://elsewhere.test:{origin.port}/json")
                                       + r" HTTP/1\.1"))
        await term.press(":", *"set showhost=false", "enter")
        await term.wait_for(re.compile(r"GET " + re.escape(f"{origin.url}/json") + r" HTTP/1\.1"))
        await term.wait_gone(f"GET http://elsewhere.test:{origin.port}/json")
    finally:
        await term.stop()


async def test_the_side_by_side_flow_view_follows_showhost(tmp_path: Path, origin) -> None:
    term = await Terminal(cols=200).start("--confdir", str(tmp_path / "conf"), "--set", "console_layout=horizontal")
    try:
        code, _, err = await curl("-x", term.url, "-H", "Host: elsewhere.test", f"{origin.url}/json")
        assert code == 0, err
        await term.wait_for(re.compile(r"GET " + re.escape(f"{origin.url}/json") + r" HTTP/1\.1"))  # the preview
        await term.press(":", *"set showhost=true", "enter")
        screen = await term.wait_for(re.compile(r"GET " + re.escape(f"http://elsewhere.test:{origin.port}/json")
                                                + r" HTTP/1\.1"))
        assert f"GET {origin.url}/json" not in screen and f"{origin.url}/json" not in screen
    finally:
        await term.stop()
