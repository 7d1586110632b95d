"""``PoolMonitor``: what a connection pool is doing, as snapshots, log lines and metrics."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from dbopt.findings import Finding
from dbopt.handle import Handle, deprecated_verb
from dbopt.pool._sources import Mark, Source, percentile, source_for
from dbopt.pool.snapshot import PoolSnapshot, Thresholds

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["PeriodicLog", "PoolMonitor"]


class PoolMonitor(Handle):
    """Watch a SQLAlchemy ``Engine``/``AsyncEngine`` pool or a psycopg_pool pool.

    Attaching is the constructor; :meth:`close` (or leaving the ``with``
    block) detaches. Per checkout it costs one lock and a few arithmetic
    operations; it never makes a checkout fail. See :class:`PoolSnapshot`
    for what each number means, and the module docs of
    ``dbopt.pool._sources`` for how SQLAlchemy checkouts are timed.
    """

    def __init__(
        self,
        target: Any,
        *,
        name: str | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self._source: Source = source_for(target)
        self.name = name or _default_name(target, self._source)
        self.thresholds = thresholds or Thresholds()
        self._base = self._source.mark()
        self._logs: list[PeriodicLog] = []

    @property
    def source(self) -> Source:
        """The object reading the pool (for exporters)."""
        return self._source

    def mark(self) -> Mark:
        """The cumulative counters now (pass to :meth:`snapshot_between`)."""
        return self._source.mark()

    def snapshot(self) -> PoolSnapshot:
        """Counters since the monitor started or since the last :meth:`reset`."""
        return self.snapshot_between(self._base, self._source.mark())

    def reset(self) -> None:
        """Start a new window for :meth:`snapshot` (log lines and metrics are unaffected)."""
        self._base = self._source.mark()

    def findings(self) -> list[Finding]:
        """The thresholds the current window crosses (see :meth:`PoolSnapshot.findings`)."""
        return self.snapshot().findings(self.thresholds)

    def snapshot_between(self, since: Mark, until: Mark) -> PoolSnapshot:
        """Counters between two marks from :meth:`mark`."""
        counts = {}
        for key, value in until.counts.items():
            before = since.counts.get(key, 0.0)
            counts[key] = value - before if value >= before else value
        busy = until.busy_seconds - since.busy_seconds
        if busy < 0:
            busy = until.busy_seconds
        duration = max(until.perf - since.perf, 1e-9)
        waits, peak = self._source.window(since, until)
        gauges = self._source.gauges()
        capacity = gauges["capacity"]
        checkouts = int(counts["checkouts"])
        wait_total = counts["wait_total"] * 1000
        ordered = sorted(waits) if waits else []
        has_recycles = self._source.kind == "sqlalchemy"
        return PoolSnapshot(
            source=self._source.kind,
            name=self.name,
            started_at=since.wall,
            duration_s=duration,
            checkouts=checkouts,
            wait_total_ms=wait_total,
            wait_mean_ms=wait_total / checkouts if checkouts else None,
            wait_p50_ms=percentile(ordered, 0.5) * 1000 if ordered else None,
            wait_p95_ms=percentile(ordered, 0.95) * 1000 if ordered else None,
            wait_max_ms=ordered[-1] * 1000 if ordered else None,
            in_use=gauges["in_use"],
            peak_in_use=peak,
            idle=gauges["idle"],
            overflow=gauges["overflow"],
            open=gauges["open"],
            capacity=capacity,
            waiting=gauges["waiting"],
            utilization=min(1.0, busy / duration / capacity) if capacity else None,
            timeouts=int(counts["timeouts"]),
            errors=int(counts["errors"]),
            created=int(counts["created"]),
            recycled=int(counts["recycled"]) if has_recycles else None,
            invalidated=int(counts["invalidated"]),
            closed=int(counts["closed"]) if has_recycles else None,
        )

    def log_every(
        self,
        interval: float = 60.0,
        *,
        logger: str | logging.Logger = "dbopt.pool",
        level: int = logging.INFO,
        problem_level: int = logging.WARNING,
    ) -> PeriodicLog:
        """Log a snapshot line every ``interval`` seconds on a daemon thread.

        Each line covers the time since the previous one; a window that
        crosses the thresholds logs at ``problem_level``. Every record has the
        snapshot as ``extra={"pool": {...}}`` and the findings' codes as
        ``extra={"pool_findings": [...]}``. Stop it with ``.close()``
        (:meth:`close` stops all).
        """
        log = PeriodicLog(self, interval, logger, level, problem_level)
        self._logs.append(log)
        log.start()
        return log

    def prometheus(
        self,
        registry: Any = None,
        *,
        prefix: str = "dbopt_pool",
        labels: Mapping[str, str] | None = None,
    ) -> Any:
        """Register this pool's metrics with prometheus_client; returns the collector.

        Needs ``pip install 'dbopt[prometheus]'``. See :mod:`dbopt.pool.export`.
        """
        from dbopt.pool.export import register_prometheus

        return register_prometheus(self, registry, prefix=prefix, labels=labels)

    def otel(self, meter: Any = None, *, attributes: Mapping[str, str] | None = None) -> Any:
        """Report this pool's metrics through an OpenTelemetry meter (``dbopt[otel]``).

        See :mod:`dbopt.pool.export`; returns the instruments created.
        """
        from dbopt.pool.export import register_otel

        return register_otel(self, meter, attributes=attributes)

    def close(self) -> None:
        """Stop log threads and detach from the pool (idempotent)."""
        for log in self._logs:
            log.close()
        self._logs.clear()
        self._source.close()


def _default_name(target: Any, source: Source) -> str:
    pool_name = getattr(target, "name", None)
    if source.kind == "psycopg_pool" and isinstance(pool_name, str):
        return pool_name
    url = getattr(getattr(target, "sync_engine", target), "url", None)
    if url is not None:
        return f"{url.host or 'local'}/{url.database or ''}"
    return source.kind


class PeriodicLog(Handle):
    """A daemon thread logging a :class:`PoolMonitor` snapshot every ``interval`` seconds."""

    def __init__(
        self,
        monitor: PoolMonitor,
        interval: float,
        logger: str | logging.Logger,
        level: int,
        problem_level: int,
    ) -> None:
        if interval <= 0:
            from dbopt.errors import ConfigurationError

            raise ConfigurationError("interval must be > 0 seconds")
        self.monitor = monitor
        self.interval = interval
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level
        self.problem_level = problem_level
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dbopt-pool-log", daemon=True)
        self._mark = monitor.mark()

    def start(self) -> None:
        """Start the thread (done by :meth:`PoolMonitor.log_every`)."""
        self._thread.start()

    def log_once(self) -> PoolSnapshot:
        """Log the window since the previous line now, and start a new one."""
        now = self.monitor.mark()
        snapshot = self.monitor.snapshot_between(self._mark, now)
        self._mark = now
        problems = snapshot.findings(self.monitor.thresholds)
        self.logger.log(
            self.problem_level if problems else self.level,
            "%s",
            snapshot,
            extra={"pool": snapshot.to_dict(), "pool_findings": [f.code for f in problems]},
        )
        return snapshot

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.log_once()
            except Exception:  # a monitor must not kill its thread on a bad read
                self.logger.debug("pool snapshot failed", exc_info=True)

    stop = deprecated_verb("stop")

    def close(self) -> None:
        """Stop the thread and wait for it (idempotent)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(5.0, self.interval))
