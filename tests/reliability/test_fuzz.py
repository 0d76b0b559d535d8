"""Fuzzing with hypothesis, bounded for the regular test run (fuzz/run.py runs the same properties longer).

- The HTTP/1 request path of a running proxy: request heads from a grammar (methods, targets, versions,
  header lines with random bytes, bodies) and valid heads mutated byte by byte, sent over a raw socket.
  Each must get valid HTTP responses or a clean close, never a hang; the proxy must never log an
  internal error and must serve a normal request afterwards.
- The HAR loader (`interpose.store.har.read`): random bytes, mutated valid files, valid JSON with wrong values give
  flows or `FlowFileError`, nothing else.

Not here, because they have their own hypothesis tests: the ClientHello parser
(tests/core/test_clienthello.py), the filter parser (tests/core/test_flowfilter.py) and the flow-file
loader (tests/core/test_flowfile.py).

The proxy runs on its own event loop in a background thread (`SharedProxy`), started once and reused by
every example; the examples themselves are plain blocking socket code.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from interpose import flowfilter
from interpose.cli.dump import flow_line
from interpose.errors import FlowFileError
from interpose.http import HTTPFlow
from interpose.runtime.master import Master
from interpose.runtime.options import Options, core_options
from interpose.store import flowcodec, har
from tests.servers import Origin

READ_TIMEOUT_S = 10.0
"""An answer (or a close) slower than this is a hang."""
SILENCE_S = float(os.environ.get("INTERPOSE_FUZZ_SILENCE_S", "0.15"))
"""Quiet this long, the proxy is waiting for the client: it then half-closes (fuzz/run.py --silence sets it
lower for long runs: a shorter wait only makes the client look as if it left sooner, still a valid case)."""
FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
ORIGIN = b"ORIGIN_AUTHORITY"
"""Placeholder in generated requests for the local origin's host:port (known only once it runs)."""
STATUS_LINE = re.compile(rb"HTTP/1\.1 [1-5][0-9][0-9] [^\r\n]*\r\n")


# -- a proxy shared by every example ------------------------------------------------------------------------
class ErrorLog:
    """Error-level log entries of the proxy, and exceptions its event loop saw that nothing handled."""

    def __init__(self) -> None:
        self.entries: list[str] = []
        self.origin_exceptions = 0

    def log(self, entry: Any) -> None:
        if entry.level == "error" or "internal error" in entry.msg:
            self.entries.append(entry.msg)

    def loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        tb = traceback.extract_tb(exc.__traceback__) if exc is not None else []
        if tb and tb[-1].filename.endswith(os.path.join("tests", "servers.py")):
            self.origin_exceptions += 1  # the test origin choking on bytes it was sent: it just hangs up
            return
        self.entries.append(f"unhandled in the event loop: {context.get('message')}: {exc!r}")


class Exercise:
    """Runs what users run on every finished flow (the dump line, filters, flow-file and HAR export) so
    that fuzzed requests reach them too; an exception there is an addon error, logged as an error."""

    FILTERS = [flowfilter.parse(e) for e in ("~d example | ~h foo | ~b bar", "~u fuzz & !~c 200", "~a | ~t json | ~q")]

    def _check(self, flow: HTTPFlow) -> None:
        flow_line(flow)
        for f in self.FILTERS:
            f(flow)
        flowcodec.load(json.loads(json.dumps(flowcodec.dump(flow))))
        har.export([flow])

    def response(self, flow: HTTPFlow) -> None:
        self._check(flow)

    def error(self, flow: HTTPFlow) -> None:
        self._check(flow)


class SharedProxy:
    """The proxy and an h11 origin on an event loop of their own, in a daemon thread."""

    def __init__(self, **options: Any) -> None:
        self.extra_options = options
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-proxy", daemon=True)
        self.errors = ErrorLog()
        self.loop.set_exception_handler(self.errors.loop_exception)
        self.confdir = tempfile.TemporaryDirectory(prefix="interpose-fuzz-")
        self.master: Master | None = None
        self.origin: Origin | None = None
        self.port = 0

    def start(self) -> SharedProxy:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    async def _start(self) -> None:
        self.origin = await Origin().start()
        options = Options()
        core_options(options)
        # Short timeouts: a head that never completes is answered (408) well before READ_TIMEOUT_S.
        options.update(listen_port=0, confdir=self.confdir.name, header_read_timeout_s=2.0, idle_timeout_s=5.0,
                       connect_timeout_s=2.0)
        options.update(**self.extra_options)
        self.master = Master(options)
        self.master.add_addon(self.errors)
        self.master.add_addon(Exercise())
        _, self.port = await self.master.start()

    @property
    def authority(self) -> bytes:
        assert self.origin is not None
        return f"127.0.0.1:{self.origin.port}".encode()

    def stop(self) -> None:
        async def _stop() -> None:
            assert self.master is not None and self.origin is not None
            await self.master.shutdown()
            await self.origin.stop()
        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.confdir.cleanup()


