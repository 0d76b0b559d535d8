"""`--session FILE` / `session`: record every flow, and the options changed from their defaults, into a
session file (interpose.store.session) while traffic passes.

A flow is recorded when it finishes and again whenever it changes after that:
- HTTP on the `tick` after its `response`/`error` (once every addon's hook ran; a flow still held once
  it is released);
- a WebSocket with its handshake flow on the `tick` after `websocket_end`/`websocket_error`;
- TCP on the `tick` after `tcp_end`/`tcp_error`;
- `record(flow)` for anything else that changed it (a mark, a comment: the TUI calls it);
- flows deleted through the core (`FlowRemoved` on the bus) are marked deleted.

Opening an existing session restores the options it stored that are still at their defaults (so flags
given now win) and, for a viewer on the bus, announces its flows (`FlowAdded`). A session that cannot be
used is refused (OptionsError: one message, exit 2); a write that fails later stops recording with an
error in the log, and the proxy carries on.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

from interpose.errors import OptionsError
from interpose.runtime.bus import FlowAdded, FlowRemoved

LogFn = Callable[[str, str], None]
NOT_STORED = frozenset({"session", "rfile", "listen_host", "listen_port", "confdir", "save_stream_file",
                        "keepserving", "quiet", "scripts"})
"""Options that say where this run listens, reads and writes: never taken from a session."""


class SessionRecorder:
    name = "session"

    def __init__(self, bus: Any, log: LogFn) -> None:
        self._bus = bus
        self._log = log
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
        self._watch: asyncio.Task[None] | None = None

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
        if self._loop is not None:
            self._watch = self._loop.create_task(self._removals(self._bus.subscribe()))

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

    async def _removals(self, sub: Any) -> None:
        try:
            while True:
                msg = await sub.get()
                if isinstance(msg, FlowRemoved) and self.session is not None:
                    self.session.delete(msg.flow_id)
        finally:
            self._bus.unsubscribe(sub)

    # -- recording -------------------------------------------------------------------------------------
    def record(self, flow: Any) -> None:
        """Record `flow` as it is now (call it on the core's loop after changing a recorded flow)."""
        if self.session is not None:
            self.session.put(flow)

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

    def _http_finished(self, flow: Any) -> None:
        # Recorded on the next `tick`, after every addon's hook ran (what they add to metadata included).
        if self.session is not None:
            self._pending[flow.id] = flow

    def response(self, flow: Any) -> None:
        self._http_finished(flow)

    def error(self, flow: Any) -> None:
        self._http_finished(flow)

    def websocket_end(self, flow: Any) -> None:
        self._http_finished(flow.handshake_flow)

    websocket_error = websocket_end

    def tcp_end(self, flow: Any) -> None:
        if self.session is not None:
            self._pending[flow.id] = flow

    tcp_error = tcp_end

    def tick(self) -> None:
        if self._pending:
            for flow in [f for f in self._pending.values() if not f.intercepted]:
                del self._pending[flow.id]
                self.record(flow)

    def _close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self.session is None:
            return
        for flow in self._pending.values():
            self.session.put(flow)
        self._pending.clear()
        session, self.session = self.session, None
        session.close()
        if self.temporary and session.failed is None:
            from interpose.store.session import temp

            temp.remove(session.path)

    def done(self) -> None:
        self._close()
