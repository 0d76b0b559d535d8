"""Export a flow's request as something a user can paste: a curl or HTTPie command, or raw HTTP/1.1 text.

Commands are one line of POSIX shell. Every argument is quoted so the shell hands the program exactly
the bytes of the request:

- text (UTF-8, printable, newlines allowed) goes in single quotes (`shlex.quote`);
- other bytes go in bash/zsh ANSI-C quotes, `$'...'`, with `\\xNN` escapes;
- a body with NUL bytes (which no argument can carry) or too big for one argument (Linux caps one at
  128 KiB) is piped in from the shell's builtin `printf` with octal escapes: `printf -- '...' | curl
  --data-binary @- ...`. That works in any POSIX shell.

curl adds `Content-Length` itself, so it is dropped, and so is a `Host` header that only repeats the
URL's authority. curl's own `Content-Type: application/x-www-form-urlencoded` for a body is switched
off (`-H 'Content-Type:'`) when the request had none. `curl_with_file` writes the body to a file and
uses `--data-binary @FILE` instead.
"""
from __future__ import annotations

import shlex
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from interpose.http import Headers, Request, Response

__all__ = ["FORMATS", "curl", "curl_with_file", "httpie", "raw", "raw_request", "raw_response"]

_MAX_ARG = 100_000
"""Longest quoted body passed as one argument; Linux's per-argument limit is 131072 bytes."""
_DROP = (b"content-length",)


# -- quoting ---------------------------------------------------------------------------------------


def _text(data: bytes) -> str | None:
    """`data` as text when it is UTF-8 that is safe to paste into a terminal (printable, or newline)."""
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return s if s.replace("\n", "").isprintable() else None


