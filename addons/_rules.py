"""Parsing of the separator-delimited rule options shared by the bundled addons.

`block_list`, `map_local`, `map_remote`, `modify_headers` and `modify_body` take rules such as
`/FILTER/REGEX/REPLACEMENT`. The rule's first character is its separator, so
`|~d example.com|/old/|/new/` is that shape written with `|`: the way to put `/` inside fields.
There is no escaping. Fields are split from the left and the last one keeps any further separators,
as in mitmproxy; where the filter is the free-text field (`/FILTER/STATUS`) it is split off from
the right instead, so `/~u /ads/404` works.

FILTER is a flow filter expression (`interpose.flowfilter`). When a rule's shape lets it be left out,
every flow matches. Every problem is an `OptionsError` naming the option, the rule and the reason,
so a bad `--set` is refused and the previous value stays.

Addons whose option is a filter alone (`stickyauth`, `stickycookie`) declare it with `add_filter_option`
and read it with `read_filter_option`.
"""
from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from interpose import OptionsError
from interpose.flowfilter import Filter, FilterError, parse

# Filter operators that read message bodies. A rule using one can only be decided once the body has
# been read, so addons check it at `request`/`response` rather than at the headers hooks.
_BODY_OPERATOR = re.compile(r"~b[qs]?(?![\w-])")


def _match_all(flow: Any) -> bool:
    return True


class Rule(NamedTuple):
    """One parsed rule: which flows it is for, and its remaining fields as written."""

    text: str
    """The rule as the user wrote it (for messages)."""
    filter_expr: str | None
    """The filter expression, or None when the rule left it out (every flow matches)."""
    matches: Callable[[Any], bool]
    fields: tuple[str, ...]
    """The fields after the filter, in order."""

    @property
    def reads_body(self) -> bool:
        """Does the filter look at a body (`~b`, `~bq`, `~bs`)? Then it is only decided once the body is in."""
        return self.filter_expr is not None and _BODY_OPERATOR.search(self.filter_expr) is not None


def headers_stage_count(rules: Sequence[Rule]) -> int:
    """How many of `rules`, in order, can act at a headers hook (`requestheaders`/`responseheaders`).

    Rules are applied in the order given. Acting early means a rule also works for bodies that stream
    and a request it answers never reaches the server, but a rule whose filter reads the body cannot be
    decided before the body is in: it, and every rule after it (to keep the order), waits for
    `request`/`response`. So `rules[:n]` act at the headers hook and `rules[n:]` at the body hook.
    """
    for i, rule in enumerate(rules):
        if rule.reads_body:
            return i
    return len(rules)


def add_filter_option(loader: Any, option: str, help: str) -> None:
    """Declare `option` as a flow filter expression, unset by default (unset or empty: the addon is off)."""
    loader.add_option(option, str | None, None, help)


def read_filter_option(options: Any, option: str) -> Filter | None:
    """The filter `option` holds now, None when it is unset or empty. A bad expression is an OptionsError
    naming the option (so `--set` refuses it and the previous value stays)."""
    expr = getattr(options, option)
    if not expr:
        return None
    try:
        return parse(expr)
    except FilterError as e:
        raise OptionsError(f"{option}: bad filter: {e}") from None


def error(option: str, rule: str, why: str) -> OptionsError:
    return OptionsError(f"{option}: invalid rule {rule!r}: {why}")


def split(option: str, rule: str, shape: str, filter_optional: bool = True, filter_last: bool = False) -> Rule:
    """Split `rule` per `shape`, e.g. "/FILTER/REGEX/REPLACEMENT", and compile its filter.

    With `filter_optional`, a rule with one field fewer has no filter. With `filter_last`, the filter
    is the field that may contain the separator (it is split off from the right).
    """
    names = shape.strip("/").split("/")
    assert names[0] == "FILTER"
    wanted = len(names) - 1  # fields after the filter
    if len(rule) < 2:
        raise error(option, rule, f"expected {shape} (any character may stand in for /)")
    sep, rest = rule[0], rule[1:]
    if sep.isalnum() or sep.isspace():
        raise error(option, rule, f"the first character is the separator and must be punctuation, as in {shape}")
    parts = rest.rsplit(sep, wanted) if filter_last else rest.split(sep, wanted)
    if len(parts) == wanted + 1:
        filter_expr: str | None = parts[0]
        fields = parts[1:]
    elif len(parts) == wanted and filter_optional:
        filter_expr, fields = None, parts
    else:
        short = shape.replace("FILTER/", "", 1)
        forms = f"{shape} or {short}" if filter_optional else shape
        raise error(option, rule, f"expected {forms} with {sep!r} as the separator, found {len(parts)} field(s)")
    matches: Callable[[Any], bool] = _match_all
    if filter_expr is not None:
        if not filter_expr.strip():
            raise error(option, rule, "the filter is empty (write ~all to match every flow)")
        try:
            matches = parse(filter_expr)
        except FilterError as e:
            raise error(option, rule, f"bad filter: {e}") from None
    return Rule(rule, filter_expr, matches, tuple(fields))


def compile_regex(option: str, rule: str, pattern: str, as_bytes: bool = False) -> re.Pattern[Any]:
    """Compile a rule's regex, or say why it is not one."""
    if not pattern:
        raise error(option, rule, "the regular expression is empty")
    try:
        with warnings.catch_warnings():  # a FutureWarning on stderr would garble the TUI
            warnings.simplefilter("ignore")
            if as_bytes:
                return re.compile(pattern.encode("utf-8", "surrogateescape"), re.DOTALL)
            return re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as e:
        raise error(option, rule, f"bad regular expression {pattern!r}: {e}") from None


def file_reference(value: str) -> str | None:
    """The path of an `@path` value (with `~` expanded), or None for a literal value."""
    if value.startswith("@") and len(value) > 1:
        return os.path.expanduser(value[1:])
    return None


def check_readable(option: str, rule: str, path: str) -> None:
    """An `@path` must name a readable file when the rule is set (it is read again on every use)."""
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise error(option, rule, f"cannot read {path}: {e.strerror or e}") from None


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
