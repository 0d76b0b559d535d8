"""Rewrite request URLs, sending matching requests to another place.

`--set map_remote=|FILTER|REGEX|REPLACEMENT` (or `|REGEX|REPLACEMENT` for every request; the first
character is the separator, so pick one that is not in the URLs). For each rule in order whose
filter matches, every match of REGEX in the request's full URL is replaced (Python's re.sub, so
`\\1` and `\\g<name>` work). The request then goes to the new scheme, host, port and path, and its
Host header (HTTP/1) or :authority (HTTP/2) names the new host. A result that is not an absolute
URL is logged and the URL is left unchanged. Rules act at `requestheaders`, before the server is
chosen; from the first rule whose filter reads the body on, they act at `request`.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from interpose import ctx
from interpose.http import HTTPFlow

try:
    from . import _rules  # imported as addons.map_remote
except ImportError:
    import _rules  # type: ignore[no-redef, import-not-found]  # loaded as a script: its folder is on sys.path

OPTION = "map_remote"


class Rewrite(NamedTuple):
    rule: _rules.Rule
    regex: re.Pattern[str]
    replacement: str


def parse_rule(text: str) -> Rewrite:
    rule = _rules.split(OPTION, text, "/FILTER/REGEX/REPLACEMENT")
    pattern, replacement = rule.fields
    regex = _rules.compile_regex(OPTION, text, pattern)
    try:
        regex.sub(replacement, "")  # the template is checked even without a match: a bad \1 or \g<name>
    except (re.error, IndexError) as e:
        raise _rules.error(OPTION, text, f"bad replacement {replacement!r}: {e}") from None
    return Rewrite(rule, regex, replacement)


class MapRemote:
    def __init__(self) -> None:
        self.rewrites: list[Rewrite] = []
        self.early = 0
        """How many of `rewrites` act at `requestheaders` (the rest at `request`)."""

    def load(self, loader: Any) -> None:
        loader.add_option(
            OPTION, Sequence[str], [],
            "Rewrite request URLs: |FILTER|REGEX|REPLACEMENT or |REGEX|REPLACEMENT (any first character is the "
            "separator); re.sub on the full URL, and the request goes to the new host. One rule per --set.",
        )

    def configure(self, options: Any, updated: set[str]) -> None:
        if OPTION in updated:
            rewrites = [parse_rule(text) for text in options.map_remote]
            self.rewrites, self.early = rewrites, _rules.headers_stage_count([r.rule for r in rewrites])

    def requestheaders(self, flow: HTTPFlow) -> None:
        self._rewrite(flow, self.rewrites[: self.early])

    def request(self, flow: HTTPFlow) -> None:
        self._rewrite(flow, self.rewrites[self.early :])

    def _rewrite(self, flow: HTTPFlow, rewrites: list[Rewrite]) -> None:
        if flow.response is not None or flow.error is not None or not flow.live:
            return
        req = flow.request
        if req.method == "CONNECT":
            return
        for rw in rewrites:
            if not rw.rule.matches(flow):
                continue
            url = req.pretty_url
            try:
                new = rw.regex.sub(rw.replacement, url)
            except (re.error, IndexError) as e:  # e.g. \2 where this match has no second group
                ctx.log.warn(f"map_remote: rule {rw.rule.text!r} failed on {url}: {e}")
                continue
            if new == url:
                continue
            try:
                req.url = new
            except ValueError as e:
                ctx.log.warn(f"map_remote: rule {rw.rule.text!r} made {new!r} from {url}: {e}")
                continue
            # The URL setter rewrote a Host header; a request that came over HTTP/2 has :authority instead.
            if req.authority and "host" not in req.headers:
                req.authority = req.host_header_value
            flow.metadata.setdefault("map_remote", []).append(url)


addons = [MapRemote()]
