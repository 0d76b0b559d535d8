"""What each key does: action name → function(app, size). Widgets never do this work themselves."""
from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from interpose.store import export
from interpose.errors import InterposeError
from interpose.flowfilter import FilterError
from interpose.flowfilter import parse as parse_filter
from interpose.tui import clipboard, editing, search, wsrepeater
from interpose.tui.widgets.flowview import FlowView
from interpose.tui.widgets.panes import PendingPane
from interpose.tui.widgets.picker import AddonPicker, OptionsEditor, option_value_text
from interpose.tui.repeater import RepeaterError, parse_request
from interpose.tui.sticky import default_filter, rule_from_edit, rule_from_response
from interpose.tui.widgets.rules import RulesView
from interpose.tui.widgets.repeater import RepeaterView, Tab, tab_for
from interpose.tui.wsrepeater import Route, WsTab
from interpose.tui.widgets.results import DiffView, SearchResults

if TYPE_CHECKING:
    from interpose.tui.app import App

Action = Callable[["App", Any], None]
ACTIONS: dict[str, Action] = {}


def action(name: str) -> Callable[[Action], Action]:
    def register(fn: Action) -> Action:
        ACTIONS[name] = fn
        return fn
    return register


def run(app: App, name: str, size: Any) -> None:
    fn = ACTIONS.get(name)
    if fn is None:
        app.notify(f"{name}: not available yet", "warn")
        return
    try:
        fn(app, size)
    except (InterposeError, FilterError, ValueError) as e:
        app.notify(str(e).splitlines()[0], "error")


def focused_flow(app: App) -> Any | None:
    cur = app.current
    if isinstance(cur, FlowView):
        return cur.flow
    if isinstance(cur, PendingPane):
        item = cur.focused
        return item[0] if item else None
    return app.flowlist.focused_flow


# -- app and views -------------------------------------------------------------------------------
@action("app.quit")
def quit_(app: App, size: Any) -> None:
    def answer(key: str | None) -> None:
        if key in ("y", "Y"):
            app.quit.set()
    app.ask_key("Quit? (y/n) ", answer)


@action("view.back")
def back(app: App, size: Any) -> None:
    if app.overlay is not None:
        app.close_overlay()
    elif app.views:
        app.pop()


@action("help.show")
def help_show(app: App, size: Any) -> None:
    if app.overlay is not None:
        app.close_overlay()
    else:
        app.show_help()


@action("eventlog.toggle")
def eventlog_toggle(app: App, size: Any) -> None:
    app.show_eventlog = not app.show_eventlog
    app.eventlog.dirty = True
    app.eventlog.refresh()
    app._layout()


# -- flow list -----------------------------------------------------------------------------------
def _move(app: App, delta: int | None = None, to: int | None = None) -> None:
    lb = app.flowlist
    if lb.empty():
        return
    target = to if to is not None else lb.walker.focus + (delta or 0)
    lb.focus_index(target)
    app.follow = lb.walker.focus == len(app.store) - 1 and app.follow


@action("list.down")
def list_down(app: App, size: Any) -> None:
    _move(app, 1)


@action("list.up")
def list_up(app: App, size: Any) -> None:
    _move(app, -1)
    app.follow = False


@action("list.page_down")
def list_page_down(app: App, size: Any) -> None:
    app.flowlist.page(1, size)


@action("list.page_up")
def list_page_up(app: App, size: Any) -> None:
    app.flowlist.page(-1, size)
    app.follow = False


@action("list.first")
def list_first(app: App, size: Any) -> None:
    _move(app, to=0)
    app.follow = False


@action("list.last")
def list_last(app: App, size: Any) -> None:
    _move(app, to=len(app.store) - 1)


@action("list.follow")
def list_follow(app: App, size: Any) -> None:
    app.follow = not app.follow
    if app.follow:
        _move(app, to=len(app.store) - 1)
    app.notify(f"follow new flows: {'on' if app.follow else 'off'}")
    app.refresh_status()


SLICED_FILTER_ABOVE = 20_000
"""Above this many flows a view filter is applied in slices: the list keeps answering keys meanwhile."""
FILTER_SLICE_S = 0.01
"""Work per slice. A key that arrives during a slice waits for it and, the loop being first come first
served, at most one more: 20 ms."""


