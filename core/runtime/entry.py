"""The one way into the core from another thread: `Core`, and `CoreThread`, which runs the core there.

The terminal UI runs urwid on the main thread's event loop; the proxy runs on its own loop in its own
thread (`CoreThread`), so a UI busy for seconds (a huge paste, a filter over a million flows) never
delays a proxied request. The two meet in two places only:

- core → UI: the event bus (runtime/bus.py), whose messages arrive on the UI's loop;
- UI → core: `Core`, whose methods schedule the work on the core's loop and return at once.

    core = CoreThread(master)
    host, port = core.start()          # blocks until the listener is bound (or raises why not)
    core.resume(flow)                  # any thread: the flow's task carries on, on the core's loop
    opts = await core.call(master.options.update, intercept="~q")   # a result (or the error) back
    core.stop()                        # shutdown() on the core's loop, then the thread ends

When both sides share one loop (tests, scripts), `Core` calls straight through, in order.
While a flow is held the UI owns it and edits it in place; it hands it back with `resume`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from interpose.runtime.bus import FlowRemoved

if TYPE_CHECKING:
    from interpose.runtime.master import Master


class Core:
    """Thread-safe calls into a running `Master` on its loop.

    `post(fn, *args)` runs `fn` on the core's loop and forgets it (an exception is logged);
    `call(fn, *args)` gives an awaitable, on the caller's loop, of `fn`'s result (awaited first if it
    is a coroutine) or its exception. The named methods are the UI's vocabulary."""

    def __init__(self, master: Master, loop: asyncio.AbstractEventLoop) -> None:
        self.master = master
        self.loop = loop
        self.thread_id = threading.get_ident() if _running_loop() is loop else None
        """The core loop's thread, once known (set by CoreThread, or here when built on that loop)."""

    def _here(self) -> bool:
        return _running_loop() is self.loop

    # -- the two primitives ---------------------------------------------------------------------
    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._here():
            self._guarded(fn, *args)
        else:
            self.loop.call_soon_threadsafe(self._guarded, fn, *args)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        caller = asyncio.get_running_loop()
        if caller is self.loop:
            return asyncio.ensure_future(_result(fn, args, kwargs))
        cf = asyncio.run_coroutine_threadsafe(_result(fn, args, kwargs), self.loop)
        return asyncio.wrap_future(cf, loop=caller)

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            ret = fn(*args)
            if inspect.isawaitable(ret):
                task = asyncio.ensure_future(ret)
                task.add_done_callback(self._log_failure)
        except Exception as e:
            self._log(e)

    def _log_failure(self, task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._log(task.exception())  # type: ignore[arg-type]

    def _log(self, exc: BaseException) -> None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.master.add_log(f"UI request failed: {exc}\n{tb}", "error")

    # -- what the UI asks for --------------------------------------------------------------------
    def resume(self, flow: Any, message: Any = None) -> None:
        """Release a held flow (or just one held message) with whatever it now holds."""
        self.post((message or flow).resume)

    def kill(self, flow: Any) -> None:
        self.post(flow.kill)

    def drop(self, message: Any) -> None:
        """Drop one held WebSocket/TCP message (it is not forwarded)."""
        self.post(message.drop)

    def inject(self, flow: Any, content: bytes | str, from_client: bool) -> asyncio.Future[Any]:
        return self.call(flow.inject, content, from_client=from_client)

    def replay(self, flow: Any) -> asyncio.Future[Any]:
        """Replay a request as a new flow; the future gives that flow."""
        return self.call(self.master.replay, flow)

    def set_options(self, **values: Any) -> asyncio.Future[Any]:
        """Set options (Master.set_options: listen_host, listen_port and mode re-bind the listener); the
        future gives where the proxy listens, or raises OptionsError (nothing changed) with the reason a
        value is refused."""
        return self.call(self.master.set_options, **values)

    def set_option_text(self, name: str, text: str) -> asyncio.Future[Any]:
        """Set an option from text exactly as `--set NAME=TEXT` reads it (Options.parse_specs)."""
        return self.call(_set_text, self.master, name, text)

    def reset_option(self, name: str) -> asyncio.Future[Any]:
        return self.call(_reset, self.master, name)

    def remove_flows(self, flows: Iterable[Any]) -> None:
        """Delete flows: held ones are killed first; every viewer hears `FlowRemoved`."""
        self.post(_remove, self.master, list(flows))

    def log(self, msg: str, level: str = "info") -> None:
        self.post(self.master.add_log, msg, level)


def _remove(master: Master, flows: list[Any]) -> None:
    master.session.delete(flows)
    for flow in flows:
        if flow.intercepted:
            flow.kill()
        master.bus.publish(FlowRemoved(flow.id))


async def _set_text(master: Master, name: str, text: str) -> Any:
    return await master.set_options(**master.options.parse_specs(f"{name}={text}"))


async def _reset(master: Master, name: str) -> Any:
    return await master.set_options(**{name: master.options.option(name).default})


async def _result(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    ret = fn(*args, **kwargs)
    if inspect.isawaitable(ret):
        ret = await ret
    return ret


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class CoreThread(Core):
    """A `Master` on a new event loop in a daemon thread of its own."""

    def __init__(self, master: Master) -> None:
        super().__init__(master, asyncio.new_event_loop())
        self.thread = threading.Thread(target=self._main, name="interpose-core", daemon=True)
        self._started: concurrent.futures.Future[tuple[str, int]] = concurrent.futures.Future()
        self._stop: asyncio.Event | None = None

    def start(self, timeout: float = 30.0) -> tuple[str, int]:
        """Start the thread and the master; the bound address, or the exception that stopped it."""
        self.thread.start()
        return self._started.result(timeout)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.thread_id = threading.get_ident()
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            address = await self.master.start()
        except BaseException as e:
            self._started.set_exception(e)
            return
        self._started.set_result(address)
        try:
            await self._stop.wait()
        finally:
            await self.master.shutdown()

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the master down on its loop (`done` fires, files are flushed) and end the thread."""
        if self.thread.is_alive() and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout)
