"""Bodies and fields out of flows: cut.clip / cut.save (mitmproxy's cut specs), `b` (save the body in
view), flow.encode / flow.decode, and `n` (a new request in the repeater)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Annotated, Any

from interpose import command as api
from interpose.model.encoding import BodyTooLarge
from interpose.model.flow import Flow
from interpose.runtime.commands import CommandError
from interpose.runtime.commands.types import CutSpecsT
from interpose.store import cut as cutlib
from interpose.tui import clipboard
from interpose.tui import session as tui_session
from interpose.tui.actions.registry import focused_flow
from interpose.tui.commands.base import tui_command
from interpose.tui.commands.console import open_prompt
from interpose.tui.widgets.flowview import FlowView

PART = api.Choice("request", "response")
ENCODINGS = api.Choice("gzip", "deflate", "br", "zstd", "identity")


def _render(flows: Sequence[Flow], specs: list[str]) -> str | bytes:
    if not flows:
        raise CommandError("cut: no flows selected")
    try:
        return cutlib.render(flows, specs)
    except BodyTooLarge as e:
        raise CommandError(f"cut: {e}") from None


@tui_command("cut.clip")
def cut_clip(app: Any, flows: Sequence[Flow], cuts: CutSpecsT) -> None:
    """Copy fields of the flows to the clipboard: one value as is, several as CSV."""
    data = _render(flows, list(cuts))
    clipboard.copy(app, data.decode("utf-8", "replace") if isinstance(data, bytes) else data)
    app.notify(f"copied {len(data)} {'bytes' if isinstance(data, bytes) else 'characters'}")


@tui_command("cut.save")
def cut_save(app: Any, flows: Sequence[Flow], cuts: CutSpecsT, path: api.Path) -> None:
    """Write fields of the flows to a file (`+PATH` appends): one value as is (bytes kept), several as CSV."""
    data = _render(flows, list(cuts))
    append = path.startswith("+")
    target = os.path.expanduser(path[1:] if append else path)
    raw = data if isinstance(data, bytes) else data.encode("utf-8")
    try:
        with open(target, "ab" if append else "wb") as f:
            f.write(raw)
    except OSError as e:
        raise CommandError(f"cut.save: cannot write {target}: {e.strerror or e}") from None
    app.notify(f"wrote {len(raw)} bytes to {target}")


@tui_command("console.body.save")
def body_save(app: Any) -> None:
    """`b`: save the body in view (the response on the Response tab, else the request) decoded; the prompt
    shows the cut.save line, where `content` can become `raw_content` for the bytes as sent. A TCP flow,
    or a WebSocket flow on its Messages tab, saves its messages."""
    flow = focused_flow(app)
    if flow is None:
        raise CommandError("no flow to save a body of")
    cur = app.current
    tab = cur.tab_name if isinstance(cur, FlowView) else ""
    if flow.type == "tcp" or (tab == "Messages" and getattr(flow, "websocket", None) is not None):
        open_prompt(app, "cut.save @focus messages ")  # a TCP or WebSocket flow's messages, one a line
        return
    part = "response" if tab == "Response" else "request"
    if part == "response" and flow.response is None:
        raise CommandError("the flow has no response yet")
    open_prompt(app, f"cut.save @focus {part}.content ")


def _messages(flows: Sequence[Flow], part: str) -> list[Any]:
    out = []
    for f in flows:
        msg = getattr(f, part, None)
        if msg is not None and getattr(msg, "headers", None) is not None:
            out.append((f, msg))
    return out


@tui_command("flow.encode")
def flow_encode(app: Any, flows: Sequence[Flow], part: Annotated[str, PART],
                encoding: Annotated[str, ENCODINGS]) -> None:
    """Encode the request or response body (Content-Encoding: gzip, deflate, br, zstd or identity)."""
    done = _messages(flows, part)
    for f, msg in done:
        f.backup()
        if encoding == "identity":
            msg.decode()
        else:
            msg.encode(encoding)
    _refresh(app, done, f"encoded {len(done)} {part} bodies as {encoding}")


@tui_command("flow.decode")
def flow_decode(app: Any, flows: Sequence[Flow], part: Annotated[str, PART]) -> None:
    """Undo the Content-Encoding of the request or response body."""
    done = [(f, m) for f, m in _messages(flows, part) if "content-encoding" in m.headers]
    for f, msg in done:
        f.backup()
        msg.decode()
    _refresh(app, done, f"decoded {len(done)} {part} bodies")


def _refresh(app: Any, done: list[Any], text: str) -> None:
    for f, _ in done:
        if app.store.get(f.id) is not None:
            app.store.update(f)
            if not f.intercepted:
                tui_session.record(app, f)  # kept in the session with its original (for `V`)
    if isinstance(app.current, FlowView):
        app.current.refresh()
    app.flowlist.walker.changed()
    app.notify(text)


@tui_command("script.run")
async def script_run(app: Any, flows: Sequence[Flow], path: api.Path) -> None:
    """Run a script's hooks once on the flows (it is not loaded into the proxy)."""
    from interpose.runtime.commands.scriptrun import run_script_on

    n = await app.core.call(run_script_on, app.master, path, list(flows))
    _refresh(app, [(f, None) for f in flows], f"ran {os.path.basename(path)} on {n} flow{'s' if n != 1 else ''}")


@tui_command("repeater.new")
def repeater_new(app: Any, url: str) -> None:
    """`n`: a new request in the repeater (GET URL; edit it there, ctrl s sends)."""
    from urllib.parse import urlsplit

    from interpose.tui.actions.repeater import _repeater
    from interpose.tui.repeater.view import Tab

    u = urlsplit(url if "://" in url else "http://" + url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise CommandError(f"repeater.new: expected an http:// or https:// URL, not {url!r}")
    port = u.port or (443 if u.scheme == "https" else 80)
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    host = u.netloc.rpartition("@")[2]
    text = f"GET {path} HTTP/1.1\nHost: {host}\nUser-Agent: interpose\nAccept: */*\n\n"
    view = _repeater(app)
    view.add(Tab(f"GET {path[:24]}", u.scheme, u.hostname, port, text))
    app.push(view)
