"""Strip If-None-Match and If-Modified-Since so servers answer in full.

With `--set anticache=true`, requests lose their conditional-request headers, so the server sends
the whole resource instead of a bodiless `304 Not Modified` and the body shows up in the flow.
The headers go at `requestheaders`, before anything reaches the server (also for streamed
uploads); `request` repeats the check for flows that did not pass that hook.
"""
from __future__ import annotations

from typing import Any

from interpose import ctx
from interpose.http import HTTPFlow

CONDITIONAL = ("if-none-match", "if-modified-since")


class AntiCache:
    def load(self, loader: Any) -> None:
        loader.add_option(
            "anticache", bool, False,
            "Strip If-None-Match and If-Modified-Since from requests so that servers do not answer 304.",
        )

    def requestheaders(self, flow: HTTPFlow) -> None:
        self._strip(flow)

    def request(self, flow: HTTPFlow) -> None:
        self._strip(flow)

    def _strip(self, flow: HTTPFlow) -> None:
        if not ctx.options.anticache or flow.response is not None:
            return
        for name in CONDITIONAL:
            flow.request.headers.pop(name, None)


addons = [AntiCache()]
