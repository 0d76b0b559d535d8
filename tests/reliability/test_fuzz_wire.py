"""Fuzzing of the framing and handshakes a hostile client controls, bounded for the regular test run
(fuzz/run.py runs the same properties with 10^5 examples; results in docs/reliability.md):

- chunked request bodies: chunk sizes (hex case, leading zeros, overflow, signs, spaces), chunk extensions,
  data shorter or longer than announced, bare LF, trailers, and Content-Length next to Transfer-Encoding;
- the SOCKS5 handshake: greetings, RFC 1929 username/password sub-negotiation, CONNECT requests of every
  address type, each from a grammar and as mutations of valid handshakes, against a proxy without and one
  with `proxyauth`.

The property is the one of test_fuzz.py: the client gets a well-formed answer (HTTP responses; SOCKS5
replies) or a clean close within the timeout, the proxy never logs an error, and it serves a normal
request afterwards. The proxies run on their own event loops in background threads, started once.
"""
from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.reliability.test_fuzz import (
    FAST,
    ORIGIN,
    STATUS_LINE,
    SharedProxy,
    answered_or_closed,
    exchange,
    mostly,
    mutate,
)

# -- chunked framing ----------------------------------------------------------------------------------------
size_forms = st.sampled_from(["{:x}", "{:X}", "0{:x}", "000000{:x}", "{:x} ", " {:x}", "+{:x}", "-{:x}", "0x{:x}",
                              "{:x}\t", "{:d}"])
extensions = mostly(st.just(b""), st.sampled_from([b";a=b", b"; a=b", b";a", b";a=\"q\\\"x\"", b";\x00",
                                                   b";" + b"x" * 5000, b";a=b;c=d", b"\xff"]), one_in=4)
eol = mostly(st.just(b"\r\n"), st.sampled_from([b"\n", b"\r", b"", b"\r\r\n"]), one_in=8)


@st.composite
def chunk(draw: st.DrawFn) -> bytes:
    data = draw(st.binary(min_size=1, max_size=40))
    announced = draw(mostly(st.just(len(data)), st.sampled_from([0, len(data) - 1, len(data) + 1, 2**64, 2**70]),
                            one_in=6))
    size = draw(size_forms).format(max(announced, 0)).encode()
    return size + draw(extensions) + draw(eol) + data + draw(eol)