_shared: SharedProxy | None = None


def shared_proxy() -> SharedProxy:
    global _shared
    if _shared is None:
        _shared = SharedProxy().start()
    return _shared


def stop_shared_proxy() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


@pytest.fixture(scope="module", autouse=True)
def _shared_proxy_lifetime() -> Iterator[None]:
    yield
    stop_shared_proxy()


# -- the property -----------------------------------------------------------------------------------------
def exchange(data: bytes, port: int, timeout: float = READ_TIMEOUT_S) -> bytes:
    """Send `data`, read until the proxy closes. Once the proxy has been quiet for SILENCE_S (it answered
    and waits for the next request, or it waits for more of this one), half-close so that it finishes
    up; after that, a read timeout is a hang (AssertionError). Not half-closing at once matters: the
    proxy takes a client that half-closes while waiting for an answer to have left."""
    got = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            event("proxy closed before the request was sent")  # it answered early: read what it said
        s.settimeout(SILENCE_S)
        half_closed = False
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                event("connection reset")  # closed with unread input on its side: still an end, not a hang
                break
            except TimeoutError:
                if half_closed:
                    raise AssertionError(
                        f"no answer and no close within {timeout} s; got {bytes(got[:200])!r}") from None
                half_closed = True
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                s.settimeout(timeout)
                continue
            if not chunk:
                break
            got += chunk
    return bytes(got)


def answered_or_closed(data: bytes) -> None:
    """The property: whatever the client sends, it gets HTTP responses or a close, and nothing breaks inside."""
    proxy = shared_proxy()
    logged = len(proxy.errors.entries)
    answer = exchange(data.replace(ORIGIN, proxy.authority), proxy.port)
    if answer:
        assert STATUS_LINE.match(answer), f"not an HTTP response: {answer[:200]!r}"
        event(f"answered {answer[9:12].decode()}")
    else:
        event("closed without an answer")
    assert proxy.errors.entries[logged:] == [], proxy.errors.entries[logged:]


def serves_normally() -> None:
    proxy = shared_proxy()
    answer = exchange(b"GET http://" + proxy.authority + b"/normal HTTP/1.1\r\nHost: x\r\n\r\n", proxy.port)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"ok /normal"), answer


# -- request heads from a grammar ---------------------------------------------------------------------------
def _tokens(alphabet: str, max_size: int = 12) -> st.SearchStrategy[bytes]:
    return st.text(alphabet, min_size=1, max_size=max_size).map(str.encode)


TCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~"


def mostly(good: st.SearchStrategy[bytes], odd: st.SearchStrategy[bytes], one_in: int = 5) -> st.SearchStrategy[bytes]:
    """`odd` once in `one_in` draws, else `good`: enough requests get far enough to reach the origin."""
    return st.integers(1, one_in).flatmap(lambda n: odd if n == 1 else good)


methods = mostly(st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT"]),
                 st.sampled_from([b"get", b"PRI", b"M-SEARCH", b"TRACE"]) | _tokens(TCHAR, 10) | st.binary(max_size=8))
paths = mostly(st.just(b"/") | _tokens(TCHAR + "/?=&%:@", 40).map(lambda p: b"/fuzz/" + p),
               st.binary(max_size=30).map(lambda p: b"/fuzz/" + p))
