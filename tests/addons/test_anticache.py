"""anticache: conditional-request headers never reach the server while the option is on."""
from __future__ import annotations

from tests.addons import client, start
from tests.conftest import curl

CONDITIONAL = {"If-None-Match": '"abc"', "If-Modified-Since": "Wed, 21 Oct 2015 07:28:00 GMT"}


async def test_conditional_headers_are_stripped(make_proxy, origin):
    proxy = await start(make_proxy, "anticache", "anticache=true")
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/page", headers={**CONDITIONAL, "X-Other": "kept"})
    assert (r.status_code, r.content) == (200, b"ok /page")
    [got] = origin.received
    assert got.header("if-none-match") is None
    assert got.header("if-modified-since") is None
    assert got.header("x-other") == "kept"


async def test_with_curl_and_every_duplicate(make_proxy, origin):
    proxy = await start(make_proxy, "anticache", "anticache=true")
    code, out, err = await curl("-x", proxy.url, "-H", 'If-None-Match: "a"', "-H", 'If-None-Match: "b"',
                                "-H", "if-modified-since: Wed, 21 Oct 2015 07:28:00 GMT", f"{origin.url}/c")
    assert code == 0, err
    assert out == b"ok /c"
    names = {k.lower() for k, _ in origin.received[0].headers}
    assert not names & {"if-none-match", "if-modified-since"}


async def test_off_by_default_and_switched_off_at_runtime(make_proxy, origin):
    proxy = await start(make_proxy, "anticache")
    assert proxy.options.anticache is False
    async with client(proxy) as c:
        await c.get(f"{origin.url}/default", headers=CONDITIONAL)
        proxy.options.set("anticache=true")
        await c.get(f"{origin.url}/on", headers=CONDITIONAL)
        proxy.options.set("anticache=false")
        await c.get(f"{origin.url}/off", headers=CONDITIONAL)
    default, on, off = origin.received
    assert default.header("if-none-match") == '"abc"' and default.header("if-modified-since")
    assert on.header("if-none-match") is None and on.header("if-modified-since") is None
    assert off.header("if-none-match") == '"abc"' and off.header("if-modified-since")
