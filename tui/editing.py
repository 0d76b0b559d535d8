"""Editing flows and messages: which part, then a prompt (one-line fields) or an editor (headers,
query, form, bodies, messages). `$VISUAL`/`$EDITOR` is used when set, else an editor inside the TUI.
Edits apply to the live flow, so a held flow forwards what the user left; `V` brings back the original."""
from __future__ import annotations

import asyncio
import json
import os
import shlex
import tempfile
from typing import Any

import urwid

from interpose.http import Headers
from interpose.tui import session as tui_session
from interpose.tui.ui import UI
from interpose.tui.widgets.flowview import FlowView
from interpose.tui.widgets.grid import edit_rows
from interpose.tui.widgets.lineedit import readline_key

REQUEST_PARTS = "(m)ethod (u)rl (v)ersion (h)eaders (q)uery (f)orm (b)ody"
RESPONSE_PARTS = "(s)tatus (r)eason (v)ersion (h)eaders (b)ody"


def start(app: UI, flow: Any) -> None:
    if flow is None:
        return
    view = app.current
    tab = view.tab_name if isinstance(view, FlowView) else "Request"
    if tab == "Messages":
        msg = view.focused_message
        if msg is None:
            app.notify("no message here to edit")
            return
        app.spawn(edit_message(app, msg))
        return
    if tab == "Details":
        app.notify("switch to the Request or Response tab to edit")
        return
    if flow.type != "http":
        app.notify("only HTTP flows have requests and responses to edit")
        return
    part_of = "response" if tab == "Response" else "request"
    if part_of == "response" and flow.response is None:
        app.notify("there is no response yet")
        return

    def chosen(key: str | None) -> None:
        if key:
            edit_part(app, flow, part_of, key)

    app.ask_key(f"Edit {part_of}: {RESPONSE_PARTS if part_of == 'response' else REQUEST_PARTS}: ", chosen)


def _refresh(app: UI) -> None:
    if isinstance(app.current, FlowView):
        app.current.refresh()
    if hasattr(app.current, "set_items"):  # the pending pane shows what was just edited
        app.current.set_items(list(app.held.values()))
    flow = app.current.flow if isinstance(app.current, FlowView) else app.flowlist.focused_flow
    app.store.update(flow)
    if flow is not None and not flow.intercepted:  # a held flow is recorded once it is released
        tui_session.record(app, flow)  # the edit, and the original `V` brings back, are in the session
    app.flowlist.walker.changed()
    app.redraw()


def _field(app: UI, flow: Any, label: str, get: Any, set_: Any, text: str | None = None, error: str = "") -> None:
    """A one-line field in a prompt. A value `set_` refuses (ValueError) asks again, with the reason in the
    prompt and the typed text kept."""
    def done(typed: str | None) -> None:
        if typed is None:
            return
        flow.backup()
        try:
            set_(typed)
        except ValueError as e:
            _field(app, flow, label, get, set_, typed, str(e).splitlines()[0])
            return
        _refresh(app)
        app.notify(f"{label} set")
    prompt = f"{label} ({error}): " if error else f"{label}: "
    app.ask(prompt, done, get() if text is None else text, select=text is None)


def edit_part(app: UI, flow: Any, part_of: str, key: str) -> None:
    """Edit one part of the request or response (`key` as `e` asks for it: m, u, h, b, ...)."""
    msg = flow.response if part_of == "response" else flow.request
    if key == "v":
        _field(app, flow, "HTTP version", lambda: msg.http_version, lambda t: setattr(msg, "http_version", t.strip()))
    elif key == "h":
        app.spawn(_edit_grid(app, flow, f"{part_of.capitalize()} headers", msg.headers.items(multi=True),
                             lambda rows: setattr(msg, "headers", Headers(rows))))
    elif key == "b":
        body = msg.content or b""
        app.spawn(_edit_text(app, flow, body.decode("utf-8", "surrogateescape"), suffix_for(msg),
                             lambda t: setattr(msg, "content", t.encode("utf-8", "surrogateescape"))))
    elif part_of == "request" and key == "m":
        _field(app, flow, "Method", lambda: msg.method, lambda t: setattr(msg, "method", _method(t)))
    elif part_of == "request" and key == "u":
        _field(app, flow, "URL", lambda: msg.url, lambda t: setattr(msg, "url", t.strip()))
    elif part_of == "request" and key == "q":
        app.spawn(_edit_grid(app, flow, "Query", msg.query.items(multi=True), lambda rows: setattr(msg, "query", rows)))
    elif part_of == "request" and key == "f":
        app.spawn(_edit_grid(app, flow, "Form", msg.urlencoded_form.items(multi=True),
                             lambda rows: setattr(msg, "urlencoded_form", rows)))
    elif part_of == "response" and key == "s":
        _field(app, flow, "Status code", lambda: str(msg.status_code),
               lambda t: setattr(msg, "status_code", _status(t)))
    elif part_of == "response" and key == "r":
        _field(app, flow, "Reason", lambda: msg.reason, lambda t: setattr(msg, "reason", t))


