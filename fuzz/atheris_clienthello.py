"""Coverage-guided fuzzing of the TLS ClientHello parser (`interpose.proxy.tls.clienthello.parse_client_hello`)
with atheris.

    pip install atheris
    python fuzz/atheris_clienthello.py                       # 60 s from real ClientHellos as seeds
    python fuzz/atheris_clienthello.py -max_total_time=3600 CORPUS_DIR

Any libFuzzer flag works. The property: the parser returns a ClientHello, returns None (needs more
bytes) or raises ClientHelloError; anything else (another exception, a hang, a crash) is a finding,
and libFuzzer writes the input to `crash-*` in the current directory.
"""
from __future__ import annotations

import ssl
import sys

import atheris
from _common import libfuzzer_args

with atheris.instrument_imports():
    from interpose.proxy.tls.clienthello import ClientHello, ClientHelloError, parse_client_hello


def real_hello(sni: str | None, alpn: list[str]) -> bytes:
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def test_one_input(data: bytes) -> None:
    try:
        hello = parse_client_hello(data)
    except ClientHelloError:
        return
    if hello is not None:
        assert isinstance(hello, ClientHello)
        assert data.startswith(hello.raw)
        assert hello.sni is None or isinstance(hello.sni, str)


def main() -> None:
    seeds = [real_hello("example.com", ["h2", "http/1.1"]), real_hello("localhost", []), real_hello(None, ["http/1.1"])]
    atheris.Setup(libfuzzer_args(sys.argv, seeds, "clienthello"), test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
