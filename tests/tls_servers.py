"""Real local TLS origins for tests, signed by a test CA of their own (not the proxy's).

    ca = TestCA(tmp_path / "origin-ca")             # "interpose test origin CA"; trust it with ca.path
    h1 = await start_h1_origin(ca)                  # tests.servers.Origin over TLS, ALPN http/1.1 only
    h2 = await H2Origin(ca).start()                 # hypercorn: ALPN h2 and http/1.1
    h2only = await H2Origin(ca, alpn=("h2",)).start()
    https_url(h1.port, "/echo")                     # "https://localhost:PORT/echo"

Every origin's certificate names both `localhost` and `127.0.0.1`.

`H2Origin` routes (any method; the request body is counted, never kept):
    /echo...        200 JSON {http_version, method, path, query, scheme, headers: {name: value}, body_size}
    /bytes/N        N bytes of b"x", sent in 64 KiB pieces
    /slow           answers 200 "slow" once `release` is set (or after 10 s)
    anything else   200 text "ok <path>"
Each request is recorded in `received` (the same dict /echo answers) once its body has arrived;
`wait_received(n)` waits for the n-th.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypercorn.asyncio import serve
from hypercorn.config import Config

from interpose.proxy.tls.certs import CertStore, LeafCert
from tests.servers import Origin

ORIGIN_NAMES = ("localhost", "127.0.0.1")
TEST_CA_NAME = "interpose test origin CA"


def https_url(port: int, path: str = "/", host: str = "localhost") -> str:
    return f"https://{host}:{port}{path}"



def start_hypercorn(app: Any, config: Config, stop: asyncio.Event,
                    backlog: int = 64) -> tuple[int, asyncio.Task[None]]:
    """Serve `app` with hypercorn on a loopback port of its own until `stop` is set: (port, task).
    The socket is bound here to know the port; hypercorn adopts it through fd://."""
    config.graceful_timeout = 1.0
    config.accesslog = None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    port = sock.getsockname()[1]
    config.bind = [f"fd://{sock.detach()}"]
    return port, asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]

class TestCA:
    """A CA for origin servers, distinct from any proxy's CA (its own key and name)."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TEST_CA_NAME)])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        self.path = str(directory / "test-ca-cert.pem")
        """The CA certificate (PEM) a client or the proxy trusts to accept the origins."""
        Path(self.path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.cert = cert
        self.store = CertStore(key, cert, self.path)
        self.directory = directory

    @property
    def leaf(self) -> LeafCert:
        """The certificate every origin presents."""
        return self.store.get_cert(ORIGIN_NAMES[0], ORIGIN_NAMES[1:])

    def server_context(self, alpn: Sequence[str]) -> ssl.SSLContext:
        return self.store.ssl_context(ORIGIN_NAMES[0], ORIGIN_NAMES[1:], alpn=tuple(alpn))

    def client_context(self, alpn: Sequence[str] = ()) -> ssl.SSLContext:
        """A client context that trusts this CA only."""
        ctx = ssl.create_default_context(cafile=self.path)
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        return ctx

    def leaf_files(self) -> tuple[str, str]:
        """(certfile, keyfile) of the origin leaf, for servers that only read files (hypercorn)."""
        leaf = self.leaf
        cert_path, key_path = self.directory / "leaf-chain.pem", self.directory / "leaf-key.pem"
        if not cert_path.exists():
            cert_path.write_bytes(leaf.chain_pem)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(leaf.key_pem)
        return str(cert_path), str(key_path)


async def start_h1_origin(ca: TestCA) -> Origin:
    """`tests.servers.Origin` (h11, HTTP/1.1 only) behind TLS; ALPN offers http/1.1 alone."""
    return await Origin().start(ssl=ca.server_context(("http/1.1",)))


class H2Origin:
    """A hypercorn server over TLS speaking HTTP/2 (and HTTP/1.1 unless `alpn` leaves it out)."""

    def __init__(self, ca: TestCA, alpn: Sequence[str] = ("h2", "http/1.1"), max_concurrent_streams: int = 100) -> None:
        self.ca = ca
        self.alpn = list(alpn)
        self.max_concurrent_streams = max_concurrent_streams
        self.port = 0
        self.received: list[dict[str, Any]] = []
        self.release = asyncio.Event()
        """Set it to let the requests waiting in /slow answer."""
        self._changed = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return https_url(self.port, "")

    async def start(self) -> H2Origin:
        certfile, keyfile = self.ca.leaf_files()
        config = Config()
        config.certfile, config.keyfile = certfile, keyfile
        config.alpn_protocols = self.alpn
        config.h2_max_concurrent_streams = self.max_concurrent_streams
        self.port, self._task = start_hypercorn(self._app, config, self._stop, backlog=256)
        return self

    async def stop(self) -> None:
        self._stop.set()
        self.release.set()
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(5):
                    await self._task

    async def wait_received(self, n: int, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < n:
                self._changed.clear()
                await self._changed.wait()

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            size += len(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        path = scope["path"]
        rec = {
            "http_version": scope["http_version"],
            "method": scope["method"],
            "path": path,
            "query": scope["query_string"].decode("latin-1"),
            "scheme": scope["scheme"],
            "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            "body_size": size,
        }
        self.received.append(rec)
        self._changed.set()

        async def answer(body: bytes, content_type: bytes = b"text/plain") -> None:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        parts = path.strip("/").split("/")
        if path.startswith("/echo"):
            await answer(json.dumps(rec).encode(), b"application/json")
        elif parts[0] == "bytes" and len(parts) == 2:
            n = int(parts[1])
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/octet-stream"),
                                    (b"content-length", str(n).encode())]})
            chunk = b"x" * 65536
            sent = 0
            while sent < n:
                k = min(len(chunk), n - sent)
                sent += k
                await send({"type": "http.response.body", "body": chunk[:k], "more_body": sent < n})
        elif path == "/slow":
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await self.release.wait()
            await answer(b"slow")
        else:
            await answer(f"ok {path}".encode())


# -- clients ----------------------------------------------------------------------
async def open_tunnel(proxy_port: int, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A CONNECT tunnel through the proxy at 127.0.0.1:proxy_port; fails unless the proxy answers 200."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    authority = f"{host}:{port}"
    writer.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        writer.close()
        raise AssertionError(f"CONNECT {authority} refused: {head!r}")
    return reader, writer


async def tls_through_proxy(
    proxy_port: int, host: str, port: int, context: ssl.SSLContext, server_hostname: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """CONNECT, then a TLS handshake inside the tunnel (SNI = server_hostname or host, none for IPs)."""
    reader, writer = await open_tunnel(proxy_port, host, port)
    async with asyncio.timeout(10):
        await writer.start_tls(context, server_hostname=server_hostname or host)
    return reader, writer


def peer_cert(writer: asyncio.StreamWriter) -> x509.Certificate:
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der)


def san(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) of a certificate's subjectAltName."""
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ext.get_values_for_type(x509.DNSName), [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
