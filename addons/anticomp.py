"""Ask servers for uncompressed bodies (Accept-Encoding: identity).

With `--set anticomp=true`, every request's Accept-Encoding becomes `identity`, so responses come
back unencoded and readable on the wire, e.g. to match them with regexes in other tools. (interpose
decodes gzip, deflate, br and zstd bodies for display anyway; this changes what the server sends.)
"""
from __future__ import annotations

from typing import Any

from interpose import ctx
from interpose.http import HTTPFlow


class AntiComp:
    def load(self, loader: Any) -> None:
        loader.add_option(
            "anticomp", bool, False,
            "Ask servers not to compress responses: set Accept-Encoding: identity on requests.",
        )

    def requestheaders(self, flow: HTTPFlow) -> None:
        self._identity(flow)

    def request(self, flow: HTTPFlow) -> None:
        self._identity(flow)

    def _identity(self, flow: HTTPFlow) -> None:
        if ctx.options.anticomp and flow.response is None:
            flow.request.headers["accept-encoding"] = "identity"


addons = [AntiComp()]
