"""A bounded memo for the per-statement path: one dict look-up on a hit."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

__all__ = ["memo"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def memo(compute: Callable[[K], V], limit: int = 4096) -> Callable[[K], V]:
    """``compute``, remembered by argument; forgets everything past ``limit`` entries.

    For values that repeat (statement texts, call sites): a hit is one dict
    look-up, and clearing at the bound keeps memory fixed without per-hit
    bookkeeping. ``compute`` must not return None (None means "not known").
    """
    cache: dict[K, V] = {}

    def remembered(key: K) -> V:
        value = cache.get(key)
        if value is None:
            value = compute(key)
            if len(cache) >= limit:
                cache.clear()
            cache[key] = value
        return value

    return remembered
