"""Bounded, monotonic series over a :class:`~dbopt.QueryStats`: top-K fingerprints and "other".

A metrics backend sums counters; a counter must never go backwards, or the
backend sees a reset. :class:`StatementSeries` therefore keeps its own
cumulative totals per series and feeds them with what each fingerprint added
since the previous read. A fingerprint that once got its own series keeps it
(its counters stay monotonic); slots are filled, while free, by the
fingerprints with the largest total time at the time of a read; the others
are summed per operation into ``statement="other"``. So there are at most
``top_k`` + 9 (the statement kinds) series whatever the workload.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from dbopt.errors import ConfigurationError

if TYPE_CHECKING:
    from dbopt.core.nplusone import NPlusOneDetector
    from dbopt.core.stats import QueryStats, StatementStats

__all__ = ["OTHER", "SeriesTotals", "StatementSeries"]

#: The ``statement`` label of everything outside the top-K.
OTHER = "other"


@dataclass(slots=True)
class SeriesTotals:
    """Cumulative totals of one series: a fingerprint (or ``"other"``) and an operation."""

    statement: str
    operation: str
    calls: int = 0
    seconds: float = 0.0
    rows: int = 0
    errors: int = 0


class StatementSeries:
    """Reads ``stats`` into at most ``top_k`` named series plus one ``"other"`` per operation.

    Thread-safe; each reader (a Prometheus collector, an OpenTelemetry
    callback) owns one, since it remembers what it has already counted.
    Statements a :class:`~dbopt.QueryStats` evicted between two reads are
    counted up to the earlier read only (the stats no longer hold them).
    """

    def __init__(self, stats: QueryStats, *, top_k: int = 100) -> None:
        if top_k < 0:
            raise ConfigurationError("top_k must be >= 0")
        self.stats = stats
        self.top_k = top_k
        self._named: set[str] = set()
        self._seen: dict[str, tuple[int, float, int, int]] = {}
        self._totals: dict[tuple[str, str], SeriesTotals] = {}
        self._lock = threading.Lock()

    def label(self, fingerprint: str) -> str:
        """The ``statement`` label of ``fingerprint`` now: itself when named, else ``"other"``."""
        return fingerprint if fingerprint in self._named else OTHER

    def _admit(self, entries: Iterable[StatementStats]) -> None:
        free = self.top_k - len(self._named)
        if free <= 0:
            return
        fresh = [st for st in entries if st.fingerprint not in self._named]
        fresh.sort(key=lambda st: st.total_time, reverse=True)
        self._named.update(st.fingerprint for st in fresh[:free])

    def read(self) -> list[SeriesTotals]:
        """Fold what ``stats`` gained since the last read in; return a copy of every series."""
        with self._lock:
            entries = self.stats.statements()
            self._admit(entries)
            seen: dict[str, tuple[int, float, int, int]] = {}
            named, totals = self._named, self._totals
            for st in entries:
                now = (st.calls, st.total_time, st.rows, st.errors)
                seen[st.fingerprint] = now
                before = self._seen.get(st.fingerprint)
                if before is None or now[0] < before[0]:  # new, or evicted and back
                    before = (0, 0.0, 0, 0)
                if now == before:
                    continue
                key = (st.fingerprint, st.kind) if st.fingerprint in named else (OTHER, st.kind)
                series = totals.get(key)
                if series is None:
                    series = totals[key] = SeriesTotals(key[0], key[1])
                series.calls += now[0] - before[0]
                series.seconds += max(0.0, now[1] - before[1])
                series.rows += now[2] - before[2]
                series.errors += now[3] - before[3]
            self._seen = seen
            return [replace(series) for series in totals.values()]


def nplusone_counts(detector: NPlusOneDetector | None) -> dict[str, int]:
    """Findings ``detector`` reported so far, by kind (empty without a detector)."""
    if detector is None:
        return {}
    return dict(detector.reported)
