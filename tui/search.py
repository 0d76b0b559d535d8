"""Global search across flows: URL, headers, decoded bodies and WebSocket/TCP messages.

Pure and incremental: `search()` looks at flows in batches and yields to the event loop between them,
so the UI stays responsive on 100,000 flows and can show progress.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

SNIPPET = 60


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


def _snippet(text: str, m: re.Match[str]) -> str:
    start = max(m.start() - SNIPPET // 2, 0)
    piece = text[start: start + SNIPPET].replace("\n", " ").replace("\r", " ")
    return ("…" if start else "") + piece


def _body_text(message: Any) -> str:
    body = message.content if message.raw_content is not None else None
    if not body:
        return ""
    return body.decode("utf-8", "replace")


def _parts(flow: Any) -> Iterable[tuple[str, str, str]]:
    """(part, tab, text) of a flow, cheapest first."""
    if flow.type == "http":
        req = flow.request
        yield "url", "Request", req.pretty_url
        yield "request headers", "Request", "\n".join(f"{k}: {v}" for k, v in req.headers.items(multi=True))
        yield "request body", "Request", _body_text(req)
        resp = flow.response
        if resp is not None:
            yield "response headers", "Response", "\n".join(f"{k}: {v}" for k, v in resp.headers.items(multi=True))
            yield "response body", "Response", _body_text(resp)
        mf = flow.websocket
    else:
        mf = flow
    if mf is not None and getattr(mf, "messages", None):
        yield "messages", "Messages", "\n".join(m.text for m in list(mf.messages))


def search_flow(flow: Any, pattern: re.Pattern[str]) -> list[Match]:
    out = []
    for part, tab, text in _parts(flow):
        m = pattern.search(text) if text else None
        if m:
            out.append(Match(flow, part, tab, _snippet(text, m)))
    return out


async def search(flows: Iterable[Any], pattern: re.Pattern[str], progress: Callable[[int], None] | None = None,
                 batch: int = 500, limit: int = 10_000) -> list[Match]:
    """Every match (up to `limit`), in flow order; yields to the loop every `batch` flows."""
    results: list[Match] = []
    for i, flow in enumerate(flows, 1):
        results.extend(search_flow(flow, pattern))
        if len(results) >= limit:
            break
        if i % batch == 0:
            if progress is not None:
                progress(i)
            await asyncio.sleep(0)
    return results[:limit]
