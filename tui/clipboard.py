"""Copy text to the user's clipboard with OSC 52, which terminals (and tmux, and SSH sessions) carry
to the machine the user sits at, plus a local clipboard command (wl-copy, xclip, xsel, pbcopy) when
a desktop session is there."""
from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from typing import Any


def osc52(text: str) -> str:
    seq = f"\x1b]52;c;{base64.b64encode(text.encode('utf-8')).decode('ascii')}\x07"
    if os.environ.get("TMUX"):
        # tmux passes an escape sequence through only when wrapped, with inner ESCs doubled.
        seq = "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return seq


# Local clipboard commands, tried after OSC 52 when a desktop session is there to receive them.
COMMANDS = (("wl-copy",), ("xclip", "-selection", "clipboard"), ("xsel", "--clipboard", "--input"), ("pbcopy",))


def local_command() -> tuple[str, ...] | None:
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform == "darwin"):
        return None
    for cmd in COMMANDS:
        if shutil.which(cmd[0]):
            return cmd
    return None


def copy(app: Any, text: str) -> None:
    """OSC 52 always (it reaches the user's terminal, even over SSH); a local clipboard command too, if any."""
    out = sys.__stdout__
    if out is not None:
        out.write(osc52(text))
        out.flush()
    cmd = local_command()
    if cmd is not None:
        try:
            subprocess.run(cmd, input=text.encode("utf-8"), timeout=2, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            pass
