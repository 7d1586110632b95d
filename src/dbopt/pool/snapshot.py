"""``PoolSnapshot``: what a pool did over a window, and ``Thresholds`` to judge it by."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dbopt.findings import Finding, Severity

__all__ = ["PoolSnapshot", "Thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """Limits a healthy pool stays under; the defaults are the usual targets.

    * ``max_utilization``: share of the window the pool's capacity was in use
      (0.8: above it, a burst finds no free connection).
    * ``max_wait_ms``: mean checkout wait (10 ms: already a queue for connections).
    * ``max_wait_p95_ms``: 95th percentile checkout wait, when set (None: not judged).
    * ``max_timeouts``: checkouts that gave up; 0 under normal load.
    """

    max_utilization: float = 0.8
    max_wait_ms: float = 10.0
    max_wait_p95_ms: float | None = None
    max_timeouts: int = 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}ms"


@dataclass(frozen=True)
class PoolSnapshot:
    """Counters over a window (since the monitor started, its last reset, or the last log line).

    Counts (``checkouts``, ``timeouts``, ``errors``, ``created``, ``recycled``,
    ``invalidated``, ``closed``) are exact. Wait percentiles are nearest-rank
    over the window's last 16,384 checkouts; wait is the time from asking the
    pool for a connection to having it (queueing, connecting, pre-ping).
    Timeouts and errors are not in the waits. ``utilization`` is the mean
    number of connections in use over the window divided by ``capacity``.
    Gauges (``in_use``, ``idle``, ``overflow``, ``open``, ``waiting``) are the
    state when the snapshot was taken. None: the pool does not report it
    (psycopg_pool has no per-checkout waits, recycles or peak; a pool with
    unbounded overflow has no capacity).
    """

    source: str
    name: str
    started_at: float
    duration_s: float
    checkouts: int
    wait_total_ms: float
    wait_mean_ms: float | None
    wait_p50_ms: float | None
    wait_p95_ms: float | None
    wait_max_ms: float | None
    in_use: int
    peak_in_use: int | None
    idle: int | None
    overflow: int | None
    open: int | None
    capacity: int | None
    waiting: int | None
    utilization: float | None
    timeouts: int
    errors: int
    created: int
    recycled: int | None
    invalidated: int
    closed: int | None

    def findings(self, thresholds: Thresholds | None = None) -> list[Finding]:
        """The thresholds this window crossed, as findings (codes POOL101..POOL104)."""
        limits = thresholds or Thresholds()
        found: list[Finding] = []
        data = {"pool": self.name, "window_s": round(self.duration_s, 3)}
        if self.utilization is not None and self.utilization > limits.max_utilization:
            found.append(
                Finding(
                    "POOL101",
                    Severity.WARNING,
                    "pool",
                    f"pool {self.name} was {self.utilization:.0%} utilized "
                    f"(threshold {limits.max_utilization:.0%})",
                    "a busy pool has no free connection for a burst: requests queue for "
                    "connections and then time out",
                    "shorten the time code holds a connection (no remote calls inside "
                    "transactions), or raise pool_size within the connection budget "
                    "(dbopt.pool.connection_budget)",
                    {**data, "utilization": self.utilization, "capacity": self.capacity},
                )
            )
        waits = [("mean", self.wait_mean_ms, limits.max_wait_ms)]
        if limits.max_wait_p95_ms is not None:
            waits.append(("p95", self.wait_p95_ms, limits.max_wait_p95_ms))
        for which, wait, limit in waits:
            if wait is None or not self.checkouts or wait <= limit:
                continue
            found.append(
                Finding(
                    "POOL102",
                    Severity.WARNING,
                    "pool",
                    f"checkout wait {which} {wait:.1f} ms on pool {self.name} "
                    f"(threshold {limit:g} ms)",
                    "time waiting for a connection adds to every request's latency before "
                    "any query runs",
                    "find what holds connections long (dbopt.QueryStats, slow log), "
                    "or raise pool_size within the connection budget",
                    {**data, f"wait_{which}_ms": wait, "checkouts": self.checkouts},
                )
            )
            break
        if self.timeouts > limits.max_timeouts:
            found.append(
                Finding(
                    "POOL103",
                    Severity.ERROR,
                    "pool",
                    f"{self.timeouts} checkout(s) timed out on pool {self.name}",
                    "each timeout is a failed request: the pool had no connection to give "
                    "within pool_timeout",
                    "check for leaked connections (sessions never closed) and long "
                    "transactions; size the pool from the connection budget",
                    {**data, "timeouts": self.timeouts},
                )
            )
        if self.errors:
            found.append(
                Finding(
                    "POOL104",
                    Severity.ERROR,
                    "pool",
                    f"{self.errors} checkout(s) failed with an error on pool {self.name}",
                    "the pool could not open or validate connections: the server is "
                    "down, refusing connections, or out of slots",
                    "check the server's availability and max_connections (dbopt.pool.check)",
                    {**data, "errors": self.errors},
                )
            )
        return found

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        return asdict(self)

    def __str__(self) -> str:
        util = "-" if self.utilization is None else f"{self.utilization:.0%}"
        return (
            f"pool {self.name} ({self.source}): checkouts={self.checkouts} "
            f"wait_p50={_ms(self.wait_p50_ms)} wait_p95={_ms(self.wait_p95_ms)} "
            f"wait_max={_ms(self.wait_max_ms)} in_use={self.in_use} idle={self.idle} "
            f"overflow={self.overflow} utilization={util} timeouts={self.timeouts} "
            f"errors={self.errors} created={self.created} recycled={self.recycled} "
            f"invalidated={self.invalidated}"
        )
