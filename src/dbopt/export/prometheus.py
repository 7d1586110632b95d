"""A Prometheus collector for a :class:`~dbopt.QueryStats` (``dbopt[prometheus]``).

Read on each scrape, so it costs nothing per statement. Pattern and
registration as :mod:`dbopt.pool.export`'s pool collector.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from dbopt.errors import MissingDependencyError
from dbopt.export.series import StatementSeries, nplusone_counts

if TYPE_CHECKING:
    from dbopt.core.nplusone import NPlusOneDetector
    from dbopt.core.stats import QueryStats

__all__ = ["QueryStatsCollector", "register_prometheus"]


class QueryStatsCollector:
    """A prometheus_client collector over one :class:`~dbopt.QueryStats`.

    Families (``prefix`` = ``dbopt_query``), each labelled ``statement``
    (fingerprint or ``other``), ``operation`` and the constant ``labels``:
    ``<prefix>_duration_seconds`` (a summary: ``_count`` calls, ``_sum``
    seconds), ``<prefix>_rows_total``, ``<prefix>_errors_total``; plus
    ``<prefix>_statements`` (fingerprints held now) and, with a detector,
    ``dbopt_nplusone_findings_total{kind}``. Counters are cumulative since
    the collector was created.
    """

    def __init__(
        self,
        stats: QueryStats,
        *,
        prefix: str = "dbopt_query",
        labels: Mapping[str, str] | None = None,
        top_k: int = 100,
        nplusone: NPlusOneDetector | None = None,
    ) -> None:
        self.series = StatementSeries(stats, top_k=top_k)
        self.prefix = prefix
        self.labels = dict(labels or {})
        self.nplusone = nplusone

    def describe(self) -> Iterator[Any]:
        """The metric families without samples (so registering reads nothing)."""
        return iter(self._families())

    def _families(self) -> list[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            SummaryMetricFamily,
        )

        names = ["statement", "operation", *self.labels]
        out = [
            SummaryMetricFamily(
                f"{self.prefix}_duration_seconds",
                "Statement time by fingerprint (top-K by total time, the rest as other)",
                labels=names,
            ),
            CounterMetricFamily(f"{self.prefix}_rows", "Rows returned or changed", labels=names),
            CounterMetricFamily(f"{self.prefix}_errors", "Statements that failed", labels=names),
            GaugeMetricFamily(
                f"{self.prefix}_statements",
                "Fingerprints the QueryStats holds now",
                labels=list(self.labels),
            ),
        ]
        if self.nplusone is not None:
            out.append(
                CounterMetricFamily(
                    "dbopt_nplusone_findings",
                    "N+1 and repeated-query findings reported",
                    labels=["kind", *self.labels],
                )
            )
        return out

    def collect(self) -> Iterator[Any]:
        """The statistics now (prometheus_client calls this on each scrape)."""
        duration, rows, errors, held, *rest = self._families()
        extra = list(self.labels.values())
        for series in self.series.read():
            values = [series.statement, series.operation, *extra]
            duration.add_metric(values, count_value=series.calls, sum_value=series.seconds)
            rows.add_metric(values, series.rows)
            errors.add_metric(values, series.errors)
        held.add_metric(extra, len(self.series.stats))
        yield from (duration, rows, errors, held)
        if rest:
            findings = rest[0]
            for kind, count in sorted(nplusone_counts(self.nplusone).items()):
                findings.add_metric([kind, *extra], count)
            yield findings


def register_prometheus(
    stats: QueryStats,
    registry: Any = None,
    *,
    prefix: str = "dbopt_query",
    labels: Mapping[str, str] | None = None,
    top_k: int = 100,
    nplusone: NPlusOneDetector | None = None,
) -> QueryStatsCollector:
    """Register a collector for ``stats`` with ``registry`` (the default registry if None).

    ``labels`` are constant labels (``service``, ``instance``) added to every
    series; ``top_k`` bounds the named fingerprints; ``nplusone`` adds the
    detector's finding counts. Raises :class:`MissingDependencyError` without
    ``prometheus_client``. Unregister with ``registry.unregister(collector)``.
    """
    try:
        import prometheus_client
    except ImportError as exc:
        raise MissingDependencyError("prometheus-client", "prometheus") from exc
    collector = QueryStatsCollector(
        stats, prefix=prefix, labels=labels, top_k=top_k, nplusone=nplusone
    )
    (registry if registry is not None else prometheus_client.REGISTRY).register(collector)
    return collector
