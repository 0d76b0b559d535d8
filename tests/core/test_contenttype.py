"""interpose.model.contenttype: media type and parameters of Content-Type (and Content-Disposition) values."""
from __future__ import annotations

import pytest

from interpose.model import contenttype
from interpose.model.contenttype import ContentType


@pytest.mark.parametrize(("value", "expected"), [
    ("text/html", ContentType("text/html", {})),
    ("Text/HTML; Charset=UTF-8", ContentType("text/html", {"charset": "UTF-8"})),
    ('text/plain; charset="iso-8859-1"', ContentType("text/plain", {"charset": "iso-8859-1"})),
    ("text/plain ;charset = latin-1 ", ContentType("text/plain", {"charset": "latin-1"})),
    ('multipart/form-data; boundary="a;b=c"', ContentType("multipart/form-data", {"boundary": "a;b=c"})),
    (r'x/y; a="say \"hi\" \\ bye"; b=2', ContentType("x/y", {"a": 'say "hi" \\ bye', "b": "2"})),
    ("x/y; a=1; A=2", ContentType("x/y", {"a": "1"})),  # the first of a repeated name wins
    ("x/y; ; flag; =v; bad name=1; ok=1", ContentType("x/y", {"ok": "1"})),  # not parameters: skipped
    ('x/y; a="never closed', ContentType("x/y", {"a": "never closed"})),
    ('x/y; a=""', ContentType("x/y", {"a": ""})),
    ("", ContentType("", {})),
    (None, ContentType("", {})),
])
def test_parse(value, expected):
    assert contenttype.parse(value) == expected
    assert contenttype.media_type(value) == expected.media_type
    assert contenttype.params(value) == expected.params


def test_content_disposition_parameters():
    assert contenttype.params('form-data; name="file"; filename="my report; final.pdf"') == {
        "name": "file", "filename": "my report; final.pdf"}


@pytest.mark.parametrize(("value", "expected"), [
    ('text/plain; charset="iso-8859-1"; format=flowed', "text/plain; charset=utf-8; format=flowed"),
    ("text/plain;Charset=latin-1", "text/plain;charset=utf-8"),
    ("text/plain; a=1; charset=x; charset=y", "text/plain; a=1; charset=utf-8; charset=y"),
    ("text/plain", "text/plain; charset=utf-8"),
    ("", "charset=utf-8"),
])
def test_set_param(value, expected):
    assert contenttype.set_param(value, "charset", "utf-8") == expected


def test_set_param_quotes_what_is_not_a_token():
    quoted = contenttype.set_param("multipart/mixed; boundary=x", "boundary", 'a b"c')
    assert quoted == r'multipart/mixed; boundary="a b\"c"'
    assert contenttype.params(contenttype.set_param("x/y", "n", 'a;b"\\')) == {"n": 'a;b"\\'}
