"""QueryStats and N+1 counts as Prometheus and OpenTelemetry metrics.

Install ``dbopt[prometheus]`` or ``dbopt[otel]`` for the one you run.

* :func:`register_prometheus` registers a collector that reads a
  :class:`~dbopt.QueryStats` on each scrape (nothing is paid per statement).
* :func:`register_otel` creates OpenTelemetry instruments: observable
  counters read from the same stats, and the database client semantic
  conventions' ``db.client.operation.duration`` histogram, fed per statement
  by the returned sink once it is attached with :func:`dbopt.instrument`.

Cardinality is bounded: at most ``top_k`` fingerprints get their own series
(the heaviest by total time when a slot is free), every other statement is
summed into ``statement="other"`` per operation. See docs/fleet.md.
"""

from __future__ import annotations

from dbopt.export.otel import OtelQueryMetrics, register_otel
from dbopt.export.prometheus import QueryStatsCollector, register_prometheus
from dbopt.export.series import OTHER, SeriesTotals, StatementSeries

__all__ = [
    "OTHER",
    "OtelQueryMetrics",
    "QueryStatsCollector",
    "SeriesTotals",
    "StatementSeries",
    "register_otel",
    "register_prometheus",
]
