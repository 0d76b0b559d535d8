"""The built-in addon that checks the TLS options together, at start (a bad value: exit 2 with one message)
and whenever one changes at run time (a bad value is refused and the old one stays)."""
from __future__ import annotations

import re
from typing import Any

from interpose.errors import OptionsError
from interpose.proxy.tls import customcerts, toserver
from interpose.proxy.tls.pemfiles import PemError
from interpose.proxy.tls.versions import check_versions

_REGEX_OPTIONS = ("allow_hosts", "ignore_hosts", "tcp_hosts")


class TlsOptions:
    def configure(self, options: Any, updated: set[str]) -> None:
        if {"allow_hosts", "ignore_hosts"} & updated and options.allow_hosts and options.ignore_hosts:
            raise OptionsError(
                "allow_hosts and ignore_hosts cannot be used together: allow_hosts intercepts only the hosts it "
                "matches, ignore_hosts intercepts all but the ones it matches; use one of them")
        for name in _REGEX_OPTIONS:
            if name in updated and name in options:
                for pattern in getattr(options, name):
                    try:
                        re.compile(pattern)
                    except re.error as e:
                        raise OptionsError(f"{name}: invalid regular expression {pattern!r}: {e}") from None
        for side in ("client", "server"):
            names = {f"tls_version_{side}_min", f"tls_version_{side}_max"}
            if names & updated:
                problem = check_versions(getattr(options, f"tls_version_{side}_min"),
                                         getattr(options, f"tls_version_{side}_max"), side)
                if problem:
                    raise OptionsError(problem)
        try:
            if "certs" in updated and options.certs:
                customcerts.load(tuple(options.certs))
            if "client_certs" in updated:
                toserver.check_client_certs(options.client_certs)
        except PemError as e:
            raise OptionsError(str(e)) from None
