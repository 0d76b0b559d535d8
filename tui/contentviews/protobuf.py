"""Protocol Buffers without a schema: field numbers, wire types, nested messages, packed fields.

Why the wire format is decoded here by hand: a schema-less view has to guess (is this length-delimited
field a nested message, a string, raw bytes or a packed repeated field?) and has to survive any bytes,
showing what it could decode and where it stopped. The maintained `protobuf` runtime only parses
against a descriptor: its unknown-field set of an empty message is all-or-nothing (one bad byte and the
whole body is a `DecodeError` without an offset), does not nest, and would add a large compiled
dependency to the proxy for this one view. The schema-less decoders on PyPI (blackboxprotobuf,
protobuf-inspector) have had no release since 2020. The wire format itself is five wire types and
base-128 varints (https://protobuf.dev/programming-guides/encoding/), about sixty lines below.

Bounds: nested messages are tried to `MAX_DEPTH` levels (deeper ones show as bytes), every byte is
looked at by at most `MAX_DEPTH` parses, and output stops after `MAX_LINES` lines. The body itself was
already capped by the `decode_limit` option when it was decoded. Decoding raises `ProtobufError`
(a ValueError) only when the top level is not a message; the registry then falls back to hex.
"""
from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass

from interpose.tui.contentviews.text import Line, sanitize_segment

MAX_DEPTH = 32
MAX_LINES = 200_000
MAX_FIELDS = 200_000
"""Fields decoded per rendering, nested tries included; past it the rest of the body is not shown."""
BYTES_SHOWN = 256
"""Bytes of a field shown in hex; the hex view has the whole body."""
PACKED_SHOWN = 64
"""Values of a packed field shown."""
PACKED_TRIED = 64 * 1024
"""Bytes fields up to this size are also read as packed varints (a pure-Python loop over every byte)."""

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
WIRE_NAMES = {VARINT: "varint", I64: "i64", LEN: "len", SGROUP: "group", I32: "i32"}
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class ProtobufError(ValueError):
    """The bytes are not a protobuf message; the message says what is wrong and at which offset."""


