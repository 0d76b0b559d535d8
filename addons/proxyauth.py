"""Require proxy authentication (proxyauth=user:pass, any, or @htpasswd-file), as a loadable addon.

Proxy authentication is built into the core (the `proxyauth` option, `--proxyauth`): this addon is a thin
handle on it, so that `-s addons/proxyauth.py --set proxyauth=alice:secret` and the addon picker work as for
mitmproxy's bundled addon. Loaded without a value, it says that nothing is required yet; the core checks
the credentials (HTTP 407 with Proxy-Authenticate, or the SOCKS5 username/password exchange).
"""
from __future__ import annotations

from typing import Any

from interpose import ctx


class ProxyAuthAddon:
    name = "proxyauth_addon"

    def configure(self, options: Any, updated: set[str]) -> None:
        if "proxyauth" in updated and not options.proxyauth:
            ctx.log.info("proxyauth addon: no credentials are required until proxyauth is set "
                         "(user:pass, any, or @htpasswd-file)")


addons = [ProxyAuthAddon()]
