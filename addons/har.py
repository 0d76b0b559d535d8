"""Export flows as HAR 1.2 (at exit and on demand).

`-s addons/har.py --set hardump=flows.har` writes every finished HTTP flow (WebSocket messages
included) to `flows.har` when the proxy stops. The command `har.export` writes them at any time:
`ctx.master.addons.commands["har.export"]("now.har")` (no argument: the `hardump` path).
The flows are kept in memory while this addon is loaded; that is what it is for.
"""
from __future__ import annotations

import os
from typing import Any

from interpose import ctx
from interpose.http import HTTPFlow
from interpose.store import har


class HarDump:
    name = "hardump"

    def __init__(self) -> None:
        self.flows: dict[str, HTTPFlow] = {}
        """Finished HTTP flows by id, oldest first (a flow that errors after its response is kept once)."""

    def load(self, loader: Any) -> None:
        loader.add_option("hardump", str, "",
                          "Write every finished HTTP flow to this HAR file at exit (and on har.export).")
        loader.add_command("har.export", self.export)

    def response(self, flow: HTTPFlow) -> None:
        self.flows[flow.id] = flow

    def error(self, flow: HTTPFlow) -> None:
        self.flows[flow.id] = flow

    def export(self, path: str | None = None) -> int:
        """Write the flows seen so far to `path` (default: the hardump option). Returns the entry count."""
        target = path or ctx.options.hardump
        if not target:
            raise ValueError("har.export needs a path (or set the hardump option)")
        n = har.write(os.path.expanduser(target), list(self.flows.values()))
        ctx.log.info(f"HAR: wrote {n} entries to {target}")
        return n

    def done(self) -> None:
        if ctx.options.hardump:
            try:
                self.export()
            except OSError as e:
                ctx.log.error(f"HAR: cannot write {ctx.options.hardump}: {e.strerror or e}")


addons = [HarDump()]
