"""mitmproxy's `console.edit.focus PART` (edit one part of the focused flow, as `e` then a key does) and
`console.bodyview FLOW PART` (a body in an external viewer: $PAGER, else `less`), with their `.options`."""
from __future__ import annotations

import asyncio
import os
import shlex
import tempfile
from typing import Annotated, Any

from interpose import command as api
from interpose.model.flow import Flow
from interpose.runtime.commands import CommandError
from interpose.tui import editing
from interpose.tui.actions.registry import focused_flow
from interpose.tui.commands.base import tui_command

EDIT_PARTS = {
    # mitmproxy's part → (request or response, the key `e` takes for it)
    "method": ("request", "m"), "url": ("request", "u"), "query": ("request", "q"),
    "urlencoded form": ("request", "f"), "request-headers": ("request", "h"), "request-body": ("request", "b"),
    "status_code": ("response", "s"), "reason": ("response", "r"), "response-headers": ("response", "h"),
    "response-body": ("response", "b"),
}
"""mitmproxy's `cookies`, `set-cookies`, `multipart form` and `path` have no editor here (headers and the
URL hold them)."""


def _options(flow: Any) -> list[str]:
    if flow is None:
        raise CommandError("no flow selected")
    if flow.type == "tcp":
        return ["tcp-message"]
    if flow.type != "http":
        return []
    parts = [p for p, (part_of, _) in EDIT_PARTS.items() if part_of == "request" or flow.response is not None]
    return parts + (["websocket-message"] if getattr(flow, "websocket", None) is not None else [])


@tui_command("console.edit.focus.options")
def edit_focus_options(app: Any) -> list[str]:
    """The parts of the focused flow console.edit.focus can edit."""
    return _options(focused_flow(app))


@tui_command("console.edit.focus")
def edit_focus(app: Any,
               flow_part: Annotated[str, api.Choice(*EDIT_PARTS, "websocket-message", "tcp-message")]) -> None:
    """Edit a part of the focused flow (headers, query and form in the grid editor, bodies in $EDITOR, the
    last WebSocket or TCP message too)."""
    flow: Any = focused_flow(app)
    if flow_part not in _options(flow):
        raise CommandError(f"console.edit.focus: this flow has no {flow_part} to edit")
    if flow_part in ("tcp-message", "websocket-message"):
        held = flow.messages if flow_part == "tcp-message" else flow.websocket.messages
        if not held:
            raise CommandError("console.edit.focus: the flow has no messages")
        app.spawn(editing.edit_message(app, held[-1]))
        return
    part_of, key = EDIT_PARTS[flow_part]
    editing.edit_part(app, flow, part_of, key)


BODY_PARTS = api.Choice("request", "response")


@tui_command("console.bodyview.options")
def bodyview_options(app: Any) -> list[str]:
    """The parts console.bodyview shows."""
    return BODY_PARTS.options()


@tui_command("console.bodyview")
def bodyview(app: Any, flow: Flow, part: Annotated[str, BODY_PARTS]) -> None:
    """Show the request or response body (decoded) in an external viewer: $PAGER, else less."""
    msg = getattr(flow, part, None)
    if msg is None or getattr(msg, "headers", None) is None:
        raise CommandError(f"console.bodyview: the flow has no {part}")
    content = msg.content_or_raw() if hasattr(msg, "content_or_raw") else msg.raw_content
    if not content:
        raise CommandError("console.bodyview: no content to view")
    app.spawn(_view(app, content, editing.suffix_for(msg)))


async def _view(app: Any, content: bytes, suffix: str) -> None:
    fd, path = tempfile.mkstemp(prefix="interpose-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        loop = app.loop
        if loop is not None:
            loop.stop()  # hand the terminal to the viewer; the proxy keeps running
        try:
            proc = await asyncio.create_subprocess_exec(*shlex.split(os.environ.get("PAGER") or "less"), path)
            await proc.wait()
        finally:
            if loop is not None:
                loop.start()
                loop.screen.clear()
    finally:
        os.unlink(path)
