"""Form-shaped bodies: name/value tables (URL-encoded forms, query strings) and multipart/form-data parts."""
from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from interpose.model.contenttype import params
from interpose.model.units import human_size
from interpose.tui.contentviews.image import image_info
from interpose.tui.contentviews.text import (
    Line,
    is_printable_text,
    prepare,
    sanitize_segment,
)

NAME_COLUMN_MAX = 30  # names longer than this don't widen the name column for everyone else


def table_lines(pairs: Sequence[tuple[str, str]]) -> list[Line]:
    """A two-column `name: value` table; values with line breaks continue under the value column."""
    if not pairs:
        return [[("dim", "(empty)")]]
    names = [sanitize_segment(k) for k, _ in pairs]
    width = min(max(len(k) for k in names), NAME_COLUMN_MAX)
    lines: list[Line] = []
    for name, (_, value) in zip(names, pairs, strict=True):
        first, *rest = prepare(value).split("\n")
        lines.append([("syntax_key", name + ":"), ("text", " " * (max(width - len(name), 0) + 1) + first)])
        lines.extend([("text", " " * (width + 2) + more)] for more in rest)
    return lines


def parse_urlencoded(body: bytes) -> list[tuple[str, str]]:
    """Form fields in order, blank values kept; undecodable bytes become U+FFFD."""
    return parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace")


# --- multipart --------------------------------------------------------------------------------

class MultipartError(ValueError):
    """The body cannot be split into parts (no boundary, or the boundary never appears)."""


@dataclass
class Part:
    """One part of a multipart body."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str:
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return ""


def boundary_of(content_type: str) -> str:
    b = params(content_type).get("boundary", "")
    if not b:
        raise MultipartError("multipart body without a boundary in its Content-Type")
    return b


def parse_multipart(body: bytes, boundary: str) -> tuple[list[Part], bool]:
    """Split into parts; the flag says whether the closing `--boundary--` was found."""
    delim = b"--" + boundary.encode("latin-1", "replace")
    # A delimiter sits at the start of the body or of a line; CRLF before it belongs to the delimiter.
    rx = re.compile(rb"(?:^|\r?\n)" + re.escape(delim) + rb"(--)?[ \t]*(?:\r?\n|$)")
    marks = list(rx.finditer(body))
    if not marks:
        raise MultipartError(f"boundary {boundary!r} not found in the body")
    parts: list[Part] = []
    closed = False
    for m, nxt in zip(marks, [*marks[1:], None], strict=True):
        if m.group(1):
            closed = True
            break
        chunk = body[m.end():nxt.start() if nxt else len(body)]
        parts.append(_part(chunk))
    return parts, closed


def _part(chunk: bytes) -> Part:
    sep = re.search(rb"\r?\n\r?\n", chunk)
    if chunk.startswith((b"\r\n", b"\n")):  # no headers at all
        head, body = b"", chunk[2 if chunk.startswith(b"\r\n") else 1:]
    elif sep is None:
        head, body = chunk, b""
    else:
        head, body = chunk[:sep.start()], chunk[sep.end():]
    part = Part(body=body)
    for raw in re.split(rb"\r?\n(?![ \t])", head):
        name, colon, value = raw.decode("utf-8", "replace").partition(":")
        if colon:
            part.headers.append((name.strip(), " ".join(value.split())))
    return part


def part_name(part: Part) -> tuple[str, str]:
    """(field name, file name) from Content-Disposition; RFC 5987 `filename*` wins over `filename`."""
    disposition = params(part.header("content-disposition"))
    filename = disposition.get("filename", "")
    star = disposition.get("filename*", "")
    if star:
        m = re.match(r"([\w-]+)'[^']*'(.*)", star)
        if m:
            filename = unquote(m.group(2), encoding=m.group(1), errors="replace") if _known(m.group(1)) else filename
    return disposition.get("name", ""), filename


def _known(charset: str) -> bool:
    try:
        codecs.lookup(charset)
    except LookupError:
        return False
    return True


BodyRenderer = Callable[[bytes, str], list[Line]]


def multipart_lines(body: bytes, content_type: str, render_text: BodyRenderer) -> tuple[str, list[Line]]:
    """Title and lines: per part its name, filename, Content-Type, other headers, then its body.

    `render_text(body, content_type)` renders a textual part body (so a JSON part gets highlighted).
    """
    parts, closed = parse_multipart(body, boundary_of(content_type))
    lines: list[Line] = []
    for n, part in enumerate(parts, 1):
        name, filename = part_name(part)
        ptype = part.header("content-type")
        if lines:
            lines.append([])
        lines.append([("title", f"── part {n} "), ("dim", f"({human_size(len(part.body), long=True)})")])
        meta = [("name", name), ("filename", filename), ("Content-Type", ptype)]
        meta += [(k, v) for k, v in part.headers if k.lower() not in ("content-type", "content-disposition")]
        for k, v in meta:
            if v or (k == "name" and part.header("content-disposition")):
                lines.append([("header_name", f"{k}: "), ("header_value", sanitize_segment(v))])
        if not part.body:
            lines.append([("dim", "(empty)")])
        elif is_printable_text(part.body):
            lines.extend(render_text(part.body, ptype))
        else:
            img = image_info(part.body)
            what = f": {img.format} {img.dimensions}" if img else ""
            lines.append([("dim", f"<{len(part.body)} bytes binary{what}>")])
    if not closed:
        lines.append([("warn", "(closing boundary missing: body truncated?)")])
    title = f"Multipart form ({len(parts)} part{'s' if len(parts) != 1 else ''})"
    return title, lines
