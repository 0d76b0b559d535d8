"""HTTP flow model: `Request`, `Response`, `HTTPFlow` (and `Headers`, re-exported).

`raw_content` is the body as on the wire; `content` is it decoded per Content-Encoding, and
assigning `content` re-encodes it and fixes Content-Length. `stream` on a message, set by an addon in
`requestheaders`/`responseheaders`, makes the body flow through in chunks instead of being buffered.
"""
from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from interpose.model import contenttype, encoding
from interpose.model.body import BodyHandle, Spillable
from interpose.model.connection import Client, Server
from interpose.model.cookies import format_cookie, parse_cookie, parse_set_cookie
from interpose.model.encoding import BodyTooLarge
from interpose.model.flow import Flow
from interpose.model.messages import MessageFlow
from interpose.model.multidict import Headers, MultiDict

__all__ = ["BodyTooLarge", "Headers", "Request", "Response", "HTTPFlow", "Message", "is_websocket_handshake"]

StreamSetting = bool | Callable[[bytes], bytes]
HeaderInput = Headers | dict[str, str] | Iterable[tuple[Any, Any]]


def _headers(h: HeaderInput | None) -> Headers:
    if h is None:
        return Headers()
    if isinstance(h, Headers):
        return h
    if isinstance(h, dict):
        return Headers(h.items())
    return Headers(h)


