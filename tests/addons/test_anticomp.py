"""anticomp: the server is asked for an uncompressed body while the option is on."""
from __future__ import annotations

from tests.addons import client, header_values, start
from tests.conftest import curl


async def test_accept_encoding_becomes_identity(make_proxy, origin):
    proxy = await start(make_proxy, "anticomp", "anticomp=true")
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/a", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert r.content == b"ok /a"
    assert header_values(origin.received[0], "accept-encoding") == ["identity"]


async def test_added_when_the_client_sent_none(make_proxy, origin):
    proxy = await start(make_proxy, "anticomp", "anticomp=true")
    code, _, err = await curl("-x", proxy.url, f"{origin.url}/b")
    assert code == 0, err
    assert header_values(origin.received[0], "accept-encoding") == ["identity"]


async def test_off_by_default_and_switched_off_at_runtime(make_proxy, origin):
    proxy = await start(make_proxy, "anticomp")
    assert proxy.options.anticomp is False
    async with client(proxy) as c:
        await c.get(f"{origin.url}/default", headers={"Accept-Encoding": "gzip"})
        proxy.options.set("anticomp=true")
        await c.get(f"{origin.url}/on", headers={"Accept-Encoding": "gzip"})
        proxy.options.set("anticomp=false")
        await c.get(f"{origin.url}/off", headers={"Accept-Encoding": "gzip"})
    assert [header_values(r, "accept-encoding") for r in origin.received] == [["gzip"], ["identity"], ["gzip"]]
