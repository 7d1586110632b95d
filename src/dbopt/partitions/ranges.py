"""Pure range decisions: which ranges are missing, which partitions retention expires.

Everything here works on bounds, never on names: a partition is expired
only when its whole range lies before the cutoff, and a range is missing
only where no existing partition covers it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from dbopt.partitions.catalog import Partition
from dbopt.partitions.grid import Grid, Value

__all__ = ["Piece", "desired_ranges", "expired", "gaps", "uncovered"]


@dataclass(frozen=True)
class Piece:
    """A range to create; ``aligned`` is False when clipped by an existing partition."""

    lower: Value
    upper: Value
    aligned: bool


def desired_ranges(grid: Grid, first: Value, end: Value) -> list[tuple[Value, Value]]:
    """Grid ranges from the aligned ``first`` up to (not including) ``end``."""
    out: list[tuple[Value, Value]] = []
    start: Any = first
    while start < end:
        nxt = grid.shift(start, 1)
        out.append((start, nxt))
        start = nxt
    return out


def uncovered(desired: Sequence[tuple[Value, Value]], existing: Sequence[Partition]) -> list[Piece]:
    """The parts of ``desired`` (sorted, disjoint) that no ``existing`` range covers.

    ``existing`` is sorted by lower bound, as ``PartitionedTable.ranges()``
    returns it; MINVALUE/MAXVALUE bounds count as unbounded.
    """
    if not desired:
        return []
    low: Any = desired[0][0]
    high: Any = desired[-1][1]
    spans: list[tuple[Any, Any]] = []
    for part in existing:
        lo: Any = low if part.lower is None or part.lower < low else part.lower
        hi: Any = high if part.upper is None or part.upper > high else part.upper
        if lo < hi:
            spans.append((lo, hi))
    pieces: list[Piece] = []
    j = 0
    for lo, hi in cast("Sequence[tuple[Any, Any]]", desired):
        while j < len(spans) and spans[j][1] <= lo:
            j += 1
        cursor = lo
        k = j
        while k < len(spans) and spans[k][0] < hi:
            if spans[k][0] > cursor:
                pieces.append(Piece(cursor, spans[k][0], False))
            cursor = max(cursor, spans[k][1])
            k += 1
        if cursor < hi:
            pieces.append(Piece(cursor, hi, cursor == lo))
    return pieces


def expired(
    ranges: Sequence[Partition],
    *,
    now: Value,
    cutoff: Value | None = None,
    keep: int | None = None,
    planned: Sequence[Value] = (),
) -> list[Partition]:
    """Range partitions past retention, oldest first.

    With ``cutoff`` (retention by age): those whose upper bound is at or
    before it. With ``keep`` (by count): all but the ``keep`` most recent of
    those that have started (lower bound at or before ``now``), counting the
    lower bounds of ``planned`` new ranges among them. Partitions with a
    MAXVALUE upper bound never expire.
    """
    limit: Any = cutoff
    if limit is not None:
        return [p for p in ranges if p.upper is not None and p.upper <= limit]
    if keep is not None:
        at: Any = now
        entries: list[tuple[Any, Partition | None]] = [
            (p.lower, p)
            for p in ranges
            if p.upper is not None and (p.lower is None or p.lower <= at)
        ]
        entries += [(lo, None) for lo in cast("Sequence[Any]", planned) if lo <= at]
        entries.sort(key=lambda e: (e[0] is not None, e[0] if e[0] is not None else 0))
        return [p for _, p in entries[: max(len(entries) - keep, 0)] if p is not None]
    return []


def gaps(ranges: Sequence[Partition]) -> list[tuple[Value, Value]]:
    """``(end, next start)`` of every hole between consecutive range partitions."""
    out: list[tuple[Value, Value]] = []
    for before, after in itertools.pairwise(ranges):
        end: Any = before.upper
        if end is not None and after.lower is not None and end < after.lower:
            out.append((end, after.lower))
    return out
