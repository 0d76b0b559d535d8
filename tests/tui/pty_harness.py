"""Run the real `interpose` in a pseudo-terminal and read its screen with pyte: keys in, screen out."""
from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import signal
import struct
import sys
import termios
from collections.abc import Callable
from pathlib import Path

import pyte

ROOT = Path(__file__).resolve().parents[2]

KEYS = {
    "enter": "\r", "esc": "\x1b", "tab": "\t", "shift tab": "\x1b[Z", "up": "\x1b[A", "down": "\x1b[B",
    "right": "\x1b[C", "left": "\x1b[D", "page down": "\x1b[6~", "page up": "\x1b[5~", "backspace": "\x7f",
    "ctrl s": "\x13", "ctrl f": "\x06", "ctrl o": "\x0f", "ctrl n": "\x0e", "ctrl p": "\x10", "ctrl w": "\x17",
    "ctrl d": "\x04", "ctrl t": "\x14", "ctrl a": "\x01", "ctrl e": "\x05", "ctrl u": "\x15", "ctrl k": "\x0b",
    "meta b": "\x1bb", "meta f": "\x1bf", "delete": "\x1b[3~",
    "end": "\x1b[F", "home": "\x1b[H",
}


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Terminal:
    def __init__(self, cols: int = 120, rows: int = 35) -> None:
        self.cols, self.rows = cols, rows
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.proc: asyncio.subprocess.Process | None = None
        self.fd = -1
        self.port = 0
        self._changed = asyncio.Event()

    async def start(self, *args: str, env: dict[str, str] | None = None) -> Terminal:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", self.rows, self.cols, 0, 0))
        full_env = {**os.environ, "TERM": "xterm-256color", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                    **(env or {})}
        for k in list(full_env):
            if "proxy" in k.lower():
                del full_env[k]
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "interpose.tui.app", "-p", "0", *args,
            stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=full_env, start_new_session=True,
        )
        os.close(slave)
        self.fd = master
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._read)
        m = await self.wait_for_raw(rb"proxy listening at [\d.]+:(\d+)")
        self.port = int(m.group(1))
        await self.wait_for("?:help")  # the UI is drawn, so the terminal is in raw mode: keys arrive one by one
        return self

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.fd)
            self._changed.set()
            return
        self.raw += data
        self.stream.feed(data)
        self._changed.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    async def wait_for_raw(self, pattern: bytes, timeout: float = 15) -> re.Match[bytes]:
        async with asyncio.timeout(timeout):
            while True:
                m = re.search(pattern, bytes(self.raw))
                if m:
                    return m
                self._changed.clear()
                await self._changed.wait()

    async def wait_for(self, text: str | re.Pattern[str], timeout: float = 15) -> str:
        """Wait until the screen shows `text` (a substring or a compiled regex); returns the screen."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    screen = self.text()
                    if (text.search(screen) if isinstance(text, re.Pattern) else text in screen):
                        return screen
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"screen never showed {text!r}; it shows:\n{self.text()}") from None

    async def wait_gone(self, text: str, timeout: float = 15) -> str:
        try:
            async with asyncio.timeout(timeout):
                while text in self.text():
                    self._changed.clear()
                    await self._changed.wait()
                return self.text()
        except TimeoutError:
            raise AssertionError(f"screen still shows {text!r}:\n{self.text()}") from None

    async def wait_until(self, predicate: Callable[[], bool], what: str = "the condition", timeout: float = 15) -> str:
        """Wait until `predicate()` is true (it may look at `self.screen`: text, colours); returns the screen text."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
                return self.text()
        except TimeoutError:
            raise AssertionError(f"never saw {what}; the screen shows:\n{self.text()}") from None

    async def settle(self, quiet: float = 0.15, timeout: float = 5) -> str:
        """Wait until the app has written nothing for `quiet` seconds (a redraw split over reads is complete)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            self._changed.clear()
            try:
                async with asyncio.timeout(quiet):
                    await self._changed.wait()
            except TimeoutError:
                break
        return self.text()

    def focused_line(self) -> str:
        """The text of the first screen line drawn with a background colour in its first cell (the focus row
        of a list), or "" if there is none."""
        for y in range(self.rows):
            line = self.screen.buffer[y]
            if line[0].bg != "default" or line[0].reverse:
                return "".join(line[x].data for x in range(self.cols)).rstrip()
        return ""

    def send(self, *keys: str) -> None:
        for k in keys:
            os.write(self.fd, KEYS.get(k, k).encode())

    async def paste(self, text: str) -> None:
        """Send what a terminal sends for a paste once the app turned bracketed paste on (all of it, waiting
        while the pty's buffer is full)."""
        await self.write_all(b"\x1b[200~" + text.encode() + b"\x1b[201~")

    async def write_all(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                ready: asyncio.Future[None] = loop.create_future()
                loop.add_writer(self.fd, _settle, ready)
                try:
                    await ready
                finally:
                    loop.remove_writer(self.fd)

    async def press(self, *keys: str) -> None:
        """Send keys one at a time, letting the app read each (Esc needs its own read)."""
        for k in keys:
            if k.startswith(("ctrl ", "meta ", "shift ")) and k not in KEYS:
                raise ValueError(f"unknown key {k!r}: add its bytes to KEYS (it would be typed as text)")
            self.send(k)
            await asyncio.sleep(0.05 if k == "esc" else 0)

    async def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        try:
            asyncio.get_running_loop().remove_reader(self.fd)
            os.close(self.fd)
        except OSError:
            pass
        return self.proc.returncode


async def open_held(term: Terminal, method: str = "GET", path: str = "/echo/hold") -> None:
    """Wait for the request to `path` the intercept filter holds, and open it (held at the request stage)."""
    await term.wait_for(re.compile(rf"!\s.*{method}\s+http://127\.0\.0\.1:\d+{re.escape(path)}"))
    await term.press("enter")
    await term.wait_for("[held at request]")


def grid_names(term: Terminal) -> list[str]:
    """The first column of the grid editor on screen, its header row left out."""
    return [line.strip("│ ").split()[0] for line in term.text().splitlines() if "│" in line and line.strip("│ ")][1:]


async def focus_header_row(term: Terminal, name: str, value: str) -> None:
    """In an open held flow: edit the request's headers (`e`, `h`) and move the grid's focus to the row
    `name` (its value `value`), from the first row."""
    await term.press("e")
    await term.wait_for("Edit request:")
    await term.press("h")
    await term.wait_for(re.compile(rf"│{re.escape(name)}\s+{re.escape(value)}"))
    await term.press("g")
    for _ in range(grid_names(term).index(name)):
        await term.press("j")

