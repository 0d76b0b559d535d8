"""What addons reach through `from interpose import ctx`: `ctx.master`, `ctx.options`, `ctx.log`.

`Master` fills these once at construction. Code inside the engine and the TUI never reads them; it is
given what it needs as arguments. (`master` is typed loosely on purpose: naming the `Master` class
here would tie this module and the runtime in a circle. What addons use of it is `ctx.master.addons`,
`ctx.master.replay(flow)` and `ctx.master.shutdown_soon()`.)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interpose.runtime.log import Log
    from interpose.runtime.options import Options

master: Any = None
options: Options = None  # type: ignore[assignment]
log: Log = None  # type: ignore[assignment]


def __getattr__(name: str) -> Any:
    raise AttributeError(f"ctx has no {name!r}: use ctx.master, ctx.options or ctx.log")
