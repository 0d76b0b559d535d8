"""Transparent mode (Linux): where a redirected connection was going before iptables/nftables sent it here.

The kernel's NAT keeps the original destination of a connection it redirected (`REDIRECT`, `DNAT`,
nftables `redirect`); `getsockopt(SO_ORIGINAL_DST)` (IPv4) and `IP6T_SO_ORIGINAL_DST` (IPv6) read it from
the accepted socket. A socket nobody redirected has none (ENOENT), or, when connection tracking saw it,
has the proxy's own address: both are refused with a reason, since forwarding would loop back here.
"""
from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from typing import Any

SO_ORIGINAL_DST = 80
"""linux/netfilter_ipv4.h"""
IP6T_SO_ORIGINAL_DST = 80
"""linux/netfilter_ipv6/ip6_tables.h"""
SOL_IP = getattr(socket, "SOL_IP", 0)
SOL_IPV6 = getattr(socket, "SOL_IPV6", 41)


class NoOriginalDestination(Exception):
    """The connection was not redirected to the proxy: the message says why, for the log."""


def _v4_mapped(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None


def original_destination(sock: Any, sockname: tuple[Any, ...]) -> tuple[str, int]:
    """(host, port) the client connected to before it was redirected here. `sock` is the accepted socket
    (asyncio's or uvloop's), `sockname` its local address. Raises NoOriginalDestination."""
    if sock is None:
        raise NoOriginalDestination("no socket to ask for the original destination")
    family = sock.family
    local = str(sockname[0]) if sockname else ""
    try:
        if family == socket.AF_INET or (family == socket.AF_INET6 and _v4_mapped(local)):
            raw = sock.getsockopt(SOL_IP, SO_ORIGINAL_DST, 16)
            port, = struct.unpack_from("!H", raw, 2)
            host = socket.inet_ntop(socket.AF_INET, raw[4:8])
        elif family == socket.AF_INET6:
            raw = sock.getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST, 28)
            port, = struct.unpack_from("!H", raw, 2)
            host = socket.inet_ntop(socket.AF_INET6, raw[8:24])
        else:
            raise NoOriginalDestination(f"not a TCP/IP socket (family {family})")
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOPROTOOPT, errno.EOPNOTSUPP):
            raise NoOriginalDestination(
                "the connection has no original destination: it reached the proxy directly, not through an "
                "iptables/nftables redirect (see docs/transparent.md)") from None
        raise NoOriginalDestination(f"cannot read the original destination: {e.strerror or e}") from None
    if _same_endpoint((host, port), sockname):
        raise NoOriginalDestination(
            f"the original destination {_show(host, port)} is the proxy itself: the client connected to it "
            "directly, not through a redirect (see docs/transparent.md)")
    return host, port


def _same_endpoint(dest: tuple[str, int], sockname: tuple[Any, ...]) -> bool:
    if not sockname or len(sockname) < 2 or dest[1] != sockname[1]:
        return False
    try:
        a, b = ipaddress.ip_address(dest[0]), ipaddress.ip_address(str(sockname[0]).split("%")[0])
    except ValueError:
        return False
    if isinstance(b, ipaddress.IPv6Address) and b.ipv4_mapped is not None:
        b = b.ipv4_mapped
    return a == b


def _show(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
