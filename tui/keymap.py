"""Every key of the terminal UI, as data: (context, key) → the command line it runs, and help text.

Contexts: `global` (everywhere unless a view overrides the key), `flowlist`, `flowview`, `pending`,
`picker`, `options`, `eventlog`, `help`, `commands`, `keybindings`, `search`, `diff`, `rules`,
`repeater`, `grideditor`. `?` shows the keys of the current context plus the global ones, as bound now.
The repeater is a text editor: its editor keeps the keys a text needs, and a key it leaves runs the
`repeater` binding (the view looks it up; `f1` opens its help). BINDINGS is the live keymap: `bind`,
`unbind` and `load_keys_yaml` (CONFDIR/keys.yaml, mitmproxy's format) change it; `reset` puts the
defaults back.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class Binding:
    context: str
    keys: tuple[str, ...]
    cmd: str
    """The command line the key runs."""
    help: str


BINDINGS: list[Binding] = [
    # global
    Binding("global", ("?",), "console.view.help", "show the keys of this view"),
    Binding("global", ("Q",), "console.exit", "quit (asks to confirm)"),
    Binding("global", ("q", "esc"), "console.view.pop", "back to the previous view"),
    Binding("global", ("E",), "console.view.eventlog", "show or hide the event log"),
    Binding("global", ("P",), "console.view.addons", "addon picker: load and unload addons"),
    Binding("global", ("O",), "console.view.options", "options editor"),
    Binding("global", ("i",), "intercept.set", "set the intercept filter"),
    Binding("global", ("A",), "flow.resume_all", "resume every held flow and message"),
    Binding("global", ("p",), "pending.show", "pending pane: everything held"),
    Binding("global", ("ctrl f",), "search.global", "search every flow (URL, headers, bodies, messages)"),
    Binding("global", ("y",), "copy", "copy the focused thing to the clipboard (OSC 52, works over SSH)"),
    Binding("global", ("S",), "sticky.show", "sticky rules: list and delete"),
    Binding("global", ("w",), "flows.save", "save flows to a file"),
    Binding("global", (":",), "console.command", "command prompt (Tab completes, up/down history, ctrl r search)"),
    Binding("global", ("C",), "console.view.commands", "every command, with its help (Enter puts it in the prompt)"),
    Binding("global", ("-",), "console.layout.cycle", "layout: the list alone, list and flow side by side, stacked"),
    Binding("global", ("ctrl k",), "console.view.keybindings", "key bindings: list, add, edit, unbind"),
    Binding("global", ("L",), "flows.load", "load flows from a file"),
    # flow list
    Binding("flowlist", ("j", "down"), "console.nav.down", "next flow"),
    Binding("flowlist", ("k", "up"), "console.nav.up", "previous flow"),
    Binding("flowlist", ("page down", " "), "console.nav.pagedown", "page down"),
    Binding("flowlist", ("page up",), "console.nav.pageup", "page up"),
    Binding("flowlist", ("g", "home"), "console.nav.start", "first flow"),
    Binding("flowlist", ("G", "end"), "console.nav.end", "last flow"),
    Binding("flowlist", ("enter",), "console.view.flow @focus", "open the flow"),
    Binding("flowlist", ("f",), "list.filter", "view filter (empty shows all)"),
    Binding("flowlist", ("F",), "list.follow", "follow new flows on/off"),
    Binding("flowlist", ("o",), "list.order", "change the order (time, method, url, size, duration, status)"),
    Binding("flowlist", ("v",), "list.reverse", "reverse the order"),
    Binding("flowlist", ("m",), "flow.mark.toggle @focus", "mark or unmark the flow"),
    Binding("flowlist", ("U",), "flow.mark @all false", "unmark all flows"),
    Binding("flowlist", ("n",), "console.command repeater.new http://", "a new request in the repeater"),
    Binding("flowlist", (";",), "console.command flow.comment @focus", "comment the flow (shown in the list)"),
    Binding("flowview", (";",), "console.command flow.comment @focus", "comment the flow (shown in the list)"),
    Binding("flowlist", ("M",), "view.properties.marked.toggle", "show only marked flows on/off"),
    Binding("flowlist", ("d",), "view.flows.remove @focus", "delete the flow"),
    Binding("flowlist", ("z",), "view.clear", "clear the flow list"),
    Binding("flowlist", ("a",), "flow.resume.focus", "resume the flow"),
    Binding("flowlist", ("X",), "flow.kill.focus", "kill the flow"),
    Binding("flowlist", ("r",), "replay.client @focus", "replay the request"),
    Binding("flowlist", ("D",), "view.flows.duplicate @focus", "duplicate the flow"),
    Binding("flowlist", ("x",), "flow.export", "export as curl / httpie / raw"),
    Binding("flowlist", ("e",), "flow.edit", "edit the flow"),
    Binding("flowlist", ("=",), "flows.diff", "diff the two marked flows"),
    Binding("flowlist", ("R",), "repeater.send",
            "send the request to the repeater (a new tab; a WebSocket tab for a WebSocket)"),
    Binding("flowview", ("R",), "repeater.send",
            "send the request to the repeater (a new tab; a WebSocket tab for a WebSocket)"),
    Binding("flowlist", ("K",), "sticky.respond",
            "keep the response: answer matching requests with it (server not asked)"),
    Binding("flowview", ("K",), "sticky.respond",
            "keep the response: answer matching requests with it (server not asked)"),
    Binding("flowlist", ("|",), "list.filter_toggle", "turn the view filter off and on again"),
    Binding("flowlist", ("Z",), "list.delete_matching", "delete every flow matching a filter"),
    # flow view
    Binding("flowview", ("tab",), "view.next_tab", "next tab (Request, Response, Messages, Details)"),
    Binding("flowview", ("shift tab",), "view.prev_tab", "previous tab"),
    Binding("flowview", ("j", "down"), "console.nav.down", "scroll down"),
    Binding("flowview", ("k", "up"), "console.nav.up", "scroll up"),
    Binding("flowview", ("page down", " "), "console.nav.pagedown", "page down"),
    Binding("flowview", ("page up",), "console.nav.pageup", "page up"),
    Binding("flowview", ("g", "home"), "console.nav.start", "top"),
    Binding("flowview", ("G", "end"), "console.nav.end", "bottom"),
    Binding("flowview", ("b",), "console.body.save",
            "save the body in view to a file (decoded; raw_content for the bytes as sent)"),
    Binding("flowview", ("m",), "view.content_mode", "content view: auto, json, html, xml, hex, raw…"),
    Binding("flowview", ("/",), "view.search", "search in this view"),
    Binding("flowview", ("n",), "view.search_next", "next search match"),
    Binding("flowview", ("e",), "flow.edit", "edit (method, URL, headers, body…)"),
    Binding("flowview", ("V",), "flow.revert @focus", "revert edits"),
    Binding("flowview", ("s",), "sticky.make", "make this edit a standing rule for matching flows"),
    Binding("flowview", ("a",), "flow.resume.focus", "resume the flow (or the held message in Messages)"),
    Binding("flowview", ("X",), "flow.kill.focus", "kill the flow"),
    Binding("flowview", ("B",), "flow.resume_buffered",
            "held at a header stage: buffer the body, stop again when it is in"),
    Binding("flowview", ("T",), "flow.resume_streamed", "held at a header stage: stream the body through"),
    Binding("flowview", ("r",), "replay.client @focus", "replay the request"),
    Binding("flowview", ("x",), "flow.export", "export as curl / httpie / raw"),
    Binding("flowview", ("d",), "message.drop", "drop the held message (Messages tab)"),
    # pending pane
    Binding("pending", ("j", "down"), "console.nav.down", "next held item"),
    Binding("pending", ("k", "up"), "console.nav.up", "previous held item"),
    Binding("pending", ("enter",), "pending.open", "open the flow (at the message for a held message)"),
    Binding("pending", ("a",), "pending.resume", "forward it"),
    Binding("pending", ("X",), "pending.kill", "kill the flow"),
    Binding("pending", ("d",), "pending.drop", "drop the held message"),
    Binding("pending", ("e",), "pending.edit", "edit the held message (or open the held flow to edit it)"),
    Binding("pending", ("n",), "pending.inject", "inject a new message into that WebSocket/TCP flow"),
    # addon picker, options editor, event log
    Binding("picker", ("j", "down"), "console.nav.down", "next addon"),
    Binding("picker", ("k", "up"), "console.nav.up", "previous addon"),
    Binding("picker", ("enter",), "picker.toggle", "load or unload the addon (or load a path)"),
    Binding("options", ("j", "down"), "console.nav.down", "next option"),
    Binding("options", ("k", "up"), "console.nav.up", "previous option"),
    Binding("options", ("enter",), "options.edit", "edit the option (a boolean toggles; a list: one item per row)"),
    Binding("options", ("r",), "console.options.reset.focus", "reset the option to its default"),
    Binding("options", ("w",), "console.options.file save", "save the options to CONFDIR/config.yaml (path asked)"),
    Binding("options", ("L",), "console.options.file load", "load options from CONFDIR/config.yaml (path asked)"),
    # search results and diff
    Binding("search", ("j", "down"), "console.nav.down", "next match"),
    Binding("search", ("k", "up"), "console.nav.up", "previous match"),
    Binding("search", ("enter",), "search.open", "open the flow at the match"),
    Binding("diff", ("j", "down"), "console.nav.down", "scroll down"),
    Binding("diff", ("k", "up"), "console.nav.up", "scroll up"),
    Binding("rules", ("j", "down"), "console.nav.down", "next rule"),
    Binding("rules", ("k", "up"), "console.nav.up", "previous rule"),
    Binding("rules", ("d",), "sticky.delete", "delete the rule"),
    # the repeater: keys its editor leaves (a WebSocket tab's enter, tab and page up/down are the view's own)
    Binding("repeater", ("ctrl s",), "repeater.go",
            "send the request; WebSocket tab: connect (closing the old connection)"),
    Binding("repeater", ("ctrl t",), "repeater.ws_hex", "WebSocket tab: message line as text or as hex (binary)"),
    Binding("repeater", ("ctrl d",), "repeater.ws_disconnect", "WebSocket tab: close the connection"),
    Binding("repeater", ("ctrl n",), "repeater.tab next", "next tab"),
    Binding("repeater", ("ctrl p",), "repeater.tab prev", "previous tab"),
    Binding("repeater", ("ctrl w",), "repeater.close", "close the tab (and its connection)"),
    Binding("repeater", ("ctrl o",), "repeater.history older", "older response of the tab"),
    Binding("repeater", ("ctrl l",), "repeater.history newer", "newer response of the tab"),
    Binding("repeater", ("esc",), "console.view.pop", "back to the flow list (connections stay open)"),
    Binding("repeater", ("f1",), "console.view.help", "show these keys"),
    # command browser and key bindings
    Binding("commands", ("j", "down"), "console.nav.down", "next command"),
    Binding("commands", ("k", "up"), "console.nav.up", "previous command"),
    Binding("commands", ("enter",), "console.command.focus", "put the command in the prompt"),
    Binding("keybindings", ("j", "down"), "console.nav.down", "next binding"),
    Binding("keybindings", ("k", "up"), "console.nav.up", "previous binding"),
    Binding("keybindings", ("a",), "console.key.add", "add a binding (context, key, command)"),
    Binding("keybindings", ("enter", "e"), "console.key.edit.focus", "change the command of the binding"),
    Binding("keybindings", ("d",), "console.key.unbind.focus", "unbind the key"),
    Binding("keybindings", ("x",), "console.key.execute.focus", "run the binding's command"),
    # grid editor (headers, query, form, list options); j/k, tab, q and esc are the grid's own
    Binding("grideditor", ("enter",), "console.grideditor.edit", "edit the cell (enter keeps it, esc drops it)"),
    Binding("grideditor", ("a",), "console.grideditor.add", "add a row after the cursor"),
    Binding("grideditor", ("A",), "console.grideditor.insert", "insert a row before the cursor"),
    Binding("grideditor", ("d",), "console.grideditor.delete", "delete the row"),
    Binding("grideditor", ("u",), "console.grideditor.undo", "bring back the last deleted row"),
    Binding("grideditor", ("e",), "console.grideditor.editor", "edit the cell in $EDITOR"),
    Binding("grideditor", ("r",), "console.command console.grideditor.load", "read a file into the cell"),
    Binding("grideditor", ("R",), "console.command console.grideditor.load_escaped",
            "read a file with a Python-escaped string into the cell"),
    Binding("grideditor", ("?",), "console.view.help", "show these keys"),
    Binding("grideditor", ("s",), "console.command console.grideditor.save", "save the grid as CSV"),
    # help
    Binding("help", ("q", "esc", "?"), "console.view.pop", "close the help"),
]
DEFAULTS = list(BINDINGS)
CONTEXTS = ("global", "flowlist", "flowview", "options", "help", "eventlog", "pending", "repeater",
            "grideditor", "commands", "keybindings", "picker", "search", "diff", "rules")
MITMPROXY_ONLY_CONTEXTS = ("chooser", "dataviewer", "commonkey")
"""mitmproxy's contexts without a view here: their bindings are reported and skipped."""
_KEY_NAMES = {"space": " ", "return": "enter", "escape": "esc", "pgup": "page up", "pgdn": "page down"}


