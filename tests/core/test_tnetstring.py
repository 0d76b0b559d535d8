"""The tnetstring reader and writer (interpose.store.tnetstring) on real mitmproxy flow files and on damage."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interpose.store import tnetstring
from interpose.store.tnetstring import TNetstringError, dumps, parse, records

DATA = Path(__file__).resolve().parents[1] / "data" / "mitmproxy"
REAL = sorted(DATA.glob("mitm*.flows"))

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.binary(max_size=40),
                    st.text(max_size=40))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5),
    st.dictionaries(st.one_of(st.text(max_size=10), st.binary(max_size=10)), inner, max_size=5)), max_leaves=30)


def test_the_real_files_are_there():
    assert [p.name for p in REAL] == [f"mitm{v}.flows" for v in (10, 11, 7, 8, 9)]


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_files_read_record_by_record_and_write_back_byte_for_byte(path):
    data = path.read_bytes()
    with open(path, "rb") as f:
        got = list(records(f))
    assert len(got) == 6
    assert [v["type"] for _, v in got] == ["http"] * 5 + ["tcp"]
    assert all(isinstance(v["version"], int) and 14 <= v["version"] <= 21 for _, v in got)
    # Offsets are where each record starts; writing the values back gives the file again.
    for (offset, value), nxt in zip(got, [o for o, _ in got[1:]] + [len(data)], strict=True):
        assert data[offset:nxt] == dumps(value)
    assert b"".join(dumps(v) for _, v in got) == data


def test_value_types():
    assert parse(b"0:~") is None
    assert parse(b"4:true!") is True and parse(b"5:false!") is False
    assert parse(b"3:-12#") == -12
    assert parse(b"6:1.5e-3^") == 0.0015
    assert parse(b"3:abc,") == b"abc" and parse("2:é;".encode()) == "é"
    assert parse(b"11:1:1#1:a,0:~]") == [1, b"a", None]
    assert parse(b"18:1:a;4:1:1#]1:b,0:~}") == {"a": [1], b"b": None}
    assert parse(b"0:]") == [] and parse(b"0:}") == {}


@given(values)
@settings(max_examples=300, deadline=None)
def test_round_trip(value: Any):
    assert parse(dumps(value)) == value
    assert [v for _, v in records(io.BytesIO(dumps(value) * 3))] == [value] * 3


@pytest.mark.parametrize("data, message", [
    (b"3:abc?", "unknown type byte"),
    (b"3:1a2#", "not an integer"),
    (b"3:1e2#", "not an integer"),
    (b"4:nope!", "not a boolean"),
    (b"1:x~", "a null with data"),
    (b"3:1.x^", "not a number"),
    (b"2:\xff\xfe;", "not UTF-8"),
    (b"6:1:a;1:]", "runs past the end of its container"),  # an inner value cut by the list's length
    (b"4:1:a;}", "a key but no value"),
    (b"x:abc,", "expected a length"),
    (b"3:abc,junk", "data after the value"),
])
def test_damage_is_reported(data, message):
    with pytest.raises(TNetstringError, match=message):
        parse(data)


def test_nesting_is_bounded():
    deep = b"0:]"
    for _ in range(tnetstring.MAX_DEPTH + 5):
        deep = str(len(deep)).encode() + b":" + deep + b"]"
    with pytest.raises(TNetstringError, match="nested deeper"):
        parse(deep)


def test_a_length_past_the_end_of_the_file_is_truncation_before_reading_it(tmp_path):
    path = tmp_path / "cut"
    path.write_bytes(b"3:abc," + b"999999999999:")  # 1 TB claimed, nothing there
    with open(path, "rb") as f:
        it = records(f)
        assert next(it) == (0, b"abc")
        with pytest.raises(TNetstringError) as e:
            next(it)
    assert e.value.truncated and e.value.offset == 6 and "ends inside a record" in str(e.value)


@pytest.mark.parametrize("cut", [1, 2, 5, 100, 1000, -1])
def test_a_cut_file_yields_the_records_before_the_cut(tmp_path, cut):
    data = REAL[0].read_bytes()
    with open(REAL[0], "rb") as f:
        offsets = [o for o, _ in records(f)]
    end = offsets[3] + cut if cut > 0 else len(data) + cut
    path = tmp_path / "cut.flows"
    path.write_bytes(data[:end])
    got: list[Any] = []
    with open(path, "rb") as f, pytest.raises(TNetstringError) as e:
        for _, v in records(f):
            got.append(v)
    assert e.value.truncated
    assert len(got) == (3 if cut > 0 else 5)


def test_a_stream_without_a_size_is_read_too():
    class Pipe(io.RawIOBase):  # no fileno: the reader cannot know the size
        def __init__(self, data: bytes) -> None:
            self.buf = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            chunk = self.buf.read(min(len(b), 7))
            b[:len(chunk)] = chunk
            return len(chunk)
    data = REAL[0].read_bytes()
    assert len(list(records(io.BufferedReader(Pipe(data))))) == 6
    with pytest.raises(TNetstringError, match="ends inside a record") as e:
        list(records(io.BufferedReader(Pipe(data[:-10]))))
    assert e.value.truncated


def test_whitespace_between_records_is_skipped():
    assert [v for _, v in records(io.BytesIO(b"1:a,\n1:b,\r\n "))] == [b"a", b"b"]


def test_dumps_refuses_what_it_cannot_write():
    with pytest.raises(TypeError):
        dumps(object())
