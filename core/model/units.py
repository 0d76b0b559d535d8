"""Sizes as people read them: `human_size(1234)` → `'1.2k'` (or `'1.2 KiB'`).

One formatter for the dump output and the terminal UI. (`interpose.runtime.options.parse_size` reads
sizes the other way, for options.)
"""
from __future__ import annotations

__all__ = ["human_size"]


def human_size(n: int | None, long: bool = False) -> str:
    """A byte count in binary units, "" for None.

    Short form (lists and status lines): `512` → `'512b'`, `1234` → `'1.2k'`, `12345` → `'12k'`, then m, g.
    `long` form (headings): `512` → `'512 B'`, `1234` → `'1.2 KiB'`, `12345` → `'12.1 KiB'`, then MiB, GiB.
    """
    if n is None:
        return ""
    if n < 1024:
        return f"{n} B" if long else f"{n}b"
    value = float(n)
    for unit in ("k", "m", "g"):
        value /= 1024
        if value < 1024 or unit == "g":
            break
    if long:
        return f"{value:.1f} {unit.upper()}iB"
    return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
