"""interpose.proxy.transparent.original_destination on sockets nobody redirected: a reason, never a crash."""
from __future__ import annotations

import socket
import sys

import pytest

from interpose.proxy.transparent import NoOriginalDestination, original_destination

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_ORIGINAL_DST is Linux only")


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_a_direct_connection_has_no_original_destination(family, host):
    with socket.socket(family) as listener:
        try:
            listener.bind((host, 0))
        except OSError as e:
            pytest.skip(f"cannot bind {host}: {e}")
        listener.listen(1)
        with socket.create_connection(listener.getsockname()[:2]) as client:
            accepted, _ = listener.accept()
            with accepted:
                with pytest.raises(NoOriginalDestination) as exc:
                    original_destination(accepted, accepted.getsockname())
    # Without connection tracking there is none; with it, the destination is the listener itself.
    assert "not through" in str(exc.value) and "redirect" in str(exc.value)
    assert client is not None


def test_other_sockets_are_refused_with_a_reason():
    a, b = socket.socketpair()
    with a, b:
        with pytest.raises(NoOriginalDestination, match="not a TCP/IP socket"):
            original_destination(a, ())
    with pytest.raises(NoOriginalDestination, match="no socket"):
        original_destination(None, ())
