"""Flows in and out: export one flow (curl, httpie, raw) to a file or the clipboard, copy the focused thing,
save flows to a flow file or HAR file, load flows from one."""
from __future__ import annotations

import os
from typing import Any

from interpose.errors import InterposeError
from interpose.runtime.builtins import readfile
from interpose.runtime.builtins.save import parse_target
from interpose.store import export, har
from interpose.store.flowfile import FlowWriter
from interpose.tui import clipboard
from interpose.tui import session as tui_session
from interpose.tui.actions.registry import action, focused_flow
from interpose.tui.ui import UI
from interpose.tui.widgets.flowview import FlowView
from interpose.tui.widgets.results import SearchResults


@action("flow.export")
def flow_export(app: UI, size: Any) -> None:
    flow = focused_flow(app)
    if flow is None or flow.type != "http":
        app.notify("only HTTP flows can be exported")
        return

    def fmt_done(choice: str | None) -> None:
        names = {"c": "curl", "h": "httpie", "r": "raw_request", "s": "raw_response", "a": "raw"}
        if choice not in names:
            return
        name = names[choice]
        data = export.FORMATS[name](flow)
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")

        def path_done(path: str | None) -> None:
            if path is None:
                return
            if path.strip():
                mode = "w" if isinstance(data, str) else "wb"
                with open(path.strip(), mode) as f:
                    f.write(data)
                app.notify(f"{name} written to {path.strip()}")
            else:
                clipboard.copy(app, text)
                app.notify(f"{name} copied to the clipboard")
        app.ask("Write to file (empty: clipboard): ", path_done)
    app.ask_key("Export as (c)url (h)ttpie (r)aw request re(s)ponse (a)ll: ", fmt_done)


@action("copy")
def copy(app: UI, size: Any) -> None:
    cur = app.current
    if isinstance(cur, FlowView):
        msg = cur.focused_message
        if msg is not None:
            text, what = msg.text, "message"
        elif cur.tab_name == "Response" and cur.flow.type == "http" and cur.flow.response is not None:
            text, what = export.raw_response(cur.flow).decode("utf-8", "replace"), "response"
        elif cur.flow.type == "http":
            text, what = export.raw_request(cur.flow).decode("utf-8", "replace"), "request"
        else:
            app.notify("nothing to copy here")
            return
    else:
        match = cur.focused if isinstance(cur, SearchResults) else None
        flow = match.flow if match is not None else focused_flow(app)  # search results: the focused result's
        if flow is None or getattr(flow, "request", None) is None:
            app.notify("nothing to copy here")
            return
        text, what = flow.request.pretty_url, "URL"
    clipboard.copy(app, text)
    app.notify(f"{what} copied to the clipboard")


@action("flows.save")
def flows_save(app: UI, size: Any) -> None:
    """`w`: the marked flows if any are marked, else the visible ones, to a flow file (`+FILE` appends)
    or, for a name ending in .har, a HAR file."""
    marked = app.store.marked()
    flows = marked or list(app.store)
    if not flows:
        app.notify("no flows to save")
        return
    which = "marked" if marked else "visible"

    def done(text: str | None) -> None:
        if text is None or not text.strip():
            return
        path, append = parse_target(text.strip())
        skipped = ""
        try:
            if path.lower().endswith(".har"):
                written = har.write(path, flows)
                skipped = har_skipped(flows)
            else:
                with FlowWriter(path, append=append) as writer:
                    for flow in flows:
                        writer.add(flow)
                written = len(flows)
        except InterposeError as e:
            app.notify(f"cannot save: {e}", "error")
            return
        except OSError as e:
            app.notify(f"cannot save to {path}: {e.strerror or e}", "error")
            return
        what = f"{written} of {len(flows)} {which} flows" if written != len(flows) else \
            f"{written} {which} flow{'s' if written != 1 else ''}"
        said = f"{'appended' if append else 'saved'} {what} to {path}"
        app.notify(said + (f"; skipped {skipped}" if skipped else ""), "warn" if skipped else "text")
    app.ask("Save flows to: ", done, "flows.interpose")


def har_skipped(flows: list[Any]) -> str:
    """What a HAR file leaves out of `flows`, and why: "2 TCP flows (HAR holds only HTTP)"."""
    tcp = sum(1 for f in flows if f.type == "tcp")
    connect = sum(1 for f in flows if f.type == "http" and f.request is not None and f.request.method == "CONNECT")
    parts = []
    if tcp:
        parts.append(f"{tcp} TCP flow{'s' if tcp != 1 else ''} (HAR holds only HTTP)")
    if connect:
        parts.append(f"{connect} CONNECT flow{'s' if connect != 1 else ''} (failed TLS handshakes: no request)")
    return ", ".join(parts)


@action("flows.load")
def flows_load(app: UI, size: Any) -> None:
    """`L`: add the flows of a flow file or HAR file to the list (addons do not see them; `-r` is for that)."""
    def done(text: str | None) -> None:
        if text is None or not text.strip():
            return
        path = os.path.expanduser(text.strip())
        try:
            preloaded = readfile.check(path)
        except InterposeError as e:
            app.notify(str(e), "error")
            return
        app.spawn(tui_session.load_file(app, path, preloaded))
    app.ask("Load flows from: ", done)
