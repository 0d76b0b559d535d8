"""Held flows and messages: the intercept filter, resuming (all, or after a header stage with the body
buffered or streamed), killing a flow, dropping a held message."""
from __future__ import annotations

from typing import Any

from interpose.errors import InterposeError
from interpose.tui.actions.registry import action, focused_flow
from interpose.tui.ui import UI
from interpose.tui.widgets.flowview import FlowView


@action("intercept.set")
def intercept_set(app: UI, size: Any) -> None:
    _ask_intercept(app)


def _ask_intercept(app: UI, text: str | None = None, error: str = "") -> None:
    """The intercept filter prompt. The core checks the filter (as `--set intercept=` does); a refused
    one is asked again with the reason and the typed text."""
    def done(typed: str | None) -> None:
        if typed is None:
            return

        async def apply() -> None:
            try:
                await app.core.set_options(intercept=typed.strip() or None)
            except (InterposeError, ValueError) as e:
                _ask_intercept(app, typed, str(e).splitlines()[0])
                return
            app.notify(f"intercept: {typed.strip() or 'off'}")
            app.refresh_status()
            app.redraw_soon()
        app.spawn(apply())
    label = f"Intercept filter ({error}): " if error else "Intercept filter: "
    app.ask(label, done, (app.master.options.intercept or "") if text is None else text, select=text is None)


def resume_item(app: UI, flow: Any, message: Any) -> None:
    """Resume one held thing: the message if there is one, else the flow."""
    app.core.resume(flow, message)


@action("flow.resume")
def flow_resume(app: UI, size: Any) -> None:
    cur = app.current
    if isinstance(cur, FlowView) and cur.focused_message is not None and cur.focused_message.intercepted:
        app.core.resume(cur.flow, cur.focused_message)
        app.notify("message resumed")
        return
    flow = focused_flow(app)
    if flow is None:
        return
    ws = getattr(flow, "websocket", None)
    if flow.intercepted:
        app.core.resume(flow)
        app.notify("resumed")  # replaces what was said while it was held ("edited; a resumes the flow")
    elif ws is not None and ws.held_messages:
        app.core.resume(ws, ws.held_messages[0])
        app.notify("message resumed")
    elif getattr(flow, "held_messages", None):
        app.core.resume(flow, flow.held_messages[0])
        app.notify("message resumed")
    else:
        app.notify("this flow is not held")


@action("flow.resume_all")
def flow_resume_all(app: UI, size: Any) -> None:
    for flow, message, _ in list(app.held.values()):
        resume_item(app, flow, message)
    app.notify("resumed everything held")


@action("flow.kill")
def flow_kill(app: UI, size: Any) -> None:
    flow = focused_flow(app)
    if flow is None:
        return
    target = getattr(flow, "websocket", None) or flow
    if target.live:
        app.core.kill(target)
        app.notify("flow killed")
    else:
        app.notify("this flow has finished: nothing to kill")


@action("message.drop")
def message_drop(app: UI, size: Any) -> None:
    cur = app.current
    msg = cur.focused_message if isinstance(cur, FlowView) else None
    if msg is None or not msg.intercepted:
        app.notify("no held message here")
        return
    app.core.drop(msg)


# -- header-stage breakpoints ---------------------------------------------------------------------------
def _header_stage(app: UI) -> tuple[Any, str] | None:
    view = app.current
    if not isinstance(view, FlowView) or view.held_stage not in ("requestheaders", "responseheaders"):
        app.notify("B and T are for a flow held at requestheaders or responseheaders")
        return None
    return view.flow, view.held_stage


@action("flow.resume_buffered")
def resume_buffered(app: UI, size: Any) -> None:
    held = _header_stage(app)
    if held is not None:
        flow, stage = held
        body_stage = "request" if stage == "requestheaders" else "response"
        message = flow.request if body_stage == "request" else flow.response
        message.stream = False
        flow.metadata[f"hold_at_{body_stage}"] = True
        app.core.resume(flow)
        app.notify(f"buffering the {body_stage} body; it stops again when the body is in")


@action("flow.resume_streamed")
def resume_streamed(app: UI, size: Any) -> None:
    held = _header_stage(app)
    if held is not None:
        flow, stage = held
        message = flow.request if stage == "requestheaders" else flow.response
        message.stream = True
        app.core.resume(flow)
        app.notify(f"streaming the {'request' if stage == 'requestheaders' else 'response'} body through")
