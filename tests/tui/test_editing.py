"""How messages are presented for editing and turned back into bytes."""
from __future__ import annotations

import pytest

from interpose.tui.editing import message_for_editing, message_from_editing


def test_json_is_prettified_and_re_encoded_compactly():
    mode, text, suffix = message_for_editing(b'{"a":1,"b":[1,2],"c":"\xc3\xa9"}')
    assert (mode, suffix) == ("json", ".json")
    assert text == '{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ],\n  "c": "é"\n}\n'
    edited = text.replace('"a": 1', '"a": 2')
    assert message_from_editing(mode, edited) == '{"a":2,"b":[1,2],"c":"é"}'.encode()
    assert message_from_editing(mode, "not json any more") == b"not json any more"


def test_binary_is_edited_as_hex():
    mode, text, _ = message_for_editing(b"\x00\xffab")
    assert (mode, text) == ("hex", "00 ff 61 62")
    assert message_from_editing(mode, "00 ff\n61 63") == b"\x00\xffac"
    with pytest.raises(ValueError):
        message_from_editing(mode, "zz")


def test_text_stays_text():
    assert message_for_editing(b"hello [x]") == ("text", "hello [x]", ".txt")
    assert message_from_editing("text", "héllo") == "héllo".encode()
