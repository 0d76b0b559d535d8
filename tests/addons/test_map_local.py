"""map_local: requests answered from local files, a directory served below the matched URL, never outside it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from interpose.errors import OptionsError
from tests.addons import client, start
from tests.conftest import curl


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """tmp/site/{index.html, css/a.css, app.js, data.json, sub/index.html, with space.txt}, tmp/secret.txt."""
    root = tmp_path / "site"
    (root / "css").mkdir(parents=True)
    (root / "sub").mkdir()
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "css" / "a.css").write_text("body{}")
    (root / "app.js").write_text("let x = 1;")
    (root / "data.json").write_text('{"local": true}')
    (root / "sub" / "index.html").write_text("<h1>sub</h1>")
    (root / "with space.txt").write_text("spaced")
    (tmp_path / "secret.txt").write_text("SECRET")
    return root


async def test_a_file_answers_every_matching_url(make_proxy, origin, site):
    proxy = await start(make_proxy, "map_local", f"map_local=|/api/data|{site / 'data.json'}")
    async with client(proxy) as c:
        r1 = await c.get(f"{origin.url}/api/data")
        r2 = await c.get(f"{origin.url}/v2/api/data?x=1")
        other = await c.get(f"{origin.url}/api/other")
    for r in (r1, r2):
        assert (r.status_code, r.content) == (200, b'{"local": true}')
        assert r.headers["content-type"] == "application/json"
    assert other.content == b"ok /api/other"
    assert [r.path for r in origin.received] == ["/api/other"]


async def test_a_directory_serves_the_url_path_after_the_match(make_proxy, origin, site):
    proxy = await start(make_proxy, "map_local", f"map_local=|/static|{site}")
    async with client(proxy) as c:
        css = await c.get(f"{origin.url}/static/css/a.css")
        js = await c.get(f"{origin.url}/static/app.js?v=3")
        index = await c.get(f"{origin.url}/static/")
        bare = await c.get(f"{origin.url}/static")
        sub = await c.get(f"{origin.url}/static/sub")
        spaced = await c.get(f"{origin.url}/static/with%20space.txt")
        missing = await c.get(f"{origin.url}/static/nope.png")
    assert (css.content, css.headers["content-type"]) == (b"body{}", "text/css")
    assert js.content == b"let x = 1;" and "javascript" in js.headers["content-type"]
    assert index.content == bare.content == b"<h1>home</h1>"
    assert index.headers["content-type"] == "text/html"
    assert sub.content == b"<h1>sub</h1>"
    assert (spaced.content, spaced.headers["content-type"]) == (b"spaced", "text/plain")
    assert missing.status_code == 404
    assert origin.received == []  # a 404 comes from the proxy too


async def test_the_regex_group_names_the_file(make_proxy, origin, site):
    proxy = await start(make_proxy, "map_local", rf"map_local=|/assets/([\w.]+)\.min\.js|{site}")
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/assets/app.js.min.js")
    assert r.content == b"let x = 1;"


@pytest.mark.parametrize("path", [
    "/static/../secret.txt",
    "/static/../../../../etc/passwd",
    "/static/%2e%2e/secret.txt",
    "/static/css/%2E%2E%2F%2E%2E%2Fsecret.txt",
    "/static/..%2fsecret.txt",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/css/../index.html",
])
async def test_path_traversal_is_refused_with_404(make_proxy, origin, site, path):
    proxy = await start(make_proxy, "map_local", f"map_local=|/static|{site}")
    # --path-as-is: curl would otherwise squash the ../ before sending
    code, out, err = await curl("--path-as-is", "-w", "\n%{http_code}", "-x", proxy.url, f"{origin.url}{path}")
    assert code == 0, err
    body, status = out.rsplit(b"\n", 1)
    assert status == b"404"
    assert b"SECRET" not in body and b"root:" not in body
    assert origin.received == []


async def test_a_symlink_leading_out_of_the_directory_is_not_followed(make_proxy, origin, site):
    os.symlink(site.parent / "secret.txt", site / "link.txt")
    proxy = await start(make_proxy, "map_local", f"map_local=|/static|{site}")
    async with client(proxy) as c:
        r = await c.get(f"{origin.url}/static/link.txt")
    assert r.status_code == 404 and b"SECRET" not in r.content


async def test_filter_form_and_first_rule_with_a_file_wins(make_proxy, origin, site, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "app.js").write_text("other js")
    (other / "only-here.txt").write_text("only here")
    proxy = await start(make_proxy, "map_local", f"map_local=|~m GET|/s/|{site}", f"map_local=|/s/|{other}")
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/s/app.js")).content == b"let x = 1;"
        assert (await c.get(f"{origin.url}/s/only-here.txt")).content == b"only here"
        assert (await c.post(f"{origin.url}/s/app.js", content=b"")).content == b"other js"  # not GET: rule 2
        assert (await c.post(f"{origin.url}/elsewhere")).content == b"ok /elsewhere"
    assert [r.path for r in origin.received] == ["/elsewhere"]


@pytest.mark.parametrize("rule, why", [
    ("|/x|/no/such/dir", "PATH '/no/such/dir' cannot be used: No such file or directory"),
    ("|(|/tmp", "bad regular expression"),
    ("|~u (|/x|/tmp", "bad filter"),
    ("|/x", "expected /FILTER/URL_REGEX/PATH or /URL_REGEX/PATH"),
    ("|/x|", "PATH is empty"),
    ("||/tmp", "the regular expression is empty"),
])
async def test_bad_rule_is_refused(make_proxy, rule, why):
    proxy = await start(make_proxy, "map_local")
    with pytest.raises(OptionsError) as exc:
        proxy.options.set(f"map_local={rule}")
    assert str(exc.value).startswith(f"map_local: invalid rule {rule!r}: ") and why in str(exc.value)
    assert proxy.options.map_local == []


async def test_off_when_the_list_is_empty(make_proxy, origin, site):
    proxy = await start(make_proxy, "map_local")
    async with client(proxy) as c:
        assert (await c.get(f"{origin.url}/static/app.js")).content == b"ok /static/app.js"
        proxy.options.set(f"map_local=|/static|{site}")
        assert (await c.get(f"{origin.url}/static/app.js")).content == b"let x = 1;"
        proxy.options.set("map_local=")
        assert (await c.get(f"{origin.url}/static/app.js")).content == b"ok /static/app.js"
    assert len(origin.received) == 2
