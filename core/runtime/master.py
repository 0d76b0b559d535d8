"""`Master` wires options, addons, the event bus and the proxy server, and runs their life cycle.

    master = Master(options)
    await master.start()        # load → start → configure, bind, ticks begin
    ...                         # serve until master.should_exit is set
    await master.shutdown()     # stop serving, `done` for every addon
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
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
from interpose.proxy.tls.config import TlsOptions
from interpose.runtime import hooks
from interpose.runtime.addonmanager import AddonManager
from interpose.runtime.builtins.intercept import Intercept
from interpose.runtime.builtins.onboarding import Onboarding
from interpose.runtime.builtins.readfile import ReadFile, hook_sequence
from interpose.runtime.builtins.save import SaveStream
from interpose.runtime.builtins.session import SessionRecorder
from interpose.runtime.bus import EventBus
from interpose.runtime.commands import builtin as builtin_commands
from interpose.runtime.commands.registry import CommandRegistry
from interpose.runtime.log import Log, LogEntry
from interpose.runtime.options import Options, core_options
from interpose.runtime.script import ScriptLoader

TICK_S = 0.2
LOAD_AHEAD = 256
"""Flows `load_flows` may be ahead of the viewer and of the session's writer."""
LISTENER = ("listen_host", "listen_port", "mode")
"""The options the listener is made from: a change re-binds it (`Master.set_options`)."""


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _cannot_listen(host: str, port: int, e: OSError) -> OptionsError:
    reason = os.strerror(e.errno) if e.errno else str(e)  # the same words whatever the event loop
    return OptionsError(f"cannot listen at {host}:{port}: {reason}")


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
        self._rebinding = False
        self._following: set[asyncio.Task[None]] = set()
        self._bound = ("", 0)
        """The listen_host and listen_port the listener was opened with."""
        options.subscribe(self._listener_options_changed)
        self.certs: CertStore | None = None
        ctx.master = self
        ctx.options = options
        ctx.log = self.log
        self.readfile = ReadFile(self.load_flows, self.add_log)
        self.commands = CommandRegistry(self)
        """Every command by name (the core's, the TUI's, the addons'): `:`, key bindings, --commands."""
        builtin_commands.install(self.commands)
        self.session = SessionRecorder(self.bus, self.add_log, self.addons.handlers)
        """`--session`: records flows and options into a session file (`session.save`, `session.record`)."""
        self.addons.add(ProxyAuth(), TlsOptions(), ScriptLoader(self.addons), Onboarding(self._ca_files), Intercept(),
                        SaveStream(log=self.add_log), self.readfile, self.session, configure=False)

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
                await self._caught_up()
        return n

    async def _caught_up(self) -> None:
        """While loading: wait for the viewer (the bus) and the session's writer when they are more than
        `LOAD_AHEAD` flows behind, so a big file streams through instead of piling up in memory. A backlog
        that does not shrink for a second (a subscriber that stopped reading) is not waited for."""
        def behind() -> int:
            return max(self.bus.backlog(), self.session.backlog())
        stalled = 0
        last = behind()
        while last > LOAD_AHEAD and stalled < 100:
            await asyncio.sleep(0.01)
            now = behind()
            stalled = stalled + 1 if now >= last else 0
            last = now

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
        for name, source in self.options.drop_soft():
            self.add_log(f"{source}: unknown option {name!r} ignored (no loaded addon declares it)", "warn")
        unknown = self.options.unknown_deferred()
        if unknown:
            raise OptionsError(f"unknown option {unknown[0]!r} (no loaded addon declares it)")
        self.certs = CertStore.from_confdir(os.path.expanduser(self.options.confdir))
        self.server.certs = self.certs
        address = await self.server.start() if listen else ("", 0)
        self._bound = (self.options.listen_host, self.options.listen_port)
        if listen and not _loopback(address[0]) and str(self.options.mode).strip().lower() == "transparent":
            self.log.warn(f"listening on {address[0]} in transparent mode: anyone who can reach port {address[1]} "
                          "can use this proxy (firewall it to the clients' interface)")
        elif listen and not _loopback(address[0]) and not self.options.proxyauth:
            self.log.warn(f"listening on {address[0]} without proxyauth: anyone who can reach port {address[1]} "
                          "can use this proxy (set --set proxyauth=user:pass)")
        self._tick_task = asyncio.create_task(self._ticker())
        self._started = True
        self.readfile.begin()  # -r: loaded flows pass through the hooks now that the proxy listens
        return address

    async def set_options(self, **values: Any) -> tuple[str, int] | None:
        """Set options as the terminal UI and commands do: every value is checked first (OptionsError:
        nothing changed). A change of listen_host, listen_port or mode re-binds the listener: the new one
        is opened first (if it cannot be, the change is refused with the reason), then the options
        change, then the old listener closes; open connections carry on. Returns where the proxy listens."""
        opts = self.options
        checked = {name: opts.option(name).check(v) for name, v in values.items()}
        new = {name: checked.get(name, getattr(opts, name)) for name in LISTENER}
        if not self._started or all(new[name] == getattr(opts, name) for name in LISTENER):
            opts.update(**values)
            return self.server.address
        mode = Mode.parse(new["mode"])
        server = None
        if (new["listen_host"], new["listen_port"]) != self._bound:
            server = await self._listen(new["listen_host"], new["listen_port"])
        self._rebinding = True
        try:
            opts.update(**values)
        except BaseException:
            if server is not None:
                server.close()
                await self._reopen()
            raise
        finally:
            self._rebinding = False
        if server is not None:
            self._bound = (new["listen_host"], new["listen_port"])
        return self._swap(server, mode)

    async def _listen(self, host: str, port: int) -> asyncio.Server:
        """A new listener. Its port may be the one the proxy listens on now, at another address
        (127.0.0.1 → 0.0.0.0): the system refuses the second socket then, so the old listener is closed
        first, and opened again if the new one fails."""
        try:
            return await self.server.listen(host, port)
        except OSError as e:
            if not (e.errno == errno.EADDRINUSE and port and self.server.address
                    and port == self.server.address[1]):
                raise _cannot_listen(host, port, e) from None
        self.server.close_listener()
        await asyncio.sleep(0)  # some loops (uvloop) release the socket on their next turn
        try:
            return await self.server.listen(host, port)
        except OSError as e:
            await self._reopen()
            raise _cannot_listen(host, port, e) from None

    async def _reopen(self) -> None:
        """After a failed move: listen where the proxy listened before."""
        if self.server.listening:
            return
        host, port = self.server.address or self._bound
        try:
            self.server.swap(await self.server.listen(host, port), self.server.mode)
        except OSError as e:
            self.log.error(f"{_cannot_listen(host, port, e)}: the proxy no longer listens")

    def _swap(self, server: asyncio.Server | None, mode: Mode) -> tuple[str, int]:
        host, port = self.server.swap(server, mode)
        self.log.info(f"proxy listening at {host}:{port} ({mode})")
        return host, port

    def _listener_options_changed(self, updated: set[str]) -> None:
        """An addon (or anything else) assigned a listener option directly: follow it, as set_options
        would, or put the old value back and log why. `server_reuse` turned off closes the kept connections."""
        if "server_reuse" in updated and not self.options.server_reuse and self.server.shared.count:
            try:
                self.server.shared.flush()
            except RuntimeError:  # off the core's loop: they go at the next connection the proxy handles
                pass
        if self._started and not self._rebinding and updated & set(LISTENER):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # set off the core's loop (a script at the prompt, a test): not followed
                self.log.warn("listen_host, listen_port and mode take effect when set on the core's loop")
                return
            task = loop.create_task(self._follow_listener_options())
            self._following.add(task)  # held until done: the loop keeps only a weak reference
            task.add_done_callback(self._following.discard)

    async def _follow_listener_options(self) -> None:
        opts, server = self.options, self.server
        bound_host, bound_port = self._bound
        try:
            listener = None
            if (opts.listen_host, opts.listen_port) != self._bound:
                listener = await self._listen(opts.listen_host, opts.listen_port)
                self._bound = (opts.listen_host, opts.listen_port)
            self._swap(listener, Mode.parse(opts.mode))
        except OptionsError as e:
            self.log.error(f"{e}: the proxy stays at {bound_host}:{bound_port}")
            self._rebinding = True
            try:
                opts.update(listen_host=bound_host, listen_port=bound_port, mode=str(server.mode))
            finally:
                self._rebinding = False

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
