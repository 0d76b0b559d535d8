"""Replay a host's Authorization header on its later requests that lack one.

With `--set stickyauth=FILTER`, the Authorization header of each request matching FILTER is
remembered for its host (the latest one wins), and a later request to that host that matches FILTER
but carries no Authorization gets the remembered one. Handy to keep a session logged in while
another tool or a replay sends bare requests. Unset (or empty) turns it off; what was remembered
is kept until the addon is unloaded.
"""
from __future__ import annotations

from typing import Any

from interpose import ctx
from interpose.flowfilter import Filter
from interpose.http import HTTPFlow

try:
    from . import _rules  # imported as addons.stickyauth
except ImportError:
    import _rules  # type: ignore[no-redef, import-not-found]  # loaded as a script: its folder is on sys.path

OPTION = "stickyauth"


class StickyAuth:
    def __init__(self) -> None:
        self.filter: Filter | None = None
        self.hosts: dict[str, str] = {}
        """host → the Authorization value last seen on a matching request to it."""

    def load(self, loader: Any) -> None:
        _rules.add_filter_option(
            loader, OPTION,
            "Remember the Authorization header of requests matching this filter, per host, and add it to "
            "later matching requests to that host that have none.",
        )

    def configure(self, options: Any, updated: set[str]) -> None:
        if OPTION in updated:
            self.filter = _rules.read_filter_option(options, OPTION)

    def requestheaders(self, flow: HTTPFlow) -> None:
        self._stick(flow)

    def request(self, flow: HTTPFlow) -> None:
        self._stick(flow)  # flows that skipped requestheaders (e.g. loaded from a file); a no-op otherwise

    def _stick(self, flow: HTTPFlow) -> None:
        if self.filter is None or flow.response is not None or not self.filter(flow):
            return
        req = flow.request
        host = req.host.lower()
        auth = req.headers.get("authorization")
        if auth is not None:
            self.hosts[host] = auth
        elif host in self.hosts:
            req.headers["authorization"] = self.hosts[host]
            flow.metadata["stickyauth"] = True
            ctx.log.debug(f"stickyauth: added Authorization to {req.pretty_url}")


addons = [StickyAuth()]
