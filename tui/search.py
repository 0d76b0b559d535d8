"""Global search across flows: URL, headers, decoded bodies and WebSocket/TCP messages.

Pure and incremental: `search()` works in time slices of a few milliseconds and yields to the event loop
between them, so keys and redraws wait at most about one slice on 100,000 flows (docs/search.md), and it
reports progress a few times a second.
"""
from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

SNIPPET = 60
SLICE_S = 0.008
"""Work this long between yields. A count of flows is no bound: one flow's bodies may take 1 µs or 5 ms."""
PROGRESS_S = 0.1
"""Report progress at most this often: each report redraws the screen."""


@dataclass
class Match:
    flow: Any
    part: str
    """url, request headers, request body, response headers, response body, messages"""
    tab: str
    """The flow-view tab that shows the part."""
    snippet: str


def compile_query(text: str, regex: bool = False) -> re.Pattern[str]:
    """Plain text by default (case-insensitive); with `regex`, a regular expression."""
    return re.compile(text if regex else re.escape(text), re.IGNORECASE)


@functools.lru_cache(maxsize=16)
def ascii_literal(pattern: re.Pattern[str]) -> str | None:
    """What `pattern` matches, lowercased, if it is case-insensitive plain ASCII text (a plain query, or a
    regex without special characters); else None.

    Then, in ASCII text, `pattern` matches exactly where the lowercased text contains it (the non-ASCII
    letters that IGNORECASE also equates with ASCII ones, such as the Kelvin sign, are not in ASCII text).
    Lowercasing and `in` are cheaper than the regex engine, which tries a case-insensitive pattern that
    starts with a letter at every position (docs/search.md: plain-text searches 2-3x faster)."""
    if pattern.flags != re.IGNORECASE | re.UNICODE:
        return None
    text = re.sub(r"\\(.)", r"\1", pattern.pattern, flags=re.DOTALL)
    if not text.isascii() or re.escape(text) != pattern.pattern:
        return None
    return text.lower()


def _snippet(text: str, m: re.Match[str]) -> str:
    start = max(m.start() - SNIPPET // 2, 0)
    piece = text[start: start + SNIPPET].replace("\n", " ").replace("\r", " ")
    return ("…" if start else "") + piece


def _body_text(message: Any) -> str:
    body = message.content_or_raw() if message.raw_content is not None else None
    if not body:
        return ""
    return body.decode("utf-8", "replace")


def _header_text(headers: Any) -> str:
    """`name: value` lines, as `"\\n".join(f"{k}: {v}" for k, v in headers.items(multi=True))` makes them, with
    one decode instead of two per field (utf-8 never joins a byte across the ASCII ": " and "\\n")."""
    return b"\n".join(k + b": " + v for k, v in headers.fields).decode("utf-8", "surrogateescape")


def _parts(flow: Any) -> Iterable[tuple[str, str, str]]:
    """(part, tab, text) of a flow, cheapest first."""
    if flow.comment:
        yield "comment", "Details", flow.comment
    if flow.type == "http":
        req = flow.request
        yield "url", "Request", req.pretty_url
        yield "request headers", "Request", _header_text(req.headers)
        yield "request body", "Request", _body_text(req)
        resp = flow.response
        if resp is not None:
            yield "response headers", "Response", _header_text(resp.headers)
            yield "response body", "Response", _body_text(resp)
        mf = flow.websocket
    else:
        mf = flow
    if mf is not None and getattr(mf, "messages", None):
        yield "messages", "Messages", "\n".join(m.text for m in list(mf.messages))


def search_flow(flow: Any, pattern: re.Pattern[str]) -> list[Match]:
    out = []
    literal = ascii_literal(pattern)
    for part, tab, text in _parts(flow):
        if not text or (literal is not None and text.isascii() and literal not in text.lower()):
            continue  # the match itself always comes from `pattern`; `literal` only rules parts out
        m = pattern.search(text)
        if m:
            out.append(Match(flow, part, tab, _snippet(text, m)))
    return out


async def search(flows: Iterable[Any], pattern: re.Pattern[str], progress: Callable[[int], None] | None = None,
                 limit: int = 10_000, slice_s: float = SLICE_S, progress_s: float = PROGRESS_S) -> list[Match]:
    """Every match (up to `limit`), in flow order. Yields to the loop once `slice_s` has passed since the
    last yield; calls `progress(flows done)` at most every `progress_s`, only when it yields."""
    results: list[Match] = []
    clock = time.perf_counter
    now = clock()
    deadline, report = now + slice_s, now + progress_s
    for i, flow in enumerate(flows, 1):
        results.extend(search_flow(flow, pattern))
        if len(results) >= limit:
            break
        now = clock()
        if now >= deadline:
            if progress is not None and now >= report:
                progress(i)
                report = now + progress_s
            await asyncio.sleep(0)
            deadline = clock() + slice_s
    return results[:limit]