targets = mostly(
    paths.map(lambda p: b"http://" + ORIGIN + p),                    # absolute form, to the origin
    st.one_of(
        paths.map(lambda p: b"HTTP://" + ORIGIN + p),
        paths.map(lambda p: b"https://127.0.0.1:1" + p),            # refused (TLS never starts)
        paths.map(lambda p: b"http://127.0.0.1:1" + p),             # refused
        st.just(ORIGIN),                                             # authority form (CONNECT)
        st.sampled_from([b"127.0.0.1:1", b"127.0.0.1:0", b"127.0.0.1:99999", b"[::1", b"*", b"http://", b"http://:80/",
                         b"http://127.0.0.1:x/", b"http://[::1/", b""]),
        paths,                                                       # origin form: not for a regular proxy
        st.integers(8000, 9000).map(lambda n: b"http://" + ORIGIN + b"/" + b"a" * n),  # around the 8 KiB limit
        st.binary(max_size=40),
    ))
versions = mostly(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]),
                  st.sampled_from([b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.1x", b"http/1.1", b"HTTP/9.9", b"HTTP/1", b"",
                                   b"HTTP/1.1 extra"]), one_in=10)
header_names = st.sampled_from([b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Expect", b"Upgrade",
                                b"Proxy-Authorization", b"Content-Encoding", b"Cookie", b"X-Thing"]) \
    | _tokens(TCHAR, 20) | st.binary(max_size=12)
header_values = st.sampled_from([b"chunked", b"gzip, chunked", b"close", b"keep-alive", b"Upgrade", b"websocket",
                                 b"100-continue", b"0", b"5", b"-1", b"18446744073709551616", b"5, 6", b" 5 ", b"x",
                                 b"[::1", b"a:b:c", b"gzip", b"br", b"\xff\xfe"]) \
    | _tokens(TCHAR + " \t", 60) | st.binary(max_size=40)
sane_headers = st.one_of(
    st.sampled_from([b"Accept: */*", b"Connection: close", b"Connection: keep-alive", b"Expect: 100-continue",
                     b"Content-Length: 0", b"Content-Length: 5", b"Transfer-Encoding: chunked",
                     b"Accept-Encoding: gzip", b"Proxy-Connection: keep-alive", b"Upgrade: websocket",
                     b"Connection: Upgrade"]),
    st.tuples(_tokens(TCHAR, 20), _tokens(TCHAR + " ", 60)).map(lambda kv: b"X-" + kv[0] + b": " + kv[1]),
)
separators = st.sampled_from([b": ", b":", b" : ", b":\t", b"", b"::"])
eols = mostly(st.just(b"\r\n"), st.sampled_from([b"\n", b"\r"]), one_in=10)


@st.composite
def request_heads(draw: st.DrawFn) -> bytes:
    eol = draw(eols)
    sp = draw(mostly(st.just(b" "), st.sampled_from([b"  ", b"\t"]), one_in=10))
    line = draw(methods) + sp + draw(targets) + (sp + draw(versions) if draw(st.integers(0, 19)) else b"")
    headers = [draw(mostly(sane_headers, st.builds(lambda *p: b"".join(p), header_names, separators, header_values)))
               for _ in range(draw(st.integers(0, 5)))]
    if draw(st.integers(0, 3)):
        headers.insert(0, b"Host: " + ORIGIN)
    folded = [b" folded continuation"] if draw(st.integers(0, 19)) == 0 else []
    head = eol.join([line, *headers, *folded]) + eol + eol
    body = draw(st.one_of(
        st.just(b""),
        st.binary(max_size=100),
        st.sampled_from([b"5\r\nhello\r\n0\r\n\r\n", b"zz\r\n", b"5\r\nhel", b"0\r\n\r\n", b"ffffffffffffffffff\r\n"]),
    ))
    pipelined = (b"GET http://" + ORIGIN + b"/fuzz/next HTTP/1.1\r\nHost: x\r\n\r\n"
                 if draw(st.integers(0, 4)) == 0 else b"")
    return head + body + pipelined


@FAST
@given(request_heads())
def test_request_heads_from_a_grammar(data: bytes) -> None:
    answered_or_closed(data)


# -- valid heads, mutated ---------------------------------------------------------------------------------
VALID_REQUESTS = [
    b"GET http://" + ORIGIN + b"/fuzz/a?x=1 HTTP/1.1\r\nHost: " + ORIGIN
    + b"\r\nAccept: */*\r\nUser-Agent: fuzz\r\n\r\n",
    b"POST http://" + ORIGIN + b"/fuzz/p HTTP/1.1\r\nHost: " + ORIGIN + b"\r\nContent-Length: 5\r\n\r\nhello",
    b"PUT http://" + ORIGIN + b"/fuzz/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    b"CONNECT " + ORIGIN + b" HTTP/1.1\r\nHost: " + ORIGIN + b"\r\n\r\nGET /fuzz/t HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://" + ORIGIN + b"/fuzz/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"HEAD http://" + ORIGIN + b"/fuzz/h HTTP/1.0\r\n\r\n",
]


