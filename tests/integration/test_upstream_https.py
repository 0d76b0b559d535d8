"""`--mode upstream:https://HOST:PORT`: TLS to the upstream proxy, CONNECT inside it, the origin's TLS inside
the tunnel (TLS in TLS), and plain HTTP in absolute form over the proxy's TLS.

The HTTPS upstream proxy is real: a second interpose (regular mode) behind a small TLS terminator that
the test starts (`TlsTerminator`, certificate from the origins' test CA). Curl is the client.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from interpose.http import HTTPFlow
from tests.addons import script
from tests.conftest import Recorder, curl
from tests.tls_servers import TestCA, https_url


class TlsTerminator:
    """Accepts TLS (the test CA's leaf for localhost and 127.0.0.1) and relays the plaintext to `backend`."""

    def __init__(self, ca: TestCA, backend: tuple[str, int]) -> None:
        self.ca = ca
        self.backend = backend
        self.port = 0
        self.handshakes = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> TlsTerminator:
        context = self.ca.server_context(("http/1.1",))
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            breader, bwriter = await asyncio.open_connection(*self.backend)
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        try:
            await asyncio.gather(pump(reader, bwriter), pump(breader, writer))
        finally:
            self._tasks.discard(task)


def ca_of(proxy: Any) -> str:
    return str(proxy.master.certs.ca_cert_path)


def flows(rec: Recorder, hook: str = "response") -> list[HTTPFlow]:
    return [args[0] for name, args in rec.calls if name == hook]


@pytest.fixture
async def https_upstream(make_proxy, test_ca, tmp_path) -> AsyncIterator[Any]:
    """A factory: (back proxy recorder, back proxy, terminator) for back-proxy options."""
    terminators: list[TlsTerminator] = []

    async def factory(**back_opts: Any) -> tuple[Recorder, Any, TlsTerminator, str]:
        rec = Recorder(["request", "response", "http_connect", "error"])
        back = await make_proxy(rec, ssl_verify_upstream_trusted_ca=test_ca.path, **back_opts)
        term = await TlsTerminator(test_ca, (back.host, back.port)).start()
        terminators.append(term)
        # The front trusts the terminator's CA (the test CA) and the back proxy's (it forges the origins').
        bundle = tmp_path / "front-trust.pem"
        bundle.write_bytes(Path(test_ca.path).read_bytes() + Path(ca_of(back)).read_bytes())
        return rec, back, term, str(bundle)

    yield factory
    for t in terminators:
        await t.stop()


async def test_https_origin_through_an_https_upstream_is_tls_in_tls(make_proxy, https_upstream, h1_origin):
    back_rec, back, term, bundle = await https_upstream()
    front_rec = Recorder(["response", "error"])
    front = await make_proxy(front_rec, mode=f"upstream:https://127.0.0.1:{term.port}",
                             ssl_verify_upstream_trusted_ca=bundle)
    code, out, err = await curl("--cacert", ca_of(front), "-x", front.url, https_url(h1_origin.port, "/inner"))
    assert (code, out) == (0, b"ok /inner"), err
    await front_rec.wait_for("response")
    [flow] = flows(front_rec)
    assert flow.server_conn.via == ("127.0.0.1", term.port)
    # The front's TLS to the origin (forged by the back proxy) ran inside the TLS to the terminator.
    assert flow.server_conn.tls is not None and flow.server_conn.tls.sni == "localhost"
    assert term.handshakes == 1
    await back_rec.wait_for("response")
    [connect] = flows(back_rec, "http_connect")
    assert (connect.request.host, connect.request.port) == ("localhost", h1_origin.port)


async def test_plain_http_goes_in_absolute_form_over_the_proxys_tls(make_proxy, https_upstream, origin):
    back_rec, back, term, bundle = await https_upstream()
    front = await make_proxy(mode=f"upstream:https://127.0.0.1:{term.port}", ssl_verify_upstream_trusted_ca=bundle)
    for path in ("/one", "/two"):
        code, out, err = await curl("-x", front.url, f"{origin.url}{path}")
        assert (code, out) == (0, f"ok {path}".encode()), err
    await back_rec.wait_for("response", 2)
    assert [f.request.url for f in flows(back_rec)] == [f"{origin.url}/one", f"{origin.url}/two"]
    assert flows(back_rec, "http_connect") == []


async def test_h2_origin_speaks_h2_inside_the_tunnel(make_proxy, https_upstream, h2_origin):
    back_rec, back, term, bundle = await https_upstream()
    front_rec = Recorder(["response"])
    front = await make_proxy(front_rec, mode=f"upstream:https://127.0.0.1:{term.port}",
                             ssl_verify_upstream_trusted_ca=bundle)
    code, out, err = await curl("--http2", "--cacert", ca_of(front), "-x", front.url,
                                https_url(h2_origin.port, "/echo"))
    assert code == 0, err
    assert json.loads(out)["http_version"] == "2"
    await front_rec.wait_for("response")
    [flow] = flows(front_rec)
    assert flow.server_conn.alpn == "h2" and flow.request.http_version == "HTTP/2.0"


async def test_large_body_through_tls_in_tls(make_proxy, https_upstream, h2_origin):
    back_rec, back, term, bundle = await https_upstream()
    front = await make_proxy(mode=f"upstream:https://127.0.0.1:{term.port}", ssl_verify_upstream_trusted_ca=bundle)
    code, out, err = await curl("--http1.1", "--cacert", ca_of(front), "-x", front.url,
                                https_url(h2_origin.port, "/bytes/3000000"))
    assert code == 0, err
    assert out == b"x" * 3_000_000


async def test_upstream_auth_over_an_https_upstream(make_proxy, https_upstream, origin, h1_origin):
    back_rec, back, term, bundle = await https_upstream(proxyauth="user:pass")
    mode = f"upstream:https://127.0.0.1:{term.port}"
    without = await make_proxy(mode=mode, ssl_verify_upstream_trusted_ca=bundle)
    code, out, err = await curl("-si", "-x", without.url, f"{origin.url}/a")
    assert code == 0, err
    assert out.startswith(b"HTTP/1.1 407"), out[:200]
    code, out, err = await curl("-s", "-w", "\n%{http_code}", "--cacert", ca_of(without), "-x", without.url,
                                https_url(h1_origin.port, "/t"))
    body, status = out.rsplit(b"\n", 1)
    assert status == b"502" and b"upstream proxy refused CONNECT: 407" in body, out

    with_auth = await make_proxy(mode=mode, ssl_verify_upstream_trusted_ca=bundle, scripts=[script("upstream_auth")])
    with_auth.options.set("upstream_auth=user:pass")
    code, out, err = await curl("-si", "-x", with_auth.url, f"{origin.url}/a")
    assert code == 0, err
    assert out.startswith(b"HTTP/1.1 200"), out[:200]
    # A CONNECT tunnel inside the proxy's TLS carries the credentials too.
    code, out, err = await curl("--cacert", ca_of(with_auth), "-x", with_auth.url, https_url(h1_origin.port, "/t"))
    assert (code, out) == (0, b"ok /t"), err
    assert origin.received[-1].header("proxy-authorization") is None


async def test_untrusted_https_upstream_gets_502_and_ssl_insecure_accepts_it(make_proxy, https_upstream, origin):
    _, _, term, _ = await https_upstream()
    strict = await make_proxy(mode=f"upstream:https://127.0.0.1:{term.port}")
    code, out, err = await curl("-s", "-w", "\n%{http_code}", "-x", strict.url, f"{origin.url}/x")
    body, status = out.rsplit(b"\n", 1)
    assert status == b"502" and b"certificate verify failed" in body, out
    assert f"upstream proxy 127.0.0.1:{term.port}".encode() in body

    lax = await make_proxy(mode=f"upstream:https://127.0.0.1:{term.port}", ssl_insecure=True)
    code, out, err = await curl("-x", lax.url, f"{origin.url}/x")
    assert (code, out) == (0, b"ok /x"), err


async def test_plain_http_upstream_where_tls_was_expected_is_a_502_with_the_reason(make_proxy, origin, h1_origin):
    back = await make_proxy()
    front = await make_proxy(mode=f"upstream:https://127.0.0.1:{back.port}")
    for url in (f"{origin.url}/x", f"{origin.url}/y"):
        code, out, err = await curl("-s", "-w", "\n%{http_code}", "-x", front.url, url)
        assert code == 0, err
        body, status = out.rsplit(b"\n", 1)
        assert status == b"502", out
        assert f"TLS handshake with the upstream proxy 127.0.0.1:{back.port} failed".encode() in body, body
        assert b"plain HTTP" in body
    # An HTTPS request meets the same reason, and the proxy keeps serving.
    code, out, err = await curl("-s", "-w", "\n%{http_code}", "--cacert", ca_of(front), "-x", front.url,
                                https_url(h1_origin.port, "/z"))
    body, status = out.rsplit(b"\n", 1)
    assert status == b"502" and b"plain HTTP" in body, out
    assert origin.received == []


async def test_ignored_hosts_are_relayed_untouched_through_the_https_upstream(make_proxy, https_upstream, h1_origin):
    back_rec, back, term, bundle = await https_upstream()
    front_rec = Recorder(["response", "http_connect"])
    front = await make_proxy(front_rec, mode=f"upstream:https://127.0.0.1:{term.port}", ignore_hosts=["localhost"],
                             ssl_verify_upstream_trusted_ca=bundle)
    # The front passes the client's TLS through (over its own TLS to the terminator): the certificate the
    # client sees is the back proxy's forgery, from the CA both proxies here share.
    code, out, err = await curl("--cacert", ca_of(back), "-x", front.url, https_url(h1_origin.port, "/pass"))
    assert (code, out) == (0, b"ok /pass"), err
    await back_rec.wait_for("response")
    assert flows(front_rec) == []
    assert [f.request.path for f in flows(back_rec)] == ["/pass"]
