"""`interpose`: the terminal UI. The proxy core runs on its own thread and loop (runtime/entry.py), so the
UI never holds up a proxied request; urwid runs on the main thread's loop. The UI learns what happens
from the bus's typed messages and asks the core for anything (resume, kill, replay, set options)
through `Core`, the one thread-safe entry. While a flow is held, the UI owns it and edits it in place.

    asyncio.run(run(options)):
        CoreThread(master).start() → urwid.MainLoop(...).start() → await app.quit → loop.stop(), core.stop()
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Awaitable, Coroutine
from typing import Any, overload

import urwid

from interpose.cli import args as cli
from interpose.runtime.bus import (
    FlowAdded,
    FlowIntercepted,
    FlowRemoved,
    FlowResumed,
    FlowUpdated,
    LogRecorded,
    MessageAdded,
    OptionsChanged,
    Subscription,
)
from interpose.runtime.entry import Core, CoreThread
from interpose.runtime.master import Master
from interpose.runtime.options import Options
from interpose.store.session.paging import PagedFlowStore
from interpose.store.spill import BodySpill
from interpose.tui import commands, keymap, status
from interpose.tui import session as tui_session
from interpose.tui.commands import layouts
from interpose.tui.commands.run import load_keys, run_command
from interpose.tui.format import shown_flow
from interpose.tui.palette import PALETTE
from interpose.tui.paste import Paste, PasteScreen
from interpose.tui.repeater.view import RepeaterView
from interpose.tui.sticky import StickyRules
from interpose.tui.widgets.flowlist import FlowListBox
from interpose.tui.widgets.flowview import FlowView
from interpose.tui.widgets.panes import EventLog, Prompt, StatusBar, help_widget
from interpose.tui.widgets.welcome import welcome_for


class App:
    def __init__(self, master: Master, core: Core | None = None) -> None:
        self.master = master
        """The core, to read (options, addons): anything that changes it goes through `core`."""
        self._core = core
        self.store = PagedFlowStore()
        self.spill = BodySpill.from_options(master.options)
        """Moves the bodies of finished kept flows to disk (body_spill_threshold, flow_memory_limit)."""
        self.quit = asyncio.Event()
        self.flowlist = FlowListBox(self.store, master.options)
        self.follow = True
        self.views: list[Any] = []
        self.statusbar = StatusBar()
        self.eventlog = EventLog()
        self.show_eventlog = False
        self.held: dict[str, tuple[Any, Any, str]] = {}
        """What is paused now, by the hold's key (bus.held_key) → (flow, message or None, stage)."""
        self.body = urwid.WidgetPlaceholder(self.flowlist)
        self.frame: urwid.Frame[urwid.WidgetPlaceholder, None, StatusBar] = urwid.Frame(
            self.body, footer=self.statusbar)
        self.top = TopWidget(self)
        self.loop: urwid.MainLoop | None = None
        self.prompt: Prompt | None = None
        self.overlay: urwid.Widget | None = None
        self.tasks: set[asyncio.Future[Any]] = set()
        self.message = ""
        self._message_serial = 0
        self._interrupting = False
        """Counts messages: a message's expiry timer clears it only if no other came since."""
        self.address = ("?", 0)
        self._redraw_pending = False
        self.sticky: StickyRules | None = None
        self.filter_history: list[str] = []
        self.filter_off: str | None = None
        """The view filter that `|` turned off, to turn it back on."""
        self.filter_task: asyncio.Task[Any] | None = None
        """A view filter being applied in slices (big stores), if any."""
        self.repeater: RepeaterView | None = None
        """The repeater, made on first use; its tabs and connections live on while other views show."""
        self.last_size: Any = None
        """The screen size of the last key press (commands that page use it)."""
        self.command_history = commands.attach(self)

    @property
    def core(self) -> Core:
        """The thread-safe entry into the core. Without a core thread (tests, benchmarks that never start
        one), the core shares this loop and calls go straight through."""
        if self._core is None:
            self._core = Core(self.master, asyncio.get_running_loop())
        return self._core

    # -- views -------------------------------------------------------------------------
    @property
    def current(self) -> Any:
        return self.views[-1] if self.views else self.flowlist

    @property
    def context(self) -> str:
        if self.overlay is not None:
            return "help"
        return getattr(self.current, "context", "flowlist")

    def push(self, view: Any) -> None:
        if isinstance(view, FlowView):
            view.held_stage = next((stage for f, m, stage in self.held.values() if m is None and f is view.flow), None)
            view.refresh()
        self.views.append(view)
        self.layout()

    def pop(self) -> None:
        if self.views:
            self.views.pop()
        self.layout()

    def layout(self) -> None:
        """Rebuild the screen from the current view, the event log and the overlay."""
        main = layouts.with_preview(self, self.current)
        if self.show_eventlog:
            main = urwid.Pile([main, (10, self.eventlog)])
        if self.overlay is not None:
            main = urwid.Overlay(self.overlay, main, "center", ("relative", 90), "middle", ("relative", 90))
        self.body.original_widget = main
        self.refresh_status()
        self.redraw_soon()

    def show_help(self) -> None:
        cols = self.loop.screen.get_cols_rows()[0] if self.loop is not None else 80
        ctxs = [self.context] if self.context == "repeater" else [self.context, "global"]  # no global keys there
        self.overlay = help_widget(ctxs, cols * 9 // 10)
        self.layout()

    def close_overlay(self) -> None:
        self.overlay = None
        self.layout()

    # -- status and prompts -------------------------------------------------------------
    def notify(self, text: str, level: str = "text") -> None:
        """A message in the status bar. It goes after status.MESSAGE_TTL_S (errors stay twice as long), or
        sooner when another replaces it."""
        self.message = text
        if self.prompt is None:  # never push an open prompt aside: its keys would go nowhere
            self.statusbar.set_message((level, text))
        status.expire_later(self, level)
        self.redraw_soon()

    def ask(self, label: str, on_done: Any, initial: str = "", history: list[str] | None = None,
            select: bool = True) -> None:
        """A one-line prompt; `on_done(text)` gets None when cancelled. Up/down walk `history`. The `initial`
        text starts selected (typing replaces it) unless `select` is False."""
        def done(text: str | None) -> None:
            self.prompt = None
            self.statusbar.set_message("")
            self.frame.focus_position = "body"
            on_done(text)
            self.refresh_status()
        self.prompt = Prompt(label, initial, done, history, select=select)
        self.statusbar.show(self.prompt)
        self.frame.focus_position = "footer"
        self.redraw_soon()  # asked from a task (after a refusal), the prompt shows at once too

    def interrupt(self) -> None:
        """Ctrl-C: say what quitting loses and ask; a second Ctrl-C while asking quits."""
        status.interrupt(self)

    def ask_key(self, label: str, on_key: Any) -> None:
        """A question answered by one key press; `on_key(key)` gets None for Esc."""
        self.ask(label, lambda text: on_key(text))
        prompt = self.prompt
        assert prompt is not None

        def keypress(size: Any, key: str) -> str | None:
            prompt.on_done(None if key == "esc" else key)
            return None
        prompt.keypress = keypress  # type: ignore[method-assign]
        prompt.paste = lambda text: False  # type: ignore[method-assign]  # a one-key answer takes no text

    def set_address(self, address: tuple[str, int]) -> None:
        """Where the proxy listens now (after a re-bind)."""
        self.address = (str(address[0]), int(address[1]))
        self.flowlist.welcome = welcome_for(self.master, self.address)
        self.refresh_status()

    def refresh_status(self) -> None:
        self.statusbar.set_info(status.info_parts(self.master, self.address, self.store, len(self.held), self.follow))

    # -- events from the core ------------------------------------------------------------
    async def consume(self, q: Subscription | None = None) -> None:
        """Apply the bus's messages as they arrive: everything waiting at once, then one redraw."""
        if q is None:
            q = self.master.bus.subscribe()
        while True:
            events = [await q.get(), *q.drain()]
            self.apply(events)
            events.clear()  # while waiting for the next ones, hold no flow the store has let go
            self.redraw()

    def apply(self, events: list[Any]) -> None:
        changed: dict[str, Any] = {}
        added, options = False, set[str]()  # options: the names OptionsChanged brought
        for ev in events:
            if isinstance(ev, FlowUpdated | MessageAdded):
                flow = shown_flow(ev.flow)
                changed[flow.id] = flow
            elif isinstance(ev, FlowAdded):
                flow = ev.flow
                if self.store.get(flow.id) is None:
                    self.store.add(flow)
                    self.spill.keep(flow)  # a loaded flow (-r) comes complete
                    added = True
            elif isinstance(ev, OptionsChanged):
                options |= ev.updated
            elif isinstance(ev, LogRecorded):
                self.eventlog.add(ev.entry)
            elif isinstance(ev, FlowIntercepted):
                flow = shown_flow(ev.flow)
                self.held[ev.key] = (ev.flow, ev.message, ev.stage)
                changed[flow.id] = flow
            elif isinstance(ev, FlowResumed):
                self.held.pop(ev.key, None)
                flow = shown_flow(ev.flow)
                changed[flow.id] = flow
            elif isinstance(ev, FlowRemoved):
                gone = self.store.get(ev.flow_id)
                if gone is not None:
                    self.store.remove(gone)
                changed.pop(ev.flow_id, None)
        for flow in changed.values():
            if self.store.get(flow.id) is not None:
                self.store.update(flow)
                self.spill.keep(flow)  # does nothing until the flow is complete and not held
        if added and self.follow and len(self.store):
            self.flowlist.focus_index(len(self.store) - 1)
        self.flowlist.walker.changed()
        layouts.refresh_views(self, changed, options)  # the preview and the flow view in front
        cur = self.current
        if hasattr(cur, "set_items"):
            cur.set_items(list(self.held.values()))
        self.eventlog.refresh()
        self.refresh_status()

    def redraw(self) -> None:
        if self.loop is not None:
            self.loop.draw_screen()

    def redraw_soon(self) -> None:
        """Redraw once control returns to the loop: changes made outside input handling (by tasks) show."""
        if self.loop is not None and not self._redraw_pending:
            self._redraw_pending = True
            asyncio.get_running_loop().call_soon(self._redraw_now)

    def _redraw_now(self) -> None:
        self._redraw_pending = False
        if self.loop is not None:
            self.loop.draw_screen()

    @overload
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
    @overload
    def spawn(self, coro: asyncio.Future[Any]) -> asyncio.Future[Any]: ...
    def spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        """Run a coroutine (or watch a future) for the UI; a failure goes to the event log and the status bar,
        not the screen."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.core.log(f"UI task failed: {exc}\n{tb}", "error")
        self.notify(f"failed: {exc}", "error")

    # -- keys -------------------------------------------------------------------------------
    def keypress(self, size: tuple[int, int], key: str) -> str | None:
        if self.prompt is not None:
            return key  # the prompt has the focus and saw the key first
        if key == "ctrl c":
            self.interrupt()
            return None
        self.message = ""
        if self.context in ("editor", "repeater") or getattr(self.current, "editing", None) is not None:
            return key  # the in-TUI editors (and a grid cell being edited) take every key
        cmd = keymap.lookup(["grideditor"] if self.context == "grideditor" else [self.context, "global"], key)
        if cmd is None:
            return key
        self.last_size = size
        run_command(self, cmd)  # a mistake is one line in the status bar
        layouts.follow_focus(self)
        return None


class TopWidget(urwid.WidgetWrap):
    """Routes keys: the prompt first, then the keymap, then the focused widget."""

    def __init__(self, app: App) -> None:
        self.app = app
        super().__init__(app.frame)

    # urwid's Widget signature takes every size (urwid's own Frame.keypress narrows it with the same ignore):
    # the top widget, a Frame, gets (maxcol, maxrow).
    def keypress(self, size: tuple[int, int], key: str) -> str | None:  # type: ignore[override]
        app = self.app
        if isinstance(key, Paste):
            status.paste(app, key.text)
            return None
        if app.prompt is not None:
            return self._w.keypress(size, key)
        rest = app.keypress(size, key)
        if rest is None:
            return None
        rest = self._w.keypress(size, rest)
        if rest == "esc" and app.context == "repeater":
            app.pop()
            return None
        return rest


async def run(opts: Options) -> int:
    master = Master(opts)
    notes = tui_session.prepare(opts, master)
    for note in notes:
        print(f"interpose: {note}", file=sys.stderr, flush=True)
    sticky = StickyRules(opts.confdir)
    master.add_addon(sticky)
    core = CoreThread(master)
    loop = asyncio.get_running_loop()
    app = App(master, core)
    app.sticky = sticky
    load_keys(app, os.path.join(os.path.expanduser(opts.confdir), "keys.yaml"), missing_ok=True)
    app.spawn(app.consume(master.bus.subscribe()))  # subscribed on this loop before the core starts
    master.session.announce = False  # the list pages from the session instead (store/session/paging.py)
    host, port = await loop.run_in_executor(None, core.start)
    app.address = (host, port)
    tui_session.attach_store(app)  # the session recorded into, or -r SESSION's (followed live)
    app.spill.attach(master.session.session, loop)  # bodies are read back from the session, not a spill file
    app.flowlist.focus_index(len(app.store) - 1)
    tui_session.restore_view(app)
    app.flowlist.welcome = welcome_for(master, app.address)
    print(f"proxy listening at {host}:{port}", file=sys.stderr, flush=True)
    cli.on_signals(app.quit.set)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, app.interrupt)  # Ctrl-C asks first (SIGTERM still quits)
    screen = PasteScreen()
    screen.set_terminal_properties(colors=256)
    # ctrl s and ctrl q are ours, not XON/XOFF; ctrl c is a key that asks before quitting (app.interrupt)
    screen.tty_signal_keys(intr="undefined", start="undefined", stop="undefined")
    main_loop = urwid.MainLoop(app.top, PALETTE, screen=screen, handle_mouse=False,
                               event_loop=urwid.AsyncioEventLoop(loop=loop))
    app.loop = main_loop
    app.refresh_status()
    main_loop.start()
    if notes:
        app.notify(notes[0], "warn")
    try:
        await app.quit.wait()
        tui_session.save_view(app)
    finally:
        main_loop.stop()
        for t in list(app.tasks):
            t.cancel()
        await loop.run_in_executor(None, core.stop)  # `done` for every addon, files flushed, thread ended
    return 0


def main(argv: list[str] | None = None) -> None:
    listing = {"-h", "--help", "--version", "--options", "--commands"}  # these need no terminal
    if not (sys.stdin.isatty() and sys.stdout.isatty()) and not listing & set(sys.argv[1:]):
        print("interpose: error: the terminal UI needs a terminal; use interpose-dump to run without one",
              file=sys.stderr)
        sys.exit(2)
    sys.exit(cli.run("interpose", "interpose: the interactive intercepting proxy.", run, argv,
                     extra_commands=commands.declare))


if __name__ == "__main__":
    main()