_ANSI_C = {ord("\\"): "\\\\", ord("'"): "\\'", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def ansi_c_quote(data: bytes) -> str:
    """bash/zsh `$'...'` quoting: printable ASCII as is, everything else as an escape. No NUL bytes."""
    if b"\0" in data:
        raise ValueError("a shell argument cannot hold a NUL byte")
    out = []
    for b in data:
        if b in _ANSI_C:
            out.append(_ANSI_C[b])
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "$'" + "".join(out) + "'"


def shell_quote(data: bytes | str) -> str:
    """One shell word that expands to exactly `data` (single quotes when possible, else `$'...'`)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    text = _text(data)
    return shlex.quote(text) if text is not None else ansi_c_quote(data)


def printf_pipe(data: bytes) -> str:
    """`printf -- '...' | ` writing exactly `data` to the next command's stdin, in any POSIX shell."""
    fmt = []
    for b in data:
        if b == ord("%"):
            fmt.append("%%")
        elif b == ord("\\"):
            fmt.append("\\\\")
        elif 0x20 <= b < 0x7F:
            fmt.append(chr(b))
        else:
            fmt.append(f"\\{b:03o}")  # POSIX printf: always three octal digits, so a digit can follow
    return f"printf -- {shlex.quote(''.join(fmt))} | "  # --: a body may start with -


# -- reading the flow ------------------------------------------------------------------------------


def _request(flow: Any) -> Request:
    http = flow if getattr(flow, "request", None) is not None else getattr(flow, "handshake_flow", None)
    req = getattr(http, "request", None)
    if isinstance(req, Request):
        return req
    raise ValueError("only HTTP flows (or a WebSocket's handshake) can be exported")


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _command_headers(req: Request) -> list[tuple[bytes, bytes]]:
    """The headers a command should send: all of them but Content-Length and a redundant Host."""
    out = []
    for k, v in req.headers.fields:
        lk = k.lower()
        if lk in _DROP:
            continue
        if lk == b"host" and _s(v).lower() == req.host_header_value.lower():
            continue
        out.append((k, v))
    return out


def _body(req: Request) -> bytes | None:
    """The body to send, or None for a request without one (b"" when it explicitly had an empty one)."""
    body = req.raw_content
    if body is None:
        return None
    if not body and "content-length" not in req.headers and "transfer-encoding" not in req.headers:
        return None
    return body


def _join(words: list[str]) -> str:
    return " ".join(words)


# -- curl ------------------------------------------------------------------------------------------


def _curl_words(req: Request, body_words: list[str] | None) -> list[str]:
    words = ["curl"]
    has_body = body_words is not None
    if req.method == "HEAD" and not has_body:
        words.append("--head")
    elif req.method != ("POST" if has_body else "GET"):
        words += ["-X", shell_quote(req.method)]
    if req.http_version == "HTTP/1.0":
        words.append("--http1.0")
    url = req.url
    if any(c in url for c in "[]{}"):
        words.append("--globoff")  # curl would read these as URL globs
    if "/./" in req.path or "/../" in req.path or req.path.split("?")[0].endswith(("/.", "/..")):
        words.append("--path-as-is")  # curl would squash dot segments
    for k, v in _command_headers(req):
        # "Name:" would remove a header in curl; "Name;" sends it empty.
        words += ["-H", shell_quote(k + b": " + v if v else k + b";")]
    if has_body and "content-type" not in req.headers:
        words += ["-H", shell_quote("Content-Type:")]
    words.append(shell_quote(url))
    if body_words:
        words += body_words
    return words


def curl(flow: Any) -> str:
    """The request as a curl command line."""
    req = _request(flow)
    body = _body(req)
    prefix = ""
    body_words: list[str] | None = None
    if body is not None:
        arg = shell_quote(body) if b"\0" not in body else None
        if arg is not None and len(arg) <= _MAX_ARG:
            # --data-binary would read a file for a body starting with @; --data-raw never does.
            body_words = ["--data-raw" if body.startswith(b"@") else "--data-binary", arg]
        else:
            prefix = printf_pipe(body)
            body_words = ["--data-binary", "@-"]
    return prefix + _join(_curl_words(req, body_words))


def curl_with_file(flow: Any, path: str) -> str:
    """Like `curl`, but the body is written to `path` and sent with `--data-binary @path`."""
    req = _request(flow)
    body = _body(req)
    body_words: list[str] | None = None
    if body is not None:
        with open(path, "wb") as f:
            f.write(body)
        body_words = ["--data-binary", shell_quote("@" + path)]
    return _join(_curl_words(req, body_words))


# -- HTTPie ----------------------------------------------------------------------------------------


def _httpie_item(name: bytes, value: bytes) -> str:
    if not value:
        return shell_quote(name + b";")  # "Name:" would unset the header; "Name;" sends it empty
    if value[:1] in (b"=", b"@"):
        value = b"\\" + value  # "Name:=v" / "Name:@f" are JSON and file items; escape the separator
    return shell_quote(name + b":" + value)


def httpie(flow: Any) -> str:
    """The request as an HTTPie command: `http [--raw BODY] METHOD URL 'Name:value'...`.
    A body that cannot be one argument is piped in on stdin, which HTTPie sends as the body."""
    req = _request(flow)
    body = _body(req)
    words = ["http"]
    prefix = ""
    if body is not None:
        text = _text(body)
        if text is not None and len(body) <= _MAX_ARG:
            words += ["--raw", shlex.quote(text)]
        else:
            prefix = printf_pipe(body)
    words += [shell_quote(req.method), shell_quote(req.url)]
    words += [_httpie_item(k, v) for k, v in _command_headers(req)]
    if body is not None and "content-type" not in req.headers:
        words.append(shell_quote("Content-Type:"))  # unset HTTPie's default application/json
    return prefix + _join(words)


# -- raw HTTP/1.1 ----------------------------------------------------------------------------------


def _version(v: str) -> bytes:
    return b"HTTP/1.0" if v == "HTTP/1.0" else b"HTTP/1.1"  # HTTP/2 is shown in HTTP/1.1 syntax


def _message(start: bytes, headers: Headers, body: bytes | None, trailers: Headers | None,
             extra: list[tuple[bytes, bytes]]) -> bytes:
    fields = extra + list(headers.fields)
    chunked = "chunked" in (headers.get("transfer-encoding") or "").lower()
    if body and not chunked and "content-length" not in headers:
        fields.append((b"Content-Length", str(len(body)).encode()))  # HTTP/2 bodies need framing in HTTP/1
    head = start + b"\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in fields) + b"\r\n"
    if body is None:
        return head
    if chunked:  # the stored body is de-chunked; chunk it again so the text is a valid message
        tail = bytes(trailers) if trailers else b""
        return head + (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n" + tail + b"\r\n"
    return head + body


def raw_request(flow: Any) -> bytes:
    """The request as an HTTP/1.1 message: request line (origin-form), headers, blank line, body."""
    req = _request(flow)
    extra = []
    if "host" not in req.headers:  # e.g. HTTP/2, which carries :authority instead
        extra.append((b"Host", (req.authority or req.host_header_value).encode("utf-8", "surrogateescape")))
    target = req.url if req.method == "CONNECT" else req.path
    start = b"%s %s %s" % (req.method.encode(), target.encode("utf-8", "surrogateescape"), _version(req.http_version))
    return _message(start, req.headers, req.raw_content, req.trailers, extra)


def raw_response(flow: Any) -> bytes:
    """The response as an HTTP/1.1 message (b"" when there is none yet)."""
    http = flow if getattr(flow, "request", None) is not None else getattr(flow, "handshake_flow", None)
    resp: Response | None = getattr(http, "response", None)
    if resp is None:
        return b""
    reason = resp.reason
    if not reason:  # HTTP/2 has no reason phrase
        try:
            reason = HTTPStatus(resp.status_code).phrase
        except ValueError:
            reason = ""
    start = b"%s %d %s" % (_version(resp.http_version), resp.status_code, reason.encode("utf-8", "surrogateescape"))
    return _message(start, resp.headers, resp.raw_content, resp.trailers, [])


def raw(flow: Any) -> bytes:
    """Request and (if there is one) response, separated by a blank line."""
    resp = raw_response(flow)
    return raw_request(flow) + (b"\r\n\r\n" + resp if resp else b"")


FORMATS: dict[str, Callable[[Any], str | bytes]] = {
    "curl": curl,
    "httpie": httpie,
    "raw_request": raw_request,
    "raw_response": raw_response,
    "raw": raw,
}
"""Export name -> function(flow). Commands are `str`, raw messages `bytes`."""
