"""OSC 52 encoding and the local clipboard fallback."""
from __future__ import annotations

import base64
import os
import stat

from interpose.tui import clipboard


def test_osc52_plain_and_inside_tmux(monkeypatch):
    monkeypatch.delenv("TMUX", raising=False)
    seq = clipboard.osc52("héllo")
    assert seq == "\x1b]52;c;" + base64.b64encode("héllo".encode()).decode() + "\x07"
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    wrapped = clipboard.osc52("x")
    assert wrapped.startswith("\x1bPtmux;\x1b\x1b]52;c;") and wrapped.endswith("\x1b\\")


def test_local_command_used_only_with_a_desktop(monkeypatch, tmp_path):
    fake = tmp_path / "xclip"
    out = tmp_path / "copied"
    fake.write_text(f"#!/bin/sh\ncat > {out}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(clipboard, "COMMANDS", (("xclip", "-selection", "clipboard"),))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert clipboard.local_command() is None
    monkeypatch.setenv("DISPLAY", ":0")
    assert clipboard.local_command() == ("xclip", "-selection", "clipboard")
    clipboard.copy(None, "copied text")
    assert out.read_text() == "copied text"
