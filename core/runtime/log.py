"""Log entries and the `ctx.log` facade that addons use."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

LEVELS = ("debug", "info", "warn", "error")


@dataclass(frozen=True)
class LogEntry:
    msg: str
    level: str
    """Exactly one of debug, info, warn, error."""
    timestamp: float = field(default_factory=time.time)

    def __str__(self) -> str:
        return self.msg


class Log:
    """`ctx.log.info("...")` and friends; hands entries to a sink (the master)."""

    def __init__(self, sink: Callable[[str, str], None]) -> None:
        self._sink = sink

    def debug(self, msg: object) -> None:
        self._sink(str(msg), "debug")

    def info(self, msg: object) -> None:
        self._sink(str(msg), "info")

    def warn(self, msg: object) -> None:
        self._sink(str(msg), "warn")

    warning = warn

    def error(self, msg: object) -> None:
        self._sink(str(msg), "error")

    def __call__(self, msg: object, level: str = "info") -> None:
        self._sink(str(msg), level if level in LEVELS else "info")