def apply_filter(app: App, expr: str | None, announce: str | None = None) -> None:
    """Set the view filter (None: show all). A bad expression raises FilterError before anything changes.
    A big store is refiltered in slices with the progress in the status bar; the list shows the old view
    until the new one is complete."""
    if app.filter_task is not None:
        app.filter_task.cancel()
        app.filter_task = None
    if app.store.total <= SLICED_FILTER_ABOVE or (expr is None and not app.store.marked_only):
        app.store.set_filter(expr)
        app.flowlist.walker.changed()
        if announce:
            app.notify(announce)
        return
    if expr:
        parse_filter(expr)  # a bad expression fails here, not in the task
    shown = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - shown[0] >= 0.1:  # each notice costs a redraw
            shown[0] = now
            app.notify(f"filtering {total:,} flows… {100 * done // total}%")

    async def run() -> None:
        seconds = await app.store.set_filter_sliced(expr, progress, FILTER_SLICE_S)
        app.filter_task = None
        app.flowlist.walker.changed()
        app.notify(announce or f"{len(app.store):,} of {app.store.total:,} flows shown ({seconds:.1f} s)")
        app.refresh_status()

    app.filter_task = app.spawn(run())


@action("list.filter")
def list_filter(app: App, size: Any) -> None:
    def done(text: str | None) -> None:
        if text is None:
            return
        try:
            apply_filter(app, text.strip() or None)
            if text.strip():
                app.filter_history.append(text.strip())
        except FilterError as e:
            app.notify(f"invalid filter: {str(e).splitlines()[0]}", "error")
    app.ask("Filter (up/down: history): ", done, app.store.filter_expr or "", history=app.filter_history)


ORDERS = ("time", "method", "url", "size", "duration", "status")


@action("list.order")
def list_order(app: App, size: Any) -> None:
    cur = app.store.order
    nxt = ORDERS[(ORDERS.index(cur) + 1) % len(ORDERS)] if cur in ORDERS else "time"
    app.store.set_order(nxt)
    app.flowlist.walker.changed()
    app.notify(f"order: {nxt}")


@action("list.reverse")
def list_reverse(app: App, size: Any) -> None:
    app.store.set_reverse(not app.store.reverse)
    app.flowlist.walker.changed()
    app.notify(f"order reversed: {'yes' if app.store.reverse else 'no'}")


@action("list.marked_only")
def list_marked_only(app: App, size: Any) -> None:
    app.store.set_marked_only(not app.store.show_marked_only)
    app.flowlist.walker.changed()
    app.notify(f"only marked flows: {'on' if app.store.show_marked_only else 'off'}")


@action("list.clear")
def list_clear(app: App, size: Any) -> None:
    app.store.clear()
    app.flowlist.walker.changed()
    app.refresh_status()


@action("flow.open")
def flow_open(app: App, size: Any) -> None:
    flow = focused_flow(app)
    if flow is not None:
        app.push(FlowView(flow))


@action("flow.mark")
def flow_mark(app: App, size: Any) -> None:
    flow = focused_flow(app)
    if flow is not None:
        flow.marked = not flow.marked
        app.store.update(flow)
        app.flowlist.walker.changed()


@action("flow.delete")
def flow_delete(app: App, size: Any) -> None:
    flow = focused_flow(app)
    if flow is None:
        return
    if flow.intercepted:
        flow.kill()
    app.store.remove(flow)
    app.flowlist.walker.changed()
    if isinstance(app.current, FlowView):
        app.pop()
    app.refresh_status()


# -- intercept ------------------------------------------------------------------------------------
@action("intercept.set")
def intercept_set(app: App, size: Any) -> None:
    def done(text: str | None) -> None:
        if text is None:
            return
        app.master.options.intercept = text.strip() or None
        app.notify(f"intercept: {text.strip() or 'off'}")
    app.ask("Intercept filter: ", done, app.master.options.intercept or "")


def _resume_item(flow: Any, message: Any) -> None:
    if message is not None:
        message.resume()
    else:
        flow.resume()


@action("flow.resume")
def flow_resume(app: App, size: Any) -> None:
    cur = app.current
    if isinstance(cur, FlowView) and cur.focused_message is not None and cur.focused_message.intercepted:
        cur.focused_message.resume()
        return
    flow = focused_flow(app)
    if flow is None:
        return
    ws = getattr(flow, "websocket", None)
    if flow.intercepted:
        flow.resume()
    elif ws is not None and ws.held_messages:
        ws.held_messages[0].resume()
    elif getattr(flow, "held_messages", None):
        flow.held_messages[0].resume()
    else:
        app.notify("this flow is not held")


