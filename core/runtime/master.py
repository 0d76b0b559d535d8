"""`Master` wires options, addons, the event bus and the proxy server, and runs their life cycle.

    master = Master(options)
    await master.start()        # load → start → configure, bind, ticks begin
    ...                         # serve until master.should_exit is set
    await master.shutdown()     # stop serving, `done` for every addon
"""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
from collections.abc import Iterable
from typing import Any

from interpose import ctx
from interpose.errors import OptionsError
from interpose.model.flow import Flow
from interpose.proxy.modes import Mode
from interpose.proxy.proxyauth import ProxyAuth
from interpose.proxy.server import ProxyServer
from interpose.proxy.tls.certs import CertStore
from interpose.runtime import hooks
from interpose.runtime.addonmanager import AddonManager
from interpose.runtime.builtins.intercept import Intercept
from interpose.runtime.builtins.onboarding import Onboarding
from interpose.runtime.builtins.readfile import ReadFile, hook_sequence
from interpose.runtime.builtins.save import SaveStream
from interpose.runtime.bus import EventBus
from interpose.runtime.log import Log, LogEntry
from interpose.runtime.options import Options, core_options
from interpose.runtime.script import ScriptLoader

TICK_S = 0.2


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Master:
    def __init__(self, options: Options | None = None) -> None:
        if options is None:
            options = Options()
            core_options(options)
        self.options = options
        self.bus = EventBus()
        self.addons = AddonManager(options, self.bus, self.add_log)
        self.log = Log(self.add_log)
        self.server = ProxyServer(options, self.addons, self.bus, self.add_log)
        self.should_exit = asyncio.Event()
        self._tick_task: asyncio.Task[None] | None = None
        self._started = False
        self.certs: CertStore | None = None
        ctx.master = self
        ctx.options = options
        ctx.log = self.log
        self.readfile = ReadFile(self.load_flows, self.add_log)
        self.addons.add(ProxyAuth(), ScriptLoader(self.addons), Onboarding(self._ca_files), Intercept(),
                        SaveStream(log=self.add_log), self.readfile, configure=False)

    def _ca_files(self) -> tuple[str, bytes, bytes] | None:
        """The CA certificate to give clients: its file, PEM and DER (the onboarding page serves them)."""
        if self.certs is None:
            return None
        from cryptography.hazmat.primitives import serialization

        der = self.certs.ca_cert.public_bytes(serialization.Encoding.DER)
        return self.certs.ca_cert_path, self.certs.ca_cert_pem, der

    async def replay(self, flow: Any) -> Any:
        """Replay an HTTP request as a new flow (through every hook)."""
        from interpose.runtime.builtins.replay import replay  # imported on first use, not at startup

        return await replay(self, flow)

    async def load_flows(self, flows: Iterable[Flow]) -> int:
        """Pass loaded flows through every addon's flow hooks in order, as if each had just happened
        (no network traffic; see core/runtime/builtins/readfile.py for the order). Returns how many went through."""
        n = 0
        for flow in flows:
            for hook in hook_sequence(flow):
                await self.addons.trigger(hook)
            n += 1
            if n % 64 == 0:
                await asyncio.sleep(0)  # a big file must not starve the proxy and the UI
        return n

    def add_addon(self, addon: Any) -> Any:
        """Add an addon: before start() it is configured with the rest; after, at once."""
        return self.addons.add(addon, configure=self._started)[0]

    def add_log(self, msg: str, level: str) -> None:
        self.addons.trigger_sync(hooks.LogHook(LogEntry(msg, level)))

    async def start(self, listen: bool = True) -> tuple[str, int]:
        """Configure every addon, bind the listener (unless not `listen`: `interpose-dump -r FILE` only reads)
        and start ticking. Returns the bound address (("", 0) without a listener)."""
        Mode.parse(self.options.mode)  # fail early on a bad mode
        for a in list(self.addons.chain):
            self.addons.configure_all(a)
        unknown = self.options.unknown_deferred()
        if unknown:
            raise OptionsError(f"unknown option {unknown[0]!r} (no loaded addon declares it)")
        self.certs = CertStore.from_confdir(os.path.expanduser(self.options.confdir))
        self.server.certs = self.certs
        address = await self.server.start() if listen else ("", 0)
        if listen and not _loopback(address[0]) and not self.options.proxyauth:
            self.log.warn(f"listening on {address[0]} without proxyauth: anyone who can reach port {address[1]} "
                          "can use this proxy (set --set proxyauth=user:pass)")
        self._tick_task = asyncio.create_task(self._ticker())
        self._started = True
        self.readfile.begin()  # -r: loaded flows pass through the hooks now that the proxy listens
        return address

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            if self.addons.has("tick"):
                await self.addons.trigger(hooks.TickHook())

    async def run(self) -> None:
        await self.start()
        await self.should_exit.wait()
        await self.shutdown()

    def shutdown_soon(self) -> None:
        self.should_exit.set()

    async def shutdown(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
            self._tick_task = None
        await self.server.stop()
        for a in reversed(list(self.addons.chain)):
            self.addons.remove(a)
        await self.addons.wait_pending()  # an async `done` finishes before shutdown returns
