"""``QueryStats``: an in-process pg_stat_statements."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from dbopt.core.events import CallSite, QueryEvent
from dbopt.core.fingerprint import mask_literals
from dbopt.core.params import apply_policy, check_policy, estimate_size, jsonable, redact
from dbopt.errors import ConfigurationError

__all__ = ["QueryStats", "StatementStats"]

SortKey = Literal["total_time", "mean_time", "max_time", "p95_time", "calls", "rows", "errors"]
#: CallSite → its "file:line" key, shared by every QueryStats (bounded).
_site_keys: dict[CallSite, str] = {}
_SITE_KEYS_MAX = 4096
_SORT_KEYS = ("total_time", "mean_time", "max_time", "p95_time", "calls", "rows", "errors")
#: Bytes counted for an entry besides its texts, parameters, samples and call sites
#: (the object, its dict slot, its empty containers), per sample and per call site.
_ENTRY_BYTES = 600
_SAMPLE_BYTES = 32
_CALLSITE_BYTES = 120


@dataclass(slots=True)
class StatementStats:
    """Aggregates for one fingerprint. Times are in seconds."""

    fingerprint: str
    normalized: str
    kind: str
    calls: int = 0
    total_time: float = 0.0
    min_time: float = float("inf")
    max_time: float = 0.0
    rows: int = 0
    errors: int = 0
    example_sql: str = ""
    example_params: Any = None
    callsites: dict[str, int] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)
    dialect: str = ""
    #: Bytes this entry is counted for against :attr:`QueryStats.max_bytes`.
    nbytes: int = field(default=0, repr=False, compare=False)

    @property
    def mean_time(self) -> float:
        """Mean seconds per call."""
        return self.total_time / self.calls if self.calls else 0.0

    @property
    def p95_time(self) -> float:
        """95th percentile of the sampled durations (seconds)."""
        return _percentile(self.samples, 0.95)

    @property
    def p50_time(self) -> float:
        """Median of the sampled durations (seconds)."""
        return _percentile(self.samples, 0.5)

    def to_dict(self, params: str = "redact") -> dict[str, Any]:
        """JSON-ready dict; :meth:`QueryStats.from_dict` reads it back.

        ``params`` is the policy for this output: ``"redact"`` (default) masks
        the literals of ``example_sql`` (see
        :func:`dbopt.core.fingerprint.mask_literals`) and replaces the example
        parameters by their types; ``"keep"`` writes both as kept; ``"drop"``
        masks the text and writes no parameters. Never raises, and holds no
        NaN nor Infinity.
        """
        policy = check_policy(params)
        keep = policy == "keep"
        example = self.example_params
        return {
            "fingerprint": self.fingerprint,
            "normalized": self.normalized,
            "kind": self.kind,
            "calls": self.calls,
            "total_time": _finite(self.total_time),
            "min_time": _finite(self.min_time) if self.calls else 0.0,
            "max_time": _finite(self.max_time),
            "mean_time": _finite(self.mean_time),
            "p95_time": _finite(self.p95_time),
            "rows": self.rows,
            "errors": self.errors,
            "example_sql": self.example_sql if keep else mask_literals(self.example_sql),
            "example_params": jsonable(example)
            if keep
            else (redact(example) if policy == "redact" else None),
            "callsites": dict(self.callsites),
            "samples": [_finite(x) for x in self.samples],
            "dialect": self.dialect,
        }


def _finite(value: float) -> float:
    """``value``, or 0.0 when it is NaN or infinite (JSON has neither)."""
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def _entry_size(st: StatementStats) -> int:
    return (
        _ENTRY_BYTES
        + len(st.example_sql)
        + len(st.normalized)
        + (estimate_size(st.example_params) if st.example_params is not None else 0)
        + _SAMPLE_BYTES * len(st.samples)
        + _CALLSITE_BYTES * len(st.callsites)
    )


def _percentile(samples: list[float], q: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class QueryStats:
    """Per-fingerprint statistics of every statement it sees, like pg_stat_statements.

    A sink: attach it with ``dbopt.instrument(engine, stats)``. Thread-safe.
    Memory is bounded in entries and in bytes: at most ``max_statements``
    fingerprints and about ``max_bytes`` bytes of them (when either is
    reached, the cheapest tenth by total time is evicted, and more until the
    bytes fit), ``max_callsites`` call sites and ``samples`` durations (a
    uniform reservoir) per fingerprint. The example text kept per fingerprint
    is cut at ``max_text`` characters, and example parameters larger than
    ``max_param_bytes`` are kept as their types only.

    ``params`` is the policy for the example parameters kept *in memory*
    (``"keep"`` by default, so the index advisor can EXPLAIN the example in
    this process). Outputs are private by default whatever it is:
    :meth:`to_dict` masks literals and redacts parameters unless asked for
    ``params="keep"``.
    ``started_at`` (epoch seconds) is when recording began (creation or
    :meth:`reset`); ``duration_s`` is the time covered so far, or up to when a
    snapshot was saved with :meth:`to_dict`.
    """

    #: Only the call site (the innermost application frame) is read: the
    #: pipeline walks the stack no further for this sink.
    dbopt_stack_depth = 1
    #: ``event.orm`` is not read: adapters may skip finding it for this sink.
    dbopt_reads_orm = False

    def __init__(
        self,
        *,
        max_statements: int = 5000,
        samples: int = 256,
        max_callsites: int = 16,
        params: str = "keep",
        max_bytes: int = 64 * 1024 * 1024,
        max_text: int = 65_536,
        max_param_bytes: int = 65_536,
    ) -> None:
        if max_statements < 1 or samples < 1 or max_callsites < 0:
            raise ConfigurationError("max_statements and samples must be positive")
        if max_bytes < 1 or max_text < 1 or max_param_bytes < 0:
            raise ConfigurationError("max_bytes and max_text must be positive")
        self.max_statements = max_statements
        self.sample_size = samples
        self.max_callsites = max_callsites
        self.params = check_policy(params)
        self.max_bytes = max_bytes
        self.max_text = max_text
        self.max_param_bytes = max_param_bytes
        #: Bytes the entries are counted for (see :attr:`StatementStats.nbytes`).
        self.nbytes = 0
        self.evicted = 0
        self._stats: dict[str, StatementStats] = {}
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._random = self._rng.random
        self.started_at = time.time()
        self.ended_at: float | None = None

    @property
    def duration_s(self) -> float:
        """Seconds of recording these statistics cover."""
        end = self.ended_at if self.ended_at is not None else time.time()
        return max(0.0, end - self.started_at)

    def __call__(self, event: QueryEvent) -> None:
        d = event.duration
        site = event.callsite
        key = None
        if site is not None:
            key = _site_keys.get(site)
            if key is None:
                key = f"{site.file}:{site.line}"
                if len(_site_keys) >= _SITE_KEYS_MAX:
                    _site_keys.clear()
                _site_keys[site] = key
        lock = self._lock
        lock.acquire()  # not `with`: its __exit__ call parses three arguments
        try:
            st = self._stats.get(event.fingerprint)
            if st is None:
                st = self._new_entry(event)
            calls = st.calls = st.calls + 1
            st.total_time += d
            if d < st.min_time:  # noqa: PLR1730 - a comparison is cheaper than min()
                st.min_time = d
            if d > st.max_time:  # noqa: PLR1730
                st.max_time = d
            rowcount = event.rowcount
            if rowcount is not None and rowcount > 0:
                st.rows += rowcount
            if event.error is not None:
                st.errors += 1
            samples = st.samples
            size = self.sample_size
            if len(samples) < size:
                samples.append(d)
                st.nbytes += _SAMPLE_BYTES
                self.nbytes += _SAMPLE_BYTES
            else:
                # Reservoir sampling; random() is several times cheaper than randrange(),
                # and int() is only called for the few draws that land in the reservoir.
                j = self._random() * calls
                if j < size:
                    samples[int(j)] = d
            if key is not None:
                callsites = st.callsites
                if key in callsites:
                    callsites[key] += 1
                elif len(callsites) < self.max_callsites:
                    callsites[key] = 1
                    st.nbytes += _CALLSITE_BYTES
                    self.nbytes += _CALLSITE_BYTES
        finally:
            lock.release()

    def _new_entry(self, event: QueryEvent) -> StatementStats:
        sql = event.sql
        if len(sql) > self.max_text:
            sql = sql[: self.max_text]
        params = apply_policy(event.parameters, self.params)
        if (
            params is not None
            and self.params == "keep"
            and estimate_size(params) > self.max_param_bytes
        ):
            params = redact(params)
        st = StatementStats(
            event.fingerprint,
            event.normalized,
            event.kind,
            example_sql=sql,
            example_params=params,
            dialect=event.dialect,
        )
        self._add(st)
        return st

    def _add(self, st: StatementStats) -> None:
        """Store ``st`` (lock held), evicting first if it would not fit."""
        st.nbytes = _entry_size(st)
        if len(self._stats) >= self.max_statements or self.nbytes + st.nbytes > self.max_bytes:
            self._evict(st.nbytes)
        old = self._stats.get(st.fingerprint)
        if old is not None:
            self.nbytes -= old.nbytes
        self._stats[st.fingerprint] = st
        self.nbytes += st.nbytes

    def _evict(self, incoming: int = 0) -> None:
        """Drop the cheapest tenth by total time, and more until ``incoming`` bytes fit."""
        ordered = sorted(self._stats.values(), key=lambda s: s.total_time)
        tenth = max(1, self.max_statements // 10)
        for i, st in enumerate(ordered):
            if i >= tenth and self.nbytes + incoming <= self.max_bytes:
                break
            del self._stats[st.fingerprint]
            self.nbytes -= st.nbytes
            self.evicted += 1

    def __len__(self) -> int:
        return len(self._stats)

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self._stats

    def __getitem__(self, fingerprint: str) -> StatementStats:
        return self._stats[fingerprint]

    def statements(self) -> list[StatementStats]:
        """All entries (a snapshot list)."""
        with self._lock:
            return list(self._stats.values())

    def top(self, n: int = 10, by: SortKey = "total_time") -> list[StatementStats]:
        """The ``n`` entries with the largest ``by``."""
        if by not in _SORT_KEYS:
            raise ConfigurationError(f"by must be one of {_SORT_KEYS}, got {by!r}")
        return sorted(self.statements(), key=lambda s: getattr(s, by), reverse=True)[:n]

    @property
    def total_calls(self) -> int:
        """Calls over all fingerprints."""
        return sum(s.calls for s in self.statements())

    def reset(self) -> None:
        """Forget everything."""
        with self._lock:
            self._stats.clear()
            self.nbytes = 0
            self.evicted = 0
            self.started_at = time.time()
            self.ended_at = None

    def to_dict(self, params: str = "redact") -> dict[str, Any]:
        """JSON-ready snapshot (``json.dump`` it to share or save).

        Private by default: literals in example texts are masked and example
        parameters replaced by their types; ``params="keep"`` writes them as
        kept (see :meth:`StatementStats.to_dict`). Never raises, and
        ``json.dumps(..., allow_nan=False)`` accepts it.
        """
        policy = check_policy(params)
        return {
            "version": 1,
            "evicted": self.evicted,
            "started_at": self.started_at,
            "ended_at": self.ended_at if self.ended_at is not None else time.time(),
            "statements": [s.to_dict(policy) for s in self.statements()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], **options: Any) -> QueryStats:
        """Rebuild stats saved with :meth:`to_dict`."""
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ConfigurationError("not a dbopt QueryStats dict (version 1)")
        stats = cls(**options)
        stats.evicted = int(data.get("evicted", 0))
        if data.get("started_at") is not None:
            stats.started_at = float(data["started_at"])
            ended = data.get("ended_at")
            stats.ended_at = float(ended) if ended is not None else stats.started_at
        else:  # saved before the window was recorded: unknown (0)
            stats.started_at = stats.ended_at = 0.0
        for raw in data.get("statements", []):
            stats._add(_entry_from_dict(raw))
        return stats

    def merge(self, *others: QueryStats | dict[str, Any]) -> QueryStats:
        """Add other stats (e.g. from other worker processes) into this one; returns self."""
        for other in others:
            source = other if isinstance(other, QueryStats) else QueryStats.from_dict(other)
            self._merge_entries(source.statements())
            self.evicted += source.evicted
            self.started_at = min(self.started_at, source.started_at)
        return self

    def _merge_entries(self, entries: Iterable[StatementStats]) -> None:
        with self._lock:
            for theirs in entries:
                mine = self._stats.get(theirs.fingerprint)
                if mine is None:
                    self._add(_entry_from_dict(theirs.to_dict("keep")))
                    continue
                before = mine.calls
                mine.calls += theirs.calls
                mine.total_time += theirs.total_time
                mine.min_time = min(mine.min_time, theirs.min_time)
                mine.max_time = max(mine.max_time, theirs.max_time)
                mine.rows += theirs.rows
                mine.errors += theirs.errors
                for key, count in theirs.callsites.items():
                    if key in mine.callsites or len(mine.callsites) < self.max_callsites:
                        mine.callsites[key] = mine.callsites.get(key, 0) + count
                mine.samples = _merge_samples(
                    mine.samples,
                    before,
                    theirs.samples,
                    theirs.calls,
                    self.sample_size,
                    self._rng,
                )
                size = _entry_size(mine)
                self.nbytes += size - mine.nbytes
                mine.nbytes = size


def _merge_samples(
    a: list[float], a_calls: int, b: list[float], b_calls: int, size: int, rng: random.Random
) -> list[float]:
    """Merge two reservoirs, weighting each by the calls it stands for."""
    if len(a) + len(b) <= size:
        return a + b
    total = a_calls + b_calls or 1
    take_a = min(len(a), round(size * a_calls / total))
    take_b = min(len(b), size - take_a)
    return rng.sample(a, take_a) + rng.sample(b, take_b)


def _entry_from_dict(raw: dict[str, Any]) -> StatementStats:
    calls = int(raw["calls"])
    return StatementStats(
        fingerprint=raw["fingerprint"],
        normalized=raw.get("normalized", ""),
        kind=raw.get("kind", "other"),
        calls=calls,
        total_time=float(raw["total_time"]),
        min_time=float(raw.get("min_time", 0.0)) if calls else float("inf"),
        max_time=float(raw.get("max_time", 0.0)),
        rows=int(raw.get("rows", 0)),
        errors=int(raw.get("errors", 0)),
        example_sql=raw.get("example_sql", ""),
        example_params=raw.get("example_params"),
        callsites=dict(raw.get("callsites", {})),
        samples=[float(x) for x in raw.get("samples", [])],
        dialect=raw.get("dialect", ""),
    )
