"""What the actions and the editors (tui/editing.py) may use of the app: the `UI` protocol.

`tui.app.App` implements it; the code that takes a `UI` never imports the app, so the app can import the
actions without an import circle. Read-only members are properties here: actions change what they hold
(the store, the views) through their methods, and assign only the plain attributes listed as such.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol, overload

import urwid

from interpose.runtime.entry import Core
from interpose.runtime.master import Master
from interpose.store.view import FlowStore
from interpose.tui.repeater.view import RepeaterView
from interpose.tui.sticky import StickyRules
from interpose.tui.widgets.flowlist import FlowListBox
from interpose.tui.widgets.panes import EventLog

Answer = Callable[[str | None], object]
"""A prompt's callback: the text (or key) the user gave, None when they cancelled. Its result is ignored."""


class UI(Protocol):
    """The app as the actions see it."""

    # -- assigned by actions ---------------------------------------------------------------
    follow: bool
    """Keep the focus on the newest flow as flows arrive."""
    show_eventlog: bool
    """The event log is shown under the current view (apply with `layout()`)."""
    filter_off: str | None
    """The view filter that `|` turned off, to turn it back on."""
    filter_task: asyncio.Task[Any] | None
    """A view filter being applied in slices (big stores), if any."""
    repeater: RepeaterView | None
    """The repeater, made on first use; its tabs and connections live on while other views show."""

    # -- read by actions -------------------------------------------------------------------
    @property
    def master(self) -> Master:
        """The core, to read (options, addons). It runs on another thread: change nothing through it."""
    @property
    def core(self) -> Core:
        """The one thread-safe entry into the core: resume, kill, drop, inject, replay, set options."""
    @property
    def store(self) -> FlowStore:
        """The flows shown in the list (order, view filter, marks)."""
    @property
    def flowlist(self) -> FlowListBox:
        """The flow list widget, the bottom of the view stack."""
    @property
    def eventlog(self) -> EventLog: ...
    @property
    def held(self) -> Mapping[Any, tuple[Any, Any, str]]:
        """Everything paused now: (flow, message or None, stage) by the hold's key."""
    @property
    def views(self) -> list[Any]:
        """The views over the flow list, the current one last (`push` and `pop` change it)."""
    @property
    def current(self) -> Any:
        """The view with the focus: the last pushed, else the flow list."""
    @property
    def overlay(self) -> urwid.Widget | None:
        """The help overlay, when shown."""
    @property
    def quit(self) -> asyncio.Event:
        """Set to quit the app."""
    @property
    def address(self) -> tuple[str, int]:
        """Where the proxy listens."""
    @property
    def sticky(self) -> StickyRules | None: ...
    @property
    def filter_history(self) -> list[str]:
        """View filters typed so far, for the prompt's up/down."""
    @property
    def loop(self) -> urwid.MainLoop | None:
        """The urwid loop (None until it runs): an external editor stops and restarts it."""

    # -- views -----------------------------------------------------------------------------
    def push(self, view: Any) -> None:
        """Show `view` over the current one."""
    def pop(self) -> None:
        """Back to the previous view."""
    def layout(self) -> None:
        """Rebuild the screen from the current view, the event log and the overlay."""
    def show_help(self) -> None: ...
    def close_overlay(self) -> None: ...

    # -- status and prompts ----------------------------------------------------------------
    def notify(self, text: str, level: str = "text") -> None:
        """A message in the status bar; `level` is a palette attribute (text, warn, error)."""
    def ask(self, label: str, on_done: Answer, initial: str = "", history: list[str] | None = None,
            select: bool = True) -> None:
        """A one-line prompt; `on_done(text)` gets None when cancelled. Up/down walk `history`. The `initial`
        text starts selected (typing replaces it) unless `select` is False."""
    def ask_key(self, label: str, on_key: Answer) -> None:
        """A question answered by one key press; `on_key(key)` gets None for Esc."""
    def refresh_status(self) -> None: ...
    def set_address(self, address: tuple[str, int]) -> None:
        """Where the proxy listens now (after a re-bind): the status bar shows it."""

    # -- drawing and tasks -------------------------------------------------------------------
    def redraw(self) -> None:
        """Draw the screen now."""
    def redraw_soon(self) -> None:
        """Draw once control returns to the loop (for changes made by tasks, outside input handling)."""
    @overload
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a coroutine for the UI; a failure goes to the event log and the status bar."""
    @overload
    def spawn(self, coro: asyncio.Future[Any]) -> asyncio.Future[Any]:
        """Watch a future (a call into the core) the same way."""