@action("flow.resume_all")
def flow_resume_all(app: App, size: Any) -> None:
    for flow, message, _ in list(app.held.values()):
        _resume_item(flow, message)
    app.notify("resumed everything held")


@action("flow.kill")
def flow_kill(app: App, size: Any) -> None:
    flow = focused_flow(app)
    if flow is None:
        return
    target = getattr(flow, "websocket", None) or flow
    if target.live:
        target.kill()
        app.notify("flow killed")
    else:
        app.notify("this flow has finished: nothing to kill")


@action("message.drop")
def message_drop(app: App, size: Any) -> None:
    cur = app.current
    msg = cur.focused_message if isinstance(cur, FlowView) else None
    if msg is None or not msg.intercepted:
        app.notify("no held message here")
        return
    msg.drop()


# -- flow view --------------------------------------------------------------------------------------
@action("view.next_tab")
def next_tab(app: App, size: Any) -> None:
    if isinstance(app.current, FlowView):
        app.current.switch_tab(1)


@action("view.prev_tab")
def prev_tab(app: App, size: Any) -> None:
    if isinstance(app.current, FlowView):
        app.current.switch_tab(-1)


for _name in ("scroll.down", "scroll.up", "scroll.page_down", "scroll.page_up", "scroll.top", "scroll.bottom"):
    def _scroll(app: App, size: Any, _n: str = _name) -> None:
        if isinstance(app.current, FlowView):
            app.current.scroll(_n, size)
    ACTIONS[_name] = _scroll


@action("view.content_mode")
def content_mode(app: App, size: Any) -> None:
    if isinstance(app.current, FlowView):
        app.notify(f"content view: {app.current.cycle_mode()}")


@action("view.search")
def view_search(app: App, size: Any) -> None:
    view = app.current
    if not isinstance(view, FlowView):
        return
    def done(text: str | None) -> None:
        if text:
            if not view.find(text, start=0):
                app.notify(f"not found: {text}", "warn")
    app.ask("Search: ", done, view.search or "")


@action("view.search_next")
def view_search_next(app: App, size: Any) -> None:
    view = app.current
    if isinstance(view, FlowView) and view.search:
        if not view.find(view.search):
            app.notify(f"not found: {view.search}", "warn")


# -- replay, duplicate, export, edit ------------------------------------------------------------------
@action("flow.replay")
def flow_replay(app: App, size: Any) -> None:
    flow = focused_flow(app)
    if flow is None or flow.type != "http":
        app.notify("only HTTP requests can be replayed")
        return
    app.spawn(app.master.replay(flow))
    app.notify("replaying the request")


@action("flow.duplicate")
def flow_duplicate(app: App, size: Any) -> None:
    flow = focused_flow(app)
    if flow is not None:
        app.store.add(flow.copy())
        app.flowlist.walker.changed()
        app.refresh_status()


@action("flow.export")
def flow_export(app: App, size: Any) -> None:
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


@action("flow.edit")
def flow_edit(app: App, size: Any) -> None:
    editing.start(app, focused_flow(app))


@action("flow.revert")
def flow_revert(app: App, size: Any) -> None:
    flow = focused_flow(app)
    if flow is not None and flow.modified:
        flow.revert()
        if isinstance(app.current, FlowView):
            app.current.refresh()
        app.notify("edits reverted")
    else:
        app.notify("nothing to revert")


# -- pending pane -----------------------------------------------------------------------------------
@action("pending.show")
def pending_show(app: App, size: Any) -> None:
    if isinstance(app.current, PendingPane):
        app.pop()
        return
    app.push(PendingPane(list(app.held.values())))


def _pending(app: App) -> tuple[Any, Any, str] | None:
    cur = app.current
    return cur.focused if isinstance(cur, PendingPane) else None


@action("cursor.down")
@action("pending.down")
def cursor_down(app: App, size: Any) -> None:
    walker = getattr(app.current, "walker", None)
    if walker is not None and walker.lines:
        walker.set_focus(walker.focus + 1)


@action("cursor.up")
@action("pending.up")
def cursor_up(app: App, size: Any) -> None:
    walker = getattr(app.current, "walker", None)
    if walker is not None and walker.lines:
        walker.set_focus(walker.focus - 1)


