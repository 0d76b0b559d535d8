"""What addons reach through `from core import ctx`: `ctx.master`, `ctx.options`, `ctx.log`.

`Master` fills these once at construction. Code inside core/ and tui/ never reads them; it is given
what it needs as arguments.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.log import Log
    from core.master import Master
    from core.options import Options

master: Master = None  # type: ignore[assignment]
options: Options = None  # type: ignore[assignment]
log: Log = None  # type: ignore[assignment]


def __getattr__(name: str) -> Any:
    raise AttributeError(f"ctx has no {name!r}: use ctx.master, ctx.options or ctx.log")
