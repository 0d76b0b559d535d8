"""Ordered multi-dicts: `Headers` (case-insensitive, bytes on the wire) and `MultiDict` (queries, forms, cookies).

Both keep every field in order, duplicates included. Indexing returns one value (headers join duplicates
with ", "); `get_all`/`set_all` see each field.
"""
from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterable, Iterator, MutableMapping


def _b(s: str | bytes) -> bytes:
    return s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


_LOWERED: dict[str | bytes, bytes] = {}


def _lowered(name: str | bytes) -> bytes:
    """A header name as lower-case bytes, remembered for the few hundred names programs ask for."""
    n = _LOWERED.get(name)
    if n is None:
        n = _b(name).lower()
        if len(_LOWERED) < 512:
            _LOWERED[name] = n
    return n


class Headers(MutableMapping[str, str]):
    """HTTP header fields. Names compare case-insensitively; the original case is kept for the wire.

    `Headers(host="example.com", content_type="text/html")` turns underscores into dashes.
    `Headers([(b"Host", b"example.com")])` takes raw fields as they came off the wire.
    """

    __slots__ = ("fields",)

    def __init__(self, fields: Iterable[tuple[bytes | str, bytes | str]] = (), **kwargs: str) -> None:
        self.fields: list[tuple[bytes, bytes]] = [(_b(k), _b(v)) for k, v in fields]
        for k, v in kwargs.items():
            self.fields.append((_b(k.replace("_", "-")), _b(v)))

    @classmethod
    def from_raw(cls, fields: list[tuple[bytes, bytes]]) -> Headers:
        """Adopt a list of byte pairs without copying (hot path)."""
        h = cls.__new__(cls)
        h.fields = fields
        return h

    def get_all(self, name: str) -> list[str]:
        n = _b(name).lower()
        return [_s(v) for k, v in self.fields if k.lower() == n]

    def set_all(self, name: str, values: Iterable[str]) -> None:
        n = _b(name)
        ln = n.lower()
        new: list[tuple[bytes, bytes]] = []
        pos = None
        for k, v in self.fields:
            if k.lower() == ln:
                if pos is None:
                    pos = len(new)
                    n = k
                continue
            new.append((k, v))
        vals = [(n, _b(v)) for v in values]
        if pos is None:
            new.extend(vals)
        else:
            new[pos:pos] = vals
        self.fields = new

    def add(self, name: str, value: str) -> None:
        self.fields.append((_b(name), _b(value)))

    def insert(self, index: int, name: str, value: str) -> None:
        self.fields.insert(index, (_b(name), _b(value)))

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        n = _lowered(name)
        size = len(n)
        found = None
        for k, v in self.fields:
            # The length check spares most lower() calls; names sent in lower case (HTTP/2) spare the rest.
            if len(k) == size and (k == n or k.lower() == n):
                if found is not None:  # a repeated field: all its values, joined
                    return ", ".join(_s(v) for k, v in self.fields if len(k) == size and k.lower() == n)
                found = v
        return default if found is None else _s(found)

    def __setitem__(self, name: str, value: str) -> None:
        self.set_all(name, [value])

    def __delitem__(self, name: str) -> None:
        n = _b(name).lower()
        before = len(self.fields)
        self.fields = [(k, v) for k, v in self.fields if k.lower() != n]
        if len(self.fields) == before:
            raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, (str, bytes)):
            return False
        n = _lowered(name)
        size = len(n)
        return any(len(k) == size and (k == n or k.lower() == n) for k, _ in self.fields)

    def __iter__(self) -> Iterator[str]:
        seen: set[bytes] = set()
        for k, _ in self.fields:
            lk = k.lower()
            if lk not in seen:
                seen.add(lk)
                yield _s(k)

    def __len__(self) -> int:
        return len({k.lower() for k, _ in self.fields})

    def items(self, multi: bool = False) -> ItemsView[str, str] | list[tuple[str, str]]:  # type: ignore[override]
        """The fields (`multi`: every one, duplicates included, as a list) or, as for a dict, one per name."""
        if multi:
            return [(_s(k), _s(v)) for k, v in self.fields]
        return super().items()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self.fields == other.fields
        return NotImplemented

    def copy(self) -> Headers:
        return Headers.from_raw(list(self.fields))

    def __bytes__(self) -> bytes:
        return b"".join(k + b": " + v + b"\r\n" for k, v in self.fields)

    def __repr__(self) -> str:
        return f"Headers[{', '.join(f'{_s(k)}: {_s(v)}' for k, v in self.fields)}]"


class MultiDict(MutableMapping[str, str]):
    """An ordered, case-sensitive multi-dict of strings. `on_change` is called after every edit,
    which is how `request.query["a"] = "b"` rewrites the request's path."""

    def __init__(
        self, fields: Iterable[tuple[str, str]] = (), on_change: Callable[[list[tuple[str, str]]], None] | None = None
    ) -> None:
        self.fields: list[tuple[str, str]] = list(fields)
        self._on_change = on_change

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.fields)

    def get_all(self, key: str) -> list[str]:
        return [v for k, v in self.fields if k == key]

    def set_all(self, key: str, values: Iterable[str]) -> None:
        values = list(values)
        new: list[tuple[str, str]] = []
        placed = False
        for k, v in self.fields:
            if k == key:
                if not placed:
                    new.extend((key, x) for x in values)
                    placed = True
                continue
            new.append((k, v))
        if not placed:
            new.extend((key, x) for x in values)
        self.fields = new
        self._changed()

    def add(self, key: str, value: str) -> None:
        self.fields.append((key, value))
        self._changed()

    def __getitem__(self, key: str) -> str:
        for k, v in self.fields:
            if k == key:
                return v
        raise KeyError(key)

    def __setitem__(self, key: str, value: str) -> None:
        self.set_all(key, [value])

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.fields = [(k, v) for k, v in self.fields if k != key]
        self._changed()

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k for k, _ in self.fields))

    def __len__(self) -> int:
        return len(dict.fromkeys(k for k, _ in self.fields))

    def items(self, multi: bool = False) -> ItemsView[str, str] | list[tuple[str, str]]:  # type: ignore[override]
        """The fields (`multi`: every one, duplicates included, as a list) or, as for a dict, one per name."""
        return list(self.fields) if multi else super().items()

    def __repr__(self) -> str:
        return f"MultiDict({self.fields!r})"
