"""The options editor (`O`) in the real `interpose`, in a pty: only what the core took is shown, refusals
say why, listener options re-bind, booleans toggle, list items are edited one per row."""
from __future__ import annotations

import asyncio
import re
import socket

import httpx

from tests.tui.pty_harness import Terminal


def focused(term: Terminal) -> str:
    """The option row drawn with the focus colour (inside the editor's frame)."""
    for y in range(term.rows):
        line = term.screen.buffer[y]
        if line[1].bg != "default" or line[1].reverse:
            return "".join(line[x].data for x in range(term.cols)).strip("│ ")
    return ""


async def goto(term: Terminal, name: str) -> None:
    """Open the options editor and move the cursor to the option `name`."""
    await term.press("O")
    await term.wait_for("Options (enter: edit or toggle")
    await term.wait_until(lambda: focused(term) != "", "the focused option")
    for _ in range(120):
        line = focused(term)
        if line.startswith(name + " "):
            return
        await term.press("j")
        await term.wait_until(lambda left=line: focused(term) != left, f"the cursor to leave {line!r}")
    raise AssertionError(f"no option {name} in the editor:\n{term.text()}")


def row(term: Terminal, name: str) -> str:
    return next((line.strip("│ ") for line in term.text().splitlines() if line.strip("│ ").startswith(name + " ")), "")


async def refused(port: int) -> bool:
    try:
        _, w = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    w.close()
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_boolean_toggles_with_enter(term):
    await goto(term, "ssl_insecure")
    assert re.match(r"ssl_insecure\s+false", row(term, "ssl_insecure"))
    await term.press("enter")
    await term.wait_for("ssl_insecure = true")
    assert re.match(r"ssl_insecure\s+true", row(term, "ssl_insecure"))
    await term.press("enter")
    await term.wait_for("ssl_insecure = false")


async def test_an_invalid_mode_is_refused_with_the_reason_and_never_shown(term):
    await goto(term, "mode")
    await term.press("enter")
    await term.wait_for("mode: regular")
    await term.press(*"regulcustom-tag", "enter")  # the selected old value is replaced
    screen = await term.wait_for("mode (option mode: unknown mode 'regulcustom-tag'")
    assert screen.rstrip().endswith("regulcustom-tag")  # the typed text is kept for a fix
    await term.press("esc")
    screen = await term.wait_gone("unknown mode")
    assert re.match(r"mode\s+regular\s", row(term, "mode"))
    assert " regular " in screen and "regulcustom" not in screen


async def test_listen_port_rebinds_and_the_status_bar_follows(term, origin):
    old, new = term.port, free_port()
    await goto(term, "listen_port")
    await term.press("enter", "ctrl u", *str(new), "enter")
    await term.wait_for(f"listen_port = {new}; proxy listening at 127.0.0.1:{new}")
    await term.wait_for(f" 127.0.0.1:{new} ")
    assert await refused(old)
    await term.press("q")  # back to the empty list: its help names the new address, not the old one
    screen = await term.wait_for(f"curl -x http://127.0.0.1:{new} ")
    assert f"listening at    127.0.0.1:{new}" in screen and f":{old}" not in screen
    async with httpx.AsyncClient(proxy=f"http://127.0.0.1:{new}", timeout=30) as client:
        assert (await client.get(f"{origin.url}/json")).status_code == 200


async def test_a_port_in_use_is_refused_and_the_proxy_stays(term, origin):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        await goto(term, "listen_port")
        await term.press("enter", *str(port), "enter")
        await term.wait_for(f"cannot listen at 127.0.0.1:{port}: Address already in use")
        await term.press("esc")
        await term.wait_gone("Address already in use")
        assert f" 127.0.0.1:{term.port} " in term.text()
        async with httpx.AsyncClient(proxy=term.url, timeout=30) as client:
            assert (await client.get(f"{origin.url}/json")).status_code == 200
    finally:
        busy.close()


async def test_mode_socks5_takes_effect(term):
    await goto(term, "mode")
    await term.press("enter", *"socks5", "enter")
    await term.wait_for(f"mode = socks5; proxy listening at 127.0.0.1:{term.port}")
    r, w = await asyncio.open_connection("127.0.0.1", term.port)
    w.write(b"\x05\x01\x00")
    async with asyncio.timeout(10):
        assert await r.readexactly(2) == b"\x05\x00"
    w.close()


async def test_a_list_option_is_edited_one_item_per_row_commas_and_all(term):
    await goto(term, "ignore_hosts")
    await term.press("enter")
    await term.wait_for("ignore_hosts (one item per row)")
    await term.press("a", *"^(a|b),c\\.example:443$", "enter", "a", *"d", "enter", "q")
    await term.wait_for('ignore_hosts = ["^(a|b),c\\\\.example:443$", "d"]')
    await term.press("enter")  # open again: the two items, each in its own row
    screen = await term.wait_for("ignore_hosts (one item per row)")
    assert re.search(r"│\^\(a\|b\),c\\\.example:443\$\s+│", screen)
    assert re.search(r"│d\s+│", screen)
    await term.press("a", *"[bad", "enter", "q")  # an invalid regex: refused, with the reason
    await term.wait_for("refused: option ignore_hosts: invalid regular expression '[bad'")


async def test_a_newer_message_replaces_the_older_and_it_expires_in_its_time(term):
    from interpose.tui.status import MESSAGE_TTL_S

    await goto(term, "ssl_insecure")
    await term.press("enter")
    await term.wait_for("ssl_insecure = true")
    await term.press("enter")
    screen = await term.wait_for("ssl_insecure = false")  # the newer message replaces the older one
    assert "ssl_insecure = true" not in screen
    loop = asyncio.get_running_loop()
    shown = loop.time()
    await term.wait_gone("ssl_insecure = false", timeout=MESSAGE_TTL_S + 10)
    assert loop.time() - shown >= MESSAGE_TTL_S - 1  # it stayed until its own time was up, then went
    assert f" 127.0.0.1:{term.port} " in term.text()  # the status line itself stays
