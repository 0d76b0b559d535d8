"""Every key of the terminal UI, as data: (context, key) → action name and help text.

Contexts: `global` (everywhere unless a view overrides the key), `flowlist`, `flowview`, `messages`
(the flow view's Messages tab), `pending`, `picker`, `options`, `eventlog`, `help`, `repeater`. `?` shows
the keys of the current context plus the global ones. The repeater is a text editor, so it takes every
key itself (its rows here are for the help, which `f1` opens there).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Binding:
    context: str
    keys: tuple[str, ...]
    action: str
    help: str


BINDINGS: list[Binding] = [
    # global
    Binding("global", ("?",), "help.show", "show the keys of this view"),
    Binding("global", ("Q",), "app.quit", "quit (asks to confirm)"),
    Binding("global", ("q", "esc"), "view.back", "back to the previous view"),
    Binding("global", ("E",), "eventlog.toggle", "show or hide the event log"),
    Binding("global", ("P",), "addons.picker", "addon picker: load and unload addons"),
    Binding("global", ("O",), "options.editor", "options editor"),
    Binding("global", ("i",), "intercept.set", "set the intercept filter"),
    Binding("global", ("A",), "flow.resume_all", "resume every held flow and message"),
    Binding("global", ("p",), "pending.show", "pending pane: everything held"),
    Binding("global", ("ctrl f",), "search.global", "search every flow (URL, headers, bodies, messages)"),
    Binding("global", ("y",), "copy", "copy the focused thing to the clipboard (OSC 52, works over SSH)"),
    Binding("global", ("S",), "sticky.show", "sticky rules: list and delete"),
    Binding("global", ("w",), "flows.save", "save flows to a file"),
    Binding("global", ("L",), "flows.load", "load flows from a file"),
    # flow list
    Binding("flowlist", ("j", "down"), "list.down", "next flow"),
    Binding("flowlist", ("k", "up"), "list.up", "previous flow"),
    Binding("flowlist", ("page down", " "), "list.page_down", "page down"),
    Binding("flowlist", ("page up",), "list.page_up", "page up"),
    Binding("flowlist", ("g", "home"), "list.first", "first flow"),
    Binding("flowlist", ("G", "end"), "list.last", "last flow"),
    Binding("flowlist", ("enter",), "flow.open", "open the flow"),
    Binding("flowlist", ("f",), "list.filter", "view filter (empty shows all)"),
    Binding("flowlist", ("F",), "list.follow", "follow new flows on/off"),
    Binding("flowlist", ("o",), "list.order", "change the order (time, method, url, size, duration, status)"),
    Binding("flowlist", ("v",), "list.reverse", "reverse the order"),
    Binding("flowlist", ("m",), "flow.mark", "mark or unmark the flow"),
    Binding("flowlist", ("M",), "list.marked_only", "show only marked flows on/off"),
    Binding("flowlist", ("d",), "flow.delete", "delete the flow"),
    Binding("flowlist", ("z",), "list.clear", "clear the flow list"),
    Binding("flowlist", ("a",), "flow.resume", "resume the flow"),
    Binding("flowlist", ("X",), "flow.kill", "kill the flow"),
    Binding("flowlist", ("r",), "flow.replay", "replay the request"),
    Binding("flowlist", ("D",), "flow.duplicate", "duplicate the flow"),
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
    Binding("flowview", ("j", "down"), "scroll.down", "scroll down"),
    Binding("flowview", ("k", "up"), "scroll.up", "scroll up"),
    Binding("flowview", ("page down", " "), "scroll.page_down", "page down"),
    Binding("flowview", ("page up",), "scroll.page_up", "page up"),
    Binding("flowview", ("g", "home"), "scroll.top", "top"),
    Binding("flowview", ("G", "end"), "scroll.bottom", "bottom"),
    Binding("flowview", ("m",), "view.content_mode", "content view: auto, json, html, xml, hex, raw…"),
    Binding("flowview", ("/",), "view.search", "search in this view"),
    Binding("flowview", ("n",), "view.search_next", "next search match"),
    Binding("flowview", ("e",), "flow.edit", "edit (method, URL, headers, body…)"),
    Binding("flowview", ("V",), "flow.revert", "revert edits"),
    Binding("flowview", ("s",), "sticky.make", "make this edit a standing rule for matching flows"),
    Binding("flowview", ("a",), "flow.resume", "resume the flow (or the held message in Messages)"),
    Binding("flowview", ("X",), "flow.kill", "kill the flow"),
    Binding("flowview", ("B",), "flow.resume_buffered",
            "held at a header stage: buffer the body, stop again when it is in"),
    Binding("flowview", ("T",), "flow.resume_streamed", "held at a header stage: stream the body through"),
    Binding("flowview", ("r",), "flow.replay", "replay the request"),
    Binding("flowview", ("x",), "flow.export", "export as curl / httpie / raw"),
    Binding("flowview", ("d",), "message.drop", "drop the held message (Messages tab)"),
    # pending pane
    Binding("pending", ("j", "down"), "pending.down", "next held item"),
    Binding("pending", ("k", "up"), "pending.up", "previous held item"),
    Binding("pending", ("enter",), "pending.open", "open the flow (at the message for a held message)"),
    Binding("pending", ("a",), "pending.resume", "forward it"),
    Binding("pending", ("X",), "pending.kill", "kill the flow"),
    Binding("pending", ("d",), "pending.drop", "drop the held message"),
    Binding("pending", ("e",), "pending.edit", "edit the held message (or open the held flow to edit it)"),
    Binding("pending", ("n",), "pending.inject", "inject a new message into that WebSocket/TCP flow"),
    # addon picker, options editor, event log
    Binding("picker", ("j", "down"), "cursor.down", "next addon"),
    Binding("picker", ("k", "up"), "cursor.up", "previous addon"),
    Binding("picker", ("enter",), "picker.toggle", "load or unload the addon (or load a path)"),
    Binding("options", ("j", "down"), "cursor.down", "next option"),
    Binding("options", ("k", "up"), "cursor.up", "previous option"),
    Binding("options", ("enter",), "options.edit", "edit the option (a boolean toggles; a list: one item per row)"),
    Binding("options", ("r",), "options.reset", "reset the option to its default"),
    # search results and diff
    Binding("search", ("j", "down"), "cursor.down", "next match"),
    Binding("search", ("k", "up"), "cursor.up", "previous match"),
    Binding("search", ("enter",), "search.open", "open the flow at the match"),
    Binding("diff", ("j", "down"), "cursor.down", "scroll down"),
    Binding("diff", ("k", "up"), "cursor.up", "scroll up"),
    Binding("rules", ("j", "down"), "cursor.down", "next rule"),
    Binding("rules", ("k", "up"), "cursor.up", "previous rule"),
    Binding("rules", ("d",), "sticky.delete", "delete the rule"),
    # the repeater (handled by the view itself: it is a text editor)
    Binding("repeater", ("ctrl s",), "repeater.go",
            "send the request; WebSocket tab: connect (closing the old connection)"),
    Binding("repeater", ("enter",), "repeater.ws_send", "WebSocket tab, message line: send the message"),
    Binding("repeater", ("ctrl t",), "repeater.ws_hex", "WebSocket tab: message line as text or as hex (binary)"),
    Binding("repeater", ("tab",), "repeater.ws_focus", "WebSocket tab: between the message line and the handshake"),
    Binding("repeater", ("ctrl d",), "repeater.ws_disconnect", "WebSocket tab: close the connection"),
    Binding("repeater", ("page up", "page down"), "repeater.ws_scroll", "WebSocket tab: scroll the messages"),
    Binding("repeater", ("ctrl n", "ctrl p"), "repeater.tab", "next / previous tab"),
    Binding("repeater", ("ctrl w",), "repeater.close", "close the tab (and its connection)"),
    Binding("repeater", ("ctrl o", "ctrl l"), "repeater.history", "older / newer response of the tab"),
    Binding("repeater", ("esc",), "view.back", "back to the flow list (connections stay open)"),
    Binding("repeater", ("f1",), "help.show", "show these keys"),
    # help
    Binding("help", ("q", "esc", "?"), "view.back", "close the help"),
]


def lookup(contexts: list[str], key: str) -> str | None:
    """The action for `key`, trying the contexts in order (the current view first, `global` last)."""
    for ctx in contexts:
        for b in BINDINGS:
            if b.context == ctx and key in b.keys:
                return b.action
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
                rows.append(Binding(b.context, fresh, b.action, b.help))
        if rows:
            out.append((ctx, rows))
    return out
