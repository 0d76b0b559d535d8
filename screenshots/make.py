"""Screenshots of the terminal UI, made from the real application.

    python screenshots/make.py [OUTDIR]        (default OUTDIR: the screenshots/ folder)

Runs the real `interpose` in a pseudo-terminal (tests/tui/pty_harness.py, 120x35), sends real traffic
through it to real local servers (an HTTP origin, a WebSocket server and a raw TCP echo server, all started
here), presses keys, and writes what the pyte screen shows as SVG files with the terminal's colours:

    onboarding.svg          the empty flow list: how to point a client at the proxy and trust its CA
    flowlist.svg            mixed HTTP (GET/POST, 200/404/502, a failed request), a WebSocket and a TCP flow
    json-response.svg       the Response tab of the /json flow (pretty-printed JSON)
    websocket-messages.svg  the Messages tab of the WebSocket flow (both directions, text and binary)
    addon-picker.svg        the addon picker (P)
    help.svg                the keys of the flow list (?)
    intercept-edit.svg      an intercepted request (i, ~u /hold) and its headers in the grid editor (e, h)
    pending.svg             the pending pane (p) with the held request
    search.svg              results of a search across every flow (ctrl f)
    diff.svg                the diff of two marked flows (=)
    repeater.svg            the repeater (R) after sending a request (ctrl s)
    ws-repeater.svg         the repeater on the WebSocket flow: connected again, a subscribe and a text sent
"""
from __future__ import annotations

import asyncio
import contextlib
import html
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx
import pyte
import websockets

from tests.servers import Origin
from tests.tui.pty_harness import Terminal

COLS, ROWS = 120, 35

# -- SVG from a pyte screen ------------------------------------------------------------------------------

BACKGROUND = "#1b1d23"
FOREGROUND = "#d7d7d7"
ANSI = {  # the 16 basic colours, tuned for a dark background
    "black": "#1b1d23", "red": "#e05561", "green": "#8cc265", "brown": "#d18f52", "blue": "#4aa5f0",
    "magenta": "#c162de", "cyan": "#42b3c2", "white": "#d7dae0",
    "brightblack": "#5c6370", "brightred": "#ff616e", "brightgreen": "#a5e075", "brightbrown": "#f0a45d",
    "brightblue": "#4dc4ff", "brightmagenta": "#de73ff", "brightcyan": "#4cd1e0", "brightwhite": "#e6e6e6",
}
FONT = "'DejaVu Sans Mono', 'Menlo', 'Consolas', 'Liberation Mono', monospace"
FONT_SIZE = 15
CELL_W = 9.03   # DejaVu Sans Mono advance (0.602 em); every run is also stretched to its exact width
CELL_H = 17.5   # the font's ascent + descent: box-drawing lines join up
BASELINE = 13.9  # from the top of a cell (the font's ascent)
PAD = 12


def css_colour(colour: str, default: str) -> str:
    """A pyte colour (a name like "red", "brightcyan", or six hex digits from 256/true colour) as CSS."""
    if colour == "default":
        return default
    if colour in ANSI:
        return ANSI[colour]
    if re.fullmatch(r"[0-9a-fA-F]{6}", colour):
        return "#" + colour.lower()
    return default


def _style(cell: Any, cursor: bool) -> tuple[str, str, bool, bool, bool]:
    fg = css_colour(cell.fg, FOREGROUND)
    bg = css_colour(cell.bg, BACKGROUND)
    if cell.reverse != cursor:
        fg, bg = bg, fg
    return fg, bg, bool(cell.bold), bool(cell.italics), bool(cell.underscore)


def _segments(cells: list[str]) -> list[tuple[int, int]]:
    """(first cell, cell count) of the printed parts of a run: split at gaps of two or more blanks and
    without blanks at either end, so that no renderer's whitespace handling can shift a column."""
    out: list[tuple[int, int]] = []
    i, n = 0, len(cells)
    while i < n:
        if cells[i] == " ":
            i += 1
            continue
        j = i
        while j < n and not (cells[j] == " " and (j + 1 >= n or cells[j + 1] == " ")):
            j += 1
        out.append((i, j - i))
        i = j
    return out


