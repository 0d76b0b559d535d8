"""The `intercept` option: hold flows matching a filter at the stages named in `intercept_at`."""
from __future__ import annotations

from typing import Any

from interpose import flowfilter
from interpose.errors import OptionsError

STAGES = ("requestheaders", "request", "responseheaders", "response", "messages")


def parse_stages(text: str) -> frozenset[str]:
    stages = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = stages - set(STAGES)
    if unknown:
        raise OptionsError(f"unknown intercept stage {', '.join(sorted(unknown))}; use {', '.join(STAGES)}")
    return stages


class Intercept:
    name = "intercept"

    def __init__(self) -> None:
        self.filter: flowfilter.Filter | None = None
        self.stages: frozenset[str] = frozenset(("request", "response"))

    def configure(self, options: Any, updated: set[str]) -> None:
        if "intercept" in updated:
            spec = options.intercept
            try:
                self.filter = flowfilter.parse(spec) if spec else None
            except flowfilter.FilterError as e:
                raise OptionsError(f"invalid intercept filter: {e}") from None
        if "intercept_at" in updated:
            self.stages = parse_stages(options.intercept_at)

    def _maybe(self, flow: Any, stage: str) -> None:
        if stage in ("request", "response") and flow.metadata.pop(f"hold_at_{stage}", False):
            flow.intercept()  # asked for at the header stage: "buffer the body and stop again"
            return
        if self.filter is not None and stage in self.stages and flow.live and self.filter(flow):
            flow.intercept()

    def requestheaders(self, flow: Any) -> None:
        self._maybe(flow, "requestheaders")

    def request(self, flow: Any) -> None:
        self._maybe(flow, "request")

    def responseheaders(self, flow: Any) -> None:
        self._maybe(flow, "responseheaders")

    def response(self, flow: Any) -> None:
        self._maybe(flow, "response")

    def websocket_message(self, flow: Any) -> None:
        self._message(flow)

    def tcp_message(self, flow: Any) -> None:
        self._message(flow)

    def _message(self, flow: Any) -> None:
        if self.filter is not None and "messages" in self.stages and flow.messages and self.filter(flow):
            msg = flow.messages[-1]
            intercept = getattr(msg, "intercept", None)
            if intercept is not None:
                intercept()
