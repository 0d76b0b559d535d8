"""Answer requests with responses saved in flow files (server_replay=FILE, one --set per file).

A request that matches a saved one gets a copy of the saved response without the server being
contacted; the others go to the server as usual (or, with `server_replay_kill_extra`, are killed).
Two requests match when their method, scheme, host, port, path, query string, body and the headers
named in `server_replay_use_headers` are the same, where the query leaves out the parameters named in
`server_replay_ignore_params`, and `server_replay_ignore_content`, `server_replay_ignore_host` and
`server_replay_ignore_port` leave out the body, host and port. A request saved several times gets
its responses in the order they were saved, each used once; `server_replay_nopop` keeps serving the
first one instead. The answer is given at `request` (the body is in by then, so it can be compared).

    interpose-dump --set server_replay=site.interpose --set server_replay_ignore_params=ts \\
                   --set server_replay_kill_extra=true

Commands (mitmproxy's): `replay.server FLOWS` (answer with the responses of these flows instead),
`replay.server.add FLOWS` (these too), `replay.server.file PATH` (those of a flow file),
`replay.server.stop` (no more answers; unmatched requests go to servers again), `replay.server.count`
(responses left); and `replay.server.clear` (forget them all, server_replay_kill_extra still applies).
"""
from __future__ import annotations

import copy
import time
import urllib.parse
from collections.abc import Hashable, Sequence
from typing import Any

# `flowfile.load`, never `from interpose.store.flowfile import load`: a module-level `load` would be taken for the hook.
from interpose import InterposeError, OptionsError, command, ctx
from interpose.http import HTTPFlow, Response
from interpose.store import flowfile

MATCH_OPTIONS = {"server_replay_ignore_params", "server_replay_ignore_content", "server_replay_ignore_host",
                 "server_replay_ignore_port", "server_replay_use_headers"}