class Message:
    """What requests and responses share: version, headers, body, timestamps, streaming.

    `raw_content` is a plain attribute; once the TUI has spilled a kept flow's body to disk
    (interpose.model.body) the class's `Spillable` reads it back on access, and assigning un-spills it.
    """

    if TYPE_CHECKING:
        raw_content: bytes | None
    else:
        raw_content = Spillable()
    _spill: BodyHandle | None = None
    """Where the body is on disk, once spilled (interpose.store.spill)."""

    def __init__(self, http_version: str, headers: Headers, content: bytes | None) -> None:
        self.http_version = http_version
        self.headers = headers
        self.raw_content = content
        self.trailers: Headers | None = None
        self.timestamp_start: float = time.time()
        self.timestamp_end: float | None = None
        self.stream: StreamSetting = False
        self._decoded: tuple[bytes, bytes] | None = None  # (raw, decoded) cache

    @property
    def content(self) -> bytes | None:
        """The body decoded per Content-Encoding. Undecodable bodies are returned raw.

        Decoding is capped by the `decode_limit` option (default 32m): a body that would inflate past
        it raises `BodyTooLarge` (an `InterposeError`) here and in `text`, `decode()`, `encode()`;
        `raw_content` is always there. The runtime hands the option to the model through
        `interpose.model.encoding.set_decode_limit`.
        """
        raw = self.raw_content
        if raw is None:
            return None
        ce = self.headers.get("content-encoding")
        if not ce or ce.lower() == "identity":
            return raw
        if self._decoded is not None and self._decoded[0] is raw:
            return self._decoded[1]
        try:
            decoded = encoding.decode(raw, ce)
        except ValueError:
            return raw
        if self._spill is None or "raw_content" in self.__dict__:  # a spilled body stays out of memory
            self._decoded = (raw, decoded)
        return decoded

    @content.setter
    def content(self, value: bytes | str | None) -> None:
        if value is None:
            self.raw_content = None
            return
        if isinstance(value, str):
            value = value.encode("utf-8")
        ce = self.headers.get("content-encoding")
        if ce and encoding.supported(ce):
            raw = encoding.encode(value, ce)
        else:
            if ce:
                del self.headers["content-encoding"]
            raw = value
        self.raw_content = raw
        self._decoded = None
        self._fix_length()

    def content_or_raw(self) -> bytes | None:
        """`content`, or the raw (still encoded) body when it is too large to decode: for code that must
        go on with some bytes (search, replay keys, exports) rather than fail on a bomb."""
        try:
            return self.content
        except BodyTooLarge:
            return self.raw_content

    def _fix_length(self) -> None:
        if self.raw_content is None:
            return
        if "transfer-encoding" in self.headers:
            del self.headers["transfer-encoding"]
        self.headers["content-length"] = str(len(self.raw_content))

    def decode(self) -> None:
        """Drop Content-Encoding, keeping the decoded body."""
        body = self.content
        self.headers.pop("content-encoding", None)
        self.content = body

    def encode(self, coding: str) -> None:
        body = self.content
        self.headers["content-encoding"] = coding
        self.content = body

    @property
    def charset(self) -> str:
        """The Content-Type's `charset` parameter (quoted or not), or "utf-8" when it has none."""
        return contenttype.params(self.headers.get("content-type")).get("charset") or "utf-8"

    @property
    def text(self) -> str | None:
        """The body as text, per the Content-Type's charset. Raises `BodyTooLarge` like `content`."""
        body = self.content
        if body is None:
            return None
        try:
            return body.decode(self.charset, "replace")
        except LookupError:
            return body.decode("utf-8", "replace")

    @text.setter
    def text(self, value: str | None) -> None:
        if value is None:
            self.content = None
            return
        try:
            self.content = value.encode(self.charset, "surrogateescape")
        except (LookupError, UnicodeEncodeError):
            # The declared charset cannot hold this text: send UTF-8 and say so.
            ct = self.headers.get("content-type")
            if ct and contenttype.params(ct).get("charset"):
                self.headers["content-type"] = contenttype.set_param(ct, "charset", "utf-8")
            self.content = value.encode("utf-8", "surrogateescape")

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters ("" without a Content-Type)."""
        return contenttype.media_type(self.headers.get("content-type"))


class Request(Message):
    """An HTTP request. `host`/`port`/`scheme` say where it goes; `path` includes the query string."""

    def __init__(
        self,
        method: str,
        scheme: str,
        host: str,
        port: int,
        path: str,
        http_version: str = "HTTP/1.1",
        headers: HeaderInput | None = None,
        content: bytes | None = b"",
        authority: str = "",
    ) -> None:
        super().__init__(http_version, _headers(headers), content)
        self.method = method
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.authority = authority

    @classmethod
    def make(cls, method: str, url: str, content: bytes | str = b"", headers: HeaderInput | None = None) -> Request:
        req = cls(method.upper(), "http", "", 80, "/", headers=_headers(headers), content=b"")
        req.url = url
        if "host" not in req.headers:
            req.headers.insert(0, "Host", req.host_header_value)
        if isinstance(content, str):
            content = content.encode("utf-8")
        if content or method.upper() in ("POST", "PUT", "PATCH"):
            req.content = content
        return req

    @property
    def default_port(self) -> int:
        return 443 if self.scheme in ("https", "wss") else 80

    @property
    def host_header_value(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == self.default_port else f"{host}:{self.port}"

    @property
    def pretty_host(self) -> str:
        """The Host header (or :authority) if present, else `host`."""
        h = self.headers.get("host") or self.authority
        if h == self.host and h == h.lower():
            return h  # most requests: nothing to parse (filters like `~d` ask every flow for this)
        if h:
            try:
                return urllib.parse.urlsplit("//" + h).hostname or self.host
            except ValueError:  # whatever a client put in its Host header ("[::1" is not even a URL)
                return self.host
        return self.host

    @property
    def url(self) -> str:
        if self.method == "CONNECT":
            return f"{self.host}:{self.port}"
        return f"{self.scheme}://{self.host_header_value}{self.path}"

    @url.setter
    def url(self, value: str) -> None:
        parts = urllib.parse.urlsplit(value)
        if not parts.scheme or not parts.hostname:
            raise ValueError(f"not an absolute URL: {value!r}")
        if any(c.isspace() for c in value):
            raise ValueError(f"a URL may not contain spaces: {value!r}")
        try:
            port = parts.port
        except ValueError:
            text = parts.netloc.rpartition(":")[2]
            raise ValueError(f"port must be a number from 1 to 65535: {text!r}" if text.isdigit()
                             else f"port must be a number: {text!r}") from None
        self.scheme = parts.scheme.lower()
        self.host = parts.hostname
        self.port = port or self.default_port
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if "host" in self.headers:
            self.headers["host"] = self.host_header_value
        if self.authority:  # HTTP/2 carries the host in :authority
            self.authority = self.host_header_value

    @property
    def pretty_url(self) -> str:
        if self.method == "CONNECT":
            return self.url
        host = self.pretty_host
        host = f"[{host}]" if ":" in host else host
        port = "" if self.port == self.default_port else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"

    # -- query, cookies, form ------------------------------------------
    @property
    def path_components(self) -> tuple[str, ...]:
        path = urllib.parse.urlsplit(self.path).path
        return tuple(urllib.parse.unquote(p) for p in path.split("/") if p)

    @property
    def query(self) -> MultiDict:
        q = urllib.parse.urlsplit(self.path).query
        return MultiDict(urllib.parse.parse_qsl(q, keep_blank_values=True), on_change=self._set_query)

    @query.setter
    def query(self, value: Iterable[tuple[str, str]] | dict[str, str]) -> None:
        self._set_query(list(value.items()) if isinstance(value, dict) else list(value))

    def _set_query(self, fields: list[tuple[str, str]]) -> None:
        base = self.path.split("?", 1)[0]
        q = urllib.parse.urlencode(fields)
        self.path = f"{base}?{q}" if q else base

    @property
    def cookies(self) -> MultiDict:
        """The cookies of every Cookie header, in order (interpose.model.cookies). Editing it rewrites the header."""
        fields = [pair for header in self.headers.get_all("cookie") for pair in parse_cookie(header)]
        return MultiDict(fields, on_change=self._set_cookies)

    @cookies.setter
    def cookies(self, value: Iterable[tuple[str, str]] | dict[str, str]) -> None:
        self._set_cookies(list(value.items()) if isinstance(value, dict) else list(value))

    def _set_cookies(self, fields: list[tuple[str, str]]) -> None:
        if fields:
            self.headers["cookie"] = format_cookie(fields)
        else:
            self.headers.pop("cookie", None)

    @property
    def urlencoded_form(self) -> MultiDict:
        fields: list[tuple[str, str]] = []
        if self.content_type == "application/x-www-form-urlencoded" and self.content:
            fields = urllib.parse.parse_qsl(self.content.decode("latin-1"), keep_blank_values=True)
        return MultiDict(fields, on_change=self._set_form)

    @urlencoded_form.setter
    def urlencoded_form(self, value: Iterable[tuple[str, str]] | dict[str, str]) -> None:
        self._set_form(list(value.items()) if isinstance(value, dict) else list(value))

    def _set_form(self, fields: list[tuple[str, str]]) -> None:
        self.headers["content-type"] = "application/x-www-form-urlencoded"
        self.content = urllib.parse.urlencode(fields).encode("latin-1")

    def __repr__(self) -> str:
        return f"Request({self.method} {self.url})"


class Response(Message):
    """An HTTP response."""

    def __init__(
        self,
        status_code: int,
        reason: str = "",
        http_version: str = "HTTP/1.1",
        headers: HeaderInput | None = None,
        content: bytes | None = b"",
    ) -> None:
        super().__init__(http_version, _headers(headers), content)
        self.status_code = status_code
        self.reason = reason

    @classmethod
    def make(cls, status_code: int = 200, content: bytes | str = b"", headers: HeaderInput | None = None) -> Response:
        try:
            reason = HTTPStatus(status_code).phrase
        except ValueError:
            reason = ""
        resp = cls(status_code, reason, headers=_headers(headers), content=b"")
        if isinstance(content, str):
            content = content.encode("utf-8")
            if "content-type" not in resp.headers:
                resp.headers["content-type"] = "text/plain; charset=utf-8"
        resp.content = content
        return resp

    @property
    def cookies(self) -> MultiDict:
        """`name → value` of each Set-Cookie header that sets a cookie (interpose.model.cookies), in order."""
        cookies = (parse_set_cookie(header) for header in self.headers.get_all("set-cookie"))
        return MultiDict([(c.name, c.value) for c in cookies if c is not None])

    def __repr__(self) -> str:
        return f"Response({self.status_code} {self.reason})"


def is_websocket_handshake(request: Request) -> bool:
    """Does this request ask to become a WebSocket (RFC 6455 §4.1: `Upgrade: websocket`, `Connection: upgrade`)?"""
    h = request.headers
    return (h.get("upgrade") or "").lower() == "websocket" and "upgrade" in (h.get("connection") or "").lower()


class HTTPFlow(Flow):
    """One HTTP request and (once it came) its response."""

    type = "http"

    def __init__(self, client_conn: Client, server_conn: Server, live: bool = True, mode: str = "regular") -> None:
        super().__init__(client_conn, server_conn, live)
        self.request: Request = None  # type: ignore[assignment]  # set right after construction
        self.response: Response | None = None
        self.websocket: MessageFlow | None = None
        """The `interpose.websocket.WebSocketFlow` this handshake started, once it did."""
        self.mode = mode

    @property
    def timestamp_start(self) -> float:
        return self.request.timestamp_start if self.request else self.timestamp_created

    def __repr__(self) -> str:
        return f"<HTTPFlow {self.request!r} {self.response!r}>"
