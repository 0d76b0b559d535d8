"""What addons reach through `from interpose import ctx`: `ctx.master`, `ctx.options`, `ctx.log`.

`Master` fills these once at construction. Code inside core/ and tui/ never reads them; it is given
what it needs as arguments.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interpose.runtime.log import Log
    from interpose.runtime.master import Master
    from interpose.runtime.options import Options

master: Master = None  # type: ignore[assignment]
options: Options = None  # type: ignore[assignment]
log: Log = None  # type: ignore[assignment]


def __getattr__(name: str) -> Any:
    raise AttributeError(f"ctx has no {name!r}: use ctx.master, ctx.options or ctx.log")
