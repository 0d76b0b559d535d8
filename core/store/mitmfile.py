"""Reading mitmproxy's flow files (`mitmproxy -w`, `mitmdump -w`) one record at a time.

    kind = sniff(first_bytes)          # "mitmproxy", "pickle" (never loaded) or None
    reader = Reader("flows.mitm")
    for flow in reader:                # FlowFileError at the first damage, after every flow before it
        ...
    reader.count, reader.skipped       # flows yielded; UDP/DNS flows left out

The records are converted by interpose.store.mitmflows; the tnetstrings parsed by interpose.store.tnetstring.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import IO

from interpose.errors import FlowFileError
from interpose.model.flow import Flow
from interpose.store import tnetstring
from interpose.store.mitmflows import BadFlow, convert

__all__ = ["Reader", "check", "sniff"]

_HEAD = re.compile(rb"\s*[0-9]{1,12}:[0-9]{1,12}:")


def sniff(head: bytes) -> str | None:
    """What the first bytes of a file say it is: "mitmproxy" (a tnetstring dictionary, as mitmproxy's
    flow files start), "pickle" (a Python pickle, which must never be loaded), or None."""
    if _HEAD.match(head):
        return "mitmproxy"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    return None


# -- reading a file ------------------------------------------------------------------------------------------
class Reader:
    """Iterating yields every flow of a mitmproxy flow file, one record read at a time. At the first
    damaged or foreign record it raises FlowFileError (file, flow number, byte offset, why), after yielding
    every flow before it. `count` is how many flows were yielded, `skipped` how many UDP/DNS flows were
    left out."""

    def __init__(self, source: str | os.PathLike[str] | IO[bytes]) -> None:
        self.source = source
        self.name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else \
            str(getattr(source, "name", "<stream>"))
        self.count = 0
        self.skipped = 0

    def __iter__(self) -> Iterator[Flow]:
        if not isinstance(self.source, (str, os.PathLike)):
            yield from self._records(self.source)
            return
        try:
            f = open(self.name, "rb")
        except OSError as e:
            raise FlowFileError(f"cannot read {self.name}: {e.strerror or e}") from None
        with f:
            yield from self._records(f)

    def _records(self, f: IO[bytes]) -> Iterator[Flow]:
        n = 0
        it = tnetstring.records(f)
        while True:
            n += 1
            try:
                offset, state = next(it)
            except StopIteration:
                return
            except tnetstring.TNetstringError as e:
                if n == 1 and not e.truncated:
                    raise FlowFileError(f"{self.name}: not a mitmproxy flow file ({e})") from None
                what = "truncated: the file ends inside it" if e.truncated else f"corrupt: {e.msg}"
                raise FlowFileError(f"{self.name}: mitmproxy flow {n} (at byte {e.offset}): {what}") from None
            try:
                flow = convert(state)
            except BadFlow as e:
                if n == 1:
                    raise FlowFileError(f"{self.name}: not a mitmproxy flow file: the first record "
                                        f"(at byte {offset}) is not a flow ({e})") from None
                raise FlowFileError(f"{self.name}: mitmproxy flow {n} (at byte {offset}): {e}") from None
            del state
            if flow is None:
                self.skipped += 1
                continue
            self.count += 1
            yield flow


def check(path: str) -> None:
    """Raise FlowFileError unless the first record of `path` is a mitmproxy flow this reader can take."""
    for _ in Reader(path):
        return
