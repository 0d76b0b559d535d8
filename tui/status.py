"""What the status bar says: the proxy's state in one line (most important first), and the quit question."""
from __future__ import annotations

import os
from typing import Any

from interpose.tui.format import truncate
from interpose.tui.widgets.picker import script_state


def info_parts(master: Any, address: tuple[str, int], store: Any, held: int, follow: bool) -> list[Any]:
    """The first status line as markup. A narrow terminal cuts its end, so the most important part comes first."""
    opts = master.options
    host, port = address
    parts: list[Any] = [("statusbar_key", f" {host}:{port} "), ("statusbar", f" {opts.mode} ")]
    if held:
        parts.append(("statusbar_key", f" held: {held} "))
    parts.append(("statusbar", f" flows: {len(store)}/{store.total} "))
    if opts.intercept:
        parts.append(("statusbar", f" intercept: {opts.intercept} @ {opts.intercept_at} "))
    parts.append(("statusbar", f" order: {store.order}{' reversed' if store.reverse else ''} "))
    if store.filter_expr:
        parts.append(("statusbar", f" filter: {store.filter_expr} "))
    if not follow:
        parts.append(("statusbar", " follow: off "))
    scripts = opts.scripts
    if scripts:
        failed = script_state(master)[1]
        shown = []
        for p in scripts:
            name = os.path.splitext(os.path.basename(p))[0]
            error = failed.get(os.path.abspath(os.path.expanduser(p)))
            shown.append(("statusbar", f" {name} ") if error is None
                         else ("error", f" {name} failed: {truncate(error, 32)} "))  # all of it in P
        parts += [("statusbar", " addons:"), *shown]
    parts.append(("statusbar", " ?:help "))
    return parts


def quit_question(flows: int, save_target: str | None) -> str:
    """What Ctrl-C asks: what quitting loses (until sessions keep everything)."""
    if save_target:
        return f"{flows} flows (saved to {save_target.lstrip('+')}) — quit? (y/n) "
    if flows:
        return f"{flows} flow{'s' if flows != 1 else ''} not saved (w saves them) — quit? (y/n) "
    return "Quit? (y/n) "