def mutate(draw: st.DrawFn, valid: bytes, most: int = 6) -> bytes:
    """`valid` with 1 to `most` byte-level mutations: flip, delete, insert, duplicate, truncate, swap case."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, most))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "duplicate", "truncate", "case"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 16))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16)
                                 | st.sampled_from([b"\r\n", b"\n", b"\x00", b":", b" "]))
        elif op == "duplicate":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 40))]
        elif op == "truncate":
            del data[pos:]
        elif data:
            data[pos:pos + 1] = bytes(data[pos:pos + 1]).swapcase()
    return bytes(data)


@st.composite
def mutated_requests(draw: st.DrawFn) -> bytes:
    return mutate(draw, draw(st.sampled_from(VALID_REQUESTS)))


@FAST
@given(mutated_requests())
def test_mutated_valid_requests(data: bytes) -> None:
    answered_or_closed(data)


def test_proxy_serves_normally_after_fuzzing() -> None:
    serves_normally()
    assert shared_proxy().errors.entries == []


# -- the HAR loader -----------------------------------------------------------------------------------------
def _valid_har() -> bytes:
    from tests.core.test_flowfile import (
        every_kind,  # the flow-file tests' factories: every kind of flow
    )

    return json.dumps(har.export(every_kind()), indent=1).encode()


VALID_HAR = _valid_har()
_tmp = tempfile.TemporaryDirectory(prefix="interpose-har-fuzz-")


def har_flows_or_error(data: bytes) -> None:
    """The property: `har.read` gives flows or raises FlowFileError, nothing else."""
    path = os.path.join(_tmp.name, "fuzz.har")
    with open(path, "wb") as f:
        f.write(data)
    try:
        flows = har.read(path)
    except FlowFileError as e:
        assert str(e), "a FlowFileError must say what is wrong"
        return
    for flow in flows:
        assert isinstance(flow, HTTPFlow)
        har.export([flow])  # what loaded can be exported again


@st.composite
def mutated_har(draw: st.DrawFn) -> bytes:
    raw = bytearray(VALID_HAR)
    for _ in range(draw(st.integers(1, 5))):
        pos = draw(st.integers(0, len(raw) - 1))
        op = draw(st.sampled_from(["flip", "delete", "insert"]))
        if op == "flip":
            raw[pos] ^= draw(st.integers(1, 255))
        elif op == "delete":
            del raw[pos:pos + draw(st.integers(1, 30))]
        else:
            raw[pos:pos] = draw(st.binary(min_size=1, max_size=10))
    return bytes(raw)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=10)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


HAR_PATHS = _paths(json.loads(VALID_HAR))[1:]


@st.composite
def har_with_wrong_values(draw: st.DrawFn) -> bytes:
    """Valid JSON, wrong content: any value anywhere replaced (by any JSON) or removed."""
    doc = json.loads(VALID_HAR)
    path = draw(st.sampled_from(HAR_PATHS))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()):
        parent[path[-1]] = draw(JSON)
    elif isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])
    return json.dumps(doc).encode()


@FAST
@given(st.binary(max_size=2000))
def test_har_random_bytes(data: bytes) -> None:
    har_flows_or_error(data)


@FAST
@given(mutated_har())
def test_har_mutated_bytes(data: bytes) -> None:
    har_flows_or_error(data)


@FAST
@given(har_with_wrong_values())
def test_har_valid_json_with_wrong_values(data: bytes) -> None:
    har_flows_or_error(data)


PROPERTIES: dict[str, tuple[Callable[[bytes], None], st.SearchStrategy[bytes]]] = {
    "http1-grammar": (answered_or_closed, request_heads()),
    "http1-mutated": (answered_or_closed, mutated_requests()),
    "har-random": (har_flows_or_error, st.binary(max_size=2000)),
    "har-mutated": (har_flows_or_error, mutated_har()),
    "har-wrong-values": (har_flows_or_error, har_with_wrong_values()),
}
"""What fuzz/run.py runs again with many more examples: name → (property, strategy of its input)."""