@action("pending.open")
def pending_open(app: App, size: Any) -> None:
    item = _pending(app)
    if item is None:
        return
    flow, msg, _ = item
    from interpose.tui.app import shown_flow
    view = FlowView(shown_flow(flow))
    if msg is not None:
        view.show_tab("Messages")
    app.push(view)


@action("pending.resume")
def pending_resume(app: App, size: Any) -> None:
    item = _pending(app)
    if item is not None:
        _resume_item(item[0], item[1])


@action("pending.kill")
def pending_kill(app: App, size: Any) -> None:
    item = _pending(app)
    if item is not None:
        item[0].kill()


@action("pending.drop")
def pending_drop(app: App, size: Any) -> None:
    item = _pending(app)
    if item is not None and item[1] is not None:
        item[1].drop()
    elif item is not None:
        app.notify("only a held message can be dropped; X kills a flow")


# -- addons and options --------------------------------------------------------------------------------
def _scripts_changed(app: App, scripts: list[str]) -> None:
    app.master.options.update(scripts=scripts)
    cur = app.current
    if isinstance(cur, AddonPicker):
        cur.reload(scripts)
    app.refresh_status()


@action("addons.picker")
def addons_picker(app: App, size: Any) -> None:
    app.push(AddonPicker(list(app.master.options.scripts)))


@action("picker.toggle")
def picker_toggle(app: App, size: Any) -> None:
    cur = app.current
    if not isinstance(cur, AddonPicker):
        return
    entry = cur.focused
    scripts = list(app.master.options.scripts)
    if entry.path is None:
        def done(text: str | None) -> None:
            if not text:
                return
            path = os.path.abspath(os.path.expanduser(text.strip()))
            if not os.path.isfile(path):
                app.notify(f"no such file: {path}", "error")
                return
            _scripts_changed(app, scripts + [path])
            app.notify(f"loaded {path}")
        app.ask("Load script: ", done)
        return
    full = {os.path.abspath(os.path.expanduser(p)): p for p in scripts}
    target = os.path.abspath(entry.path)
    if target in full:
        scripts.remove(full[target])
        _scripts_changed(app, scripts)
        app.notify(f"unloaded {entry.name}")
    else:
        _scripts_changed(app, scripts + [target])
        app.notify(f"loaded {entry.name}")


@action("options.editor")
def options_editor(app: App, size: Any) -> None:
    app.push(OptionsEditor(app.master.options))


@action("options.edit")
def options_edit(app: App, size: Any) -> None:
    cur = app.current
    if not isinstance(cur, OptionsEditor) or cur.focused is None:
        return
    name = cur.focused
    opt = app.master.options.option(name)

    def done(text: str | None) -> None:
        if text is None:
            return
        try:
            if opt.is_list:
                app.master.options.update(**{name: [t.strip() for t in text.split(",") if t.strip()]})
            else:
                app.master.options.update(**{name: opt.parse(text.strip(), opt.value)})
        except (InterposeError, ValueError) as e:
            app.notify(str(e).splitlines()[0], "error")
            return
        cur.reload()
        app.notify(f"{name} = {option_value_text(getattr(app.master.options, name))}")
    hint = " (comma-separated)" if opt.is_list else ""
    app.ask(f"{name}{hint}: ", done, option_value_text(opt.value) if opt.value not in (None, []) else "")


@action("options.reset")
def options_reset(app: App, size: Any) -> None:
    cur = app.current
    if isinstance(cur, OptionsEditor) and cur.focused is not None:
        try:
            app.master.options.reset(cur.focused)
        except InterposeError as e:
            app.notify(str(e), "error")
        cur.reload()


@action("flows.save")
def flows_save(app: App, size: Any) -> None:
    """`w`: the marked flows if any are marked, else the visible ones, to a flow file (`+FILE` appends)
    or, for a name ending in .har, a HAR file."""
    from interpose.store import har
    from interpose.store.flowfile import FlowWriter
    from interpose.runtime.builtins.save import parse_target

    marked = app.store.marked()
    flows = marked or list(app.store)
    if not flows:
        app.notify("no flows to save")
        return
    which = f"{len(flows)} marked flow{'s' if len(flows) != 1 else ''}" if marked else \
        f"{len(flows)} visible flow{'s' if len(flows) != 1 else ''}"

    def done(text: str | None) -> None:
        if text is None or not text.strip():
            return
        path, append = parse_target(text.strip())
        try:
            if path.lower().endswith(".har"):
                har.write(path, flows)
            else:
                with FlowWriter(path, append=append) as writer:
                    for flow in flows:
                        writer.add(flow)
        except InterposeError as e:
            app.notify(f"cannot save: {e}", "error")
            return
        except OSError as e:
            app.notify(f"cannot save to {path}: {e.strerror or e}", "error")
            return
        app.notify(f"{'appended' if append else 'saved'} {which} to {path}")
    app.ask("Save flows to: ", done, "flows.interpose")


