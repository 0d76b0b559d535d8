"""Sticky edits: turn the edit of a held flow into a standing rule that applies to later matching flows
without intercepting them. Rules live in `CONFDIR/sticky-rules.json` and are applied by `StickyRules`,
an addon the TUI loads.

A rule: a filter (method and URL of the edited flow), the part (request or response), headers to set
or remove, and optionally a whole new body.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from core.flowfilter import parse

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

    def describe(self) -> str:
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
    if (before.content or b"") != (after.content or b""):
        body = (after.content or b"").decode("utf-8", "surrogateescape")
    if not set_headers and not remove and body is None:
        return None
    req = edited.request
    flt = f"~m ^{re.escape(req.method)}$ & ~u ^{re.escape(req.pretty_url)}$"
    return Rule(flt, part, set_headers, remove, body)


class StickyRules:
    """Applies the rules to every flow: requests at `request`, responses at `response`."""

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
            self.rules = [Rule(d["filter"], d["part"], [tuple(h) for h in d.get("set_headers", [])],  # type: ignore[misc]
                               list(d.get("remove_headers", [])), d.get("body")) for d in data]
        except (OSError, ValueError, KeyError, TypeError):
            self.rules = []
        self._compile()

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump([asdict(r) for r in self.rules], f, indent=1)
        os.replace(tmp, self.path)

    def _compile(self) -> None:
        self._compiled = []
        for r in self.rules:
            try:
                self._compiled.append((r, parse(r.filter)))
            except ValueError:
                continue

    def add(self, rule: Rule) -> None:
        self.rules.append(rule)
        self._compile()
        self.save()

    def remove(self, index: int) -> None:
        del self.rules[index]
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

    def response(self, flow: Any) -> None:
        self._apply(flow, "response")
