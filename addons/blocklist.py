"""Answer matching requests with a fixed status, or hang up (444).

Each `--set block_list=/FILTER/STATUS` adds a rule (the first character is the separator, so
`|~u /ads/|404` works too). A request matching a rule's filter gets an empty response with that
status and the server is never contacted; STATUS 444 closes the client's connection (or HTTP/2
stream) without any answer, as nginx does. The first matching rule wins. Rules are checked at
`requestheaders`, so an upload is refused before it is sent on; from the first rule whose filter
reads the body (`~b`, `~bq`) on, they wait for `request`. Flows loaded from a file are left alone.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from interpose import ctx
from interpose.http import HTTPFlow, Response

try:
    from . import _rules  # imported as addons.blocklist
except ImportError:
    import _rules  # type: ignore[no-redef, import-not-found]  # loaded as a script: its folder is on sys.path

OPTION = "block_list"
HANG_UP = 444


class Block(NamedTuple):
    rule: _rules.Rule
    status: int


def parse_rule(text: str) -> Block:
    rule = _rules.split(OPTION, text, "/FILTER/STATUS", filter_optional=False, filter_last=True)
    (status,) = rule.fields
    if not status.strip().isdigit() or not 200 <= int(status) <= 599:
        raise _rules.error(OPTION, text, f"STATUS must be a status code from 200 to 599 (444 hangs up), not {status!r}")
    return Block(rule, int(status))


class BlockList:
    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.early = 0
        """How many of `blocks` are checked at `requestheaders` (the rest wait for `request`)."""

    def load(self, loader: Any) -> None:
        loader.add_option(
            OPTION, Sequence[str], [],
            "Block matching requests: /FILTER/STATUS answers them with STATUS without contacting the server; "
            "444 closes the connection without an answer. Any character may replace /. One rule per --set.",
        )

    def configure(self, options: Any, updated: set[str]) -> None:
        if OPTION in updated:
            blocks = [parse_rule(text) for text in options.block_list]
            self.blocks, self.early = blocks, _rules.headers_stage_count([b.rule for b in blocks])

    def requestheaders(self, flow: HTTPFlow) -> None:
        self._check(flow, self.blocks[: self.early])

    def request(self, flow: HTTPFlow) -> None:
        self._check(flow, self.blocks[self.early :])

    def _check(self, flow: HTTPFlow, blocks: list[Block]) -> None:
        if flow.response is not None or flow.error is not None or not flow.live:
            return
        for block in blocks:
            if block.rule.matches(flow):
                self._block(flow, block)
                return

    def _block(self, flow: HTTPFlow, block: Block) -> None:
        flow.metadata["blocklisted"] = True
        ctx.log.info(f"blocklist: {flow.request.method} {flow.request.pretty_url} → "
                     f"{'hang up' if block.status == HANG_UP else block.status} ({block.rule.text})")
        if block.status == HANG_UP:
            flow.kill()
        else:
            flow.response = Response.make(block.status)


addons = [BlockList()]