def key_name(key: str) -> str:
    """mitmproxy's (and a user's) spelling of a key as urwid names it: `space` → " ", `Ctrl-A` → `ctrl a`."""
    k = key.strip()
    low = k.lower().replace("-", " ").replace("+", " ")
    for mod in ("ctrl ", "meta ", "shift "):
        if low.startswith(mod):
            return mod + _KEY_NAMES.get(low[len(mod):].strip(), low[len(mod):].strip())
    return _KEY_NAMES.get(low, k if len(k) == 1 else low)


def reset() -> None:
    BINDINGS[:] = DEFAULTS


def bind(contexts: list[str], key: str, cmd: str, help: str = "") -> None:
    """Bind `key` to `cmd` in each context (replacing what it did there), at once."""
    key = key_name(key)
    unbind(contexts, key)
    for ctx in contexts:
        BINDINGS.insert(0, Binding(ctx, (key,), cmd, help or cmd))


def unbind(contexts: list[str], key: str) -> int:
    """Take `key` off in each context. Returns how many bindings lost it."""
    key = key_name(key)
    n = 0
    for b in list(BINDINGS):
        if b.context in contexts and key in b.keys:
            n += 1
            rest = tuple(k for k in b.keys if k != key)
            j = BINDINGS.index(b)
            if rest:
                BINDINGS[j] = Binding(b.context, rest, b.cmd, b.help)
            else:
                del BINDINGS[j]
    return n


