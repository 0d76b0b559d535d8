"""proxyauth: 407 without credentials, through with them, credentials never forwarded."""
from __future__ import annotations

import base64
import hashlib
import subprocess

import pytest

from interpose.errors import OptionsError
from tests.conftest import Recorder, curl


async def test_user_pass(make_proxy, origin):
    proxy = await make_proxy(proxyauth="alice:s3cret")
    code, out, err = await curl("-si", "-x", proxy.url, f"{origin.url}/echo")
    assert out.startswith(b"HTTP/1.1 407")
    assert b'Proxy-Authenticate: Basic realm="interpose"' in out
    assert origin.received == []
    code, out, err = await curl("-s", "-x", proxy.url, "--proxy-user", "alice:wrong", f"{origin.url}/echo")
    assert b"proxy authentication required" in out
    code, out, err = await curl("-s", "-x", proxy.url, "--proxy-user", "alice:s3cret", f"{origin.url}/echo")
    assert code == 0, err
    assert b'"path": "/echo"' in out
    assert origin.received[-1].header("proxy-authorization") is None


async def test_connect_tunnel_needs_credentials_once(make_proxy, origin):
    proxy = await make_proxy(proxyauth="alice:s3cret")
    code, out, err = await curl("-p", "-x", proxy.url, f"{origin.url}/x")
    assert code != 0 and b"407" in err
    code, out, err = await curl("-p", "-x", proxy.url, "--proxy-user", "alice:s3cret", f"{origin.url}/x", f"{origin.url}/y")
    assert code == 0, err
    assert out == b"ok /xok /y"


async def test_htpasswd_file_with_sha_and_apr1(make_proxy, origin, tmp_path):
    apr1 = subprocess.run(["openssl", "passwd", "-apr1", "pw2"], capture_output=True, text=True, check=True).stdout.strip()
    sha = "{SHA}" + base64.b64encode(hashlib.sha1(b"pw1").digest()).decode()
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"# users\nuser1:{sha}\nuser2:{apr1}\n")
    proxy = await make_proxy(proxyauth=f"@{htpasswd}")
    for user, pw in (("user1", "pw1"), ("user2", "pw2")):
        code, out, err = await curl("-s", "-x", proxy.url, "--proxy-user", f"{user}:{pw}", f"{origin.url}/{user}")
        assert out == f"ok /{user}".encode(), err
    code, out, _ = await curl("-s", "-x", proxy.url, "--proxy-user", "user2:pw1", f"{origin.url}/bad")
    assert b"proxy authentication required" in out


async def test_any_credentials(make_proxy, origin):
    proxy = await make_proxy(proxyauth="any")
    code, out, _ = await curl("-s", "-x", proxy.url, f"{origin.url}/a")
    assert b"proxy authentication required" in out
    code, out, _ = await curl("-s", "-x", proxy.url, "--proxy-user", "who:ever", f"{origin.url}/a")
    assert out == b"ok /a"


async def test_reverse_mode_asks_with_401(make_proxy, origin):
    proxy = await make_proxy(mode=f"reverse:{origin.url}", proxyauth="alice:s3cret")
    code, out, _ = await curl("-si", f"{proxy.url}/r")
    assert out.startswith(b"HTTP/1.1 401") and b"WWW-Authenticate: Basic" in out
    code, out, _ = await curl("-s", "-u", "alice:s3cret", f"{proxy.url}/echo")
    assert b'"path": "/echo"' in out
    assert origin.received[-1].header("authorization") is None


async def test_bad_specs_are_refused(make_proxy, tmp_path):
    proxy = await make_proxy()
    with pytest.raises(OptionsError, match="user:pass, any, or @htpasswd-file"):
        proxy.options.proxyauth = "nocolon"
    with pytest.raises(OptionsError, match="cannot read"):
        proxy.options.proxyauth = f"@{tmp_path}/missing"
    bad = tmp_path / "bad"
    bad.write_text("user:plaintext\n")
    with pytest.raises(OptionsError, match="line 1"):
        proxy.options.proxyauth = f"@{bad}"
    assert proxy.options.proxyauth is None


async def test_warns_when_listening_beyond_loopback_without_auth(make_proxy):
    rec = Recorder(["log"])
    await make_proxy(rec, listen_host="0.0.0.0")
    warnings = [a[0].msg for n, a in rec.calls if n == "log" and a[0].level == "warn"]
    assert any("without proxyauth" in w for w in warnings)
    rec2 = Recorder(["log"])
    await make_proxy(rec2, listen_host="0.0.0.0", proxyauth="a:b")
    assert not any("without proxyauth" in a[0].msg for n, a in rec2.calls if n == "log")
    rec3 = Recorder(["log"])
    await make_proxy(rec3)
    assert not any("without proxyauth" in a[0].msg for n, a in rec3.calls if n == "log")
