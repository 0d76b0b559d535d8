"""Sticky edits: turn the edit of a held flow into a standing rule that applies to later matching flows
without intercepting them. Rules live in `CONFDIR/sticky-rules.json` and are applied by `StickyRules`,
an addon the TUI loads.

A rule: a filter (method and URL of the edited flow), the part (request or response), headers to set
or remove, and optionally a whole new body. A rule of the part `saved_response` holds a whole response
(status, headers, body; the body base64 in the file): matching requests are answered with it at the
`request` hook and never reach the server.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import Any

from interpose.flowfilter import parse
from interpose.http import Response

FILE = "sticky-rules.json"


@dataclass
class Rule:
    filter: str
    part: str
    """request or response"""
    set_headers: list[tuple[str, str]] = field(default_factory=list)
    remove_headers: list[str] = field(default_factory=list)
    body: str | None = None
    """A new body (UTF-8 text), or None to leave bodies alone."""
    status_code: int | None = None
    """saved_response: the status, reason, headers (all of them, in order) and body (base64, as on the wire)."""
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body_b64: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rule:
        status = d.get("status_code")
        return cls(str(d["filter"]), str(d["part"]), [(str(k), str(v)) for k, v in d.get("set_headers", [])],
                   [str(h) for h in d.get("remove_headers", [])], d.get("body"),
                   int(status) if status is not None else None, str(d.get("reason", "")),
                   [(str(k), str(v)) for k, v in d.get("headers", [])], d.get("body_b64"))

    def saved_body(self) -> bytes:
        return base64.b64decode(self.body_b64 or "")

    def make_response(self) -> Response:
        """A fresh copy of the saved response."""
        assert self.status_code is not None
        return Response(self.status_code, self.reason, "HTTP/1.1", list(self.headers), self.saved_body())

    def describe(self) -> str:
        if self.part == "saved_response":
            n = len(self.headers)
            reason = self.reason
            if not reason:
                with contextlib.suppress(ValueError):
                    reason = HTTPStatus(self.status_code or 0).phrase
            return (f"respond {self.filter}: saved response {self.status_code} {reason}".rstrip() +
                    f", {n} header{'s' if n != 1 else ''}, {len(self.saved_body())} bytes (server not asked)")
        what = [f"set {k}: {v}" for k, v in self.set_headers] + [f"remove {k}" for k in self.remove_headers]
        if self.body is not None:
            what.append(f"body → {len(self.body.encode())} bytes")
        return f"{self.part} {self.filter}: " + ("; ".join(what) or "no change")


def rule_from_edit(original: Any, edited: Any, part: str) -> Rule | None:
    """What changed between the original and the edited request/response of a flow, as a rule."""
    before = getattr(original, part)
    after = getattr(edited, part)
    if before is None or after is None:
        return None
    old = {k.lower(): v for k, v in before.headers.items(multi=True)}
    new = {k.lower(): (k, v) for k, v in after.headers.items(multi=True)}
    framing = {"content-length", "transfer-encoding"}
    set_headers = [(k, v) for low, (k, v) in new.items() if old.get(low) != v and low not in framing]
    remove = [low for low in old if low not in new and low not in framing]
    body = None
    if (before.content_or_raw() or b"") != (after.content_or_raw() or b""):
        body = (after.content_or_raw() or b"").decode("utf-8", "surrogateescape")
    if not set_headers and not remove and body is None:
        return None
    req = edited.request
    flt = f"~m ^{re.escape(req.method)}$ & ~u ^{re.escape(req.pretty_url)}$"
    return Rule(flt, part, set_headers, remove, body)


# Framing and hop-by-hop headers are the wire's business: the proxy frames the saved body itself.
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade", "te",
        "trailer"}


def default_filter(flow: Any) -> str:
    """The same method and URL as the flow's request."""
    req = flow.request
    return f"~m ^{re.escape(req.method)}$ & ~u ^{re.escape(req.pretty_url)}$"


def rule_from_response(flow: Any, flt: str) -> Rule:
    """A saved-response rule: the flow's whole response (as edited) answers requests matching `flt`."""
    resp = flow.response
    if resp is None:
        raise ValueError("this flow has no response to save")
    if resp.raw_content is None:
        raise ValueError("the response body was streamed through, not kept: nothing to save")
    parse(flt)  # a bad filter is the user's error, said now rather than never matching
    headers = [(k, v) for k, v in resp.headers.items(multi=True) if k.lower() not in _HOP]
    headers.append(("content-length", str(len(resp.raw_content))))
    return Rule(flt, "saved_response", status_code=resp.status_code, reason=resp.reason, headers=headers,
                body_b64=base64.b64encode(resp.raw_content).decode("ascii"))


class StickyRules:
    """Applies the rules to every flow: requests at `request`, responses at `response`; a saved response
    answers a matching request at `request` (the server is not contacted)."""

    name = "sticky_rules"

    def __init__(self, confdir: str) -> None:
        self.path = os.path.join(os.path.expanduser(confdir), FILE)
        self.rules: list[Rule] = []
        self._compiled: list[Any] = []
        self.load()

    def load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            self.rules = [Rule.from_dict(d) for d in data]
        except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            self.rules = []
        self._compile()

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump([asdict(r) for r in self.rules], f, indent=1)
        os.replace(tmp, self.path)

    def _compile(self) -> None:
        # The UI edits the rules while the core's hooks (another thread) read them: lists are built aside
        # and swapped in whole, never changed in place, so a hook always sees one consistent set.
        compiled = []
        for r in self.rules:
            try:
                compiled.append((r, parse(r.filter)))
            except ValueError:
                continue
        self._compiled = compiled

    def add(self, rule: Rule) -> None:
        self.rules = [*self.rules, rule]
        self._compile()
        self.save()

    def remove(self, index: int) -> None:
        self.rules = self.rules[:index] + self.rules[index + 1:]
        self._compile()
        self.save()

    def _apply(self, flow: Any, part: str) -> None:
        for rule, matches in self._compiled:
            if rule.part != part or not matches(flow):
                continue
            message = getattr(flow, part)
            if message is None:
                continue
            for name in rule.remove_headers:
                message.headers.pop(name, None)
            for name, value in rule.set_headers:
                message.headers[name] = value
            if rule.body is not None:
                message.content = rule.body.encode("utf-8", "surrogateescape")

    def request(self, flow: Any) -> None:
        self._apply(flow, "request")
        if flow.response is not None:
            return  # answered already (by an addon, or a replayed response)
        for rule, matches in self._compiled:
            if rule.part == "saved_response" and matches(flow):
                flow.response = rule.make_response()
                flow.metadata["sticky"] = "saved response"
                return

    def response(self, flow: Any) -> None:
        self._apply(flow, "response")