@action("flows.load")
def flows_load(app: App, size: Any) -> None:
    """`L`: add the flows of a flow file or HAR file to the list (addons do not see them; `-r` is for that)."""
    from interpose.runtime.builtins import readfile

    def done(text: str | None) -> None:
        if text is None or not text.strip():
            return
        path = os.path.expanduser(text.strip())
        try:
            flows, warning = readfile.load(path)
        except InterposeError as e:
            app.notify(str(e), "error")
            return
        new = [f for f in flows if app.store.get(f.id) is None]  # loading a file twice keeps one copy
        for flow in new:
            app.store.add(flow)
        app.flowlist.walker.changed()
        app.refresh_status()
        msg = f"loaded {len(new)} flows from {path}"
        if len(new) != len(flows):
            msg += f" ({len(flows) - len(new)} already listed)"
        if warning:
            app.notify(f"{msg}; {warning}", "warn")
        else:
            app.notify(msg)
    app.ask("Load flows from: ", done)


# -- beyond the basics: global search, diff, copy, filter toggle -----------------------------------------
@action("search.global")
def search_global(app: App, size: Any) -> None:
    def done(text: str | None) -> None:
        if not text:
            return
        regex = text.startswith("/") and text.endswith("/") and len(text) > 2
        try:
            pattern = search.compile_query(text[1:-1] if regex else text, regex)
        except re.error as e:
            app.notify(f"invalid regular expression: {e}", "error")
            return
        view = SearchResults(text)
        app.push(view)
        flows = list(app.store)
        app.spawn(_run_search(app, view, flows, pattern))
    app.ask("Search all flows (/regex/ for a regular expression): ", done)


async def _run_search(app: App, view: SearchResults, flows: list[Any], pattern: Any) -> None:
    total = len(flows)

    def progress(done: int) -> None:
        view.progress(done, total)
        app.redraw_soon()
    matches = await search.search(flows, pattern, progress)
    view.pattern = pattern  # type: ignore[attr-defined]
    view.set_matches(matches)
    app.redraw_soon()


@action("search.open")
def search_open(app: App, size: Any) -> None:
    cur = app.current
    if not isinstance(cur, SearchResults) or cur.focused is None:
        return
    m = cur.focused
    from interpose.tui.app import shown_flow
    view = FlowView(shown_flow(m.flow))
    view.show_tab(m.tab)
    app.push(view)
    view.find(cur.query, start=0, pattern=getattr(cur, "pattern", None))


@action("flows.diff")
def flows_diff(app: App, size: Any) -> None:
    marked = [f for f in app.store.marked() if f.type == "http"]
    if len(marked) != 2:
        app.notify(f"mark exactly two HTTP flows to diff them (m marks; {len(marked)} marked)", "warn")
        return
    app.push(DiffView(marked[0], marked[1]))


@action("copy")
def copy(app: App, size: Any) -> None:
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
        flow = focused_flow(app)
        if flow is None or getattr(flow, "request", None) is None:
            app.notify("nothing to copy here")
            return
        text, what = flow.request.pretty_url, "URL"
    clipboard.copy(app, text)
    app.notify(f"{what} copied to the clipboard")


@action("list.filter_toggle")
def list_filter_toggle(app: App, size: Any) -> None:
    if app.store.filter_expr:
        app.filter_off = app.store.filter_expr
        apply_filter(app, None, "view filter off (| turns it back on)")
    elif app.filter_off:
        apply_filter(app, app.filter_off, f"view filter on: {app.filter_off}")
    else:
        app.notify("no view filter to toggle (f sets one)")


@action("list.delete_matching")
def list_delete_matching(app: App, size: Any) -> None:
    def done(text: str | None) -> None:
        if not text or not text.strip():
            return
        n = app.store.delete_matching(text.strip())
        app.flowlist.walker.changed()
        app.notify(f"deleted {n} flows matching {text.strip()}")
    app.ask("Delete every flow matching: ", done)