class ServerReplay:
    def __init__(self) -> None:
        self.flowmap: dict[Hashable, list[HTTPFlow]] = {}
        """Request key → the saved flows still to serve for it, oldest first."""
        self.active = False
        """True while server_replay names files: unmatched requests are then "extra"."""

    def load(self, loader: Any) -> None:
        loader.add_option("server_replay", Sequence[str], [], "Answer requests with the responses in these flow files.")
        loader.add_option("server_replay_ignore_params", Sequence[str], [],
                          "Query parameters left out when matching requests to saved ones.")
        loader.add_option("server_replay_ignore_content", bool, False, "Do not compare request bodies.")
        loader.add_option("server_replay_ignore_host", bool, False, "Do not compare hosts.")
        loader.add_option("server_replay_ignore_port", bool, False, "Do not compare ports.")
        loader.add_option("server_replay_use_headers", Sequence[str], [], "Request headers that must match as well.")
        loader.add_option("server_replay_kill_extra", bool, False,
                          "Kill requests that have no saved response instead of sending them to the server.")
        loader.add_option("server_replay_nopop", bool, False,
                          "Serve a saved response again and again instead of using it once.")
        loader.add_command("replay.server.count", self.count)
        loader.add_command("replay.server.clear", self.clear)
        loader.add_command("replay.server", self.replay_flows)
        loader.add_command("replay.server.add", self.add_flows)
        loader.add_command("replay.server.file", self.replay_file)
        loader.add_command("replay.server.stop", self.stop)

    def configure(self, options: Any, updated: set[str]) -> None:
        if "server_replay" in updated:
            flows: list[HTTPFlow] = []
            for path in options.server_replay:
                flows.extend(self._read(path))
            self.active = bool(options.server_replay)
            self.load_flows(flows)
        elif updated & MATCH_OPTIONS and self.flowmap:
            # Keys depend on these options: file what is left under the new ones, order kept.
            self.load_flows([f for flows in self.flowmap.values() for f in flows])

    @staticmethod
    def _read(path: str) -> list[HTTPFlow]:
        try:
            loaded, warning = flowfile.load(path)
        except InterposeError as e:  # FlowFileError: missing file, not a flow file, newer version
            raise OptionsError(f"server_replay: {e}") from None
        if warning:
            ctx.log.warn(f"server_replay: {warning}")
        usable = [f for f in loaded if isinstance(f, HTTPFlow) and _servable(f.response)]
        ctx.log.info(f"server_replay: {len(usable)} responses from {path}"
                     + (f" ({len(loaded) - len(usable)} flows without a usable response skipped)"
                        if len(usable) < len(loaded) else ""))
        return usable

    def load_flows(self, flows: Sequence[HTTPFlow]) -> None:
        """Replace the saved responses (also usable from other addons)."""
        self.flowmap = {}
        for f in flows:
            self.flowmap.setdefault(self._key(f), []).append(f)

    def _key(self, flow: HTTPFlow) -> Hashable:
        opts = ctx.options
        req = flow.request
        split = urllib.parse.urlsplit(req.path)
        ignored = set(opts.server_replay_ignore_params)
        query = tuple((k, v) for k, v in urllib.parse.parse_qsl(split.query, keep_blank_values=True)
                      if k not in ignored)
        key: list[Any] = [req.method.upper(), req.scheme.lower(), split.path, query]
        if not opts.server_replay_ignore_host:
            key.append(req.host.lower())
        if not opts.server_replay_ignore_port:
            key.append(req.port)
        if not opts.server_replay_ignore_content:
            key.append(req.content_or_raw() or b"")
        for name in opts.server_replay_use_headers:
            key.append((name.lower(), tuple(req.headers.get_all(name))))
        return tuple(key)

    def next_flow(self, flow: HTTPFlow) -> HTTPFlow | None:
        """The saved flow that answers this request, or None. Without nopop it is used up."""
        key = self._key(flow)
        saved = self.flowmap.get(key)
        if not saved:
            return None
        if ctx.options.server_replay_nopop:
            return saved[0]
        found = saved.pop(0)
        if not saved:
            del self.flowmap[key]
        return found

    def request(self, flow: HTTPFlow) -> None:
        if not self.active or flow.response is not None:
            return
        saved = self.next_flow(flow)
        if saved is not None:
            assert saved.response is not None
            response = copy.deepcopy(saved.response)
            response.stream = False
            response.timestamp_start = time.time()
            response.timestamp_end = None  # set when it is sent
            flow.response = response
            flow.is_replay = "response"
        elif ctx.options.server_replay_kill_extra:
            ctx.log.warn(f"server_replay: killed {flow.request.method} {flow.request.url} (no saved response)")
            flow.kill()

    # -- commands ---------------------------------------------------------------------------------
    def count(self) -> int:
        """Saved responses left to serve."""
        return sum(len(v) for v in self.flowmap.values())

    def clear(self) -> None:
        """Forget every saved response (server_replay stays set, so kill_extra still applies)."""
        self.flowmap = {}

    def replay_flows(self, flows: Sequence[HTTPFlow]) -> None:
        """Answer matching requests with the responses of these flows (the saved ones are replaced)."""
        self.load_flows([])
        self.add_flows(flows)

    def add_flows(self, flows: Sequence[HTTPFlow]) -> None:
        """Add the responses of these flows to those that answer matching requests."""
        usable = [f for f in flows if isinstance(f, HTTPFlow) and _servable(f.response)]
        for f in usable:
            self.flowmap.setdefault(self._key(f), []).append(f)
        self.active = self.active or bool(usable)
        ctx.log.info(f"server_replay: {self.count()} responses to serve")

    def replay_file(self, path: command.Path) -> None:
        """Answer matching requests with the responses of a flow file (the saved ones are replaced)."""
        flows = self._read(path)  # a file that cannot be read: one error line (an InterposeError)
        self.load_flows([])
        self.add_flows(flows)

    def stop(self) -> None:
        """Stop answering: forget the saved responses; unmatched requests go to servers again."""
        self.flowmap = {}
        self.active = False


def _servable(response: Response | None) -> bool:
    """A saved response can be served again if its body was saved (a streamed one was not) and it is
    not the 101 of a WebSocket upgrade (no server would be behind the connection)."""
    return response is not None and response.raw_content is not None and response.status_code != 101


addons = [ServerReplay()]
