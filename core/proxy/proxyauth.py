"""The `proxyauth` option: clients must authenticate (HTTP Basic) to use the proxy.

Formats: `user:pass`, `any` (any credentials, as long as some are given), `@path` (an htpasswd file
with `{SHA}`, `$apr1$` or bcrypt entries; bcrypt ones, `htpasswd -B`'s `$2y$`, need the `bcrypt`
package, `pip install 'interpose[bcrypt]'`: without it such a file is refused, saying so). In regular and
upstream modes clients answer a 407 with Proxy-Authorization; a CONNECT that authenticated covers
what runs inside its tunnel. In reverse mode the proxy is the server, so it asks with 401.
The credentials are removed before the request goes on. Flows loaded from a file are left alone.

Every check fails closed: credentials are compared as UTF-8 bytes, a header too long, not Basic, not
base64, not UTF-8 or without a colon is no credentials, and any exception raised while checking refuses
the request (the addon manager would otherwise log it and let the flow through). SOCKS5 clients
(RFC 1929) are checked against the same option (`ProxyAuth.socks5_login`).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import weakref
from typing import Any

from interpose.errors import OptionsError
from interpose.http import Response

REALM = "interpose"

BCRYPT_PREFIXES = ("$2y$", "$2b$", "$2a$")
_BCRYPT = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
"""A whole bcrypt entry: prefix, two-digit cost, 22 characters of salt and 31 of hash."""


def _apr1(password: bytes, salt: bytes) -> bytes:
    """The Apache MD5-crypt hash (`$apr1$salt$hash`), as htpasswd -m writes it."""
    magic = b"$apr1$"
    ctx = password + magic + salt
    final = hashlib.md5(password + salt + password).digest()
    for i in range(len(password), 0, -16):
        ctx += final[: min(16, i)]
    i = len(password)
    while i:
        ctx += b"\0" if i & 1 else password[:1]
        i >>= 1
    final = hashlib.md5(ctx).digest()
    for i in range(1000):
        c = (password if i & 1 else final) + (salt if i % 3 else b"") + (password if i % 7 else b"")
        c += final if i & 1 else password
        final = hashlib.md5(c).digest()
    itoa64 = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    out = b""
    for i1, i2, i3 in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)):
        v = (final[i1] << 16) | (final[i2] << 8) | final[i3]
        for _ in range(4):
            out += itoa64[v & 0x3F : (v & 0x3F) + 1]
            v >>= 6
    v = final[11]
    for _ in range(2):
        out += itoa64[v & 0x3F : (v & 0x3F) + 1]
        v >>= 6
    return magic + salt + b"$" + out


def check_htpasswd_entry(stored: str, password: str) -> bool:
    pw = password.encode("utf-8")
    if stored.startswith("{SHA}"):
        return hmac.compare_digest(stored[5:].encode(), base64.b64encode(hashlib.sha1(pw).digest()))
    if stored.startswith("$apr1$"):
        salt = stored[6:].split("$", 1)[0].encode()
        return hmac.compare_digest(_apr1(pw, salt), stored.encode())
    if stored.startswith(BCRYPT_PREFIXES):
        return _bcrypt_check(stored, pw)
    return False


_bcrypt_passed: set[bytes] = set()
"""Digests of (entry, password) that bcrypt accepted: a check costs milliseconds to a few hundred of them
on purpose, on the event loop, and a keep-alive client sends its credentials with every request."""


def _bcrypt_check(stored: str, pw: bytes) -> bool:
    import bcrypt  # optional: load_htpasswd made sure it is there before accepting such an entry

    key = hashlib.sha256(stored.encode() + b"\0" + pw).digest()
    if key in _bcrypt_passed:
        return True
    # bcrypt reads only the first 72 bytes (htpasswd -B too); the bcrypt package refuses longer ones.
    try:
        ok = bool(bcrypt.checkpw(pw[:72], stored.encode()))
    except ValueError:
        return False
    if ok:
        if len(_bcrypt_passed) >= 1024:
            _bcrypt_passed.clear()
        _bcrypt_passed.add(key)
    return ok


def _bcrypt_missing() -> bool:
    try:
        import bcrypt  # noqa: F401
    except ImportError:
        return True
    return False


def load_htpasswd(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise OptionsError(f"proxyauth: cannot read {path}: {e.strerror or e}") from None
    users = {}
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, stored = line.partition(":")
        if not sep or not stored.startswith(("{SHA}", "$apr1$", *BCRYPT_PREFIXES)):
            raise OptionsError(f"proxyauth: {path} line {n}: use {{SHA}}, $apr1$ or bcrypt entries (htpasswd -s/-m/-B)")
        if stored.startswith(BCRYPT_PREFIXES):
            if not _BCRYPT.fullmatch(stored):
                raise OptionsError(f"proxyauth: {path} line {n}: not a whole bcrypt entry")
            if _bcrypt_missing():
                raise OptionsError(f"proxyauth: {path} line {n}: bcrypt entries need the bcrypt package "
                                   "(pip install 'interpose[bcrypt]')")
        users[user] = stored
    return users


MAX_CREDENTIALS = 4096
"""The longest Authorization value looked at; a longer one is no credentials (and is not decoded)."""


def parse_basic(value: str | None) -> tuple[str, str] | None:
    """(user, password) of a `Basic` header value, or None for anything else (never raises)."""
    if not value or not isinstance(value, str) or len(value) > MAX_CREDENTIALS:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(token.strip().encode("ascii"), validate=True).decode(
            "utf-8").partition(":")
    except (binascii.Error, ValueError):  # not ASCII, not base64, not UTF-8 (UnicodeError is a ValueError)
        return None
    return (user, password) if sep else None


def _same(a: str, b: str) -> bool:
    """Constant-time equality of two strings as UTF-8 bytes (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


class ProxyAuth:
    name = "proxyauth"

    def __init__(self) -> None:
        self.spec: str | None = None
        self.single: tuple[str, str] | None = None
        self.htpasswd: dict[str, str] | None = None
        self.tunnels: weakref.WeakSet[Any] = weakref.WeakSet()
        self.reverse = False

    def configure(self, options: Any, updated: set[str]) -> None:
        if "mode" in updated:
            self.reverse = str(options.mode).startswith("reverse")
        if options.proxyauth and str(options.mode).strip().lower() == "transparent":
            raise OptionsError("proxyauth does not work in transparent mode: its clients do not know there is a "
                               "proxy to authenticate to (firewall the port instead)")
        if "proxyauth" not in updated:
            return
        spec = options.proxyauth
        self.single, self.htpasswd = None, None
        if spec and spec != "any":
            if spec.startswith("@"):
                self.htpasswd = load_htpasswd(spec[1:])
            else:
                user, sep, password = spec.partition(":")
                if not sep or not user:
                    raise OptionsError("proxyauth expects user:pass, any, or @htpasswd-file")
                self.single = (user, password)
        self.spec = spec or None

    def _valid(self, creds: tuple[str, str] | None) -> bool:
        """Whether these credentials may use the proxy. Any failure while checking is a refusal."""
        try:
            return self._check(creds)
        except Exception:  # fail closed, whatever went wrong
            return False

    def _check(self, creds: tuple[str, str] | None) -> bool:
        if creds is None:
            return False
        if self.spec == "any":
            return True
        user, password = creds
        if self.single is not None:
            return _same(user, self.single[0]) & _same(password, self.single[1])
        if self.htpasswd is not None:
            stored = self.htpasswd.get(user)
            return stored is not None and check_htpasswd_entry(stored, password)
        return False

    def _header_valid(self, flow: Any, header: str) -> bool:
        try:
            return self._valid(parse_basic(flow.request.headers.get(header)))
        except Exception:  # fail closed
            return False

    def _header(self) -> str:
        return "authorization" if self.reverse else "proxy-authorization"

    def _refuse(self, flow: Any) -> None:
        if self.reverse:
            flow.response = Response.make(401, "interpose: authentication required\n",
                                          {"WWW-Authenticate": f'Basic realm="{REALM}"'})
        else:
            flow.response = Response.make(407, "interpose: proxy authentication required\n",
                                          {"Proxy-Authenticate": f'Basic realm="{REALM}"'})

    def _deny(self, flow: Any) -> None:
        """Refuse; should even that fail, kill the flow: it never goes on unauthenticated."""
        try:
            self._refuse(flow)
        except Exception:
            flow.kill()

    def http_connect(self, flow: Any) -> None:
        if self.spec is None or self.reverse or not flow.live:
            return
        try:
            ok = self._header_valid(flow, "proxy-authorization")
            if ok:
                self.tunnels.add(flow.client_conn)
        except Exception:  # fail closed
            ok = False
        if not ok:
            self._deny(flow)

    def requestheaders(self, flow: Any) -> None:
        if self.spec is None or not flow.live or flow.client_conn in self.tunnels:
            return  # flows loaded from a file (-r) did not come through this proxy's door
        header = self._header()
        try:
            ok = self._header_valid(flow, header)
            if ok:
                del flow.request.headers[header]
        except Exception:  # fail closed
            ok = False
        if not ok:
            self._deny(flow)

    def socks5_login(self, client_conn: Any, user: bytes, password: bytes) -> bool:
        """RFC 1929 username/password, checked like Basic credentials (as UTF-8); any failure refuses. A
        client that logged in is not asked again for the requests inside its SOCKS5 tunnel."""
        try:
            ok = self.spec is not None and self._valid((user.decode("utf-8"), password.decode("utf-8")))
        except Exception:  # fail closed
            return False
        if ok:
            self.tunnels.add(client_conn)
        return ok