# -- repeater ----------------------------------------------------------------------------------------------
def _repeater(app: App) -> RepeaterView:
    view = getattr(app, "repeater", None)
    if view is None:
        view = RepeaterView(lambda tab: _repeater_send(app, tab), lambda tab, op, arg: _repeater_ws(app, tab, op, arg))
        app.repeater = view  # type: ignore[attr-defined]
    return view


def _repeater_send(app: App, tab: Tab) -> None:
    try:
        req = parse_request(tab.text.encode("utf-8", "surrogateescape"), tab.scheme, tab.host, tab.port)
    except RepeaterError as e:
        app.notify(str(e), "error")
        return
    from interpose.model.connection import Client, Server
    from interpose.http import HTTPFlow

    flow = HTTPFlow(Client(address=("repeater", 0)), Server(address=(req.host, req.port)))
    flow.request = req

    async def send() -> None:
        new = await app.master.replay(flow)
        _repeater(app).record(tab, new)
        app.notify(f"{req.method} {req.pretty_url} → " +
                   (f"{new.response.status_code}" if new.response is not None else
                    f"error: {new.error.msg if new.error else '?'}"))
    app.spawn(send())
    app.notify("sending…")


def _ws_route(app: App) -> Route:
    """Through the proxy's own listener (so the connection is a new flow) in the modes where a client may
    CONNECT; otherwise straight to the server."""
    from interpose.proxy.modes import Mode

    opts = app.master.options
    certs = getattr(app.master, "certs", None)
    ctx = wsrepeater.tls_context(bool(opts.ssl_insecure), opts.ssl_verify_upstream_trusted_ca,
                                 getattr(certs, "ca_cert_path", None))
    if Mode.parse(opts.mode).kind not in ("regular", "upstream"):
        return Route(None, ctx)
    host, port = app.address
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    auth = None
    if opts.proxyauth and not opts.proxyauth.startswith("@"):
        import base64
        creds = "repeater:repeater" if opts.proxyauth == "any" else opts.proxyauth
        auth = "Basic " + base64.b64encode(creds.encode()).decode()
    return Route((host, port), ctx, auth)


def _ws_entry(app: App, tab: WsTab, entry: wsrepeater.Entry) -> None:
    tab.add(entry)
    if entry.kind == "error":
        app.notify(f"WebSocket: {entry.note}", "error")
    _repeater(app).ws_changed(tab)
    app.redraw_soon()


def _repeater_ws(app: App, tab: WsTab, op: str, arg: Any) -> bool:
    """A WebSocket tab's connection: connect (closing the old one first), send, disconnect, close."""
    old, old_task = tab.session, tab.task
    if op in ("disconnect", "close"):
        if old is not None and old.state in ("connecting", "open"):
            app.spawn(old.close(old_task))
            app.notify("closing the connection")
        elif op == "disconnect":
            app.notify("not connected")
        return True
    if op == "send":
        text, hex_mode = arg
        if old is None or old.state != "open":
            app.notify("not connected: ctrl s connects", "warn")
            return False
        try:
            old.send(wsrepeater.parse_outgoing(text, hex_mode))
        except RepeaterError as e:
            app.notify(str(e), "error")
            return False
        return True
    assert op == "connect"
    try:
        handshake = wsrepeater.parse_handshake(tab.text.encode("utf-8", "surrogateescape"), tab.scheme,
                                               tab.host, tab.port)
    except RepeaterError as e:
        app.notify(str(e), "error")
        return False
    session = wsrepeater.WsSession(handshake, _ws_route(app), lambda e: _ws_entry(app, tab, e))
    tab.session = session

    async def connect() -> None:
        if old is not None:
            await old.close(old_task)
        if tab.session is session:  # not replaced by a newer ctrl s meanwhile
            await session.run()
    tab.task = app.spawn(connect())
    _repeater(app).ws_changed(tab)
    app.notify(f"connecting to {handshake.url}")
    return True


@action("repeater.send")
def repeater_send(app: App, size: Any) -> None:
    flow = focused_flow(app)
    if flow is None or flow.type not in ("http", "websocket"):
        app.notify("only HTTP requests and WebSockets go to the repeater")
        return
    view = _repeater(app)
    view.add(tab_for(flow))
    app.push(view)


