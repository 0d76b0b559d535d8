"""stickyauth: a host's Authorization header is added to its later requests that have none."""
from __future__ import annotations

import pytest

from interpose.errors import OptionsError
from tests.addons import client, start
from tests.conftest import curl


def auth_sent(origin) -> list[str | None]:
    return [r.header("authorization") for r in origin.received]


async def test_remembered_per_host_and_added_when_missing(make_proxy, origin):
    proxy = await start(make_proxy, "stickyauth", "stickyauth=~all")
    async with client(proxy) as c:
        await c.get(f"{origin.url}/login", headers={"Authorization": "Bearer one"})
        await c.get(f"{origin.url}/bare")
        await c.get(f"{origin.url}/own", headers={"Authorization": "Bearer two"})  # its own wins, and is kept
        await c.get(f"{origin.url}/bare-again")
        await c.get(f"http://localhost:{origin.port}/other-host")  # another host name: nothing to add
    assert auth_sent(origin) == ["Bearer one", "Bearer one", "Bearer two", "Bearer two", None]


async def test_with_curl_basic_auth(make_proxy, origin):
    proxy = await start(make_proxy, "stickyauth", "stickyauth=~d 127.0.0.1")
    code, _, err = await curl("-x", proxy.url, "-u", "user:pass", f"{origin.url}/first")
    assert code == 0, err
    code, _, err = await curl("-x", proxy.url, f"{origin.url}/second")
    assert code == 0, err
    assert auth_sent(origin) == ["Basic dXNlcjpwYXNz", "Basic dXNlcjpwYXNz"]


async def test_only_requests_matching_the_filter_take_part(make_proxy, origin):
    proxy = await start(make_proxy, "stickyauth", "stickyauth=~u /api")
    async with client(proxy) as c:
        await c.get(f"{origin.url}/web", headers={"Authorization": "web-token"})  # not remembered
        await c.get(f"{origin.url}/api/a")
        await c.get(f"{origin.url}/api/login", headers={"Authorization": "api-token"})
        await c.get(f"{origin.url}/web/page")  # not given
        await c.get(f"{origin.url}/api/b")
    assert auth_sent(origin) == ["web-token", None, "api-token", None, "api-token"]


async def test_bad_filter_is_refused(make_proxy):
    proxy = await start(make_proxy, "stickyauth", "stickyauth=~all")
    with pytest.raises(OptionsError) as exc:
        proxy.options.set("stickyauth=~nope")
    assert str(exc.value).startswith("stickyauth: bad filter: unknown operator ~nope")
    assert proxy.options.stickyauth == "~all"


async def test_off_by_default_and_switched_off(make_proxy, origin):
    proxy = await start(make_proxy, "stickyauth")
    assert proxy.options.stickyauth is None
    async with client(proxy) as c:
        await c.get(f"{origin.url}/1", headers={"Authorization": "early"})
        await c.get(f"{origin.url}/2")
        proxy.options.set("stickyauth=~all")
        await c.get(f"{origin.url}/3", headers={"Authorization": "late"})
        await c.get(f"{origin.url}/4")
        proxy.options.set("stickyauth=")
        await c.get(f"{origin.url}/5")
    assert auth_sent(origin) == ["early", None, "late", "late", None]
