"""Replay cookies a server set on later requests that lack them.

With `--set stickycookie=FILTER`, the Set-Cookie headers of responses whose flow matches FILTER go
into a jar, and later requests matching FILTER get the cookies from the jar that apply to them and
that they do not already carry (added to their Cookie header; the client's own cookies stay). A
cookie applies to its domain (the request's host, or with `Domain=` that domain and its subdomains),
to paths under its `Path` (default `/`), over HTTPS only if `Secure`, and until it expires: `Max-Age`
(seconds; 0 or less deletes it) or else `Expires` (a date in the past deletes it). Ports do not
matter, as for browsers. Unset (or empty) turns it off; the jar is kept until the addon is unloaded.
"""
from __future__ import annotations

import email.utils
import time
from datetime import UTC
from typing import Any, NamedTuple

from interpose import ctx
from interpose.flowfilter import Filter
from interpose.http import HTTPFlow, Request
from interpose.model.cookies import parse_cookie, parse_set_cookie

try:
    from . import _rules  # imported as addons.stickycookie
except ImportError:
    import _rules  # type: ignore[no-redef, import-not-found]  # loaded as a script: its folder is on sys.path

OPTION = "stickycookie"


class Cookie(NamedTuple):
    name: str
    value: str
    domain: str
    host_only: bool
    """Set without `Domain=`: for exactly that host, not its subdomains."""
    path: str
    secure: bool
    expires: float | None
    """Unix time it stops applying; None for a session cookie."""


def parse_date(text: str) -> float | None:
    """An `Expires` date ("Wed, 21 Oct 2037 07:28:00 GMT", also with dashes), or None if unreadable."""
    try:
        dt = email.utils.parsedate_to_datetime(text.replace("-", " "))
    except (TypeError, ValueError, IndexError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def read_set_cookie(header: str, host: str, now: float) -> Cookie | None:
    """Read one Set-Cookie value as set by `host`; None for one it may not set or that makes no sense.
    A cookie whose `expires` is at or before `now` is a deletion."""
    parsed = parse_set_cookie(header)
    if parsed is None:
        return None
    domain, host_only, path, secure = host, True, "/", False
    max_age: float | None = None
    expires: float | None = None
    for key, val in parsed.attributes:
        if key == "domain" and val:
            d = val.lstrip(".").lower()
            if not domain_match(host, d):
                return None  # a server may not set cookies for someone else's domain
            domain, host_only = d, False
        elif key == "path" and val.startswith("/"):
            path = val
        elif key == "secure":
            secure = True
        elif key == "max-age":
            try:
                max_age = now + int(val) if int(val) > 0 else float("-inf")
            except ValueError:
                pass
        elif key == "expires":
            expires = parse_date(val)
    return Cookie(parsed.name, parsed.value, domain, host_only, path, secure,
                  max_age if max_age is not None else expires)


def domain_match(host: str, domain: str) -> bool:
    """RFC 6265 §5.1.3: the host is the domain or one of its subdomains (never for an IP address)."""
    if host == domain:
        return True
    return host.endswith("." + domain) and not host.replace(".", "").isdigit() and ":" not in host


def path_match(request_path: str, cookie_path: str) -> bool:
    """RFC 6265 §5.1.4."""
    if request_path == cookie_path:
        return True
    return request_path.startswith(cookie_path) and (cookie_path.endswith("/") or request_path[len(cookie_path)] == "/")


def cookie_names(req: Request) -> set[str]:
    return {name for header in req.headers.get_all("cookie") for name, _ in parse_cookie(header)}


class StickyCookie:
    def __init__(self) -> None:
        self.filter: Filter | None = None
        self.jar: dict[tuple[str, str, str], Cookie] = {}
        """(domain, path, name) → cookie."""

    def load(self, loader: Any) -> None:
        _rules.add_filter_option(
            loader, OPTION,
            "Remember cookies set by responses of flows matching this filter and add them to later matching "
            "requests to their domain that do not carry them.",
        )

    def configure(self, options: Any, updated: set[str]) -> None:
        if OPTION in updated:
            self.filter = _rules.read_filter_option(options, OPTION)

    def response(self, flow: HTTPFlow) -> None:
        if self.filter is None or flow.response is None or not self.filter(flow):
            return
        host, now = flow.request.host.lower(), time.time()
        for header in flow.response.headers.get_all("set-cookie"):
            cookie = read_set_cookie(header, host, now)
            if cookie is None:
                continue
            key = (cookie.domain, cookie.path, cookie.name)
            if cookie.expires is not None and cookie.expires <= now:
                self.jar.pop(key, None)
            else:
                self.jar[key] = cookie

    def requestheaders(self, flow: HTTPFlow) -> None:
        self._add(flow)

    def request(self, flow: HTTPFlow) -> None:
        self._add(flow)  # flows that skipped requestheaders (e.g. loaded from a file); a no-op otherwise

    def _add(self, flow: HTTPFlow) -> None:
        if self.filter is None or not self.jar or flow.response is not None or not self.filter(flow):
            return
        req, now = flow.request, time.time()
        host, path = req.host.lower(), req.path.split("?", 1)[0] or "/"
        have = cookie_names(req)
        wanted: list[Cookie] = []
        for key, c in list(self.jar.items()):
            if c.expires is not None and c.expires <= now:
                del self.jar[key]
            elif (
                c.name not in have
                and (host == c.domain if c.host_only else domain_match(host, c.domain))
                and path_match(path, c.path)
                and (req.scheme in ("https", "wss") or not c.secure)
            ):
                wanted.append(c)
        if not wanted:
            return
        wanted.sort(key=lambda c: -len(c.path))  # RFC 6265 §5.4: longer paths first
        added, seen = [], set()
        for c in wanted:
            if c.name not in seen:  # one value per name: the most specific path's
                seen.add(c.name)
                added.append(f"{c.name}={c.value}")
        existing = "; ".join(req.headers.get_all("cookie"))
        req.headers["cookie"] = "; ".join([existing, *added] if existing else added)
        flow.metadata["stickycookie"] = True
        ctx.log.debug(f"stickycookie: added {', '.join(seen)} to {req.pretty_url}")


addons = [StickyCookie()]
