"""Copy text to the user's clipboard with OSC 52, which terminals (and tmux, and SSH sessions) carry
to the machine the user sits at."""
from __future__ import annotations

import base64
import os
import sys
from typing import Any


def osc52(text: str) -> str:
    seq = f"\x1b]52;c;{base64.b64encode(text.encode('utf-8')).decode('ascii')}\x07"
    if os.environ.get("TMUX"):
        # tmux passes an escape sequence through only when wrapped, with inner ESCs doubled.
        seq = "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return seq


def copy(app: Any, text: str) -> None:
    out = sys.__stdout__
    if out is None:
        return
    out.write(osc52(text))
    out.flush()
