"""What every TLS context of the proxy shares: the version limits (options `tls_version_client_min`/`_max`,
`tls_version_server_min`/`_max`) and key logging (`SSLKEYLOGFILE` / `INTERPOSE_SSLKEYLOGFILE`)."""
from __future__ import annotations

import os
import ssl
import sys

VERSIONS: dict[str, ssl.TLSVersion | None] = {
    "UNBOUNDED": None,
    "SSL3": ssl.TLSVersion.SSLv3,
    "TLS1": ssl.TLSVersion.TLSv1,
    "TLS1_1": ssl.TLSVersion.TLSv1_1,
    "TLS1_2": ssl.TLSVersion.TLSv1_2,
    "TLS1_3": ssl.TLSVersion.TLSv1_3,
}
"""Option values (mitmproxy's names) → the version; UNBOUNDED leaves OpenSSL's own limit."""
DEFAULT_MIN = "TLS1_2"
DEFAULT_MAX = "UNBOUNDED"

Versions = tuple[str, str]
"""(minimum, maximum) as option values."""


def check_versions(minimum: str, maximum: str, side: str) -> str | None:
    """Why this pair of limits cannot work (the minimum above the maximum), or None."""
    low, high = VERSIONS.get(minimum), VERSIONS.get(maximum)
    if low is not None and high is not None and low > high:
        return f"tls_version_{side}_min ({minimum}) is above tls_version_{side}_max ({maximum})"
    return None


def apply_versions(ctx: ssl.SSLContext, versions: Versions) -> None:
    low, high = VERSIONS.get(versions[0]), VERSIONS.get(versions[1])
    ctx.minimum_version = low if low is not None else ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.maximum_version = high if high is not None else ssl.TLSVersion.MAXIMUM_SUPPORTED


def keylog_file() -> str | None:
    """The file to append TLS secrets to: INTERPOSE_SSLKEYLOGFILE, else SSLKEYLOGFILE, else None."""
    if sys.flags.ignore_environment:
        return None
    return os.environ.get("INTERPOSE_SSLKEYLOGFILE") or os.environ.get("SSLKEYLOGFILE") or None


def apply_keylog(ctx: ssl.SSLContext, path: str | None) -> None:
    """Log this context's secrets (NSS key log format, appended) to `path`; None turns logging off."""
    ctx.keylog_filename = path  # type: ignore[assignment]


def describe_version_error(reason: str, versions: Versions, side: str) -> str | None:
    """A sentence for a handshake that failed over the protocol version, naming the options; else None."""
    said = reason.upper()
    if "VERSION" not in said and "UNSUPPORTED_PROTOCOL" not in said and "NO_PROTOCOLS_AVAILABLE" not in said:
        return None
    return (f"no TLS version both sides accept ({reason}; tls_version_{side}_min={versions[0]}, "
            f"tls_version_{side}_max={versions[1]})")
