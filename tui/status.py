"""What the status bar says: the proxy's state in one line (most important first), messages that expire,
the quit question, and where a paste goes (or why it went nowhere)."""
from __future__ import annotations

import asyncio
import os
from typing import Any

from interpose.tui.format import truncate
from interpose.tui.widgets.lineedit import paste_into
from interpose.tui.widgets.picker import script_state

MESSAGE_TTL_S = 8.0
"""How long a status-bar message stays (errors: twice as long) unless another replaces it first."""


def expire_later(app: Any, level: str) -> None:
    """Clear the app's status message after MESSAGE_TTL_S (errors: twice that), unless another came since."""
    app._message_serial += 1
    serial = app._message_serial
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if not app.message:
        return

    def expire() -> None:
        if serial == app._message_serial and app.prompt is None:
            app.message = ""
            app.statusbar.set_message("")
            app.redraw_soon()
    loop.call_later(MESSAGE_TTL_S * (2 if level == "error" else 1), expire)


def interrupt(app: Any) -> None:
    """Ctrl-C: say what quitting loses and ask (`y` quits); a second Ctrl-C while asking quits."""
    if app._interrupting:
        app.quit.set()
        return
    app._interrupting = True

    def answer(key: str | None) -> None:
        app._interrupting = False
        if key in ("y", "Y", "ctrl c"):
            app.quit.set()
    app.ask_key(quit_question(app.store.total, app.master.options.save_stream_file), answer)
    app.redraw_soon()


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


def paste(app: Any, text: str) -> None:
    """A bracketed paste: into the prompt or the focused editor, as text in one go; else ignored, saying so."""
    target = app.prompt if app.prompt is not None else None if app.overlay is not None else app.current
    if target is not None and paste_into(target, text):
        app.redraw_soon()
        return
    if app.prompt is None:
        app.notify(f"paste ignored ({len(text):,} characters): no text field has the focus", "warn")
