"""What the empty flow list shows: how to point a client at the proxy, where the CA is, and the onboarding page.
With a view filter that hides every flow, it says so instead."""
from __future__ import annotations

import os
from typing import Any

import urwid

Markup = list[Any]


def client_host(host: str) -> str:
    """The address a local client uses for a proxy listening on `host` (all interfaces → loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def welcome_markup(host: str, port: int, ca_path: str, onboarding_host: str | None) -> Markup:
    """The empty list's text. `onboarding_host` is None when the onboarding page is off."""
    h = client_host(host)
    proxy = f"http://{h}:{port}"
    rows: Markup = [
        ("title", "No flows yet. Point a client at the proxy:\n\n"),
        ("key", "  listening at    "), ("text", f"{host}:{port}\n"),
        ("key", "  curl            "), ("text", f"curl -x {proxy} --cacert {ca_path} https://example.com\n"),
        ("key", "  environment     "), ("text", f"export http_proxy={proxy} https_proxy={proxy}\n"),
        ("key", "  browser         "), ("text", f"HTTP and HTTPS proxy {h}, port {port} (Firefox: Settings → "
                                                f"Network Settings → Manual proxy configuration; "
                                                f"Chromium: --proxy-server={proxy})\n"),
        ("key", "  CA certificate  "), ("text", f"{ca_path}: the client must trust it to be shown HTTPS\n"),
    ]
    if onboarding_host:
        rows += [("key", "  onboarding page "),
                 ("text", f"http://{onboarding_host}/ through the proxy: install steps for every platform and "
                          "the certificate to download\n")]
    rows += [("text", "\n"),
             ("dim", "A client that does not trust the CA shows up here as a flow with an error.\n"),
             ("dim", "? shows the keys · i sets an intercept filter · L loads a flow file · Q quits")]
    return rows


def welcome_for(master: Any, address: tuple[str, int]) -> Markup:
    """The empty list's text for the proxy as it listens now (called again after a re-bind)."""
    opts = master.options
    certs = master.certs
    ca_path = certs.ca_cert_path if certs else os.path.join(opts.confdir, "interpose-ca-cert.pem")
    return welcome_markup(address[0], address[1], ca_path, opts.onboarding_host if opts.onboarding else None)


def filtered_markup(expr: str, total: int) -> Markup:
    return [("title", f"No flow matches the view filter {expr!r}"),
            ("dim", f" ({total} hidden): f changes it, | turns it off")]


def render(markup: Markup, size: tuple[int, int], focus: bool) -> urwid.Canvas:
    widget = urwid.Filler(urwid.Padding(urwid.Text(markup), left=1, right=1), valign="top", top=1)
    return widget.render(size, focus)