def load_keys_yaml(path: str, known: Callable[[str], bool]) -> list[str]:
    """Apply CONFDIR/keys.yaml (mitmproxy's format: a list of {key, cmd, ctx, help}). `known(cmd)` says
    whether a command line names a command interpose has. Returns what to report: bindings skipped
    (unknown commands or contexts). A file that is not such a list raises ValueError naming the line,
    and nothing of it is applied."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ValueError(f"{path}: cannot read: {e.strerror or e}") from None
    path = os.path.basename(path)  # messages name the file short: they go in one status line
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    if data is None:
        return []
    if not isinstance(data, list) or root is None:
        raise ValueError(f"{path} line 1: expected a list of {{key, cmd, ctx, help}} entries")
    todo = []
    for entry, node in zip(data, root.value, strict=True):
        line = node.start_mark.line + 1
        if not isinstance(entry, dict):
            raise ValueError(f"{path} line {line}: expected {{key: ..., cmd: ..., ctx: [...]}}")
        extra = set(entry) - {"key", "cmd", "ctx", "help"}
        if extra:
            raise ValueError(f"{path} line {line}: unknown field {sorted(extra)[0]!r} (key, cmd, ctx, help)")
        key, cmd, ctx = entry.get("key"), entry.get("cmd"), entry.get("ctx", ["global"])
        if not isinstance(key, str) or not key or not isinstance(cmd, str) or not cmd.strip():
            raise ValueError(f"{path} line {line}: every entry needs a key and a cmd")
        if isinstance(ctx, str):
            ctx = [ctx]
        if not isinstance(ctx, list) or not all(isinstance(c, str) for c in ctx):
            raise ValueError(f"{path} line {line}: ctx must be a list of contexts")
        todo.append((line, key, cmd.strip(), ctx, str(entry.get("help") or "")))
    report = []
    for line, key, cmd, ctx, help in todo:
        if not known(cmd):
            report.append(f"line {line}: {cmd.split()[0]} (not an interpose command)")
            continue
        bad = [c for c in ctx if c not in CONTEXTS]
        if bad:
            report.append(f"line {line}: context {bad[0]} (not in interpose)")
        good = [c for c in ctx if c in CONTEXTS]
        if good:
            bind(good, key, cmd, help)
    return report


def lookup(contexts: list[str], key: str) -> str | None:
    """The command for `key`, trying the contexts in order (the current view first, `global` last)."""
    for ctx in contexts:
        for b in BINDINGS:
            if b.context == ctx and key in b.keys:
                return b.cmd
    return None


def help_for(contexts: list[str]) -> list[tuple[str, list[Binding]]]:
    """(context, bindings) for the help overlay, current context first, duplicates hidden."""
    seen: set[str] = set()
    out = []
    for ctx in contexts:
        rows = []
        for b in BINDINGS:
            if b.context != ctx:
                continue
            fresh = tuple(k for k in b.keys if k not in seen)
            if fresh:
                seen.update(fresh)
                rows.append(Binding(b.context, fresh, b.cmd, b.help))
        if rows:
            out.append((ctx, rows))
    return out
