"""Add a header to every response (an example addon to copy from).

Load it with `interpose-dump -s addons/add_header.py`, change the header with
`--set add_header_name=X-Seen-By --set add_header_value=me`, or from any addon at runtime with
`ctx.options.add_header_value = "..."`. SPEC.md lists every hook an addon can have.
"""
from __future__ import annotations

from interpose import ctx
from interpose.http import HTTPFlow


class AddHeader:
    def __init__(self) -> None:
        self.count = 0

    def load(self, loader) -> None:
        loader.add_option("add_header_name", str, "X-Interpose", "Name of the header added to responses.")
        loader.add_option("add_header_value", str, "1", "Value of the header added to responses.")

    def configure(self, options, updated: set[str]) -> None:
        if "add_header_name" in updated and not options.add_header_name:
            ctx.log.warn("add_header_name is empty: no header will be added")

    def response(self, flow: HTTPFlow) -> None:
        if flow.response is not None and ctx.options.add_header_name:
            self.count += 1
            flow.response.headers[ctx.options.add_header_name] = ctx.options.add_header_value


addons = [AddHeader()]
