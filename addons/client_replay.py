"""Replay the requests saved in flow files (client_replay=FILE, one --set per file).

`--set client_replay=flows.interpose` loads the file when the option is set (at startup, or later
from the options editor) and sends its HTTP requests again, in the order they were saved, each one
once the previous has finished. Every replay is a new flow that passes through all the addons'
hooks like a live one (`ctx.master.replay`). Setting the option again queues the new files' requests
behind those still waiting. `client_replay_concurrency` replays that many at a time (started in
order); -1 starts them all at once. WebSocket handshakes and TCP flows are skipped: there is no
client behind a replay to speak them.

Commands: `replay.client.count` (requests still waiting), `replay.client.stop` (drop the queue).
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

# `flowfile.load`, never `from interpose.store.flowfile import load`: a module-level `load` would be taken for the hook.
from interpose import InterposeError, OptionsError, ctx
from interpose.http import HTTPFlow
from interpose.store import flowfile


def _outcome(flow: HTTPFlow) -> str:
    if flow.error is not None:
        return f"✗ {flow.error.msg}"
    if flow.response is not None:
        return f"{flow.response.status_code} {flow.response.reason}".rstrip()
    return "(no response)"


class ClientReplay:
    def __init__(self) -> None:
        self.queue: deque[HTTPFlow] = deque()
        self.total = 0
        """Requests queued since the queue was last empty (for "3/5" progress)."""
        self.done_count = 0
        self.inflight = 0
        self.task: asyncio.Task[None] | None = None

    def load(self, loader: Any) -> None:
        loader.add_option("client_replay", Sequence[str], [], "Replay the requests of these flow files.")
        loader.add_option("client_replay_concurrency", int, 1,
                          "How many client replays run at once (-1: all of them).")
        loader.add_command("replay.client.count", self.count)
        loader.add_command("replay.client.stop", self.stop)

    def configure(self, options: Any, updated: set[str]) -> None:
        if "client_replay_concurrency" in updated:
            n = options.client_replay_concurrency
            if n == 0 or n < -1:
                raise OptionsError("client_replay_concurrency must be a positive number or -1 (no limit)")
        if "client_replay" in updated and options.client_replay:
            flows: list[HTTPFlow] = []
            for path in options.client_replay:
                flows.extend(self._read(path))
            self.start_replay(flows)

    @staticmethod
    def _read(path: str) -> list[HTTPFlow]:
        try:
            loaded, warning = flowfile.load(path)
        except InterposeError as e:  # FlowFileError: missing file, not a flow file, newer version
            raise OptionsError(f"client_replay: {e}") from None
        if warning:
            ctx.log.warn(f"client_replay: {warning}")
        usable = []
        for f in loaded:
            if not isinstance(f, HTTPFlow):
                continue  # TCP flows: nothing to replay
            if f.websocket is not None:
                ctx.log.warn(f"client_replay: skipping the WebSocket handshake {f.request.url}")
                continue
            usable.append(f)
        skipped = len(loaded) - len(usable)
        ctx.log.info(f"client_replay: {len(usable)} requests from {path}"
                     + (f" ({skipped} flows skipped: not plain HTTP)" if skipped else ""))
        return usable

    # -- the queue ------------------------------------------------------------------------------
    def start_replay(self, flows: Sequence[HTTPFlow]) -> None:
        """Queue requests for replay (also usable from other addons)."""
        if not flows:
            return
        if not self.queue and not self.inflight:
            self.total = self.done_count = 0
        self.queue.extend(flows)
        self.total += len(flows)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        # Let whatever set the option finish first (at startup: the rest of Master.start()).
        await asyncio.sleep(0)
        limit = ctx.options.client_replay_concurrency
        running: set[asyncio.Task[None]] = set()
        try:
            while self.queue or running:
                while self.queue and (limit == -1 or len(running) < limit):
                    running.add(asyncio.create_task(self._replay_one(self.queue.popleft())))
                if running:
                    _, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            ctx.log.info(f"client_replay: finished, {self.done_count} requests replayed")
        finally:
            for t in running:
                t.cancel()

    async def _replay_one(self, flow: HTTPFlow) -> None:
        self.inflight += 1
        try:
            new = await ctx.master.replay(flow)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001  # a replay that cannot even start must not stop the rest
            ctx.log.error(f"client_replay: {flow.request.method} {flow.request.url}: {e}")
            return
        finally:
            self.inflight -= 1
            self.done_count += 1
        ctx.log.info(f"client_replay: {self.done_count}/{self.total} "
                     f"{new.request.method} {new.request.url} → {_outcome(new)}")

    # -- commands ---------------------------------------------------------------------------------
    def count(self) -> int:
        """Requests waiting or being replayed."""
        return len(self.queue) + self.inflight

    def stop(self) -> None:
        """Drop the waiting requests and cancel the ones under way."""
        self.queue.clear()
        if self.task is not None and not self.task.done():
            self.task.cancel()
            ctx.log.info("client_replay: stopped")

    def done(self) -> None:
        self.queue.clear()
        if self.task is not None and not self.task.done():
            self.task.cancel()


addons = [ClientReplay()]