@st.composite
def chunked_requests(draw: st.DrawFn) -> bytes:
    chunks = b"".join(draw(st.lists(chunk(), max_size=4)))
    last = draw(mostly(st.just(b"0"), st.sampled_from([b"00", b"0;x=y", b"0 ", b"", b"-0", b"ffffffffffffffffffff"])))
    trailers = draw(mostly(st.just(b""), st.sampled_from([b"X-T: 1\r\n", b"Content-Length: 5\r\n", b"bad trailer\r\n",
                                                          b"X: \x00\r\n", b"X-T: 1\r\n folded\r\n"])))
    framing = draw(mostly(st.just([b"Transfer-Encoding: chunked"]), st.sampled_from([
        [b"Transfer-Encoding: chunked", b"Content-Length: 5"],
        [b"Content-Length: 5", b"Transfer-Encoding: chunked"],
        [b"Transfer-Encoding: gzip, chunked"],
        [b"Transfer-Encoding: chunked, gzip"],
        [b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"],
        [b"Transfer-Encoding:\r\n chunked"],
        [b"Transfer-Encoding: xchunked"],
        [b"Transfer-Encoding : chunked"],
        [b"Transfer-Encoding: identity"],
    ])))
    line = b"POST http://" + ORIGIN + b"/fuzz/chunked HTTP/1.1"
    head = b"\r\n".join([line, b"Host: " + ORIGIN, *framing]) + b"\r\n\r\n"
    body = chunks + last + b"\r\n" + trailers + draw(eol)
    pipelined = (b"GET http://" + ORIGIN + b"/fuzz/next HTTP/1.1\r\nHost: x\r\n\r\n"
                 if draw(st.integers(0, 3)) == 0 else b"")
    return head + body + pipelined


VALID_CHUNKED = (b"POST http://" + ORIGIN + b"/fuzz/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
                 b"GET http://" + ORIGIN + b"/fuzz/next HTTP/1.1\r\nHost: x\r\n\r\n")


@st.composite
def mutated_chunked(draw: st.DrawFn) -> bytes:
    return mutate(draw, VALID_CHUNKED)


@FAST
@given(chunked_requests())
def test_chunked_bodies_from_a_grammar(data: bytes) -> None:
    answered_or_closed(data)


@FAST
@given(mutated_chunked())
def test_mutated_chunked_bodies(data: bytes) -> None:
    answered_or_closed(data)


# -- SOCKS5 -------------------------------------------------------------------------------------------------
_socks: dict[str, SharedProxy] = {}


def socks_proxy(auth: bool) -> SharedProxy:
    """A SOCKS5 proxy (with `proxyauth=user:pass` when `auth`) next to its own origin, started once."""
    name = "auth" if auth else "open"
    if name not in _socks:
        options = {"mode": "socks5", **({"proxyauth": "user:pass"} if auth else {})}
        _socks[name] = SharedProxy(**options).start()
    return _socks[name]


def stop_socks_proxies() -> None:
    while _socks:
        _socks.popitem()[1].stop()


@pytest.fixture(scope="module", autouse=True)
def _socks_lifetime() -> Iterator[None]:
    yield
    stop_socks_proxies()


PORT = b"\xff\xfe"
"""Placeholder for the origin's port (two bytes, big-endian), known only once it runs."""
INSIDE = b"GET /fuzz/socks HTTP/1.1\r\nHost: x\r\n\r\n"

greetings = mostly(st.sampled_from([b"\x05\x01\x00", b"\x05\x01\x02", b"\x05\x02\x00\x02", b"\x05\x02\x02\x00"]),
                   st.sampled_from([b"\x04\x01", b"\x05\x00", b"\x05\xff" + bytes(range(255)), b"\x05\x03\x01",
                                    b"\x05"]) | st.binary(max_size=8))
logins = mostly(st.sampled_from([b"\x01\x04user\x04pass", b"\x01\x04user\x05wrong"]),
                st.sampled_from([b"\x02\x04user\x04pass", b"\x01\x00\x00", b"\x01\xffuser", b"\x01\x04us"])
                | st.binary(max_size=12))
names = mostly(st.sampled_from([b"localhost", b"LOCALHOST", b"127.0.0.1", b"localhost."]),
               st.sampled_from([b"", b"a" * 255, b"a..b", b"-bad-", b"\xff\xfe", b"loc\x00alhost", b"xn--",
                                b"xn--zz", b"[::1]", b"localhost:80", b"l\xc3\xb6calhost"]) | st.binary(max_size=20))
addresses = st.one_of(
    st.just(b"\x01\x7f\x00\x00\x01"),
    st.just(b"\x04" + bytes(15) + b"\x01"),
    names.map(lambda n: b"\x03" + bytes([len(n)]) + n),
    st.binary(min_size=1, max_size=6),
)
requests = st.builds(lambda ver, cmd, rsv, addr, port: ver + cmd + rsv + addr + port,
                     mostly(st.just(b"\x05"), st.binary(min_size=1, max_size=1)),
                     mostly(st.just(b"\x01"), st.sampled_from([b"\x02", b"\x03", b"\x00", b"\xff"])),
                     mostly(st.just(b"\x00"), st.binary(min_size=1, max_size=1)),
                     addresses,
                     mostly(st.just(PORT), st.sampled_from([b"\x00\x00", b"\x00", b"\x00\x01"])))


@st.composite
def socks5_handshakes(draw: st.DrawFn) -> tuple[bool, bytes]:
    auth = draw(st.booleans())
    parts = [draw(greetings)]
    if auth or draw(st.integers(0, 5)) == 0:
        parts.append(draw(logins))
    parts.append(draw(requests))
    if draw(st.integers(0, 3)):
        parts.append(INSIDE)
    return auth, b"".join(parts)


VALID_SOCKS5 = [
    (False, b"\x05\x01\x00" + b"\x05\x01\x00\x01\x7f\x00\x00\x01" + PORT + INSIDE),
    (False, b"\x05\x01\x00" + b"\x05\x01\x00\x03\x09localhost" + PORT + INSIDE),
    (True, b"\x05\x01\x02" + b"\x01\x04user\x04pass" + b"\x05\x01\x00\x03\x09localhost" + PORT + INSIDE),
]


@st.composite
def mutated_socks5(draw: st.DrawFn) -> tuple[bool, bytes]:
    auth, valid = draw(st.sampled_from(VALID_SOCKS5))
    return auth, mutate(draw, valid)


def socks_answered_or_closed(case: tuple[bool, bytes]) -> None:
    """The property: SOCKS5 replies (then, after a successful CONNECT, what the origin said) or a close."""
    auth, data = case
    proxy = socks_proxy(auth)
    assert proxy.origin is not None
    logged = len(proxy.errors.entries)
    answer = exchange(data.replace(PORT, proxy.origin.port.to_bytes(2, "big")), proxy.port)
    if answer:
        assert answer[:1] == b"\x05", f"not a SOCKS5 method reply: {answer[:40]!r}"
        event(f"method reply {answer[1]}" if len(answer) > 1 else "one byte")
        ok = answer.find(b"\x05\x00\x00\x01")
        after = answer[ok + 10:] if ok >= 0 else b""
        if after:
            # Inside the tunnel, whatever layer the proxy chose answers: HTTP, or TLS (an alert for bytes
            # that look like a TLS record but are not a ClientHello).
            tls_alert = after[:1] == b"\x15" and after[1:3] in (b"\x03\x01", b"\x03\x03")
            event("answered through the tunnel" if STATUS_LINE.match(after) else
                  "TLS alert through the tunnel" if tls_alert else "more SOCKS5 after success")
            assert STATUS_LINE.match(after) or tls_alert or after.startswith(b"\x05") or ok > 2, \
                f"after the SOCKS5 reply, neither HTTP nor TLS: {after[:80]!r}"
    else:
        event("closed without an answer")
    assert proxy.errors.entries[logged:] == [], proxy.errors.entries[logged:]


@FAST
@given(socks5_handshakes())
def test_socks5_handshakes_from_a_grammar(case: tuple[bool, bytes]) -> None:
    socks_answered_or_closed(case)


@FAST
@given(mutated_socks5())
def test_mutated_socks5_handshakes(case: tuple[bool, bytes]) -> None:
    socks_answered_or_closed(case)


def socks_serves_normally(auth: bool) -> None:
    proxy = socks_proxy(auth)
    assert proxy.origin is not None
    port = proxy.origin.port.to_bytes(2, "big")
    login = b"\x05\x01\x02\x01\x04user\x04pass" if auth else b"\x05\x01\x00"
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(login + b"\x05\x01\x00\x03\x09localhost" + port + INSIDE)
        got = b""
        while b"ok /fuzz/socks" not in got:
            chunk = s.recv(65536)
            assert chunk, f"closed early: {got!r}"
            got += chunk
    assert b"HTTP/1.1 200 " in got


@pytest.mark.parametrize("auth", [False, True], ids=["open", "proxyauth"])
def test_socks5_proxy_serves_normally_after_fuzzing(auth: bool) -> None:
    socks_serves_normally(auth)
    assert socks_proxy(auth).errors.entries == []


PROPERTIES = {
    "chunked-grammar": (answered_or_closed, chunked_requests()),
    "chunked-mutated": (answered_or_closed, mutated_chunked()),
    "socks5-grammar": (socks_answered_or_closed, socks5_handshakes()),
    "socks5-mutated": (socks_answered_or_closed, mutated_socks5()),
}
"""What fuzz/run.py runs again with many more examples: name → (property, strategy of its input)."""
