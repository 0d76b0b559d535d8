"""interpose.proxy.tls.clienthello: parsing real ClientHellos made by the stdlib's ssl, in pieces, re-framed,
and fuzzed."""
from __future__ import annotations

import itertools
import ssl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interpose.proxy.tls.clienthello import (
    MAX_SIZE,
    ClientHello,
    ClientHelloError,
    is_tls_handshake,
    parse_client_hello,
)

TLS13 = 0x0304


def make_hello(server_hostname: str | None = "example.com", alpn: list[str] | None = None,
               max_version: ssl.TLSVersion | None = None) -> bytes:
    """The first flight a real client sends, taken from an SSLObject over memory BIOs."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if server_hostname is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if max_version is not None:
        ctx.maximum_version = max_version
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def records(data: bytes) -> list[tuple[bytes, bytes]]:
    """Split TLS records into (header, payload) pairs."""
    out = []
    pos = 0
    while pos < len(data):
        length = int.from_bytes(data[pos + 3:pos + 5], "big")
        out.append((data[pos:pos + 5], data[pos + 5:pos + 5 + length]))
        pos += 5 + length
    return out


def reframe(handshake: bytes, cuts: list[int], version: bytes = b"\x03\x01") -> bytes:
    """The handshake bytes framed as several records, cut at the given offsets."""
    bounds = [0, *cuts, len(handshake)]
    return b"".join(
        b"\x16" + version + (b - a).to_bytes(2, "big") + handshake[a:b] for a, b in itertools.pairwise(bounds)
    )


HELLO = make_hello(alpn=["h2", "http/1.1"])
HANDSHAKE = b"".join(payload for _, payload in records(HELLO))


def parse_or_error(data: bytes) -> ClientHello | None | ClientHelloError:
    try:
        return parse_client_hello(data)
    except ClientHelloError as e:
        return e


# -- real hellos -----------------------------------------------------------------------------------------------


def test_real_hello() -> None:
    hello = parse_client_hello(HELLO)
    assert hello is not None
    assert hello.sni == "example.com"
    assert hello.alpn == ["h2", "http/1.1"]
    assert TLS13 in hello.versions
    assert 0x1301 in hello.cipher_suites  # TLS_AES_128_GCM_SHA256
    assert hello.legacy_version == 0x0303
    assert 0 in hello.extensions and 16 in hello.extensions
    assert hello.raw == HELLO
    assert is_tls_handshake(HELLO)


def test_no_sni_no_alpn() -> None:
    hello = parse_client_hello(make_hello(server_hostname=None))
    assert hello is not None
    assert hello.sni is None
    assert hello.alpn == []


def test_tls12_only_client() -> None:
    hello = parse_client_hello(make_hello(alpn=["http/1.1"], max_version=ssl.TLSVersion.TLSv1_2))
    assert hello is not None
    assert hello.sni == "example.com" and hello.alpn == ["http/1.1"]
    assert TLS13 not in hello.versions


def test_bytes_after_the_hello_are_not_consumed() -> None:
    tail = b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x03abc"  # ChangeCipherSpec + early data
    hello = parse_client_hello(HELLO + tail)
    assert hello is not None and hello.raw == HELLO


def test_every_prefix_needs_more() -> None:
    for cut in range(len(HELLO)):
        assert parse_client_hello(HELLO[:cut]) is None, cut


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5, 38, 100, len(HANDSHAKE) - 1])
def test_split_across_two_records(cut: int) -> None:
    data = reframe(HANDSHAKE, [cut])
    hello = parse_client_hello(data)
    assert hello is not None
    assert (hello.sni, hello.alpn, hello.raw) == ("example.com", ["h2", "http/1.1"], data)
    for prefix in range(len(data)):
        assert parse_client_hello(data[:prefix]) is None, prefix


def test_every_two_record_split_and_many_records() -> None:
    for cut in range(1, len(HANDSHAKE)):
        hello = parse_client_hello(reframe(HANDSHAKE, [cut]))
        assert hello is not None and hello.sni == "example.com", cut
    one_byte_records = reframe(HANDSHAKE, list(range(1, len(HANDSHAKE))))
    hello = parse_client_hello(one_byte_records)
    assert hello is not None and hello.alpn == ["h2", "http/1.1"] and hello.raw == one_byte_records


def test_is_tls_handshake() -> None:
    assert is_tls_handshake(b"\x16\x03")
    assert is_tls_handshake(b"\x16\x03\x01\x02\x00")
    assert not is_tls_handshake(b"\x16")
    assert not is_tls_handshake(b"")
    assert not is_tls_handshake(b"GET / HTTP/1.1\r\n")
    assert not is_tls_handshake(b"\x16\x02\x00")
    assert not is_tls_handshake(b"\x16\x03\x09")
    assert not is_tls_handshake(b"\x05\x01\x00")  # SOCKS5 greeting


# -- garbage ---------------------------------------------------------------------------------------------------


def with_body(body: bytes, hs_type: int = 1) -> bytes:
    handshake = bytes([hs_type]) + len(body).to_bytes(3, "big") + body
    return reframe(handshake, [])


GARBAGE = [
    (b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "content type"),
    (b"G", "content type"),
    (b"\x17\x03\x03\x00\x05hello", "content type"),
    (b"\x16\x02", "version"),
    (b"\x16\x03\x01\x00\x00", "empty"),
    (b"\x16\x03\x01\xff\xff", "exceeds"),
    (b"\x16\x03\x01\x00\x04\x02", "not a ClientHello"),  # a ServerHello, detected before it is complete
    (b"\x16\x03\x01\x00\x04\x01\xff\xff\xff", "exceeds"),  # declares a 16 MiB hello
    (b"\x16\x03\x01\x00\x04" + HANDSHAKE[:4] + b"\x15", "content type"),  # an alert record mid-hello
    (with_body(b""), "truncated"),
    (with_body(b"\x03\x03" + b"r" * 32 + b"\x00" + b"\x00\x00" + b"\x01\x00"), "cipher suite"),
    (with_body(b"\x03\x03" + b"r" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x00"), "compression"),
    (with_body(b"\x03\x03" + b"r" * 32 + b"\x21" + b"s" * 33 + b"\x00\x02\x13\x01\x01\x00"), "session id"),
    (with_body(b"\x02\x00" + b"r" * 32 + b"\x00\x00\x02\x13\x01\x01\x00"), "version"),
    (with_body(b"\x03\x03" + b"r" * 32 + b"\x00\x00\x02\x13\x01\x01\x00" + b"\x00\x08" + b"\x00\x23\x00\x00"
               + b"\x00\x23\x00\x00"), "duplicate"),
    (with_body(b"\x03\x03" + b"r" * 32 + b"\x00\x00\x02\x13\x01\x01\x00" + b"\x00\x05\x00\x00\x00\x01\x00"),
     "extension 0"),
    (with_body(b"\x03\x03" + b"r" * 32 + b"\x00\x00\x02\x13\x01\x01\x00\x00\x00" + b"xx"), "trailing"),
]


@pytest.mark.parametrize(("data", "match"), GARBAGE, ids=[f"{i}-{m}" for i, (_, m) in enumerate(GARBAGE)])
def test_garbage_is_an_error(data: bytes, match: str) -> None:
    with pytest.raises(ClientHelloError, match=match):
        parse_client_hello(data)


def test_minimal_hello_without_extensions() -> None:
    hello = parse_client_hello(with_body(b"\x03\x01" + b"r" * 32 + b"\x00\x00\x02\x00\x2f\x01\x00"))
    assert hello == ClientHello(sni=None, cipher_suites=[0x2F], legacy_version=0x0301,
                                raw=with_body(b"\x03\x01" + b"r" * 32 + b"\x00\x00\x02\x00\x2f\x01\x00"))


def test_size_cap_over_many_records() -> None:
    # A hello that claims 60000 bytes and arrives one byte per record: the records pass 64 KiB first.
    handshake = b"\x01" + (60000).to_bytes(3, "big") + b"\x03" * 60000
    data = reframe(handshake, list(range(1, 15000)))
    with pytest.raises(ClientHelloError, match=str(MAX_SIZE)):
        parse_client_hello(data)


# -- fuzzing ---------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes(data: bytes) -> None:
    result = parse_or_error(data)
    assert result is None or isinstance(result, (ClientHello, ClientHelloError))
    result = parse_or_error(b"\x16\x03\x01" + len(data).to_bytes(2, "big") + data)
    assert result is None or isinstance(result, (ClientHello, ClientHelloError))


@st.composite
def mutated_hello(draw: st.DrawFn) -> bytes:
    data = bytearray(HELLO if draw(st.booleans()) else reframe(HANDSHAKE, [draw(st.integers(1, len(HANDSHAKE) - 1))]))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 8))]
        else:
            del data[i:]
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(mutated_hello())
def test_fuzz_mutated_hello(data: bytes) -> None:
    result = parse_or_error(data)
    assert result is None or isinstance(result, (ClientHello, ClientHelloError))
    if isinstance(result, ClientHello):
        assert data.startswith(result.raw)