# -- sticky edits --------------------------------------------------------------------------------------------
@action("sticky.make")
def sticky_make(app: App, size: Any) -> None:
    view = app.current
    if not isinstance(view, FlowView) or view.flow.type != "http" or app.sticky is None:
        return
    flow = view.flow
    original = flow._backup
    if original is None:
        app.notify("edit the flow first (e), then s makes the edit stick")
        return
    part = "response" if view.tab_name == "Response" else "request"
    rule = rule_from_edit(original, flow, part)
    if rule is None:
        app.notify(f"the {part} was not changed")
        return
    app.sticky.add(rule)
    app.notify(f"sticky rule added: {rule.describe()[:80]}")


@action("sticky.respond")
def sticky_respond(app: App, size: Any) -> None:
    """`K`: keep the flow's response (as edited) and answer matching requests with it from now on."""
    flow = focused_flow(app)
    if flow is not None and flow.type == "websocket":
        flow = flow.handshake_flow
    if flow is None or flow.type != "http" or app.sticky is None:
        app.notify("K keeps the response of an HTTP flow")
        return
    if flow.response is None:
        app.notify("this flow has no response (yet) to keep", "warn")
        return
    sticky = app.sticky

    def done(text: str | None) -> None:
        if text is None or not text.strip():
            return
        try:
            rule = rule_from_response(flow, text.strip())
        except ValueError as e:
            what = "invalid filter: " if isinstance(e, FilterError) else ""
            app.notify(f"{what}{str(e).splitlines()[0]}", "error")
            return
        sticky.add(rule)
        app.notify(f"saved response rule added: {rule.describe()[:80]}")
    app.ask("Answer requests matching (with this response): ", done, default_filter(flow))


@action("sticky.show")
def sticky_show(app: App, size: Any) -> None:
    if app.sticky is not None:
        app.push(RulesView(app.sticky))


@action("sticky.delete")
def sticky_delete(app: App, size: Any) -> None:
    cur = app.current
    if isinstance(cur, RulesView) and app.sticky is not None and app.sticky.rules:
        app.sticky.remove(min(cur.walker.focus, len(app.sticky.rules) - 1))
        cur.reload()
        app.notify("rule deleted")


# -- header-stage breakpoints -----------------------------------------------------------------------------------
def _header_stage(app: App) -> tuple[Any, str] | None:
    view = app.current
    if not isinstance(view, FlowView) or view.held_stage not in ("requestheaders", "responseheaders"):
        app.notify("B and T are for a flow held at requestheaders or responseheaders")
        return None
    return view.flow, view.held_stage


@action("flow.resume_buffered")
def resume_buffered(app: App, size: Any) -> None:
    held = _header_stage(app)
    if held is not None:
        flow, stage = held
        body_stage = "request" if stage == "requestheaders" else "response"
        message = flow.request if body_stage == "request" else flow.response
        message.stream = False
        flow.metadata[f"hold_at_{body_stage}"] = True
        flow.resume()
        app.notify(f"buffering the {body_stage} body; it stops again when the body is in")


@action("flow.resume_streamed")
def resume_streamed(app: App, size: Any) -> None:
    held = _header_stage(app)
    if held is not None:
        flow, stage = held
        message = flow.request if stage == "requestheaders" else flow.response
        message.stream = True
        flow.resume()
        app.notify(f"streaming the {'request' if stage == 'requestheaders' else 'response'} body through")


@action("pending.edit")
def pending_edit(app: App, size: Any) -> None:
    item = _pending(app)
    if item is None:
        return
    flow, msg, _ = item
    if msg is None:
        pending_open(app, size)
        app.notify("e edits; a forwards")
        return
    app.spawn(editing._edit_message(app, msg))


@action("pending.inject")
def pending_inject(app: App, size: Any) -> None:
    item = _pending(app)
    flow = item[0] if item is not None else None
    target = getattr(flow, "websocket", None) or flow
    if target is None or not hasattr(target, "inject") or not target.live:
        app.notify("inject needs a live WebSocket or TCP flow")
        return

    def direction(key: str | None) -> None:
        if key not in ("c", "s"):
            return

        def text_done(text: str | None) -> None:
            if text is None:
                return
            try:
                target.inject(text, from_client=(key == "c"))
            except RuntimeError as e:
                app.notify(str(e), "error")
                return
            app.notify(f"injected {len(text.encode())} bytes {'to the server' if key == 'c' else 'to the client'}")
        app.ask("Message: ", text_done)
    app.ask_key("Inject as if from the (c)lient (to the server) or the (s)erver (to the client)? ", direction)
