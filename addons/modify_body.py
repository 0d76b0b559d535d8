"""Regex search-and-replace on request and response bodies.

`--set modify_body=/FILTER/REGEX/REPLACEMENT` (or `/REGEX/REPLACEMENT` for every flow; the first
character is the separator). The filter decides which messages a rule touches: a request is seen at
`request`, before it has a response, and a response at `response`, so `~q` limits a rule to requests
and `~s` to responses; without a filter (or with `~all`) it applies to both. Every match of REGEX
in the decoded body (Content-Encoding undone, then redone) is replaced, as Python's re.sub does on
bytes with DOTALL: `\\1` and `\\g<name>` work in an inline REPLACEMENT. A REPLACEMENT of `@path` is
the content of that file, read each time, used as it is (no backslash processing). Rules apply in
order. Bodies that stream through (see `stream_large_bodies`) are not buffered, so not modified.
Flows loaded from a file are left alone. A body that would decode past the `decode_limit` option
is left unchanged, with a warning in the log.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from interpose import ctx
from interpose.http import BodyTooLarge, HTTPFlow, Message

try:
    from . import _rules  # imported as addons.modify_body
except ImportError:
    import _rules  # type: ignore[no-redef, import-not-found]  # loaded as a script: its folder is on sys.path

OPTION = "modify_body"


class BodyRule(NamedTuple):
    rule: _rules.Rule
    regex: re.Pattern[bytes]
    template: bytes
    """The inline replacement (an re.sub template). Unused when `path` is set."""
    path: str | None
    """Where the replacement is read from, for `@path`."""

    def replacement(self) -> bytes | Callable[[re.Match[bytes]], bytes] | None:
        """What to hand re.sub, or None when the file cannot be read."""
        if self.path is None:
            return self.template
        try:
            data = _rules.read_file(self.path)
        except OSError as e:
            ctx.log.warn(f"modify_body: cannot read {self.path} for {self.rule.text!r}: {e.strerror or e}")
            return None
        return lambda _m: data  # the file's bytes, taken literally


def parse_rule(text: str) -> BodyRule:
    rule = _rules.split(OPTION, text, "/FILTER/REGEX/REPLACEMENT")
    pattern, replacement = rule.fields
    regex = _rules.compile_regex(OPTION, text, pattern, as_bytes=True)
    path = _rules.file_reference(replacement)
    template = replacement.encode("utf-8", "surrogateescape")
    if path is not None:
        _rules.check_readable(OPTION, text, path)
    else:
        try:
            regex.sub(template, b"")  # the template is checked even without a match: a bad \1 or \g<name>
        except (re.error, IndexError) as e:
            raise _rules.error(OPTION, text, f"bad replacement {replacement!r}: {e}") from None
    return BodyRule(rule, regex, template, path)


class ModifyBody:
    def __init__(self) -> None:
        self.rules: list[BodyRule] = []

    def load(self, loader: Any) -> None:
        loader.add_option(
            OPTION, Sequence[str], [],
            "Replace in bodies: /FILTER/REGEX/REPLACEMENT or /REGEX/REPLACEMENT (any first character is the "
            "separator); @path reads the replacement from a file. ~q selects requests, ~s responses. "
            "One rule per --set.",
        )

    def configure(self, options: Any, updated: set[str]) -> None:
        if OPTION in updated:
            self.rules = [parse_rule(text) for text in options.modify_body]

    def request(self, flow: HTTPFlow) -> None:
        if flow.response is None:
            self._apply(flow, flow.request)

    def response(self, flow: HTTPFlow) -> None:
        if flow.response is not None:
            self._apply(flow, flow.response)

    def _apply(self, flow: HTTPFlow, message: Message) -> None:
        if not self.rules or flow.error is not None or not flow.live:
            return
        for r in self.rules:
            if message.raw_content is None or not r.rule.matches(flow):
                continue
            replacement = r.replacement()
            try:
                body = message.content
            except BodyTooLarge as e:  # left as it is: decoding it would cost more memory than allowed
                ctx.log.warn(f"modify_body: {flow.request.pretty_url}: {e}; body left unchanged")
                return
            if replacement is None or body is None:
                continue
            new = r.regex.sub(replacement, body)
            if new != body:
                message.content = new


addons = [ModifyBody()]
