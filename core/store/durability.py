"""How often a flow file being written is made durable (fsynced).

Both the flow-file writer (`interpose.store.flowfile`) and the `-w` addon's option
(`interpose.runtime.builtins.save`) need these defaults. They live here, on their own, so that the
addon can declare its option at startup without importing the flow-file code and its codec.
"""
from __future__ import annotations

__all__ = ["FSYNC_EVERY", "FSYNC_S"]

FSYNC_EVERY = 100
"""A writer fsyncs at the latest after this many flows..."""
FSYNC_S = 1.0
"""...or when this many seconds passed since its last fsync (whichever comes first)."""
