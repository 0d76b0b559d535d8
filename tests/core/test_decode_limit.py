"""Bounded decoding: every Content-Encoding stops at the limit, the model raises BodyTooLarge, filters
do not match such a body, and the `decode_limit` option sets the model's limit."""
from __future__ import annotations

import gzip
import os
import zlib

import brotli
import pytest
import zstandard

from interpose import flowfilter
from interpose.errors import InterposeError
from interpose.http import BodyTooLarge, HTTPFlow, Request, Response
from interpose.model import encoding
from interpose.model.connection import Client, Server
from interpose.runtime.options import Options, core_options

DATA = os.urandom(1000) + b"a" * 100_000
ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "raw-deflate": lambda d: zlib.compress(d)[2:-4],
    "br": brotli.compress,
    "zstd": zstandard.ZstdCompressor().compress,
}


@pytest.fixture(autouse=True)
def reset_limit():
    yield
    encoding.set_decode_limit(encoding.DEFAULT_DECODE_LIMIT)


@pytest.mark.parametrize("name", ENCODERS)
def test_each_decoder_stops_at_the_limit(name):
    ce = "deflate" if name == "raw-deflate" else name
    raw = ENCODERS[name](DATA)
    assert encoding.decode(raw, ce) == DATA
    assert encoding.decode(raw, ce, len(DATA)) == DATA  # exactly the limit is fine
    assert encoding.decode(raw, ce, None) == DATA
    with pytest.raises(BodyTooLarge) as e:
        encoding.decode(raw, ce, len(DATA) - 1)
    assert isinstance(e.value, InterposeError)
    assert (e.value.size, e.value.limit) == (len(raw), len(DATA) - 1)
    assert "body too large to decode" in str(e.value) and "decode_limit" in str(e.value)


@pytest.mark.parametrize("name", ["gzip", "deflate", "br"])
def test_a_truncated_body_is_still_an_error(name):
    with pytest.raises(ValueError, match="cannot decode"):
        encoding.decode(ENCODERS[name](DATA)[:-10], name)


def test_gzip_members_and_chains():
    assert encoding.decode(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip") == b"abcd"
    double = gzip.compress(gzip.compress(bytes(4 * 1024 * 1024)))
    assert len(double) < 10_000
    with pytest.raises(BodyTooLarge):
        encoding.decode(double, "gzip, gzip", 1024 * 1024)
    assert encoding.decode(double, "gzip, gzip", 4 * 1024 * 1024) == bytes(4 * 1024 * 1024)


def bomb_flow() -> HTTPFlow:
    f = HTTPFlow(Client(address=("127.0.0.1", 1)), Server(address=("example.com", 80)), live=False)
    f.request = Request.make("GET", "http://example.com/")
    f.response = Response.make(200, b"", {"Content-Type": "text/plain", "Content-Encoding": "gzip"})
    f.response.raw_content = gzip.compress(b"zero " * 500_000)
    return f


def test_model_raises_and_filters_do_not_match():
    encoding.set_decode_limit(1024 * 1024)
    f = bomb_flow()
    for read in (lambda: f.response.content, lambda: f.response.text, f.response.decode):
        with pytest.raises(BodyTooLarge, match="too large to decode"):
            read()
    assert f.response.raw_content is not None
    for expr in ("~b zero", "~bs zero", "~bq zero", "!~b zero"):
        assert flowfilter.parse(expr)(f) == expr.startswith("!")
    encoding.set_decode_limit(4 * 1024 * 1024)
    assert flowfilter.parse("~bs zero")(f)
    assert f.response.text.startswith("zero zero")


def test_the_option_sets_the_models_limit():
    opts = Options()
    core_options(opts)
    assert opts.decode_limit == "32m" and encoding.decode_limit() == 32 * 1024 * 1024
    opts.set("decode_limit=2k")
    assert encoding.decode_limit() == 2048
    opts.set("decode_limit=")
    assert encoding.decode_limit() is None
    with pytest.raises(InterposeError):
        opts.set("decode_limit=lots")
    core_options(Options())  # a new set of options starts from the default again
    assert encoding.decode_limit() == 32 * 1024 * 1024


@pytest.mark.parametrize("name", ["gzip", "br", "zstd"])
def test_bodies_larger_than_one_step_decode_whole(name):
    big = os.urandom(300_000) + b"abc" * 1_000_000
    raw = ENCODERS[name](big)
    assert encoding.decode(raw, name) == big
    with pytest.raises(BodyTooLarge):
        encoding.decode(raw, name, 2 * 1024 * 1024)


def test_code_that_must_go_on_gets_the_raw_body():
    """Search, HAR export and server_replay's keys use content_or_raw: a bomb gives its encoded bytes."""
    from interpose.store import har

    encoding.set_decode_limit(10_000)
    bomb = gzip.compress(b"\0" * 1_000_000)
    flow = HTTPFlow(Client(address=("127.0.0.1", 1)), Server(address=("example.com", 80)))
    flow.request = Request.make("POST", "http://example.com/", b"", {"content-encoding": "gzip"})
    flow.response = Response.make(200, b"", {"content-encoding": "gzip"})
    flow.request.raw_content = flow.response.raw_content = bomb  # as it came off the wire
    with pytest.raises(BodyTooLarge):
        flow.response.content  # noqa: B018  (the read is the point)
    assert flow.response.content_or_raw() == bomb
    small = Response.make(200, b"", {"content-encoding": "gzip"})
    small.raw_content = gzip.compress(b"hello")
    assert small.content_or_raw() == b"hello"
    entry = har.export([flow])["log"]["entries"][0]
    assert entry["response"]["content"]["encoding"] == "base64"
    assert entry["request"]["postData"]["_encoding"] == "base64"
