"""Getting around: quitting, going back, help, the event log, list cursors, and moving within a flow view
(tabs, scrolling, content view, search in the view)."""
from __future__ import annotations

from typing import Any

from interpose.tui.actions.registry import Action, action, focused_flow
from interpose.tui.ui import UI
from interpose.tui.widgets.flowview import FlowView


@action("app.quit")
def quit_(app: UI, size: Any) -> None:
    def answer(key: str | None) -> None:
        if key in ("y", "Y"):
            app.quit.set()
    app.ask_key("Quit? (y/n) ", answer)


@action("view.back")
def back(app: UI, size: Any) -> None:
    if app.overlay is not None:
        app.close_overlay()
    elif app.views:
        app.pop()


@action("help.show")
def help_show(app: UI, size: Any) -> None:
    if app.overlay is not None:
        app.close_overlay()
    else:
        app.show_help()


@action("eventlog.toggle")
def eventlog_toggle(app: UI, size: Any) -> None:
    app.show_eventlog = not app.show_eventlog
    app.eventlog.dirty = True
    app.eventlog.refresh()
    app.layout()


# -- the cursor of line-based views (pending pane, picker, options, search results, diff, rules) ----------
@action("cursor.down")
@action("pending.down")
def cursor_down(app: UI, size: Any) -> None:
    walker = getattr(app.current, "walker", None)
    if walker is not None and walker.lines:
        walker.set_focus(walker.focus + 1)


@action("cursor.up")
@action("pending.up")
def cursor_up(app: UI, size: Any) -> None:
    walker = getattr(app.current, "walker", None)
    if walker is not None and walker.lines:
        walker.set_focus(walker.focus - 1)


# -- flow view ----------------------------------------------------------------------------------------------
@action("flow.open")
def flow_open(app: UI, size: Any) -> None:
    flow = focused_flow(app)
    if flow is not None:
        app.push(FlowView(flow, app.master.options))


@action("view.next_tab")
def next_tab(app: UI, size: Any) -> None:
    if isinstance(app.current, FlowView):
        app.current.switch_tab(1)


@action("view.prev_tab")
def prev_tab(app: UI, size: Any) -> None:
    if isinstance(app.current, FlowView):
        app.current.switch_tab(-1)


def _scroller(name: str) -> Action:
    def scroll(app: UI, size: Any) -> None:
        if isinstance(app.current, FlowView):
            app.current.scroll(name, size)
    return scroll


for _name in ("scroll.down", "scroll.up", "scroll.page_down", "scroll.page_up", "scroll.top", "scroll.bottom"):
    action(_name)(_scroller(_name))


@action("view.content_mode")
def content_mode(app: UI, size: Any) -> None:
    if isinstance(app.current, FlowView):
        app.notify(f"content view: {app.current.cycle_mode()}")


@action("view.search")
def view_search(app: UI, size: Any) -> None:
    view = app.current
    if not isinstance(view, FlowView):
        return

    def done(text: str | None) -> None:
        if text:
            if not view.find(text, start=0):
                app.notify(f"not found: {text}", "warn")
    app.ask("Search: ", done, view.search or "")


@action("view.search_next")
def view_search_next(app: UI, size: Any) -> None:
    view = app.current
    if isinstance(view, FlowView) and view.search:
        if not view.find(view.search):
            app.notify(f"not found: {view.search}", "warn")
