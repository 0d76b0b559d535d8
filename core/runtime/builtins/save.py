"""`-w FILE` / `save_stream_file`: write every finished flow to a flow file (`+FILE` appends).

A flow is written once, when it is finished, so the file holds what really went through (edits made
while it was held included):

- an HTTP flow after its `response` or `error`, once the proxy is done with it (no longer live or held;
  checked again on every `tick`);
- a WebSocket handshake flow when its WebSocket ends (`websocket_end`/`websocket_error`), with every message;
- a TCP flow at `tcp_end`/`tcp_error`.

`done` writes whatever is still in flight and closes the file (flush + fsync). The class takes its option
names as arguments so that addons/save.py can run a second, filtered instance (`save_file`, `save_filter`).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from interpose import flowfilter
from interpose.errors import FlowFileError, OptionsError
from interpose.http import is_websocket_handshake
from interpose.store.durability import FSYNC_S

if TYPE_CHECKING:
    from interpose.store.flowfile import FlowWriter

CORE_OPTION = "save_stream_file"
"""Declared by `core_options`: the instance behind `-w` does not declare it again."""
FSYNC_OPTION = "save_stream_fsync_s"

LogFn = Callable[[str, str], None]


def _is_websocket_upgrade(flow: Any) -> bool:
    """A handshake the server accepted: its WebSocket is about to start."""
    resp = flow.response
    return resp is not None and resp.status_code == 101 and is_websocket_handshake(flow.request)


def parse_target(spec: str) -> tuple[str, bool]:
    """`"+flows"` → ("flows", append=True); `~` is expanded."""
    append = spec.startswith("+")
    return os.path.expanduser(spec[1:] if append else spec), append


class SaveStream:
    def __init__(self, option: str = CORE_OPTION, filter_option: str | None = None, log: LogFn | None = None) -> None:
        self.option = option
        self.filter_option = filter_option
        self.name = "save_stream" if option == CORE_OPTION else f"save_stream:{option}"
        self._log = log
        self.writer: FlowWriter | None = None
        self.filter: flowfilter.Filter | None = None
        self.fsync_s = FSYNC_S
        self._pending: dict[str, Any] = {}
        """Finished HTTP flows the proxy is still busy with (or that are held), by id, oldest first."""
        self._websockets: dict[str, Any] = {}
        """Handshake flows whose WebSocket has not ended yet."""

    def _say(self, msg: str, level: str = "info") -> None:
        if self._log is not None:
            self._log(msg, level)

    def load(self, loader: Any) -> None:
        if self.option != CORE_OPTION:
            loader.add_option(self.option, str | None, None,
                              "Write finished flows to this flow file (+FILE appends).")
        if self.filter_option:
            loader.add_option(self.filter_option, str | None, None,
                              f"Only flows matching this filter expression go to {self.option}.")
        loader.add_option(FSYNC_OPTION, float, FSYNC_S,
                          "Seconds between fsyncs of a flow file being written (0: after every flow); "
                          "every 100 flows at the latest.")

    def configure(self, options: Any, updated: set[str]) -> None:
        if FSYNC_OPTION in updated:
            self.fsync_s = max(0.0, float(getattr(options, FSYNC_OPTION)))
            if self.writer is not None:
                self.writer.fsync_s = self.fsync_s
        if self.filter_option and self.filter_option in updated:
            spec = getattr(options, self.filter_option)
            try:
                self.filter = flowfilter.parse(spec) if spec else None
            except flowfilter.FilterError as e:
                raise OptionsError(f"invalid {self.filter_option}: {e}") from None
        if self.option in updated:
            self._open(getattr(options, self.option))

    def _open(self, spec: str | None) -> None:
        writer = None
        if spec:
            path, append = parse_target(spec)
            try:
                from interpose.store.flowfile import FlowWriter

                writer = FlowWriter(path, append=append, fsync_s=self.fsync_s)
            except FlowFileError as e:
                raise OptionsError(f"cannot append to {path}: {e}") from None
            except OSError as e:
                raise OptionsError(f"cannot write flow file {path}: {e.strerror or e}") from None
            if writer.warning:
                self._say(writer.warning, "warn")
        self._close()
        self.writer = writer

    def _close(self) -> None:
        if self.writer is None:
            return
        for flow in [*self._pending.values(), *self._websockets.values()]:
            self._write(flow)
        self._pending.clear()
        self._websockets.clear()
        try:
            self.writer.close()
        except OSError as e:
            self._say(f"closing {self.writer.name} failed: {e.strerror or e}", "error")
        self.writer = None

    def _write(self, flow: Any) -> None:
        if self.writer is None or (self.filter is not None and not self.filter(flow)):
            return
        try:
            self.writer.add(flow)
        except OSError as e:
            self._say(f"cannot write to {self.writer.name}: {e.strerror or e}", "error")

    # -- hooks ---------------------------------------------------------------------------------------
    def _http_finished(self, flow: Any) -> None:
        if self.writer is None or flow.id in self._websockets:
            return
        if flow.websocket is not None or (flow.live and _is_websocket_upgrade(flow)):
            self._websockets[flow.id] = flow
            self._pending.pop(flow.id, None)
        elif flow.live or flow.intercepted:
            self._pending[flow.id] = flow
        else:
            self._write(flow)

    def response(self, flow: Any) -> None:
        if flow.error is not None and not flow.live:
            return  # a loaded flow that also failed: it is written at its `error`
        self._http_finished(flow)

    def error(self, flow: Any) -> None:
        self._http_finished(flow)

    def websocket_end(self, flow: Any) -> None:
        hs = flow.handshake_flow
        self._websockets.pop(hs.id, None)
        if self.writer is not None:
            self._write(hs)

    websocket_error = websocket_end

    def tcp_end(self, flow: Any) -> None:
        if self.writer is not None:
            self._write(flow)

    tcp_error = tcp_end

    def tick(self) -> None:
        if self.writer is None:
            return
        if self._pending:
            done = [f for f in self._pending.values() if not f.live and not f.intercepted]
            for flow in done:
                del self._pending[flow.id]
                if flow.websocket is not None:
                    self._websockets[flow.id] = flow  # upgraded after all: wait for the WebSocket
                else:
                    self._write(flow)
        try:
            self.writer.sync_if_due()
        except OSError as e:
            self._say(f"cannot sync {self.writer.name}: {e.strerror or e}", "error")

    def done(self) -> None:
        self._close()
