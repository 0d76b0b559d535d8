"""modify_body: regex replacement in decoded request (~q) and response (~s) bodies, inline or from a file."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from interpose.errors import OptionsError
from tests.addons import client, echoed, start


async def test_response_body_replaced(make_proxy, origin):
    proxy = await start(make_proxy, "modify_body", "modify_body=/~s/ok/KO")
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/hello")
    assert r.content == b"KO /hello"
    assert r.headers["content-length"] == "9"


async def test_request_body_replaced_before_it_is_sent(make_proxy, origin):
    proxy = await start(make_proxy, "modify_body", "modify_body=/~q/secret-\\d+/[redacted]")
    async with client(proxy) as c:
        r = await c.post(f"{origin.url}/echo", content=b"token=secret-1234&again=secret-9")
    assert origin.received[0].body == b"token=[redacted]&again=[redacted]"
    assert origin.received[0].header("content-length") == str(len(b"token=[redacted]&again=[redacted]"))
    assert b"secret" not in r.content  # ~q: the echoed response is left as it came, and it held no secret


async def test_groups_dotall_and_a_rule_without_filter_on_both(make_proxy, origin):
    proxy = await start(make_proxy, "modify_body", r"modify_body=|(\w+)=(\w+)|\2=\1", "modify_body=|a.b|X")
    async with client(proxy) as c:
        r = await c.post(f"{origin.url}/echo", content=b"key=value a\nb")
    assert origin.received[0].body == b"value=key X"
    # No filter: the response is rewritten too, so the echoed "value=key" is swapped back on the way out.
    assert echoed(r)["body"] == "key=value X"


async def test_compressed_response_is_decoded_edited_and_recompressed(make_proxy, origin):
    proxy = await start(make_proxy, "modify_body", "modify_body=/~s/hello/bye")
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/gzip", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == b"bye compressed world " * 20  # httpx decodes it
    assert gzip.decompress(await _raw(proxy, f"{origin.url}/gzip")) == b"bye compressed world " * 20


async def _raw(proxy, url: str) -> bytes:
    async with client(proxy) as c, c.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as r:
        return b"".join([chunk async for chunk in r.aiter_raw()])


async def test_replacement_from_a_file_is_taken_literally(make_proxy, origin, tmp_path: Path):
    page = tmp_path / "page.txt"
    page.write_bytes(b"replaced \\1 literally")
    proxy = await start(make_proxy, "modify_body", f"modify_body=|~s|^ok (.*)$|@{page}")
    async with client(proxy) as c:
        r1 = await c.get(f"{origin.url}/one")
        page.write_bytes(b"changed on disk")
        r2 = await c.get(f"{origin.url}/two")
    assert r1.content == b"replaced \\1 literally"
    assert r2.content == b"changed on disk"


async def test_streamed_bodies_are_left_alone(make_proxy, origin):
    proxy = await start(make_proxy, "modify_body", "modify_body=/~s/x/y", stream_large_bodies="1k")
    async with client(proxy) as c:
        big = await c.get(f"{origin.url}/bytes/100000")
        small = await c.get(f"{origin.url}/bytes/10")
    assert big.content == b"x" * 100000
    assert small.content == b"y" * 10


@pytest.mark.parametrize("rule, why", [
    ("/~s/(/x", "bad regular expression"),
    (r"/~s/(a)/\2", "bad replacement"),
    ("/~s/a/@/no/such/file", "cannot read /no/such/file"),
    ("/~u (/a/b", "bad filter"),
    ("/a", "expected /FILTER/REGEX/REPLACEMENT or /REGEX/REPLACEMENT"),
])
async def test_bad_rule_is_refused(make_proxy, rule, why):
    proxy = await start(make_proxy, "modify_body", "modify_body=/old/new")
    with pytest.raises(OptionsError) as exc:
        proxy.options.set(f"modify_body={rule}")
    assert str(exc.value).startswith(f"modify_body: invalid rule {rule!r}: ") and why in str(exc.value)
    assert proxy.options.modify_body == ["/old/new"]


async def test_off_when_the_list_is_empty(make_proxy, origin):
    proxy = await start(make_proxy, "modify_body")
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/a")).content == b"ok /a"
        proxy.options.set("modify_body=/~s/ok/KO")
        assert (await c.get(f"{origin.url}/a")).content == b"KO /a"
        proxy.options.set("modify_body=")
        assert (await c.get(f"{origin.url}/a")).content == b"ok /a"
