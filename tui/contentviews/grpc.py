"""gRPC and gRPC-Web bodies: the length-prefixed messages, each decoded as protobuf without a schema.

A body is a sequence of frames: one flag byte (bit 0: compressed with the `grpc-encoding` of the
request or response; bit 7: a gRPC-Web trailers frame, `name: value` lines), a 4-byte big-endian
length, and the message (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md and
PROTOCOL-WEB.md). `application/grpc-web-text` is the same, base64-encoded.

Compressed messages are inflated through `interpose.model.encoding`, so each one, and all of them
together, stay within the `decode_limit` option. A message that does not decode is shown in hex; a
body whose first frame is not a frame at all raises `GrpcError` and the registry falls back to hex.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from interpose.model import encoding
from interpose.model.encoding import BodyTooLarge
from interpose.model.units import human_size
from interpose.tui.contentviews.protobuf import ProtobufError, protobuf_view
from interpose.tui.contentviews.text import Line, hex_lines, sanitize_segment

MAX_FRAMES = 10_000
HEX_SHOWN = 4096
"""Bytes of an undecodable message shown in hex."""


class GrpcError(ValueError):
    """The body is not a sequence of gRPC frames."""


def unbase64(body: bytes) -> bytes:
    """gRPC-Web text: base64, possibly several padded chunks one after the other."""
    text = re.sub(rb"\s+", b"", body)
    out = []
    for chunk in re.findall(rb"[^=]+=*", text):
        try:
            out.append(base64.b64decode(chunk, validate=True))
        except (binascii.Error, ValueError):
            raise GrpcError("not base64 (application/grpc-web-text)") from None
    return b"".join(out)


def frames(body: bytes) -> tuple[list[tuple[int, bytes]], str | None]:
    """[(flags, payload)], and why the body ended early (a truncated frame), if it did."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(body):
        if len(out) >= MAX_FRAMES:
            return out, f"stopped after {MAX_FRAMES:,} messages"
        if len(body) - pos < 5:
            return out, f"{len(body) - pos} stray bytes after the last message"
        flags = body[pos]
        length = int.from_bytes(body[pos + 1:pos + 5], "big")
        if flags & 0x7E:
            if not out:
                raise GrpcError(f"not gRPC framing: flag byte 0x{flags:02x}")
            return out, f"invalid flag byte 0x{flags:02x} at byte {pos}"
        end = pos + 5 + length
        if end > len(body):
            if not out and length > 2 * len(body) + 1024:
                raise GrpcError(f"not gRPC framing: first message claims {length:,} bytes of {len(body):,}")
            out.append((flags, body[pos + 5:]))
            return out, f"last message truncated: {len(body) - pos - 5:,} of {length:,} bytes"
        out.append((flags, body[pos + 5:end]))
        pos = end
    return out, None


def _coding(grpc_encoding: str, payload: bytes) -> str:
    coding = grpc_encoding.strip().lower()
    if not coding or coding == "identity":
        return "gzip" if payload[:2] == b"\x1f\x8b" else "deflate"  # flagged compressed all the same
    return coding


def grpc_view(body: bytes, content_type: str = "", headers: Any = None) -> tuple[str, list[Line]]:
    """(title, lines): every message of a gRPC or gRPC-Web body, decoded as protobuf. `headers` (a
    mapping, or None) gives the `grpc-encoding` of compressed messages."""
    grpc_encoding = (headers.get("grpc-encoding") or "") if headers is not None else ""
    web = "grpc-web" in content_type.lower()
    if "grpc-web-text" in content_type.lower():
        body = unbase64(body)
    found, problem = frames(body)
    limit = encoding.decode_limit()
    total = 0
    lines: list[Line] = []
    count = compressed = 0
    for i, (flags, payload) in enumerate(found, 1):
        if flags & 0x80:
            lines.append([("title", f"── trailers ({len(payload)} bytes)")])
            lines += _trailer_lines(payload)
            continue
        count += 1
        head: Line = [("title", f"── message {i}"), ("dim", f" ({human_size(len(payload), long=True)}")]
        data: bytes | None = payload
        note: str | None = None
        if flags & 0x01:
            compressed += 1
            coding = _coding(grpc_encoding, payload)
            left = None if limit is None else max(limit - total, 0)
            try:
                data = encoding.decode(payload, coding, left)
                head.append(("dim", f", {coding}: {human_size(len(data), long=True)}"))
            except BodyTooLarge:
                data, note = None, f"inflates past the decode_limit ({human_size(limit or 0)} for the whole body)"
            except ValueError as e:
                data, note = None, f"cannot decompress ({coding}): {e}"
        lines.append([*head, ("dim", ")")])
        if data is None:
            lines.append([("warn", f"  {note}")])
            lines += _indented_hex(payload)
            continue
        total += len(data)
        if not data:
            lines.append([("dim", "  (empty message)")])
            continue
        try:
            _, msg_lines = protobuf_view(data)
        except ProtobufError as e:
            lines.append([("warn", f"  {e}")])
            lines += _indented_hex(data)
            continue
        lines += [[("text", "  "), *ln] for ln in msg_lines]
    if problem:
        lines.append([("warn", problem)])
    if not lines:
        lines.append([("dim", "(no messages)")])
    kind = "gRPC-Web" if web else "gRPC"
    extra = f", {compressed} compressed" if compressed else ""
    return f"{kind} ({count} message{'' if count == 1 else 's'}{extra})", lines


def _trailer_lines(payload: bytes) -> list[Line]:
    out: list[Line] = []
    for raw in payload.decode("utf-8", "replace").splitlines():
        if not raw.strip():
            continue
        name, sep, value = raw.partition(":")
        if sep:
            out.append([("header_name", f"  {sanitize_segment(name.strip())}: "),
                        ("header_value", sanitize_segment(value.strip()))])
        else:
            out.append([("text", "  " + sanitize_segment(raw))])
    return out


def _indented_hex(data: bytes) -> list[Line]:
    lines = [[("text", "  "), *ln] for ln in hex_lines(data[:HEX_SHOWN])]
    if len(data) > HEX_SHOWN:
        lines.append([("dim", f"  … {len(data) - HEX_SHOWN:,} more bytes")])
    return lines
