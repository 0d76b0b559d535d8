"""stickycookie: cookies a server set are added to later requests to it that lack them."""
from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import h11
import pytest

from interpose.errors import OptionsError
from interpose.http import HTTPFlow, Request, Response
from interpose.model.connection import Client, Server
from tests.addons import client, instance, start
from tests.servers import Origin, Received

PAST = "Wed, 21 Oct 2015 07:28:00 GMT"
FUTURE = "Fri, 01-Jan-2100 00:00:00 GMT"


class CookieOrigin(Origin):
    """The test origin, plus: a path ending in /set answers with one Set-Cookie per `c` query parameter."""

    async def _respond(self, conn: h11.Connection, writer: Any, rec: Received) -> bool:
        path, _, query = rec.path.partition("?")
        if not path.endswith("/set"):
            return await super()._respond(conn, writer, rec)
        headers = [("Content-Length", "2")] + [("Set-Cookie", v) for k, v in urllib.parse.parse_qsl(query) if k == "c"]
        for event in (h11.Response(status_code=200, headers=headers), h11.Data(data=b"ok"), h11.EndOfMessage()):
            writer.write(conn.send(event))
        await writer.drain()
        return True


@pytest.fixture
async def cookies() -> AsyncIterator[CookieOrigin]:
    o = await CookieOrigin().start()
    yield o
    await o.stop()


def set_url(origin: Origin, *set_cookies: str, path: str = "") -> str:
    return f"{origin.url}{path}/set?" + urllib.parse.urlencode([("c", c) for c in set_cookies])


def cookie_sent(origin: Origin) -> str | None:
    """The Cookie header of the last request the origin received."""
    return origin.received[-1].header("cookie")


async def test_cookie_set_by_the_server_is_added_to_later_requests(make_proxy, cookies):
    proxy = await start(make_proxy, "stickycookie", "stickycookie=~all")
    async with client(proxy) as c:
        r = await c.get(set_url(cookies, "sid=abc123; HttpOnly", "theme=dark; Path=/"))
        assert r.headers.get_list("set-cookie") == ["sid=abc123; HttpOnly", "theme=dark; Path=/"]
        c.cookies.clear()  # httpx keeps cookies itself: make it a client that forgets them
        await c.get(f"{cookies.url}/page")
    assert cookies.received[0].header("cookie") is None
    assert cookie_sent(cookies) == "sid=abc123; theme=dark"


async def test_the_clients_own_cookies_stay_and_win(make_proxy, cookies):
    proxy = await start(make_proxy, "stickycookie", "stickycookie=~all")
    async with client(proxy) as c:
        await c.get(set_url(cookies, "sid=server", "theme=dark"))
        c.cookies.clear()
        await c.get(f"{cookies.url}/page", headers={"Cookie": "sid=mine; other=1"})
    assert cookie_sent(cookies) == "sid=mine; other=1; theme=dark"


async def test_expiry_and_deletion(make_proxy, cookies):
    proxy = await start(make_proxy, "stickycookie", "stickycookie=~all")
    async with client(proxy) as c:
        await c.get(set_url(cookies, "a=1", "b=2", "c=3", "d=4"))
        c.cookies.clear()
        await c.get(f"{cookies.url}/before")
        assert cookie_sent(cookies) == "a=1; b=2; c=3; d=4"
        # Max-Age=0 and a past Expires delete; a future Expires or a positive Max-Age keeps (and updates).
        await c.get(set_url(cookies, "a=gone; Max-Age=0", f"b=gone; Expires={PAST}",
                            f"c=new; Expires={FUTURE}", "d=new; Max-Age=3600"))
        c.cookies.clear()
        await c.get(f"{cookies.url}/after")
        assert cookie_sent(cookies) == "c=new; d=new"
        # Max-Age wins over Expires; an already expired cookie is not even stored.
        await c.get(set_url(cookies, f"e=5; Expires={PAST}; Max-Age=60", f"f=6; Expires={FUTURE}; Max-Age=-1"))
        c.cookies.clear()
        await c.get(f"{cookies.url}/last")
    assert cookie_sent(cookies) == "c=new; d=new; e=5"


