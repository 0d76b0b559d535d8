"""modify_headers: headers set and removed on requests (~q) and responses (~s), values inline or from a file."""
from __future__ import annotations

from pathlib import Path

import pytest

from interpose.errors import OptionsError
from tests.addons import client, header_values, start
from tests.conftest import Recorder, curl


async def test_request_rule_reaches_the_server_and_response_rule_the_client(make_proxy, origin):
    proxy = await start(make_proxy, "modify_headers", "modify_headers=/~q/X-To-Server/yes",
                        "modify_headers=/~s/X-To-Client/yes")
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/a")
    [got] = origin.received
    assert header_values(got, "x-to-server") == ["yes"] and header_values(got, "x-to-client") == []
    assert r.headers.get_list("x-to-client") == ["yes"] and "x-to-server" not in r.headers


async def test_value_replaces_every_existing_header_and_empty_value_removes(make_proxy, origin):
    proxy = await start(make_proxy, "modify_headers", "modify_headers=/~q/X-Dup/new",
                        "modify_headers=/~q/User-Agent/", "modify_headers=/~s/Content-Type/")
    code, out, err = await curl("-i", "-x", proxy.url, "-H", "X-Dup: a", "-H", "X-Dup: b", f"{origin.url}/b")
    assert code == 0, err
    [got] = origin.received
    assert header_values(got, "x-dup") == ["new"]
    assert header_values(got, "user-agent") == []
    assert b"content-type" not in out.lower()


async def test_rule_without_filter_applies_to_both_and_two_rules_add_two_headers(make_proxy, origin):
    proxy = await start(make_proxy, "modify_headers", "modify_headers=|X-Both|1", "modify_headers=|X-Both|2",
                        "modify_headers=|~d 127.0.0.1|X-Via||interpose")  # filter form; the separator is in the value
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/c")
    assert header_values(origin.received[0], "x-both") == ["1", "2"]
    assert r.headers.get_list("x-both") == ["1", "2"]
    assert header_values(origin.received[0], "x-via") == ["|interpose"]


async def test_value_read_from_a_file_each_time(make_proxy, origin, tmp_path: Path):
    token = tmp_path / "token.txt"
    token.write_text("Bearer first\n")
    proxy = await start(make_proxy, "modify_headers", f"modify_headers=/~q/Authorization/@{token}")
    async with client(proxy) as c:
        await c.get(f"{origin.url}/1")
        token.write_text("Bearer second")
        await c.get(f"{origin.url}/2")
    assert [header_values(r, "authorization") for r in origin.received] == [["Bearer first"], ["Bearer second"]]


async def test_unreadable_file_later_leaves_the_header_alone_and_warns(make_proxy, origin, tmp_path: Path):
    token = tmp_path / "token.txt"
    token.write_text("from-file")
    rec = Recorder(["log"])
    proxy = await start(make_proxy, "modify_headers", f"modify_headers=/~q/X-Token/@{token}", addons=(rec,))
    token.unlink()
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/gone", headers={"X-Token": "client's"})
    assert r.status_code == 200
    assert header_values(origin.received[0], "x-token") == ["client's"]
    assert any("cannot read" in a[0].msg and a[0].level == "warn" for _, a in rec.calls)


async def test_headers_of_a_streamed_response_are_changed(make_proxy, origin):
    """Rules act at responseheaders: a body that streams through still gets the header."""
    proxy = await start(make_proxy, "modify_headers", "modify_headers=/~s/X-Streamed/yes", stream_large_bodies="1k")
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/bytes/200000")
    assert len(r.content) == 200000
    assert r.headers["x-streamed"] == "yes"


async def test_body_filters_are_decided_once_the_body_is_in(make_proxy, origin):
    proxy = await start(make_proxy, "modify_headers", "modify_headers=/~bq needle/X-Found/1",
                        "modify_headers=/~bs needle/X-Found-Back/1")
    async with client(proxy) as c:
        hit = await c.post(f"{origin.url}/echo", content=b"hay needle hay")
        miss = await c.post(f"{origin.url}/echo", content=b"hay")
    assert [header_values(r, "x-found") for r in origin.received] == [["1"], []]
    assert hit.headers.get("x-found-back") == "1" and "x-found-back" not in miss.headers


async def test_a_response_made_by_an_addon_is_changed_too(make_proxy, origin, tmp_path: Path):
    """A response set at requestheaders skips responseheaders; the rules still reach it."""
    from interpose.http import HTTPFlow, Response

    class Answer:
        def requestheaders(self, flow: HTTPFlow) -> None:
            flow.response = Response.make(200, b"made up")

    proxy = await start(make_proxy, "modify_headers", "modify_headers=/~s/X-Cors/*", addons=(Answer(),))
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/x")
    assert (r.content, r.headers.get("x-cors")) == (b"made up", "*")


@pytest.mark.parametrize("rule, why", [
    ("/~q/X Bad/1", "is not a valid header name"),
    ("/~q//1", "is not a valid header name"),
    ("/~q/X-A/@/no/such/file", "cannot read /no/such/file"),
    ("/~u (/X-A/1", "bad filter"),
    ("/X-A", "expected /FILTER/NAME/VALUE or /NAME/VALUE"),
])
async def test_bad_rule_is_refused(make_proxy, rule, why):
    proxy = await start(make_proxy, "modify_headers", "modify_headers=/X-Old/1")
    with pytest.raises(OptionsError) as exc:
        proxy.options.set(f"modify_headers={rule}")
    assert str(exc.value).startswith(f"modify_headers: invalid rule {rule!r}: ") and why in str(exc.value)
    assert proxy.options.modify_headers == ["/X-Old/1"]


async def test_off_when_the_list_is_empty(make_proxy, origin):
    proxy = await start(make_proxy, "modify_headers")
    async with client(proxy) as c:
        await c.get(f"{origin.url}/1")
        proxy.options.set("modify_headers=/~q/X-On/1")
        await c.get(f"{origin.url}/2")
        proxy.options.set("modify_headers=")
        await c.get(f"{origin.url}/3")
    assert [header_values(r, "x-on") for r in origin.received] == [[], ["1"], []]