def screen_svg(screen: pyte.Screen, title: str = "") -> str:
    """The screen as an SVG document: a rectangle per run of non-default background, a <text> per run
    of same-styled cells (split at wide gaps), placed by column so that everything stays on the grid."""
    width = PAD * 2 + screen.columns * CELL_W
    height = PAD * 2 + screen.lines * CELL_H
    rects: list[str] = []
    texts: list[str] = []
    cur = screen.cursor
    for y in range(screen.lines):
        line = screen.buffer[y]
        runs: list[tuple[int, tuple[str, str, bool, bool, bool], list[str]]] = []
        for x in range(screen.columns):
            cell = line[x]
            style = _style(cell, not cur.hidden and (x, y) == (cur.x, cur.y))
            if runs and runs[-1][1] == style:
                runs[-1][2].append(cell.data)
            else:
                runs.append((x, style, [cell.data]))
        top = PAD + y * CELL_H
        for start, (fg, bg, bold, italic, underline), cells in runs:
            if bg != BACKGROUND:
                rects.append(f'<rect x="{PAD + start * CELL_W:.2f}" y="{top:.2f}" width="{len(cells) * CELL_W + 0.5:.2f}" '
                             f'height="{CELL_H + 0.5}" fill="{bg}"/>')
            extra = "".join((' font-weight="bold"' if bold else "", ' font-style="italic"' if italic else "",
                             ' text-decoration="underline"' if underline else ""))
            for first, count in _segments(cells):
                text = "".join(cells[first:first + count])
                texts.append(f'<text x="{PAD + (start + first) * CELL_W:.2f}" y="{top + BASELINE:.2f}" '
                             f'fill="{fg}" textLength="{count * CELL_W:.2f}" lengthAdjust="spacingAndGlyphs"{extra}>'
                             f"{html.escape(text, quote=False)}</text>")
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.2f} {height:.2f}" xml:space="preserve" '
            f'font-family="{html.escape(FONT)}" font-size="{FONT_SIZE}">')
    parts = [head]
    if title:
        parts.append(f"<title>{html.escape(title)}</title>")
    parts.append(f'<rect width="100%" height="100%" rx="6" fill="{BACKGROUND}"/>')
    parts.append('<g shape-rendering="crispEdges">')
    parts += rects
    parts.append("</g>")
    parts.append('<g style="white-space: pre">')
    parts += texts
    parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# -- servers ---------------------------------------------------------------------------------------------

async def ws_handler(ws: Any) -> None:
    """A small chat-like WebSocket server: answers a subscribe with two updates, echoes binary."""
    async for msg in ws:
        if isinstance(msg, bytes):
            await ws.send(msg[::-1])
        elif '"subscribe"' in msg:
            await ws.send('{"type": "subscribed", "channel": "prices"}')
            await ws.send('{"type": "price", "symbol": "ACME", "value": 101.25}')
            await ws.send('{"type": "price", "symbol": "ACME", "value": 101.5}')
        else:
            await ws.send(f"echo: {msg}")


