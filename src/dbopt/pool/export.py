"""Pool metrics for Prometheus (``dbopt[prometheus]``) and OpenTelemetry (``dbopt[otel]``).

Both read a :class:`~dbopt.pool.PoolMonitor` when scraped or collected, so
they cost nothing per checkout, except OpenTelemetry's wait-time histogram,
which records each SQLAlchemy checkout's wait (psycopg_pool reports no
per-checkout waits).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dbopt.errors import MissingDependencyError
from dbopt.pool._sources import percentile

if TYPE_CHECKING:
    from dbopt.pool.monitor import PoolMonitor
    from dbopt.pool.snapshot import PoolSnapshot

__all__ = ["register_otel", "register_prometheus"]

_COUNTERS = (
    ("checkouts", "checkouts", "Connections handed out by the pool"),
    ("timeouts", "checkout_timeouts", "Checkouts that gave up waiting for a connection"),
    ("errors", "checkout_errors", "Checkouts that failed with an error"),
    ("created", "connections_created", "Connections opened"),
    ("recycled", "connections_recycled", "Connections replaced at checkout for their age"),
    ("invalidated", "connections_invalidated", "Connections found broken or invalidated"),
)
_GAUGES = (
    ("in_use", "connections_in_use", "Connections checked out now"),
    ("idle", "connections_idle", "Connections idle in the pool now"),
    ("overflow", "connections_overflow", "Connections open beyond pool_size now"),
    ("capacity", "connections_max", "Most connections the pool may open"),
    ("waiting", "requests_waiting", "Requests waiting for a connection now"),
)


class PrometheusCollector:
    """A prometheus_client collector for one monitor (registered by ``register_prometheus``).

    Counters are cumulative since the collector was registered;
    ``checkout_wait_seconds`` is a summary whose quantiles cover the checkouts
    of the last ``quantile_window`` seconds.
    """

    def __init__(
        self,
        monitor: PoolMonitor,
        prefix: str,
        labels: Mapping[str, str],
        quantile_window: float = 60.0,
    ) -> None:
        self.monitor = monitor
        self.prefix = prefix
        self.labels = {"pool": monitor.name, **labels}
        self.quantile_window = quantile_window
        self._start = monitor.mark()

    def describe(self) -> Iterator[Any]:
        """The metric families without samples (so registering reads nothing)."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            SummaryMetricFamily,
        )

        names = list(self.labels)
        for _, name, help_text in _COUNTERS:
            yield CounterMetricFamily(f"{self.prefix}_{name}", help_text, labels=names)
        yield CounterMetricFamily(f"{self.prefix}_busy_seconds", "", labels=names)
        for _, name, help_text in _GAUGES:
            yield GaugeMetricFamily(f"{self.prefix}_{name}", help_text, labels=names)
        yield SummaryMetricFamily(f"{self.prefix}_checkout_wait_seconds", "", labels=names)

    def _families(
        self, family_type: Any, table: Sequence[tuple[str, str, str]], total: PoolSnapshot
    ) -> Iterator[Any]:
        """One ``family_type`` per ``(field, name, help)`` of ``table`` that ``total`` has."""
        names, values = list(self.labels), list(self.labels.values())
        for field, name, help_text in table:
            value = getattr(total, field)
            if value is not None:
                family = family_type(f"{self.prefix}_{name}", help_text, labels=names)
                family.add_metric(values, value)
                yield family

    def collect(self) -> Iterator[Any]:
        """The pool's metrics now (prometheus_client calls this on each scrape)."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            SummaryMetricFamily,
        )

        names, values = list(self.labels), list(self.labels.values())
        now = self.monitor.mark()
        window = self.monitor.source.recent_waits(self.quantile_window)
        total = self.monitor.snapshot_between(self._start, now)
        yield from self._families(CounterMetricFamily, _COUNTERS, total)
        busy = CounterMetricFamily(
            f"{self.prefix}_busy_seconds",
            "Connection-seconds spent checked out (rate / connections_max = utilization)",
            labels=names,
        )
        busy.add_metric(values, now.busy_seconds - self._start.busy_seconds)
        yield busy
        yield from self._families(GaugeMetricFamily, _GAUGES, total)
        wait = SummaryMetricFamily(
            f"{self.prefix}_checkout_wait_seconds",
            "Time from asking the pool for a connection to having it",
            labels=names,
        )
        wait.add_metric(values, count_value=total.checkouts, sum_value=total.wait_total_ms / 1000)
        if window:
            ordered = sorted(window)
            for q in (0.5, 0.95, 0.99):
                wait.add_sample(
                    f"{self.prefix}_checkout_wait_seconds",
                    {**self.labels, "quantile": str(q)},
                    percentile(ordered, q),
                )
        yield wait


def register_prometheus(
    monitor: PoolMonitor,
    registry: Any = None,
    *,
    prefix: str = "dbopt_pool",
    labels: Mapping[str, str] | None = None,
) -> PrometheusCollector:
    """Register a collector for ``monitor`` with ``registry`` (the default registry if None).

    Raises :class:`MissingDependencyError` without ``prometheus_client``.
    Unregister with ``registry.unregister(collector)``.
    """
    try:
        import prometheus_client
    except ImportError as exc:
        raise MissingDependencyError("prometheus-client", "prometheus") from exc
    collector = PrometheusCollector(monitor, prefix, labels or {})
    (registry if registry is not None else prometheus_client.REGISTRY).register(collector)
    return collector


def register_otel(
    monitor: PoolMonitor, meter: Any = None, *, attributes: Mapping[str, str] | None = None
) -> list[Any]:
    """Create OpenTelemetry instruments for ``monitor`` on ``meter`` (the global one if None).

    Names follow the database client semantic conventions
    (``db.client.connection.count`` with ``db.client.connection.state`` =
    ``used``/``idle``, ``.max``, ``.pending_requests``, ``.timeouts``,
    ``.wait_time``) plus ``dbopt.pool.*`` counters for the rest. Raises
    :class:`MissingDependencyError` without ``opentelemetry-api``.
    """
    try:
        from opentelemetry import metrics
        from opentelemetry.metrics import CallbackOptions, Observation
    except ImportError as exc:
        raise MissingDependencyError("opentelemetry-api", "otel") from exc
    meter = meter if meter is not None else metrics.get_meter("dbopt.pool")
    attrs = {"db.client.connection.pool.name": monitor.name, **(attributes or {})}
    start = monitor.mark()

    def observe(*fields: tuple[str, dict[str, str]]) -> Any:
        def callback(options: CallbackOptions) -> Iterator[Observation]:
            snap = monitor.snapshot_between(start, monitor.mark())
            for field, extra in fields:
                value = getattr(snap, field)
                if value is not None:
                    yield Observation(value, {**attrs, **extra})

        return callback

    used, idle = {"db.client.connection.state": "used"}, {"db.client.connection.state": "idle"}
    instruments = [
        meter.create_observable_up_down_counter(
            "db.client.connection.count",
            callbacks=[observe(("in_use", used), ("idle", idle))],
            unit="{connection}",
            description="Connections in the pool by state",
        ),
        meter.create_observable_up_down_counter(
            "db.client.connection.max",
            callbacks=[observe(("capacity", {}))],
            unit="{connection}",
        ),
        meter.create_observable_up_down_counter(
            "db.client.connection.pending_requests",
            callbacks=[observe(("waiting", {}))],
            unit="{request}",
        ),
        meter.create_observable_counter(
            "db.client.connection.timeouts", callbacks=[observe(("timeouts", {}))], unit="{timeout}"
        ),
    ]
    for field, name, help_text in _COUNTERS:
        if field != "timeouts":
            instruments.append(
                meter.create_observable_counter(
                    f"dbopt.pool.{name}", callbacks=[observe((field, {}))], description=help_text
                )
            )
    histogram = meter.create_histogram(
        "db.client.connection.wait_time", unit="s", description="Time to obtain a connection"
    )
    monitor.source.add_wait_listener(lambda wait: histogram.record(wait, attrs))
    instruments.append(histogram)
    return instruments