def _method(text: str) -> str:
    method = text.strip().upper()
    if not method:
        raise ValueError("a method may not be empty")
    if not all(c.isalnum() or c in "-_" for c in method):
        raise ValueError(f"a method is one word, e.g. GET or POST: {text.strip()!r}")
    return method


def _status(text: str) -> int:
    code = int(text.strip())
    if not 100 <= code <= 999:
        raise ValueError("a status code is a number from 100 to 999")
    return code


def suffix_for(message: Any) -> str:
    ctype = message.content_type
    for key, suffix in (("json", ".json"), ("html", ".html"), ("xml", ".xml"), ("javascript", ".js"), ("css", ".css")):
        if key in ctype:
            return suffix
    return ".txt"


def message_for_editing(content: bytes) -> tuple[str, str, str]:
    """(mode, text, suffix): JSON pretty-printed, binary as hex, anything else as text."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return "hex", content.hex(" ", 1), ".hex"
    if text[:1] in "{[":
        try:
            return "json", json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n", ".json"
        except ValueError:
            pass
    return "text", text, ".txt"


def message_from_editing(mode: str, text: str) -> bytes:
    """Back to bytes: JSON compact again (so it stays one message), hex decoded, text as UTF-8."""
    if mode == "json":
        try:
            return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except ValueError:
            return text.strip().encode("utf-8")  # no longer JSON: sent as written
    if mode == "hex":
        return bytes.fromhex("".join(text.split()))
    return text.encode("utf-8", "surrogateescape")


async def edit_message(app: UI, msg: Any) -> None:
    mode, text, suffix = message_for_editing(msg.content)
    new = await edit_text(app, text, suffix)
    if new is None or new == text:
        return
    try:
        msg.content = message_from_editing(mode, new)
    except ValueError as e:
        app.notify(f"not valid hex: {e}", "error")
        return
    msg.edited = True  # the Messages tab marks it
    _refresh(app)
    app.notify(f"message edited ({mode})" + ("; a resumes it" if msg.intercepted else ""))


async def _edit_grid(app: UI, flow: Any, title: str, rows: list[tuple[str, str]], apply: Any) -> None:
    _edited(app, flow, list(rows), await edit_rows(app, title, list(rows)), apply)


async def _edit_text(app: UI, flow: Any, text: str, suffix: str, apply: Any) -> None:
    _edited(app, flow, text, await edit_text(app, text, suffix), apply)


def _edited(app: UI, flow: Any, old: Any, new: Any, apply: Any) -> None:
    """Apply an edit the user made (`new`, None if cancelled) to a flow, keeping a backup for `V`."""
    if new is None or new == old:
        app.notify("unchanged")
        return
    flow.backup()
    apply(new)
    _refresh(app)
    app.notify("edited" + ("; a resumes the flow" if flow.intercepted else ""))


async def edit_text(app: UI, text: str, suffix: str = ".txt") -> str | None:
    """The text after the user edited it, or None if they cancelled."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        return await _builtin(app, text)
    fd, path = tempfile.mkstemp(prefix="interpose-", suffix=suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
        loop = app.loop
        if loop is not None:
            loop.stop()  # hand the terminal to the editor; the proxy keeps running
        try:
            proc = await asyncio.create_subprocess_exec(*shlex.split(editor), path)
            code = await proc.wait()
        finally:
            if loop is not None:
                loop.start()
                loop.screen.clear()
        if code != 0:
            app.notify(f"editor exited with status {code}: edit discarded", "warn")
            return None
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    finally:
        os.unlink(path)


class _EditorBox(urwid.WidgetWrap):
    context = "editor"

    def __init__(self, text: str, done: asyncio.Future[str | None], title: str = "Edit", action: str = "save") -> None:
        self.edit = urwid.Edit("", text, multiline=True)
        self.done = done
        body = urwid.Filler(self.edit, valign="top")
        footer = urwid.Text(("dim", f"ctrl s: {action}   esc: cancel"))
        super().__init__(urwid.LineBox(urwid.Frame(body, footer=footer), title=title))

    def keypress(self, size: Any, key: str) -> str | None:
        if key == "ctrl s":
            if not self.done.done():
                self.done.set_result(self.edit.edit_text)
            return None
        if key == "esc":
            if not self.done.done():
                self.done.set_result(None)
            return None
        if readline_key(self.edit, key):
            return None
        return super().keypress(size, key)


async def compose(app: UI, title: str, action: str = "send") -> str | None:
    """A new multi-line text written in the UI (Enter is a newline, `ctrl s` does `action`), or None (esc)."""
    return await _builtin(app, "", title, action)


async def _builtin(app: UI, text: str, title: str = "Edit", action: str = "save") -> str | None:
    done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
    box = _EditorBox(text, done, title, action)
    app.push(box)
    try:
        return await done
    finally:
        if app.current is box:
            app.pop()
