"""The onboarding page (options `onboarding`, `onboarding_host`): requests through the proxy to
`http://interpose.it/` (or https, through CONNECT and a forged certificate) are answered by the proxy itself
at `requestheaders`, so they never reach the network. `/` says how to point clients at the proxy and install
the CA on each platform; `/cert/pem` and `/cert/cer` download the CA certificate, never its key."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interpose.http import Response
from interpose.runtime.builtins.onboarding_page import not_found, page

CertInfo = Callable[[], tuple[str, bytes, bytes] | None]
"""(path of interpose-ca-cert.pem, its PEM bytes, its DER bytes), or None before the CA is loaded."""


def is_onboarding_host(options: Any, host: str | None) -> bool:
    """Whether `host` is the onboarding page's host and the page is on."""
    if not host or not options.onboarding:
        return False
    return host.lower().rstrip(".") == options.onboarding_host.lower()


class Onboarding:
    name = "onboarding"

    def __init__(self, cert_info: CertInfo) -> None:
        self.cert_info = cert_info
        self.options: Any = None

    def configure(self, options: Any, updated: set[str]) -> None:
        self.options = options

    def requestheaders(self, flow: Any) -> None:
        req = flow.request
        if flow.response is not None or self.options is None or req.method == "CONNECT":
            return
        if not is_onboarding_host(self.options, req.pretty_host):
            return
        sockname = flow.client_conn.sockname  # the proxy's address as this client reached it
        proxy = f"{sockname[0]}:{sockname[1]}" if sockname else "HOST:PORT"
        flow.response = self.answer(req.path.split("?", 1)[0], req.scheme == "https", proxy)
        flow.metadata["onboarding"] = True

    def answer(self, path: str, over_tls: bool, proxy: str) -> Response:
        host = self.options.onboarding_host
        info = self.cert_info()
        if info is None:
            return Response.make(503, "interpose: the CA is not loaded yet\n", {"content-type": "text/plain"})
        ca_path, pem, der = info
        if path in ("/cert/pem", "/cert/pem/"):
            return Response.make(200, pem, {
                "content-type": "application/x-x509-ca-cert",
                "content-disposition": 'attachment; filename="interpose-ca-cert.pem"',
                "cache-control": "no-store"})
        if path in ("/cert/cer", "/cert/cer/"):
            return Response.make(200, der, {
                "content-type": "application/pkix-cert",
                "content-disposition": 'attachment; filename="interpose-ca-cert.cer"',
                "cache-control": "no-store"})
        if path in ("", "/", "/index.html"):
            return Response.make(200, page(host, proxy, ca_path, over_tls),
                                 {"content-type": "text/html; charset=utf-8", "cache-control": "no-store"})
        return Response.make(404, not_found(host, path), {"content-type": "text/html; charset=utf-8"})
