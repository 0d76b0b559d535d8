"""Authenticate to the upstream proxy or reverse-proxied server (upstream_auth=user:pass).

`--mode upstream:http://proxy:3128 --set upstream_auth=user:pass` adds
`Proxy-Authorization: Basic ...` to what interpose sends the upstream proxy: plain-HTTP requests,
which go to it in absolute form (`GET http://host/path`), and the CONNECT that opens a tunnel
through it for HTTPS, WebSocket and TCP traffic. In `--mode reverse:URL` the server is the one
asking, so the credentials go into `Authorization` instead (as mitmproxy does).

The header is set at `requestheaders` (so that a body streamed to the server goes out with it) and
again at `request`, in case an addon or an edit in between dropped it. What the client sent in that
header is replaced. Requests that run inside a client's CONNECT tunnel reach the upstream proxy
through the tunnel's CONNECT, so they get no header of their own (it would leak to the server).

The CONNECT towards the upstream proxy gets the header through `server_conn.connect_headers`, set at
`serverconnect`; a core without that field cannot authenticate tunnels, and this addon says so once.
"""
from __future__ import annotations

import base64
import weakref
from typing import Any

from interpose import OptionsError, ctx
from interpose.http import HTTPFlow


def parse_upstream_auth(spec: str) -> str:
    """`user:pass` → the value of a Basic authorization header. The password may be empty."""
    user, sep, _ = spec.partition(":")
    if not sep or not user:
        raise OptionsError(f"invalid upstream_auth {spec!r}: use user:pass")
    return "Basic " + base64.b64encode(spec.encode("utf-8")).decode("ascii")


class UpstreamAuth:
    def __init__(self) -> None:
        self.auth: str | None = None
        """The header value, or None when the option is unset."""
        self.mode = "regular"
        self.tunnels: weakref.WeakSet[Any] = weakref.WeakSet()
        """Client connections that opened a CONNECT tunnel: their requests travel inside it."""
        self._warned = False

    def load(self, loader: Any) -> None:
        loader.add_option("upstream_auth", str | None, None,
                          "Credentials (user:pass) for the upstream proxy in upstream mode, "
                          "or for the server (Authorization) in reverse mode.")

    def configure(self, options: Any, updated: set[str]) -> None:
        if "upstream_auth" in updated:
            spec = options.upstream_auth
            self.auth = parse_upstream_auth(spec) if spec else None
        if "mode" in updated:
            self.mode = str(options.mode).partition(":")[0].strip().lower()

    # -- the CONNECT interpose sends to the upstream proxy -----------------------------------------
    def serverconnect(self, server_conn: Any) -> None:
        if self.auth is None or self.mode != "upstream" or server_conn.via is None:
            return
        headers = getattr(server_conn, "connect_headers", None)
        if headers is None:
            if not self._warned:
                self._warned = True
                ctx.log.warn("upstream_auth: this interpose core cannot add headers to the CONNECT it sends "
                             "the upstream proxy; tunnelled (HTTPS, WebSocket, TCP) traffic goes unauthenticated")
            return
        headers[:] = [(k, v) for k, v in headers if k.lower() != "proxy-authorization"]
        headers.append(("Proxy-Authorization", self.auth))

    # -- requests ------------------------------------------------------------------------------------
    def http_connect(self, flow: HTTPFlow) -> None:
        refused = flow.response is not None and not 200 <= flow.response.status_code < 300
        if not refused:
            self.tunnels.add(flow.client_conn)

    def requestheaders(self, flow: HTTPFlow) -> None:
        self._authorize(flow)

    def request(self, flow: HTTPFlow) -> None:
        self._authorize(flow)

    def _authorize(self, flow: HTTPFlow) -> None:
        if self.auth is None or flow.response is not None:
            return
        if self.mode == "upstream":
            # Only plain HTTP outside a tunnel goes to the upstream proxy in absolute form.
            if flow.request.scheme == "http" and flow.client_conn not in self.tunnels:
                flow.request.headers["Proxy-Authorization"] = self.auth
        elif self.mode == "reverse":
            flow.request.headers["Authorization"] = self.auth


addons = [UpstreamAuth()]
