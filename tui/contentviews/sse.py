"""text/event-stream (server-sent events) split into its events.

Parsed as the HTML standard says (https://html.spec.whatwg.org/multipage/server-sent-events.html,
"Event stream interpretation"): lines end in CRLF, LF or CR; a blank line ends an event; `field: value`
(one space after the colon dropped), a line without a colon is a field with an empty value, a line
starting with a colon is a comment. `data` lines join with newlines; `event`, `id` and `retry` are
shown as sent, other fields too (dimmed: a browser ignores them). A `data` payload that is JSON is
pretty-printed. Output stops after `MAX_LINES` lines.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from interpose.tui.contentviews.json import json_lines, looks_like_json
from interpose.tui.contentviews.json import parse as parse_json
from interpose.tui.contentviews.text import Line, decode, sanitize_segment

MAX_LINES = 200_000
JSON_DATA_LIMIT = 1 << 20
"""Data payloads up to this many characters are tried as JSON."""
_LINE_END = re.compile(r"\r\n|\r|\n")
KNOWN = ("event", "id", "retry", "data")


@dataclass
class Event:
    fields: list[tuple[str, str]] = field(default_factory=list)
    """(name, value) in order, comments as ("", text)."""
    complete: bool = False
    """Ended by a blank line (the last event of a cut stream is not)."""

    @property
    def data(self) -> str | None:
        parts = [v for k, v in self.fields if k == "data"]
        return "\n".join(parts) if parts else None


def parse(text: str) -> list[Event]:
    """Every event (and group of comments) in the stream, in order."""
    events: list[Event] = []
    cur = Event()
    lines = _LINE_END.split(text.removeprefix("\ufeff"))
    if lines and lines[-1] == "":
        lines.pop()  # the text ended with a line end
    for raw in lines:
        if raw == "":
            if cur.fields:
                cur.complete = True
                events.append(cur)
                cur = Event()
            continue
        if raw.startswith(":"):
            cur.fields.append(("", raw[1:].removeprefix(" ")))
            continue
        name, sep, value = raw.partition(":")
        cur.fields.append((name, value.removeprefix(" ") if sep else ""))
    if cur.fields:
        events.append(cur)
    return events


def _data_lines(data: str) -> list[Line]:
    if len(data) <= JSON_DATA_LIMIT and looks_like_json(data):
        try:
            return [[("text", "    "), *ln] for ln in json_lines(parse_json(data))]
        except (ValueError, RecursionError):
            pass
    return [[("text", "    "), ("syntax_string", sanitize_segment(ln))] for ln in data.split("\n")]


def _event_lines(n: int, ev: Event) -> list[Line]:
    kind = next((v for k, v in reversed(ev.fields) if k == "event"), None)
    head: Line = [("title", f"── event {n}")]
    if kind is not None:
        head.append(("syntax_tag", f" {sanitize_segment(kind) or 'message'}"))
    if not ev.complete:
        head.append(("warn", " (incomplete: the stream ends before its blank line)"))
    lines: list[Line] = [head] if n else []  # n == 0: comments alone (keep-alives), no event
    data_shown = False
    for name, value in ev.fields:
        if name == "":
            lines.append([("syntax_comment", f"  : {sanitize_segment(value)}")])
        elif name == "data":
            if not data_shown:  # every data line of the event, joined, once
                lines.append([("header_name", "  data:")])
                lines += _data_lines(ev.data or "")
                data_shown = True
        elif name == "retry" and not (value.isascii() and value.isdigit()):
            lines.append([("header_name", "  retry: "), ("header_value", sanitize_segment(value)),
                          ("warn", "  (not a number: ignored)")])
        elif name in KNOWN:
            lines.append([("header_name", f"  {name}: "), ("header_value", sanitize_segment(value))])
        else:
            lines.append([("dim", f"  {sanitize_segment(name)}: {sanitize_segment(value)}  (unknown field)")])
    return lines


def sse_view(body: bytes, content_type: str = "") -> tuple[str, list[Line]]:
    """(title, lines) of a text/event-stream body."""
    events = parse(decode(body, content_type))
    lines: list[Line] = []
    count = 0
    for ev in events:
        if any(k != "" for k, _ in ev.fields):
            count += 1
            lines += _event_lines(count, ev)
        else:
            lines += _event_lines(0, ev)
        if len(lines) > MAX_LINES:
            lines = lines[:MAX_LINES]
            lines.append([("warn", f"… stopped after {MAX_LINES:,} lines")])
            break
    if not lines:
        lines = [[("dim", "(no events)")]]
    return f"Server-sent events ({count} event{'' if count == 1 else 's'})", lines