async def tcp_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(b"echo: " + data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def closed_port() -> int:
    """A local port with nothing listening (so a request there fails: the proxy answers 502)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- traffic ---------------------------------------------------------------------------------------------

async def http_traffic(proxy: str, origin: Origin) -> None:
    async with httpx.AsyncClient(proxy=proxy, trust_env=False, timeout=20) as c:
        await c.get(f"{origin.url}/json")
        await c.post(f"{origin.url}/echo/api/login", json={"user": "alice", "remember": True})
        await c.get(f"{origin.url}/static/app.js?v=3")
        await c.get(f"{origin.url}/status/404")
        await c.put(f"{origin.url}/echo/api/items/7", content=b"name=lamp&qty=2",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        await c.get(f"{origin.url}/status/502")
        await c.get(f"http://127.0.0.1:{closed_port()}/api/health")  # the proxy makes up a 502


async def websocket_traffic(proxy: str, port: int) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{port}/live/prices", proxy=proxy) as ws:
        await ws.send('{"type": "subscribe", "channel": "prices"}')
        for _ in range(3):
            await ws.recv()
        await ws.send(b"\x00\x01ping\xff")
        await ws.recv()
        await ws.send("bye")
        await ws.recv()


async def tcp_traffic(proxy_port: int, port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    await reader.readuntil(b"\r\n\r\n")
    for line in (b"hello from a raw tcp client\n", b"status?\n"):
        writer.write(line)  # not HTTP, not TLS: the tunnel becomes a TCP flow at once
        await writer.drain()
        await reader.readuntil(b"\n")
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


# -- the script ------------------------------------------------------------------------------------------

async def focus_row(term: Terminal, needle: str) -> None:
    """Move the flow list's focus to the first row containing `needle`."""
    rows = term.text().splitlines()
    index = next(i for i, line in enumerate(rows) if needle in line)
    await term.press("g", *["j"] * index)
    await term.wait_until(lambda: needle in term.focused_line(), f"the focus on the row with {needle!r}")


async def make(outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    origin = await Origin().start()
    ws_server = await websockets.serve(ws_handler, "127.0.0.1", 0, ping_interval=None)
    ws_port = next(iter(ws_server.sockets)).getsockname()[1]
    tcp_server = await asyncio.start_server(tcp_echo, "127.0.0.1", 0)
    tcp_port = tcp_server.sockets[0].getsockname()[1]

    async def shot(term: Terminal, name: str, title: str) -> None:
        await term.settle()
        path = outdir / name
        path.write_text(screen_svg(term.screen, title), encoding="utf-8")
        written.append(path)
        if os.environ.get("SHOTS_TEXT"):  # for checking a layout by eye: the plain screen text too
            path.with_suffix(".txt").write_text(term.text() + "\n", encoding="utf-8")
        print(f"wrote {path}", flush=True)

    with tempfile.TemporaryDirectory(prefix="interpose-shots-") as tmp:
        term = Terminal(COLS, ROWS)
        await term.start("--confdir", str(Path(tmp) / "conf"), env={"EDITOR": "", "VISUAL": ""})
        try:
            # before any traffic: the empty list says how to use the proxy
            await term.wait_for("No flows yet")
            await shot(term, "onboarding.svg", "interpose: the empty flow list says how to start")

            # traffic: the flow list
            await http_traffic(term.url, origin)
            await websocket_traffic(term.url, ws_port)
            await tcp_traffic(term.port, tcp_port)
            await term.wait_for("flows: 9/9")
            await term.wait_for(re.compile(r"tcp://127\.0\.0\.1:\d+ +4 msgs"))
            await term.wait_for(re.compile(r"/live/prices .*101"))
            await focus_row(term, "/echo/api/login")
            await term.press("m")
            await term.wait_for("●")
            await focus_row(term, "/static/app.js")
            await shot(term, "flowlist.svg", "interpose: the flow list")

            # the /json flow: Request, then Response with pretty-printed JSON
            await focus_row(term, "/json")
            await term.press("enter")
            await term.wait_for(" Request ")
            await term.press("tab")
            await term.wait_for('"name": "interpose"')
            await shot(term, "json-response.svg", "interpose: a JSON response")
            await term.press("q")
            await term.wait_for("?:help")
            await term.wait_gone('"name": "interpose"')

            # the WebSocket flow's Messages tab
            await focus_row(term, "/live/prices")
            await term.press("enter", "tab", "tab")
            await term.wait_for("8 messages")
            await term.wait_for("closed by client")
            await shot(term, "websocket-messages.svg", "interpose: WebSocket messages")
            await term.press("q")
            await term.wait_gone("8 messages")

            # the addon picker
            await term.press("P")
            await term.wait_for("add_header")
            await shot(term, "addon-picker.svg", "interpose: the addon picker")
            await term.press("q")
            await term.wait_gone("add_header")

            # the keys of the flow list
            await term.press("?")
            await term.wait_for("flowlist keys")
            await shot(term, "help.svg", "interpose: keys of the flow list")
            await term.press("q")
            await term.wait_gone("flowlist keys")

            # intercept a request, open it, edit its headers in the grid editor
            await term.press("i")
            await term.wait_for("Intercept filter:")
            await term.press(*"~u /hold", "enter")
            await term.wait_for("intercept: ~u /hold")
            async with httpx.AsyncClient(proxy=term.url, trust_env=False, timeout=30) as client:
                held = asyncio.ensure_future(client.post(
                    f"{origin.url}/echo/orders/hold", json={"order": 1234, "qty": 2},
                    headers={"Authorization": "Bearer eyJhbGciOi.example", "X-Request-Id": "7f3c9a"}))
                await term.wait_for(re.compile(r"!\s.*POST\s+http://127\.0\.0\.1:\d+/echo/orders/hold"))
                await focus_row(term, "/echo/orders/hold")
                await term.press("enter")
                await term.wait_for("[held at request]")
                await term.press("e")
                await term.wait_for("Edit request:")
                await term.press("h")
                await term.wait_for("Request headers")
                await term.press("j", "j", "j", "j", "tab")
                await shot(term, "intercept-edit.svg", "interpose: editing the headers of an intercepted request")
                # the pending pane, then let the request go from there (request stage, then response stage)
                await term.press("esc")
                await term.wait_gone("Request headers")
                await term.press("q")
                await term.wait_gone("[held at request]")
                await term.press("p")
                await term.wait_for(re.compile(r"request\s+POST http://127\.0\.0\.1:\d+/echo/orders/hold"))
                await shot(term, "pending.svg", "interpose: the pending pane")
                await term.press("a")
                await term.wait_for(re.compile(r"response\s+POST http://127\.0\.0\.1:\d+/echo/orders/hold"))
                await term.press("a")
                await asyncio.wait_for(held, 15)
                await term.press("q")
                await term.wait_gone("Pending")

            # search every flow
            await term.press("ctrl f")
            await term.wait_for("Search all flows")
            await term.press(*"json", "enter")
            await term.wait_for(re.compile(r"\(\d+ matches\)"))
            await shot(term, "search.svg", "interpose: search results across flows")
            await term.press("q")
            await term.wait_gone("matches)")

            # diff the two marked flows (the held POST is the newest: G focuses it)
            await term.press("G")
            await term.wait_until(lambda: "/echo/orders/hold" in term.focused_line(), "the focus on the held POST")
            await term.press("m", "=")
            await term.wait_for("Diff of the two marked flows")
            await shot(term, "diff.svg", "interpose: diff of two marked flows")
            await term.press("q")
            await term.wait_gone("Diff of the two marked flows")

            # the repeater: send the /json request again and see the response below
            await focus_row(term, "/json")
            await term.press("R")
            await term.wait_for("Request (edit freely)")
            await term.press("ctrl s")
            await term.wait_for("Response 1/1")
            await shot(term, "repeater.svg", "interpose: the repeater")
            await term.press("esc")
            await term.wait_gone("Request (edit freely)")

            # the repeater on the WebSocket flow: connect again through the proxy, subscribe, say hello
            await focus_row(term, "/live/prices")
            await term.press("R")
            await term.wait_for("WebSocket handshake (edit freely)")
            await term.press("ctrl s")
            await term.wait_for("Messages: connected")
            await term.press(*'{"type": "subscribe", "channel": "prices"}', "enter")
            await term.wait_for("101.5")
            await term.press(*"hello", "enter")
            await term.wait_for("echo: hello")
            await shot(term, "ws-repeater.svg", "interpose: the WebSocket repeater")
            await term.press("ctrl d")  # close it cleanly (Esc would leave it open)
            await term.wait_for("closed: code 1000")
            await term.press("esc")
            await term.wait_gone("WebSocket handshake (edit freely)")
        finally:
            await term.stop()
            ws_server.close()
            tcp_server.close()
            await origin.stop()
    return written


def main(argv: list[str]) -> int:
    outdir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    started = time.monotonic()
    written = asyncio.run(make(outdir))
    print(f"{len(written)} screenshots in {time.monotonic() - started:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