@dataclass
class Field:
    number: int
    wire: int
    value: int | bytes | list[Field]
    """varint/i64/i32: the unsigned integer; len: the bytes; group: its fields."""
    offset: int


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position); raises ProtobufError on a truncated or over-long (> 10 bytes) varint."""
    result = shift = 0
    start = pos
    while True:
        if pos >= len(data):
            raise ProtobufError(f"truncated varint at byte {start}")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError(f"varint longer than 10 bytes at byte {start}")


class Budget:
    """Fields one rendering may still decode (nested tries included): a huge body costs bounded time."""

    def __init__(self, fields: int = MAX_FIELDS) -> None:
        self.left = fields


def parse(data: bytes, base: int = 0, budget: Budget | None = None) -> list[Field]:
    """All fields of one message (groups nested); raises ProtobufError unless every byte belongs to a field
    (or the budget runs out: `Truncated`, which carries the fields decoded so far)."""
    fields, pos, end_group = _parse(data, 0, None, base, budget or Budget(), 0)
    if end_group is not None:
        raise ProtobufError(f"end of group {end_group} without a start at byte {base + pos}")
    return fields


class Truncated(ProtobufError):
    """The field budget ran out; `fields` holds what was decoded until then."""

    def __init__(self, fields: list[Field]) -> None:
        super().__init__(f"more than {MAX_FIELDS:,} fields")
        self.fields = fields


def _parse(data: bytes, pos: int, group: int | None, base: int, budget: Budget,
           depth: int) -> tuple[list[Field], int, int | None]:
    fields: list[Field] = []
    n = len(data)
    while pos < n:
        if budget.left <= 0:
            raise Truncated(fields)
        budget.left -= 1
        at = pos
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if not 1 <= number <= 0x1FFFFFFF:
            raise ProtobufError(f"invalid field number {number} at byte {base + at}")
        value: int | bytes | list[Field]
        if wire == VARINT:
            value, pos = read_varint(data, pos)
        elif wire == I64 or wire == I32:
            size = 8 if wire == I64 else 4
            if pos + size > n:
                raise ProtobufError(f"truncated {WIRE_NAMES[wire]} field {number} at byte {base + at}")
            value = int.from_bytes(data[pos:pos + size], "little")
            pos += size
        elif wire == LEN:
            length, pos = read_varint(data, pos)
            if pos + length > n:
                raise ProtobufError(f"field {number} at byte {base + at} claims {length} bytes, "
                                    f"{n - pos} left")
            value = data[pos:pos + length]
            pos += length
        elif wire == SGROUP:
            if depth >= MAX_DEPTH:
                raise ProtobufError(f"groups nested deeper than {MAX_DEPTH} at byte {base + at}")
            try:
                value, pos, closed = _parse(data, pos, number, base, budget, depth + 1)
            except Truncated as t:
                raise Truncated(fields) from t
            if closed != number:
                raise ProtobufError(f"group {number} at byte {base + at} is not closed")
        elif wire == EGROUP:
            if group != number:
                raise ProtobufError(f"unexpected end of group {number} at byte {base + at}")
            return fields, pos, number
        else:
            raise ProtobufError(f"invalid wire type {wire} at byte {base + at}")
        fields.append(Field(number, wire, value, base + at))
    return fields, pos, None


# --- what a length-delimited field holds --------------------------------------------------------

def text_of(data: bytes) -> str | None:
    """The field as text when it is UTF-8 with no control characters but tab, newline and CR."""
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(s) else s


def packed_varints(data: bytes) -> list[int] | None:
    """The field as a packed repeated varint field: every varint complete and minimally encoded."""
    out: list[int] = []
    pos = 0
    try:
        while pos < len(data):
            start = pos
            v, pos = read_varint(data, pos)
            if pos - start > 1 and data[pos - 1] == 0:
                return None  # a redundant continuation byte: an encoder would not write it
            out.append(v)
    except ProtobufError:
        return None
    return out


def _plausible_float(x: float) -> bool:
    return x == 0 or (math.isfinite(x) and 1e-9 <= abs(x) <= 1e15)


def _fmt_float(x: float, digits: int) -> str:
    return format(x, f".{digits}g")


def packed_fixed(data: bytes) -> list[tuple[str, str]]:
    """Readings of the field as packed fixed-width values: (label, values), plausible floats only."""
    out: list[tuple[str, str]] = []
    for size, ints, floats, label, digits in ((4, "<%dI", "<%df", "32", 7), (8, "<%dQ", "<%dd", "64", 15)):
        if not data or len(data) % size:
            continue
        count = len(data) // size
        shown = min(count, PACKED_SHOWN)
        more = f", … {count - shown} more" if count > shown else ""
        fl = struct.unpack(floats % shown, data[:shown * size])
        if all(_plausible_float(x) for x in fl) and any(x != 0 for x in fl):
            out.append(("float" if size == 4 else "double", ", ".join(_fmt_float(x, digits) for x in fl) + more))
        iv = struct.unpack(ints % shown, data[:shown * size])
        out.append((f"fixed{label}", ", ".join(map(str, iv)) + more))
    return out


# --- lines ---------------------------------------------------------------------------------------

class _TooMany(Exception):
    pass


class _Printer:
    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.budget = Budget()

    def add(self, line: Line) -> None:
        if len(self.lines) >= MAX_LINES:
            raise _TooMany
        self.lines.append(line)

    def fields(self, fields: list[Field], depth: int) -> None:
        for f in fields:
            self.field(f, depth)

    def field(self, f: Field, depth: int) -> None:
        pad = ("text", "  " * depth)
        head: Line = [pad] if depth else []
        head += [("syntax_key", str(f.number)), ("dim", f" {WIRE_NAMES[f.wire]}")]
        v = f.value
        if f.wire == SGROUP:
            assert isinstance(v, list)
            self.add([*head, ("syntax_punct", " {")])
            self.fields(v, depth + 1)
            self.add([pad, ("syntax_punct", "}")])
        elif f.wire == VARINT:
            assert isinstance(v, int)
            self.add([*head, ("syntax_punct", ": "), ("syntax_number", str(v)), *_varint_notes(v)])
        elif f.wire in (I64, I32):
            assert isinstance(v, int)
            self.add([*head, ("syntax_punct", ": "), ("syntax_number", str(v)), *_fixed_notes(v, f.wire)])
        else:
            assert isinstance(v, bytes)
            self.length_delimited(head, pad, v, depth)

    def length_delimited(self, head: Line, pad: tuple[str, str], data: bytes, depth: int) -> None:
        if not data:
            self.add([*head, ("syntax_punct", ": "), ("dim", "empty (string, bytes or message)")])
            return
        text = text_of(data)
        if text is not None and data[:1] not in (b"\t", b"\n", b"\r"):
            self.string(head, text)  # a printable string: "hi" would also parse as a message
            return
        nested = self.try_message(data) if depth + 1 < MAX_DEPTH else None
        if nested:
            self.add([*head, ("dim", f" message ({len(data)} bytes)"), ("syntax_punct", " {")])
            self.fields(nested, depth + 1)
            self.add([pad, ("syntax_punct", "}")])
        elif text is not None:
            self.string(head, text)
        else:
            self.bytes(head, pad, data)

    def try_message(self, data: bytes) -> list[Field] | None:
        try:
            return parse(data, budget=self.budget)
        except ProtobufError:  # Truncated too: past the budget, fields show as bytes
            return None

    def string(self, head: Line, text: str) -> None:
        quoted = sanitize_segment(json.dumps(text, ensure_ascii=False))
        self.add([*head, ("dim", " string"), ("syntax_punct", ": "), ("syntax_string", quoted)])

    def bytes(self, head: Line, pad: tuple[str, str], data: bytes) -> None:
        shown = data[:BYTES_SHOWN].hex(" ")
        more = f" … {len(data) - BYTES_SHOWN} more" if len(data) > BYTES_SHOWN else ""
        self.add([*head, ("dim", f" bytes ({len(data)})"), ("syntax_punct", ": "), ("text", shown), ("dim", more)])
        sub = ("text", pad[1] + "    ")
        varints = packed_varints(data) if len(data) <= PACKED_TRIED else None
        if varints is not None and len(varints) > 1:
            listed = ", ".join(map(str, varints[:PACKED_SHOWN]))
            rest = f", … {len(varints) - PACKED_SHOWN} more" if len(varints) > PACKED_SHOWN else ""
            self.add([sub, ("dim", "as packed varint: "), ("syntax_number", listed + rest)])
        for label, values in packed_fixed(data):
            self.add([sub, ("dim", f"as packed {label}: "), ("syntax_number", values)])


def _varint_notes(v: int) -> Line:
    notes: list[str] = []
    if v >= 1 << 63:
        notes.append(f"int64 {v - (1 << 64)}")
    elif v & 1 and v > 1:  # zigzag: odd values are the negative sint32/sint64
        notes.append(f"sint {(v >> 1) ^ -(v & 1)}")
    return [("dim", f"  ({', '.join(notes)})")] if notes else []


def _fixed_notes(v: int, wire: int) -> Line:
    size, bits = (8, 64) if wire == I64 else (4, 32)
    notes: list[str] = []
    if v >= 1 << (bits - 1):
        notes.append(f"int{bits} {v - (1 << bits)}")
    x = struct.unpack("<d" if size == 8 else "<f", v.to_bytes(size, "little"))[0]
    if _plausible_float(x) and x != 0:
        notes.append(f"{'double' if size == 8 else 'float'} {_fmt_float(x, 15 if size == 8 else 7)}")
    return [("dim", f"  ({', '.join(notes)})")] if notes else []


def field_lines(fields: list[Field], depth: int = 0) -> list[Line]:
    """Lines for already parsed fields, indented `depth` steps; the last says so if MAX_LINES was hit."""
    p = _Printer()
    try:
        p.fields(fields, depth)
    except _TooMany:
        p.lines.append([("warn", f"… stopped after {MAX_LINES:,} lines (the hex view shows everything)")])
    return p.lines


def protobuf_view(body: bytes) -> tuple[str, list[Line]]:
    """(title, lines) of a protobuf message; raises ProtobufError when the body is not one."""
    note: Line | None = None
    try:
        fields = parse(body)
    except Truncated as t:
        fields = t.fields
        note = [("warn", f"… stopped after {MAX_FIELDS:,} fields (the hex view shows everything)")]
    except ProtobufError as e:
        raise ProtobufError(f"not a protobuf message: {e}") from None
    n = len(fields)
    lines = field_lines(fields)
    if note:
        lines.append(note)
    return f"Protobuf ({n} top-level field{'' if n == 1 else 's'}, no schema)", lines
