"""AnchoredMemo: the bounded memo the engine profiles keep for results that depend on a model (or layout).

Keys hold ``id()`` of that object, the anchor, because pydantic models are not hashable cheaply. Each
entry keeps the anchor itself: its id cannot be reused by another object while the entry lives, and a
lookup hits only when the stored anchor is the very object asked about. Results that depend on plain
values only use ``anchor=None``. The working set is one plan being edited, so the memo is simply emptied
when it outgrows its size.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class AnchoredMemo(Generic[V]):
    __slots__ = ("_entries", "_size")

    def __init__(self, size: int) -> None:
        self._entries: dict[Hashable, tuple[object, V]] = {}
        self._size = size

    def get(self, key: Hashable, anchor: object, compute: Callable[..., V], *args: object) -> V:
        """The value for ``key`` computed for this ``anchor``, else ``compute(*args)`` (then stored)."""
        hit = self._entries.get(key)
        if hit is not None and hit[0] is anchor:
            return hit[1]
        if len(self._entries) > self._size:
            self._entries.clear()
        value = compute(*args)
        self._entries[key] = (anchor, value)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
