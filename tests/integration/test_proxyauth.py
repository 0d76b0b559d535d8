"""proxyauth: 407 without credentials, through with them, credentials never forwarded."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import shutil
import subprocess
import sys

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
    code, out, err = await curl("-p", "-x", proxy.url, "--proxy-user", "alice:s3cret",
                                f"{origin.url}/x", f"{origin.url}/y")
    assert code == 0, err
    assert out == b"ok /xok /y"


async def test_htpasswd_file_with_sha_and_apr1(make_proxy, origin, tmp_path):
    apr1 = subprocess.run(["openssl", "passwd", "-apr1", "pw2"],
                          capture_output=True, text=True, check=True).stdout.strip()
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


async def test_no_warning_on_loopback_or_with_auth(make_proxy):
    rec = Recorder(["log"])
    await make_proxy(rec)
    assert not any("without proxyauth" in a[0].msg for n, a in rec.calls if n == "log")
    rec2 = Recorder(["log"])
    await make_proxy(rec2, listen_host="127.0.0.2")  # all of 127.0.0.0/8 is loopback
    assert not any("without proxyauth" in a[0].msg for n, a in rec2.calls if n == "log")


def _unshare_net() -> list[str] | None:
    """A command prefix that runs a process in a network namespace of its own (only a loopback there), or None."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    if subprocess.run([unshare, "--net", "true"], capture_output=True).returncode != 0:
        return None
    return [unshare, "--net"]


@pytest.mark.parametrize("auth", [[], ["--set", "proxyauth=a:b"]], ids=["no-auth", "auth"])
async def test_warns_when_listening_beyond_loopback_without_auth(tmp_path, auth):
    """Listening on every interface without proxyauth is warned about. The proxy binds 0.0.0.0 inside a
    network namespace of its own (unshare --net), where no interface but a loopback exists."""
    prefix = _unshare_net()
    if prefix is None:
        pytest.skip("needs unshare --net (root or user namespaces)")
    proc = await asyncio.create_subprocess_exec(
        *prefix, sys.executable, "-m", "interpose.cli.dump", "--listen-host", "0.0.0.0", "-p", "0",
        "--confdir", str(tmp_path / "conf"), *auth, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    lines = []
    try:
        async with asyncio.timeout(30):
            assert proc.stderr is not None
            while not any(line.startswith("proxy listening at") for line in lines):
                line = (await proc.stderr.readline()).decode()
                assert line, f"interpose-dump exited early: {lines}"
                lines.append(line)
    finally:
        proc.terminate()
        await proc.wait()
    assert lines[-1].startswith("proxy listening at 0.0.0.0:")
    warned = any("without proxyauth" in line for line in lines)
    assert warned == (not auth), lines


def _bcrypt_line(user: str, password: str) -> str:
    """An htpasswd -B line, made with the bcrypt package (it hashes the first 72 bytes, as htpasswd does)."""
    bcrypt = pytest.importorskip("bcrypt")
    hashed = bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=4)).decode()
    return f"{user}:" + hashed.replace("$2b$", "$2y$", 1)


async def test_htpasswd_file_with_bcrypt(make_proxy, origin, tmp_path):
    """`$2y$` (what htpasswd -B writes) and `$2b$` entries, with the bcrypt package installed."""
    pytest.importorskip("bcrypt")
    long_pw = "p" * 80  # bcrypt reads 72 bytes; the bcrypt package refuses longer passwords rather than cut them
    lines = [_bcrypt_line("alice", "s3cret"), _bcrypt_line("bob", long_pw).replace("$2y$", "$2b$", 1)]
    if shutil.which("htpasswd"):  # Apache's own tool, when installed (.ci/run installs apache2-utils)
        lines.append(subprocess.run(["htpasswd", "-nbB", "-C", "4", "carol", "pw3"], capture_output=True, text=True,
                                    check=True).stdout.strip())
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("\n".join(lines) + "\n")
    proxy = await make_proxy(proxyauth=f"@{htpasswd}")
    users = [("alice", "s3cret"), ("bob", long_pw), ("bob", long_pw[:72] + "different tail")]
    users += [("carol", "pw3")] if len(lines) == 3 else []
    for user, pw in users:
        for _ in range(2):  # the second time from the cache of passed checks
            code, out, err = await curl("-s", "-x", proxy.url, "--proxy-user", f"{user}:{pw}", f"{origin.url}/{user}")
            assert out == f"ok /{user}".encode(), err
    for user, pw in (("alice", "wrong"), ("bob", "p" * 71), ("carol", "s3cret"), ("nobody", "s3cret")):
        code, out, _ = await curl("-s", "-x", proxy.url, "--proxy-user", f"{user}:{pw}", f"{origin.url}/bad")
        assert b"proxy authentication required" in out
    assert [r.path for r in origin.received] == [f"/{u}" for u, _ in users for _ in range(2)]


async def test_bcrypt_entries_that_are_cut_short_are_refused(make_proxy, tmp_path):
    proxy = await make_proxy()
    bad = tmp_path / "htpasswd"
    bad.write_text("alice:$2y$05$tooshort\n")
    with pytest.raises(OptionsError, match="line 1: not a whole bcrypt entry"):
        proxy.options.proxyauth = f"@{bad}"


def test_bcrypt_entries_without_the_bcrypt_package_are_refused_clearly(tmp_path):
    """interpose-dump with a bcrypt htpasswd file where the bcrypt package cannot be imported: exit 2 and one
    line saying what to install, no traceback. (A None in sys.modules is how Python spells 'not installed'.)"""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:$2y$05$" + "a" * 53 + "\n")
    code = ("import sys; sys.modules['bcrypt'] = None; sys.argv[0] = 'interpose-dump'; "
            "from interpose.cli.dump import main; main()")
    proc = subprocess.run([sys.executable, "-c", code, "-p", "0", "--confdir", str(tmp_path / "conf"),
                           "--set", f"proxyauth=@{htpasswd}"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "line 1: bcrypt entries need the bcrypt package (pip install 'interpose[bcrypt]')" in proc.stderr
    assert "proxy listening" not in proc.stderr
