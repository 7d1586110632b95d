"""OpenTelemetry metrics for a :class:`~dbopt.QueryStats` (``dbopt[otel]``).

Names follow OpenTelemetry's database client semantic conventions:
``db.client.operation.duration`` (a histogram, seconds) with
``db.system.name``, ``db.operation.name`` and ``error.type``; the
fingerprint goes in ``dbopt.statement`` (bounded as in
:mod:`dbopt.export.series`). Counters that the conventions do not define are
``dbopt.query.*`` and ``dbopt.nplusone.findings``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from dbopt.errors import MissingDependencyError
from dbopt.export.series import StatementSeries, nplusone_counts

if TYPE_CHECKING:
    from dbopt.core.events import QueryEvent
    from dbopt.core.nplusone import NPlusOneDetector
    from dbopt.core.stats import QueryStats

__all__ = ["OtelQueryMetrics", "register_otel"]

#: The conventions' advised bucket boundaries for db.client.operation.duration (seconds).
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
#: SQLAlchemy dialect names to the conventions' db.system.name values.
_SYSTEMS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mariadb", "sqlite": "sqlite"}
_MAX_ATTRIBUTE_SETS = 4096


class OtelQueryMetrics:
    """The instruments of :func:`register_otel`, and a sink feeding the duration histogram.

    Attach it beside the stats (``dbopt.instrument(engine, stats, metrics)``)
    to record ``db.client.operation.duration`` per statement; without it,
    only the counters read from the stats are exported. A fingerprint's
    ``dbopt.statement`` is ``"other"`` until a collection has given it a
    slot (slots go to the heaviest fingerprints of the stats).
    """

    def __init__(
        self,
        series: StatementSeries,
        histogram: Any,
        instruments: list[Any],
        attributes: Mapping[str, str],
    ) -> None:
        self.series = series
        self.histogram = histogram
        self.instruments = instruments
        self.attributes = dict(attributes)
        self._attribute_sets: dict[tuple[str, str, str, str | None], dict[str, str]] = {}

    def __call__(self, event: QueryEvent) -> None:
        error = type(event.error).__name__ if event.error is not None else None
        key = (self.series.label(event.fingerprint), event.kind, event.dialect, error)
        attrs = self._attribute_sets.get(key)
        if attrs is None:
            attrs = {
                **self.attributes,
                "db.system.name": _SYSTEMS.get(event.dialect, event.dialect or "other_sql"),
                "db.operation.name": event.kind.upper(),
                "dbopt.statement": key[0],
            }
            if error is not None:
                attrs["error.type"] = error
            if len(self._attribute_sets) >= _MAX_ATTRIBUTE_SETS:
                self._attribute_sets.clear()
            self._attribute_sets[key] = attrs
        self.histogram.record(event.duration, attrs)


def register_otel(
    stats: QueryStats,
    meter: Any = None,
    *,
    attributes: Mapping[str, str] | None = None,
    top_k: int = 100,
    nplusone: NPlusOneDetector | None = None,
) -> OtelQueryMetrics:
    """Create OpenTelemetry instruments for ``stats`` on ``meter`` (the global one if None).

    Observable counters read ``stats`` at each collection:
    ``dbopt.query.calls``, ``dbopt.query.duration`` (seconds),
    ``dbopt.query.rows``, ``dbopt.query.errors`` (attributes
    ``dbopt.statement``, ``db.operation.name`` and ``attributes``) and, with
    a detector, ``dbopt.nplusone.findings`` (``dbopt.finding.kind``). The
    returned object is the sink for the ``db.client.operation.duration``
    histogram. Raises :class:`MissingDependencyError` without
    ``opentelemetry-api``.
    """
    try:
        from opentelemetry import metrics
        from opentelemetry.metrics import CallbackOptions, Observation
    except ImportError as exc:
        raise MissingDependencyError("opentelemetry-api", "otel") from exc
    meter = meter if meter is not None else metrics.get_meter("dbopt.query")
    attrs = dict(attributes or {})
    series = StatementSeries(stats, top_k=top_k)

    def observe(field: str) -> Iterator[Observation]:
        # Each instrument reads: the totals are cumulative, so reading again is exact.
        for totals in series.read():
            yield Observation(
                getattr(totals, field),
                {
                    **attrs,
                    "dbopt.statement": totals.statement,
                    "db.operation.name": totals.operation.upper(),
                },
            )

    def reader(field: str) -> Any:
        def callback(options: CallbackOptions) -> Iterator[Observation]:
            return observe(field)

        return callback

    def findings(options: CallbackOptions) -> Iterator[Observation]:
        for kind, count in sorted(nplusone_counts(nplusone).items()):
            yield Observation(count, {**attrs, "dbopt.finding.kind": kind})

    instruments = [
        meter.create_observable_counter(
            "dbopt.query.calls",
            callbacks=[reader("calls")],
            unit="{statement}",
            description="Statements run, by fingerprint (top-K by total time, the rest as other)",
        ),
        meter.create_observable_counter(
            "dbopt.query.duration",
            callbacks=[reader("seconds")],
            unit="s",
            description="Statement time, by fingerprint",
        ),
        meter.create_observable_counter(
            "dbopt.query.rows", callbacks=[reader("rows")], unit="{row}"
        ),
        meter.create_observable_counter(
            "dbopt.query.errors", callbacks=[reader("errors")], unit="{error}"
        ),
    ]
    if nplusone is not None:
        instruments.append(
            meter.create_observable_counter(
                "dbopt.nplusone.findings", callbacks=[findings], unit="{finding}"
            )
        )
    description = "Duration of database client operations"
    try:
        histogram = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description=description,
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
    except TypeError:  # opentelemetry-api < 1.23 has no bucket advice
        histogram = meter.create_histogram(
            "db.client.operation.duration", unit="s", description=description
        )
    instruments.append(histogram)
    return OtelQueryMetrics(series, histogram, instruments, attrs)