async def test_path_host_and_secure_decide_where_a_cookie_goes(make_proxy, cookies):
    proxy = await start(make_proxy, "stickycookie", "stickycookie=~all")
    async with client(proxy) as c:
        await c.get(set_url(cookies, "app=1; Path=/app", "deep=2; Path=/app/deep", "sec=3; Secure", "all=4",
                            "foreign=5; Domain=example.com"))
        c.cookies.clear()
        sent = {}
        for path in ("/app", "/app/", "/app/deep/x", "/application", "/other"):
            await c.get(f"{cookies.url}{path}")
            sent[path] = cookie_sent(cookies)
        # The same server under another name: a cookie set without Domain is for its host only.
        await c.get(f"http://localhost:{cookies.port}/other-name")
    # Longer paths first (RFC 6265 §5.4), then the order they were set in; `sec` needs HTTPS.
    assert sent == {
        "/app": "app=1; all=4", "/app/": "app=1; all=4", "/app/deep/x": "deep=2; app=1; all=4",
        "/application": "all=4", "/other": "all=4",
    }
    assert cookie_sent(cookies) is None


async def test_the_filter_picks_the_flows_that_store_and_get_cookies(make_proxy, cookies):
    proxy = await start(make_proxy, "stickycookie", "stickycookie=~u /shop")
    async with client(proxy) as c:
        await c.get(set_url(cookies, "kept=1", path="/shop"))
        await c.get(set_url(cookies, "ignored=1", path="/blog"))
        c.cookies.clear()
        await c.get(f"{cookies.url}/shop/cart")
        assert cookie_sent(cookies) == "kept=1"
        await c.get(f"{cookies.url}/blog/post")
        assert cookie_sent(cookies) is None


async def test_domain_cookies_reach_subdomains_only_of_their_domain(make_proxy):
    """Host names need DNS, so this drives the addon's hooks with flows built by hand."""
    proxy = await start(make_proxy, "stickycookie", "stickycookie=~all")
    addon = instance(proxy, "StickyCookie")

    def visit(url: str, *set_cookies: str) -> str | None:
        flow = HTTPFlow(Client(), Server())
        flow.request = Request.make("GET", url)
        addon.requestheaders(flow)
        sent = flow.request.headers.get("cookie")
        flow.response = Response.make(200, b"", [("Set-Cookie", c) for c in set_cookies])
        addon.response(flow)
        return sent

    visit("https://www.example.com/", "wide=1; Domain=.example.com", "narrow=2", "evil=3; Domain=example.org",
          "top=4; Domain=com.example.com")
    assert visit("https://www.example.com/") == "wide=1; narrow=2"
    assert visit("https://shop.example.com/") == "wide=1"
    assert visit("https://example.com/") == "wide=1"
    assert visit("https://example.org/") is None
    assert visit("https://notexample.com/") is None


async def test_bad_filter_is_refused(make_proxy):
    proxy = await start(make_proxy, "stickycookie", "stickycookie=~d example.com")
    with pytest.raises(OptionsError) as exc:
        proxy.options.set("stickycookie=~d (")
    assert str(exc.value).startswith("stickycookie: bad filter: ")
    assert proxy.options.stickycookie == "~d example.com"


async def test_off_by_default_and_switched_off(make_proxy, cookies):
    proxy = await start(make_proxy, "stickycookie")
    assert proxy.options.stickycookie is None
    async with client(proxy) as c:
        await c.get(set_url(cookies, "early=1"))
        c.cookies.clear()
        await c.get(f"{cookies.url}/off")
        assert cookie_sent(cookies) is None  # nothing was remembered while off
        proxy.options.set("stickycookie=~all")
        await c.get(set_url(cookies, "sid=1"))
        c.cookies.clear()
        await c.get(f"{cookies.url}/on")
        assert cookie_sent(cookies) == "sid=1"
        proxy.options.set("stickycookie=")
        assert proxy.options.stickycookie is None
        await c.get(f"{cookies.url}/off-again")
        assert cookie_sent(cookies) is None
