"""tui/search.py: the global search finds what a plain regex over every part finds, and yields while it works."""
from __future__ import annotations

import asyncio
import gzip
import time

import pytest

from interpose.model.multidict import Headers
from interpose.tui import search
from tests.tui.test_format import http_flow, tcp_flow, ws_flow


def reference(flow, pattern) -> list[tuple[str, str, str]]:
    """The plain definition: the pattern over each part's whole text, headers as `items(multi=True)` lines."""
    out = []
    for part, tab, text in search._parts(flow):
        if part.endswith("headers"):
            msg = flow.request if part.startswith("request") else flow.response
            text = "\n".join(f"{k}: {v}" for k, v in msg.headers.items(multi=True))
        m = pattern.search(text) if text else None
        if m:
            out.append((part, tab, search._snippet(text, m)))
    return out


@pytest.fixture
def flows():
    gz = http_flow(url="http://example.com/data", status=200, body=b"", ctype="application/json")
    gz.response.headers["Content-Encoding"] = "gzip"
    gz.response.raw_content = gzip.compress(b'{"Token": "ABC-def", "unit": "\xe2\x84\xaa"}')  # ends in a Kelvin sign
    odd = http_flow(url="http://example.com/odd", status=200, body="stra\u017fse \u0130stanbul".encode())
    odd.request.headers = Headers.from_raw([(b"X-Raw", b"caf\xc3\xa9 \xff\xfe broken \xe2\x82"),
                                            (b"Host", b"example.com")])
    binary = http_flow(url="http://example.com/img.png", status=200, body=bytes(range(256)) * 4, ctype="image/png")
    hs, _ = ws_flow()
    return [gz, odd, binary, hs, tcp_flow(), http_flow("POST", "http://example.com/login", req_body=b"user=K")]


@pytest.mark.parametrize(("query", "regex"), [
    ("token", False), ("abc-DEF", False), ("k", False), ("s", False), ("strasse", False), ("i", False),
    ("istanbul", False), ("\u212a", False), ("caf\u00e9", False), ("broken", False), ("prices", False),
    ("hello", False), ("example.com/odd", False), ("user=k", False), ("nothing-here", False),
    (r"abc-\w+", True), ("token", True), (r"\d{2}", True), ("a.c", True), ("a\\.c", True),
])
def test_results_are_those_of_the_pattern_on_every_part(flows, query, regex):
    """The ASCII fast path only rules parts out; Kelvin sign, long s and dotted I still match as the regex says."""
    pattern = search.compile_query(query, regex)
    for flow in flows:
        got = [(m.part, m.tab, m.snippet) for m in search.search_flow(flow, pattern)]
        assert got == reference(flow, pattern), (query, flow)


def test_plain_ascii_text_is_recognised_only_when_it_is_literal():
    lit = search.ascii_literal
    assert lit(search.compile_query("Example.COM/a b")) == "example.com/a b"
    assert lit(search.compile_query("abc", regex=True)) == "abc"
    assert lit(search.compile_query(r"a\.b", regex=True)) == "a.b"
    assert lit(search.compile_query(r"\d", regex=True)) is None
    assert lit(search.compile_query("a|b", regex=True)) is None
    assert lit(search.compile_query("caf\u00e9")) is None  # non-ASCII queries take the regex path


async def test_search_yields_in_short_slices_and_reports_progress():
    """A search over 2,000 flows with 16 KiB non-ASCII bodies (~0.5 s of work) must let the loop run other
    callbacks every few milliseconds. Gaps are measured in this process's CPU time, not wall time: a loaded
    machine may preempt the process at any moment, but only the search can use the CPU between two turns."""
    body = ("Grüße aus Köln, ünïcödé text " * 560).encode()
    flows = [http_flow(url=f"http://example.com/{i}", status=200, body=body, ctype="text/plain") for i in range(2000)]
    flows[1500].response.raw_content = body + b" the needle"
    gaps: list[float] = []
    last = [time.process_time()]
    done = False

    def heartbeat() -> None:
        now = time.process_time()
        gaps.append(now - last[0])
        last[0] = now
        if not done:
            asyncio.get_running_loop().call_soon(heartbeat)

    reported: list[int] = []
    asyncio.get_running_loop().call_soon(heartbeat)
    matches = await search.search(flows, search.compile_query("NEEDLE"), reported.append, progress_s=0)
    done = True
    assert [m.flow for m in matches] == [flows[1500]]
    assert len(gaps) > 20, gaps
    assert max(gaps) < 0.05, f"the loop waited {max(gaps) * 1000:.0f} ms of CPU time for the search"
    assert reported and reported == sorted(reported) and reported[-1] < 2000
