"""Set or remove request and response headers by rule.

`--set modify_headers=/FILTER/NAME/VALUE` (or `/NAME/VALUE` for every flow; the first character is
the separator). The filter decides which messages a rule touches: requests are seen before they
have a response and responses after, so `~q` limits a rule to requests and `~s` to responses, and a
rule without a filter (or `~all`) applies to both. For each message, every matching rule first
removes all headers called NAME, then each matching rule with a VALUE adds NAME: VALUE (in order),
so an empty VALUE just removes the header and two rules for one NAME give two headers. A VALUE of
`@path` is read from that file each time it is used (trailing line breaks dropped).

Rules act at `requestheaders`/`responseheaders`, so they reach streamed bodies' headers too; from
the first rule whose filter reads a body (`~b`, `~bq`, `~bs`) on, they act at `request`/`response`.
A response an addon made up (map_local, blocklist) gets every rule at `response`. Flows loaded
from a file are left alone.
"""
from __future__ import annotations

import re
import weakref
from collections.abc import Sequence
from typing import Any, NamedTuple

from interpose import ctx
from interpose.http import Headers, HTTPFlow

try:
    from . import _rules  # imported as addons.modify_headers
except ImportError:
    import _rules  # type: ignore[no-redef, import-not-found]  # loaded as a script: its folder is on sys.path

OPTION = "modify_headers"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field-name


class HeaderRule(NamedTuple):
    rule: _rules.Rule
    name: str
    value: str
    """The literal value; "" removes the header. Unused when `path` is set."""
    path: str | None
    """Where the value is read from, for `@path`."""

    def read_value(self) -> str | None:
        """The value to add now ("" adds nothing), or None when the file cannot be read."""
        if self.path is None:
            return self.value
        try:
            value = _rules.read_file(self.path).decode("utf-8", "surrogateescape").rstrip("\r\n")
        except OSError as e:
            ctx.log.warn(f"modify_headers: cannot read {self.path} for {self.rule.text!r}: {e.strerror or e}")
            return None
        if "\r" in value or "\n" in value:
            ctx.log.warn(f"modify_headers: {self.path} holds more than one line, "
                         f"not a header value ({self.rule.text!r})")
            return None
        return value


def parse_rule(text: str) -> HeaderRule:
    rule = _rules.split(OPTION, text, "/FILTER/NAME/VALUE")
    name, value = rule.fields
    if not _TOKEN.fullmatch(name):
        raise _rules.error(OPTION, text, f"{name!r} is not a valid header name")
    path = _rules.file_reference(value)
    if path is not None:
        _rules.check_readable(OPTION, text, path)
    elif "\r" in value or "\n" in value:
        raise _rules.error(OPTION, text, "a header value cannot contain a line break")
    return HeaderRule(rule, name, value, path)


class ModifyHeaders:
    def __init__(self) -> None:
        self.rules: list[HeaderRule] = []
        self.early = 0
        """How many of `rules` act at the headers hooks (the rest at `request`/`response`)."""
        self.head_seen: weakref.WeakSet[HTTPFlow] = weakref.WeakSet()
        """Flows whose response passed `responseheaders` (one an addon made up skips that hook)."""

    def load(self, loader: Any) -> None:
        loader.add_option(
            OPTION, Sequence[str], [],
            "Set headers: /FILTER/NAME/VALUE or /NAME/VALUE (any first character is the separator). "
            "An empty VALUE removes the header; @path reads the value from a file. ~q selects requests, "
            "~s responses. One rule per --set.",
        )

    def configure(self, options: Any, updated: set[str]) -> None:
        if OPTION in updated:
            rules = [parse_rule(text) for text in options.modify_headers]
            self.rules, self.early = rules, _rules.headers_stage_count([r.rule for r in rules])

    def requestheaders(self, flow: HTTPFlow) -> None:
        if flow.response is None:
            self._apply(flow, flow.request.headers, self.rules[: self.early])

    def request(self, flow: HTTPFlow) -> None:
        if flow.response is None:
            self._apply(flow, flow.request.headers, self.rules[self.early :])

    def responseheaders(self, flow: HTTPFlow) -> None:
        if flow.response is not None:
            self.head_seen.add(flow)
            self._apply(flow, flow.response.headers, self.rules[: self.early])

    def response(self, flow: HTTPFlow) -> None:
        if flow.response is not None:
            rules = self.rules[self.early :] if flow in self.head_seen else self.rules
            self._apply(flow, flow.response.headers, rules)

    def _apply(self, flow: HTTPFlow, headers: Headers, rules: list[HeaderRule]) -> None:
        if not rules or flow.error is not None or not flow.live:
            return
        # Decide every filter against the message as it came, before any rule changes it.
        matching = [r for r in rules if r.rule.matches(flow)]
        values = [(r.name, r.read_value()) for r in matching]
        for name, value in values:
            if value is not None:  # an unreadable file leaves the header as it was
                headers.pop(name, None)
        for name, value in values:
            if value:
                headers.add(name, value)


addons = [ModifyHeaders()]
