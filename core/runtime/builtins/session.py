"""`--session FILE` / `session`: record every flow, and the options changed from their defaults, into a
session file (interpose.store.session) while traffic passes.

A flow is recorded when it finishes and again whenever it changes after that:
- HTTP after its `response`/`error`, once every addon's hook ran: on the loop's next turn, or on the next
  `tick` when an addon after this one has an async hook for it (a flow still held once it is released);
- a WebSocket with its handshake flow after `websocket_end`/`websocket_error`, the same way;
- TCP after `tcp_end`/`tcp_error`, the same way;
- `record(flow)` for anything else that changed it (a mark, a comment: the TUI calls it), and for flows
  the user added (loaded with `L` or `view.flows.load`, duplicated);
- `delete(flows)` marks flows deleted (the TUI's `d`, `z`, `Z`, ...; `Core.remove_flows`). A flow deleted
  while it was still going is not recorded again when it finishes.

It is an addon with only the hooks it needs; it does not listen to the event bus (which would cost every
flow a message per hook).

Opening an existing session restores the options it stored that are still at their defaults (so flags
given now win) and, for a viewer on the bus, announces its flows (`FlowAdded`). A session that cannot be
used is refused (OptionsError: one message, exit 2); a write that fails later stops recording with an
error in the log, and the proxy carries on.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import Callable
from typing import Any

from interpose.errors import OptionsError
from interpose.runtime.bus import FlowAdded

LogFn = Callable[[str, str], None]
NOT_STORED = frozenset({"session", "rfile", "listen_host", "listen_port", "confdir", "save_stream_file",
                        "keepserving", "quiet", "scripts"})
"""Options that say where this run listens, reads and writes: never taken from a session."""


class SessionRecorder:
    name = "session"

    def __init__(self, bus: Any, log: LogFn, handlers: Callable[[str], list[Any]] | None = None) -> None:
        self._bus = bus
        self._log = log
        self._handlers = handlers
        """The addon manager's `handlers(hook)`: who else has a hook, in chain order."""
        self._async_after: dict[str, tuple[Any, bool]] = {}
        self.session: Any = None
        self.temporary = False
        """A temporary session (the TUI's default): deleted by a clean `done`."""
        self.restored: dict[str, Any] = {}
        """The workspace state the session held when it was opened."""
        self.announce = True
        """Announce a reopened session's flows on the bus; off for a viewer that pages from the session
        itself (the TUI's list: store/session/paging.py), so reopening makes no Flow objects."""
        self._options: Any = None
        self._pending: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._soon: list[Any] = []
        """Flows finished during this turn of the loop: recorded on the next (`_record_soon`)."""
        self._gone: set[str] = set()
        """Flows deleted while they were still going: their hooks still fire, but they stay deleted."""

    # -- options ----------------------------------------------------------------------------------------
    def configure(self, options: Any, updated: set[str]) -> None:
        self._options = options
        if "session" in updated:
            self._open(options.session)
        if self.session is not None and updated - {"session"}:
            self._store_options()

    def _open(self, path: str | None) -> None:
        from interpose.store.session import Session, SessionError  # only when a session is used (startup)

        self._close()
        if not path:
            return
        path = os.path.expanduser(path)
        existed = os.path.exists(path) and os.path.getsize(path) > 0
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        try:
            self.session = Session.open(path, on_error=self._failed)
        except SessionError as e:
            raise OptionsError(str(e)) from None
        self.restored = self.session.state() if existed else {}
        if existed:
            self._restore_options(self.restored.get("options") or {})
            self._announce()

    def _restore_options(self, stored: dict[str, Any]) -> None:
        opts = self._options
        values = {}
        for name, value in stored.items():
            if name in NOT_STORED or name not in opts.keys():
                continue
            if opts.option(name).value == opts.option(name).default:  # a flag given now wins
                values[name] = value
        for name, value in values.items():
            try:
                opts.update(**{name: value})
            except OptionsError as e:
                self._log(f"session: option {name} not restored: {e}", "warn")

    def _store_options(self) -> None:
        opts = self._options
        changed = {name: o.value for name, o in opts.items()
                   if name not in NOT_STORED and o.value != o.default}
        self.session.set_state("options", changed)

    def _announce(self) -> None:
        if not self._bus.active or not self.announce:
            if not self.announce:
                self._log(f"reopened {self.session.path}: {self.session.count()} flows", "info")
            return
        count = 0
        for flow in self.session.flows():
            self._bus.publish(FlowAdded(flow))
            count += 1
        self._log(f"reopened {self.session.path}: {count} flows", "info")
        if self.session.recovered:
            self._log(self.session.recovered, "warn")

    def _failed(self, msg: str) -> None:
        """From the writer thread: say it in the log on the core's loop."""
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._log, msg, "error")
                return
        self._log(msg, "error")

    # -- recording -------------------------------------------------------------------------------------
    def record(self, flow: Any) -> None:
        """Record `flow` as it is now (call it on the core's loop after changing a recorded flow, or for a
        flow the user added: a deleted one with the same id comes back)."""
        if self.session is not None:
            self._gone.discard(flow.id)
            self.session.put(flow)

    def backlog(self) -> int:
        """Flows finished and not written to the session yet (queued here or for its writer)."""
        return len(self._soon) + (self.session.backlog() if self.session is not None else 0)

    def record_all(self, flows: list[Any]) -> None:
        """`record` each of `flows` (flows loaded into the TUI, duplicated)."""
        for flow in flows:
            self.record(flow)

    def delete(self, flows: list[Any]) -> None:
        """The user deleted these flows: they are marked deleted in the session."""
        if self.session is None or not flows:
            return
        for flow in flows:
            self._pending.pop(flow.id, None)
            if flow.live and (flow.intercepted or _going(flow)):
                self._gone.add(flow.id)
        self.session.delete([f.id for f in flows])

    def set_state(self, key: str, value: Any) -> None:
        if self.session is not None:
            self.session.set_state(key, value)

    def save(self, path: str) -> str:
        """`session.save FILE`: copy the session to FILE (never over an existing file). Returns what it did."""
        if self.session is None:
            raise OptionsError("no session is being recorded")
        from interpose.store.session import SessionError

        try:
            self.session.save(path)
        except SessionError as e:
            raise OptionsError(str(e)) from None
        return f"session saved to {os.path.expanduser(path)}"

    def _finished(self, flow: Any, hook: str) -> None:
        # Recorded once every addon's `hook` ran (what they add to metadata included): on the loop's next
        # turn when the addons after this one have plain hooks (they all ran by then), else on a tick.
        if self.session is not None:
            if self._gone and flow.id in self._gone:
                self._gone.discard(flow.id)  # finished now: no hook of it will come again
                return
            if self._loop is None or self._async_after_me(hook):
                self._pending[flow.id] = flow
                return
            self._soon.append(flow)
            if len(self._soon) == 1:
                self._loop.call_soon(self._record_soon)

    def _record_soon(self) -> None:
        # Once the hook that finished the flow returned (every addon's part of it ran: what they add to
        # metadata is included), the loop's next turn records it. Not kept until a tick: flows held for
        # 0.2 s survive the garbage collector's youngest generation and make it run far more often.
        soon, self._soon = self._soon, []
        if self.session is None:
            return
        for flow in soon:
            if flow.intercepted:
                self._pending[flow.id] = flow  # recorded on a tick once released
            elif not (self._gone and flow.id in self._gone):
                self.session.put(flow)

    def _async_after_me(self, hook: str) -> bool:
        """Whether an addon after this one in the chain has an async `hook` (it may still be running when
        the loop turns). Cached per list of handlers (the addon manager makes a new one on changes)."""
        if self._handlers is None:
            return True
        hs = self._handlers(hook)
        known = self._async_after.get(hook)
        if known is not None and known[0] is hs:
            return known[1]
        found, seen = False, False
        for addon, fn in hs:
            if seen and (inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)):
                found = True
                break
            seen = seen or addon is self
        self._async_after[hook] = (hs, found)
        return found

    def response(self, flow: Any) -> None:
        self._finished(flow, "response")

    def error(self, flow: Any) -> None:
        self._finished(flow, "error")

    def websocket_end(self, flow: Any) -> None:
        self._finished(flow.handshake_flow, "websocket_end")

    def websocket_error(self, flow: Any) -> None:
        self._finished(flow.handshake_flow, "websocket_error")

    def tcp_end(self, flow: Any) -> None:
        self._finished(flow, "tcp_end")

    def tcp_error(self, flow: Any) -> None:
        self._finished(flow, "tcp_error")

    def tick(self) -> None:
        if self._pending and self.session is not None:
            for flow in [f for f in self._pending.values() if not f.intercepted]:
                del self._pending[flow.id]
                self.session.put(flow)

    def _close(self) -> None:
        if self.session is None:
            return
        for flow in [*self._soon, *self._pending.values()]:
            self.session.put(flow)
        self._pending.clear()
        self._soon.clear()
        session, self.session = self.session, None
        session.close()
        if self.temporary and session.failed is None:
            from interpose.store.session import temp

            temp.remove(session.path)

    def done(self) -> None:
        self._close()


def _going(flow: Any) -> bool:
    """Whether a live flow has hooks still to come: no response yet, or an open WebSocket or TCP stream."""
    if flow.error is not None:
        return False
    if flow.type == "http":
        if flow.response is None:
            return True
        if flow.websocket is None:
            return False
    return flow.client_conn.timestamp_end is None
