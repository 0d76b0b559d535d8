"""map_remote: request URLs rewritten by regex; the request then really goes to the new place."""
from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from interpose.errors import OptionsError
from tests.addons import client, echoed, start
from tests.conftest import Recorder, curl
from tests.servers import Origin
from tests.tls_servers import H2Origin, TestCA, https_url, start_h1_origin


@pytest.fixture
async def other() -> AsyncIterator[Origin]:
    """A second origin, the one requests get sent to."""
    o = await Origin().start()
    yield o
    await o.stop()


async def test_url_rewritten_to_another_server_with_a_consistent_host_header(make_proxy, origin, other):
    proxy = await start(make_proxy, "map_remote",
                        f"map_remote=|127.0.0.1:{origin.port}/old/|127.0.0.1:{other.port}/echo/")
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/old/x?q=1")
        untouched = await c.get(f"{origin.url}/kept")
    seen = echoed(r)
    assert seen["path"] == "/echo/x?q=1"
    assert seen["hdrs"]["host"] == f"127.0.0.1:{other.port}"
    assert untouched.content == b"ok /kept"
    assert [x.path for x in other.received] == ["/echo/x?q=1"]
    assert [x.path for x in origin.received] == ["/kept"]


async def test_with_curl_and_group_references(make_proxy, origin, other):
    proxy = await start(make_proxy, "map_remote",
                        rf"map_remote=#:{origin.port}/v1/(\w+)#:{other.port}/v2/\1/echo")
    code, _, err = await curl("-x", proxy.url, f"{origin.url}/v1/users?id=7")
    assert code == 0, err
    assert [x.path for x in other.received] == ["/v2/users/echo?id=7"]
    assert other.received[0].header("host") == f"127.0.0.1:{other.port}"
    assert origin.received == []


async def test_filter_form_and_rules_apply_in_order(make_proxy, origin, other):
    proxy = await start(make_proxy, "map_remote",
                        f"map_remote=|~m POST|:{origin.port}/|:{other.port}/",
                        "map_remote=|/echo/a|/echo/b",  # no filter: every request
                        "map_remote=|~u /echo/b|/echo/b|/echo/c")  # sees the previous rule's result
    async with client(proxy) as c:
        posted = await c.post(f"{origin.url}/echo/a", content=b"payload")
        got = await c.get(f"{origin.url}/echo/a")
    assert echoed(posted)["path"] == "/echo/c" and echoed(posted)["body"] == "payload"
    assert echoed(got)["path"] == "/echo/c"
    assert [x.path for x in other.received] == ["/echo/c"]
    assert [x.path for x in origin.received] == ["/echo/c"]


async def test_a_result_that_is_not_a_url_is_logged_and_ignored(make_proxy, origin):
    rec = Recorder(["log"])
    proxy = await start(make_proxy, "map_remote", "map_remote=|^http://.*|not a url", addons=(rec,))
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/still")
    assert r.content == b"ok /still"
    warnings = [a[0].msg for _, a in rec.calls if a[0].level == "warn"]
    assert any("map_remote" in m and "not a url" in m for m in warnings)


@pytest.mark.parametrize("second_speaks", ["h2", "http/1.1"])
async def test_http2_request_names_the_new_host(make_proxy, tmp_path: Path, second_speaks):
    """A request that came over HTTP/2 carries :authority rather than Host: that must name the new server."""
    ca = TestCA(tmp_path / "origin-ca")
    first = await H2Origin(ca).start()
    second: H2Origin | Origin = await (H2Origin(ca).start() if second_speaks == "h2" else start_h1_origin(ca))
    try:
        proxy = await start(make_proxy, "map_remote", f"map_remote=|:{first.port}/|:{second.port}/",
                            ssl_verify_upstream_trusted_ca=ca.path)
        verify = ssl.create_default_context(cafile=str(proxy.master.certs.ca_cert_path))
        async with httpx.AsyncClient(proxy=proxy.url, verify=verify, http2=True, trust_env=False, timeout=10) as c:
            r = await c.get(https_url(first.port, "/echo/h2"))
        assert r.http_version == "HTTP/2"
        assert r.json()["path"] == "/echo/h2"
        assert first.received == []
        if isinstance(second, H2Origin):
            assert second.received[0]["http_version"] == "2"
            assert second.received[0]["headers"]["host"] == f"localhost:{second.port}"
        else:
            assert second.received[0].header("host") == f"localhost:{second.port}"
    finally:
        await first.stop()
        await second.stop()


@pytest.mark.parametrize("rule, why", [
    ("|(|x", "bad regular expression"),
    (r"|(a)|\2", "bad replacement"),
    (r"|a|\g<name>", "bad replacement"),
    ("|~u (|a|b", "bad filter"),
    ("|a", "expected /FILTER/REGEX/REPLACEMENT or /REGEX/REPLACEMENT"),
    ("|~q||b", "the regular expression is empty"),
])
async def test_bad_rule_is_refused(make_proxy, rule, why):
    proxy = await start(make_proxy, "map_remote", "map_remote=|a|b")
    with pytest.raises(OptionsError) as exc:
        proxy.options.set(f"map_remote={rule}")
    assert str(exc.value).startswith(f"map_remote: invalid rule {rule!r}: ") and why in str(exc.value)
    assert proxy.options.map_remote == ["|a|b"]


async def test_off_when_the_list_is_empty(make_proxy, origin, other):
    proxy = await start(make_proxy, "map_remote")
    rule = f"map_remote=|:{origin.port}/|:{other.port}/"
    async with client(proxy) as c:
        await c.get(f"{origin.url}/one")
        proxy.options.set(rule)
        await c.get(f"{origin.url}/two")
        proxy.options.set("map_remote=")
        await c.get(f"{origin.url}/three")
    assert [x.path for x in origin.received] == ["/one", "/three"]
    assert [x.path for x in other.received] == ["/two"]
