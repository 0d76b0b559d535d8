"""Bodies that may live on disk: the model's side of spilling (the store's side is interpose.store.spill).

`Message.raw_content` (HTTP) and `Message.content` (WebSocket/TCP messages) are plain instance
attributes, and the class also holds a `Spillable` descriptor under the same name. It defines only
`__get__`, so it is a *non-data* descriptor: while the instance has its own value (always, until
spilled) Python returns that value and never calls the descriptor, which is the same mechanism
`functools.cached_property` uses. Spilling puts a `BodyHandle` into the instance's `_spill` and deletes
the instance attribute: from then on a read falls through to the descriptor, which reads the bytes
back through the handle. Assigning a new value stores it in the instance again, so an edited body
simply stops being spilled. Reading costs about 10 ns more than a plain attribute; writing, the same.

The model only knows the handle's shape (`BodyHandle`); where the bytes are is the store's business.
"""
from __future__ import annotations

from typing import Any, Protocol

__all__ = ["BodyHandle", "Spillable"]


class BodyHandle(Protocol):
    """Where one spilled body is, as the model sees it: its length, and a way to read it back."""

    @property
    def size(self) -> int: ...

    def read(self) -> bytes: ...


class Spillable:
    """Class attribute for a body attribute: reads a spilled body back while the instance has no value
    of its own. A non-data descriptor (no `__set__`), so reads and writes of a value the instance
    holds never call it, and assigning a value un-spills."""

    name = "raw_content"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        ref: BodyHandle | None = obj._spill
        if ref is None:
            raise AttributeError(self.name)
        return ref.read()
