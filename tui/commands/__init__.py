"""Commands of the terminal UI: every action is a command, keys run command lines (keymap.py).

    base      `@tui_command(NAME)`, the actions as commands, `install` (bound to the app), `declare`
    flows     mitmproxy's flow commands (flow.mark.toggle, flow.resume, view.flows.remove, export.*, ...)
    console   console.nav.*, console.view.*, the `:` prompt, console.key.bind/unbind
    bodies    cut.clip/cut.save, `b` (save the body in view), flow.encode/decode, `n` (repeater.new)
    grideditor console.grideditor.* (the grid editor's row and cell keys)
    flowdata  cut and export (returning the values), flow.set, flow.encode.toggle, view.flows.create
    choose    console.choose(.cmd), console.command.confirm, console.key.execute.focus
    editfocus console.edit.focus (one part of the focused flow), console.bodyview ($PAGER)
    layouts   `-`: the list alone, with the flow beside it or below it (console_layout)
    more      view properties, eventstore.clear, view.flows.load, inject.*, content mode, history
    prompt    the `:` prompt: completion, history (CONFDIR/command_history), ctrl r
    repeater  the repeater's keys as commands (repeater.go, .tab, .close, .history, .ws_hex, .ws_disconnect)
    views     the command browser and the key bindings view
"""
from __future__ import annotations

from interpose.tui.commands import (  # noqa: F401 - imported for their @tui_command registrations
    bodies,
    choose,
    console,
    editfocus,
    flowdata,
    flows,
    grideditor,
    layouts,
    more,
    repeater,
)
from interpose.tui.commands.base import attach, declare, install

__all__ = ["attach", "declare", "install"]
