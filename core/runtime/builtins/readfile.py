"""`-r FILE` / `rfile`: load flows from a flow file or a HAR file once the proxy listens, and pass each one
through the addons' flow hooks in order, as if it had just happened (no network traffic).

`hook_sequence(flow)` is the order a live flow would have seen:

- HTTP: `requestheaders`, `websocket_handshake` (upgrade requests), `request`, then, if it has a
  response, `responseheaders`, `response`; `error` if it failed. The response and error are put back
  after the request hooks (an addon that answers in `request` keeps its answer). A WebSocket then gets
  `websocket_start`, one `websocket_message` per message (`flow.messages[-1]` is the newest, as live),
  and `websocket_end` or `websocket_error`.
- TCP: `tcp_start`, one `tcp_message` per message, `tcp_end` or `tcp_error`.

Loaded flows are not live: intercept does not hold them and nothing is sent anywhere.
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from interpose.errors import FlowFileError, OptionsError
from interpose.http import HTTPFlow, is_websocket_handshake
from interpose.model.flow import Flow
from interpose.model.messages import MessageFlow
from interpose.runtime import hooks
from interpose.tcp import TCPFlow

LogFn = Callable[[str, str], None]
FOLLOW_S = 0.25
"""How often a session opened with -r is polled for flows another process added."""


# -- hook order ----------------------------------------------------------------------------------------------
def _message_flow(flow: MessageFlow, start: type[hooks.Hook], message: type[hooks.Hook],
                  end: type[hooks.Hook], failed: type[hooks.Hook]) -> Iterator[hooks.Hook]:
    """start, one message hook per message (each added just before its hook, so `flow.messages[-1]` is
    the newest, as live), then end or failed."""
    msgs = list(flow.messages)
    totals = flow.message_count, flow.bytes_from_client, flow.bytes_from_server
    error, flow.error = flow.error, None
    flow.messages.clear()
    flow.message_count = flow.bytes_from_client = flow.bytes_from_server = 0
    yield start(flow)  # type: ignore[call-arg]
    for m in msgs:
        flow.add_message(m)
        flow.hooking = m
        try:
            yield message(flow)  # type: ignore[call-arg]
        finally:
            flow.hooking = None
        if m.intercepted:  # nothing is waiting to send it: let go at once
            m.resume()
    # A flow that kept only its newest messages still counts all it saw.
    flow.message_count = max(flow.message_count, totals[0])
    flow.bytes_from_client = max(flow.bytes_from_client, totals[1])
    flow.bytes_from_server = max(flow.bytes_from_server, totals[2])
    flow.error = flow.error or error
    yield failed(flow) if flow.error else end(flow)  # type: ignore[call-arg]


def hook_sequence(flow: Flow) -> Iterator[hooks.Hook]:
    """The hooks a loaded flow goes through, in order. Iterate it while awaiting each hook: the flow is
    brought to the matching state between them (messages appear one by one)."""
    if isinstance(flow, HTTPFlow):
        response, error, ws = flow.response, flow.error, flow.websocket
        flow.response = flow.error = flow.websocket = None
        yield hooks.RequestHeadersHook(flow)
        if flow.response is None and is_websocket_handshake(flow.request):
            yield hooks.WebsocketHandshakeHook(flow)
        if flow.response is None:
            yield hooks.RequestHook(flow)
        if flow.response is None:
            flow.response = response
        flow.error = flow.error or error
        flow.websocket = ws
        if flow.response is not None:
            yield hooks.ResponseHeadersHook(flow)
            yield hooks.ResponseHook(flow)
        if flow.error is not None:
            yield hooks.ErrorHook(flow)
        if ws is not None:
            yield from _message_flow(ws, hooks.WebsocketStartHook, hooks.WebsocketMessageHook,
                                     hooks.WebsocketEndHook, hooks.WebsocketErrorHook)
    elif isinstance(flow, TCPFlow):
        yield from _message_flow(flow, hooks.TcpStartHook, hooks.TcpMessageHook, hooks.TcpEndHook, hooks.TcpErrorHook)
    if flow.intercepted:  # an addon asked to hold a flow that is not live: there is nothing to hold
        flow.intercepted = False


# -- files -------------------------------------------------------------------------------------------------
def is_har(path: str) -> bool:
    """`.har` files, and JSON files that are not flow files but look like HAR (`{"log": ...}`)."""
    from interpose.store import flowfile  # only when -r or a load needs it (startup)

    if path.lower().endswith(".har"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return stripped.startswith(b"{") and flowfile.FORMAT.encode() not in head.split(b"\n", 1)[0] and b'"log"' in head


def foreign(path: str) -> str | None:
    """"mitmproxy" for one of mitmproxy's flow files (sniffed from the first bytes), else None. Raises
    FlowFileError for a Python pickle: it is never loaded (loading one can run code)."""
    from interpose.store import mitmfile  # only when -r or a load needs it (startup)

    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    kind = mitmfile.sniff(head)
    if kind == "pickle":
        raise FlowFileError(f"{path}: a Python pickle, not a flow file; interpose does not load pickles "
                            "(loading one can run code)")
    return kind


def check(path: str) -> list[Flow] | None:
    """Raise FlowFileError unless `path` is a readable session, flow file, HAR file or mitmproxy flow
    file. A HAR file is read whole here, and its flows returned so that it need not be parsed twice."""
    from interpose.store import flowfile, har, mitmfile  # only when -r or a load needs them (startup)
    from interpose.store import session as sessions

    if sessions.is_session_file(path):
        sessions.Session.open(path, readonly=True).close()  # SessionError (a FlowFileError): why not
        return None
    if is_har(path):
        return list(har.read(path))
    if foreign(path) == "mitmproxy":
        mitmfile.check(path)
        return None
    flowfile.check(path)
    return None


def read(path: str) -> Iterator[Flow]:
    """Every flow in a session, flow file or mitmproxy flow file (streamed) or HAR file. FlowFileError at
    the first damage."""
    from interpose.store import flowfile, har, mitmfile  # only when -r or a load needs them (startup)
    from interpose.store import session as sessions

    if sessions.is_session_file(path):
        s = sessions.Session.open(path, readonly=True)
        try:
            yield from s.flows()
        finally:
            s.close()
        if s.recovered:
            raise FlowFileError(s.recovered)
    elif is_har(path):
        yield from har.read(path)
    elif foreign(path) == "mitmproxy":
        yield from mitmfile.Reader(path)
    else:
        yield from flowfile.read_flows(path)


def load(path: str) -> tuple[list[Flow], str | None]:
    """Every complete flow of a session, flow file, HAR file or mitmproxy flow file, and a warning when the
    file is damaged part-way. Raises FlowFileError when the file cannot be read at all."""
    warnings: list[str] = []
    flows = list(stream(path, warnings))
    return flows, "; ".join(warnings) or None


def stream(path: str, warnings: list[str]) -> Iterator[Flow]:
    """`load`, a flow at a time (a HAR file is one JSON document: read whole): what made it stop early, or
    flows it skipped, goes to `warnings`. Raises FlowFileError when the file cannot be read at all."""
    from interpose.store import flowfile, har, mitmfile  # only when -r or a load needs them (startup)
    from interpose.store import session as sessions

    if sessions.is_session_file(path):
        try:
            yield from read(path)
        except FlowFileError as e:
            warnings.append(str(e))
        return
    if is_har(path):
        yield from har.read(path)
        return
    if foreign(path) == "mitmproxy":
        mitmfile.check(path)
        reader = mitmfile.Reader(path)
        flows = iter(reader)
    else:
        flowfile.check(path)
        reader, flows = None, flowfile.read_flows(path)
    n = 0
    try:
        for flow in flows:
            n += 1
            yield flow
    except FlowFileError as e:
        warnings.append(f"{e}; loaded the {n} flows before it")
    if reader is not None and reader.skipped:
        warnings.append(f"skipped {reader.skipped} UDP/DNS flows (interpose has no such flows)")


def _session_top(path: str) -> int | None:
    """For a session file, the newest change it holds now (where following it starts); else None."""
    from interpose.store import session as sessions

    if not sessions.is_session_file(path):
        return None
    try:
        s = sessions.Session.open(path, readonly=True)
    except FlowFileError:
        return None
    try:
        return s.top_seq()
    finally:
        s.close()


# -- the addon ---------------------------------------------------------------------------------------------
class ReadFile:
    """Loads `rfile` once the proxy is listening (`Master.start` calls `begin`). `finished` is set when
    every flow went through the hooks; `failed` says why when the file could not be read at all."""

    name = "readfile"

    def __init__(self, load_flows: Callable[[Iterable[Flow]], Awaitable[int]], log: LogFn) -> None:
        self._load_flows = load_flows
        self._log = log
        self.path: str | None = None
        self.finished = asyncio.Event()
        self.failed: str | None = None
        self.count = 0
        self._preloaded: list[Flow] | None = None
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self.follow_sessions = True
        """After `-r SESSION`, keep loading the flows another process adds to it."""
        self.pages_sessions = False
        """A viewer that pages from a session file itself (the TUI's list, store/session/paging.py) and follows
        it: `-r SESSION` then passes no flow through the hooks here."""

    def configure(self, options: Any, updated: set[str]) -> None:
        if "rfile" not in updated:
            return
        path = os.path.expanduser(options.rfile) if options.rfile else None
        preloaded = None
        if path:
            try:
                preloaded = check(path)
            except FlowFileError as e:
                raise OptionsError(str(e)) from None
        self.path, self._preloaded = path, preloaded
        if self._running and path:
            self._start_task()

    def begin(self) -> None:
        """The proxy is up: start loading (and set `finished` at once when there is nothing to load)."""
        self._running = True
        if self.path:
            self._start_task()
        else:
            self.finished.set()

    def _start_task(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.finished.clear()
        self._task = asyncio.ensure_future(self._read(self.path or "", self._preloaded))
        self._preloaded = None

    async def _read(self, path: str, preloaded: list[Flow] | None) -> None:
        self.count = 0
        if self.pages_sessions and _session_top(path) is not None:
            self._log(f"showing {path} (read-only, followed live)", "info")
            self.finished.set()
            return
        top = _session_top(path) if self.follow_sessions else None

        def counted(flows: Iterable[Flow]) -> Iterator[Flow]:
            for f in flows:
                self.count += 1
                yield f
        try:
            try:
                await self._load_flows(counted(preloaded if preloaded is not None else read(path)))
            except FlowFileError as e:
                if self.count == 0 and not os.access(path, os.R_OK):
                    self.failed = str(e)
                    self._log(str(e), "error")
                else:
                    self._log(f"{e}; the {self.count} flows before it were loaded", "warn")
                return
            self._log(f"loaded {self.count} flows from {path}", "info")
        finally:
            self.finished.set()
        if top is not None:
            await self._follow(path, top)

    async def _follow(self, path: str, top: int) -> None:
        """A session another process may still be recording: load the flows it adds (polled every
        `FOLLOW_S`; `PRAGMA data_version` says cheaply whether anything was committed)."""
        from interpose.store import session as sessions

        try:
            s = sessions.Session.open(path, readonly=True)
        except FlowFileError as e:
            self._log(str(e), "warn")
            return
        try:
            seen: set[str] = set()
            version = -1
            while True:
                await asyncio.sleep(FOLLOW_S)
                try:
                    now = s.data_version()
                    if now == version:
                        continue
                    version = now
                    top, flows, _deleted = s.changes(top)
                except Exception as e:  # the file was removed or damaged meanwhile: stop following, say why
                    self._log(f"stopped following {path}: {e}", "warn")
                    return
                new = [f for f in flows if f.id not in seen]
                seen.update(f.id for f in new)
                if new:
                    await self._load_flows(new)
        finally:
            s.close()

    def done(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
