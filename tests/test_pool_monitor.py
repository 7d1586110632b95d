"""PoolMonitor against real pools: exact counts, waits consistent with what callers saw."""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg_pool import ConnectionPool
from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.ext.asyncio import create_async_engine

from dbopt import InstrumentationError, MissingDependencyError
from dbopt.pool import PoolMonitor, Thresholds
from dbopt.testing import libpq_url

THREADS = 50
ROUNDS = 4


def _nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def _hammer(checkout: Callable[[], float]) -> list[float]:
    """Run ``checkout`` ROUNDS times on each of THREADS threads; return the waits they saw."""
    waits: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def work() -> None:
        start.wait()
        for _ in range(ROUNDS):
            seen = checkout()
            with lock:
                waits.append(seen)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return waits


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    eng = create_engine(pg_url, pool_size=5, max_overflow=0, pool_timeout=60)
    yield eng
    eng.dispose()


def test_fifty_threads_on_a_pool_of_five(engine: Engine) -> None:
    with engine.connect():
        pass  # one connection exists before the monitor starts
    monitor = PoolMonitor(engine)

    def checkout() -> float:
        started = time.perf_counter()
        with engine.connect() as conn:
            waited = time.perf_counter() - started
            conn.execute(text("SELECT pg_sleep(0.004)"))
        return waited

    try:
        seen = _hammer(checkout)
        snap = monitor.snapshot()
    finally:
        monitor.close()

    total = THREADS * ROUNDS
    assert snap.checkouts == total
    assert snap.created == 4  # five in all, one made before the monitor
    assert (snap.timeouts, snap.errors, snap.recycled, snap.invalidated) == (0, 0, 0, 0)
    assert snap.peak_in_use == 5
    assert snap.in_use == 0
    assert snap.idle == 5
    assert snap.capacity == 5
    assert snap.overflow == 0
    assert snap.utilization is not None
    assert 0 < snap.utilization <= 1
    # each monitored wait lies inside the interval its thread measured, so every
    # order statistic of the monitor's waits is at most the threads' one ...
    assert snap.wait_max_ms is not None
    assert snap.wait_p50_ms is not None
    assert snap.wait_p95_ms is not None
    assert snap.wait_max_ms <= max(seen) * 1000
    assert snap.wait_p95_ms <= _nearest_rank(seen, 0.95) * 1000
    assert snap.wait_p50_ms <= _nearest_rank(seen, 0.5) * 1000
    assert snap.wait_total_ms <= sum(seen) * 1000
    # ... and only the cost of building a Connection object lies outside it
    assert sum(seen) * 1000 - snap.wait_total_ms < total * 2.0
    assert _nearest_rank(seen, 0.95) * 1000 - snap.wait_p95_ms < 10.0
    # 50 threads on 5 connections queue: the thresholds see it
    codes = {f.code for f in snap.findings()}
    assert "POOL102" in codes
    assert snap.findings(Thresholds(max_wait_ms=10_000, max_utilization=1.0)) == []
    [p95] = snap.findings(Thresholds(max_wait_ms=10_000, max_utilization=1.0, max_wait_p95_ms=1))
    assert p95.metadata["wait_p95_ms"] == snap.wait_p95_ms


def test_psycopg_pool_counts(pg_url: str) -> None:
    with ConnectionPool(libpq_url(pg_url), min_size=5, max_size=5, open=True) as p:
        p.wait()
        monitor = PoolMonitor(p)

        def checkout() -> float:
            started = time.perf_counter()
            with p.connection() as conn:
                waited = time.perf_counter() - started
                conn.execute("SELECT pg_sleep(0.004)")
            return waited

        seen = _hammer(checkout)
        snap = monitor.snapshot()
        monitor.close()
    assert snap.source == "psycopg_pool"
    assert snap.checkouts == THREADS * ROUNDS
    assert snap.created == 0  # all five were opened before the monitor
    assert snap.timeouts == 0
    assert snap.wait_p95_ms is None  # psycopg_pool reports only the total wait
    assert snap.wait_mean_ms is not None
    assert snap.wait_total_ms <= sum(seen) * 1000 + 1.0  # psycopg rounds to whole ms
    assert snap.capacity == 5
    assert snap.utilization is not None
    assert 0 < snap.utilization <= 1


def test_timeouts_and_errors_are_counted(engine: Engine, pg_url: str) -> None:
    small = create_engine(pg_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    monitor = PoolMonitor(small)
    try:
        with small.connect(), pytest.raises(exc.TimeoutError):
            small.connect()
        snap = monitor.snapshot()
    finally:
        monitor.close()
        small.dispose()
    assert (snap.checkouts, snap.timeouts, snap.errors) == (1, 1, 0)
    assert "POOL103" in {f.code for f in snap.findings()}

    refused = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/x")
    with PoolMonitor(refused) as watch:
        with pytest.raises(exc.OperationalError):
            refused.connect()
        assert watch.snapshot().errors == 1
        assert "POOL104" in {f.code for f in watch.findings()}


def test_recycled_and_invalidated(pg_url: str, pg_engine: Engine) -> None:
    eng = create_engine(pg_url, pool_size=1, max_overflow=0, pool_recycle=1, pool_pre_ping=True)
    monitor = PoolMonitor(eng)
    try:
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        time.sleep(1.1)
        with eng.connect() as conn:  # older than pool_recycle: replaced
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        first = monitor.snapshot()
        with pg_engine.connect() as admin:  # kill it behind the pool's back
            admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        time.sleep(0.1)
        with eng.connect() as conn:  # pre-ping finds it dead: invalidated, not recycled
            conn.execute(text("SELECT 1"))
            conn.invalidate()  # and once by hand
        second = monitor.snapshot()
    finally:
        monitor.close()
        eng.dispose()
    assert (first.created, first.recycled, first.invalidated) == (2, 1, 0)
    assert (second.created, second.recycled, second.invalidated) == (3, 1, 2)
    assert second.checkouts == 3


def test_dispose_keeps_counting_and_close_detaches(engine: Engine) -> None:
    monitor = PoolMonitor(engine)
    with engine.connect():
        pass
    engine.dispose()
    with engine.connect():
        pass
    assert monitor.snapshot().checkouts == 2
    monitor.close()
    assert "connect" not in vars(engine.pool)
    assert not event.contains(engine, "checkout", monitor.source._on_checkout)  # type: ignore[attr-defined]
    with engine.connect():
        pass
    assert monitor.snapshot().checkouts == 2


def test_two_monitors_on_one_engine_both_count(engine: Engine) -> None:
    first = PoolMonitor(engine)
    second = PoolMonitor(engine)
    try:
        with engine.connect(), engine.connect():
            pass
        with engine.connect():
            pass
        snaps = [first.snapshot(), second.snapshot()]
    finally:
        second.close()
        first.close()
    assert [(s.checkouts, s.peak_in_use, s.in_use) for s in snaps] == [(3, 2, 0)] * 2
    assert "connect" not in vars(engine.pool)


def test_a_listener_retrying_a_checkout_is_one_checkout(engine: Engine) -> None:
    from sqlalchemy.exc import DisconnectionError

    refused: list[int] = []

    def refuse_once(dbapi_conn: object, record: object, proxy: object) -> None:
        if not refused:
            refused.append(1)
            raise DisconnectionError("refused once")

    with PoolMonitor(engine) as monitor:
        event.listen(engine, "checkout", refuse_once)
        try:
            with engine.connect():
                assert monitor.snapshot().in_use == 1
        finally:
            event.remove(engine, "checkout", refuse_once)
        snap = monitor.snapshot()
    assert (snap.checkouts, snap.in_use, snap.peak_in_use, snap.invalidated) == (1, 0, 1, 1)


def test_reset_starts_a_new_window(engine: Engine) -> None:
    with PoolMonitor(engine) as monitor:
        for _ in range(3):
            with engine.connect():
                pass
        monitor.reset()
        with engine.connect():
            pass
        assert monitor.snapshot().checkouts == 1


def test_async_engine(pg_url: str) -> None:
    async def run() -> tuple[int, int, int | None]:
        eng = create_async_engine(pg_url, pool_size=2, max_overflow=0)
        monitor = PoolMonitor(eng)

        async def one() -> None:
            async with eng.connect() as conn:
                await conn.execute(text("SELECT pg_sleep(0.002)"))

        try:
            await asyncio.gather(*(one() for _ in range(20)))
            snap = monitor.snapshot()
        finally:
            monitor.close()
            await eng.dispose()
        return snap.checkouts, snap.created, snap.peak_in_use

    assert asyncio.run(run()) == (20, 2, 2)


def test_periodic_log_lines_cover_consecutive_windows(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dbopt.pool")
    monitor = PoolMonitor(engine, name="main")
    log = monitor.log_every(0.05)
    try:
        for _ in range(30):
            with engine.connect():
                time.sleep(0.005)
    finally:
        log.close()
    assert not log._thread.is_alive()
    log.log_once()  # the tail since the last line
    monitor.close()
    records = [r for r in caplog.records if r.name == "dbopt.pool"]
    assert len(records) >= 2
    assert sum(r.pool["checkouts"] for r in records) == 30  # type: ignore[attr-defined]
    assert all(r.getMessage().startswith("pool main (sqlalchemy): ") for r in records)


def test_prometheus_collector(engine: Engine) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    with PoolMonitor(engine, name="main") as monitor:
        monitor.prometheus(registry, labels={"service": "api"})
        for _ in range(7):
            with engine.connect():
                pass
        labels = {"pool": "main", "service": "api"}
        assert registry.get_sample_value("dbopt_pool_checkouts_total", labels) == 7
        assert registry.get_sample_value("dbopt_pool_checkout_wait_seconds_count", labels) == 7
        p95 = registry.get_sample_value(
            "dbopt_pool_checkout_wait_seconds", {**labels, "quantile": "0.95"}
        )
        assert p95 is not None
        assert p95 > 0
        assert registry.get_sample_value("dbopt_pool_connections_max", labels) == 5
        assert registry.get_sample_value("dbopt_pool_connections_in_use", labels) == 0


def test_opentelemetry_instruments(engine: Engine) -> None:
    sdk_metrics = pytest.importorskip("opentelemetry.sdk.metrics")
    export = pytest.importorskip("opentelemetry.sdk.metrics.export")
    reader = export.InMemoryMetricReader()
    provider = sdk_metrics.MeterProvider(metric_readers=[reader])
    try:
        with PoolMonitor(engine, name="main") as monitor:
            monitor.otel(provider.get_meter("test"))
            for _ in range(6):
                with engine.connect():
                    pass
            data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    points = {
        metric.name: list(metric.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
    assert points["dbopt.pool.checkouts"][0].value == 6
    assert points["db.client.connection.wait_time"][0].count == 6
    states = {
        p.attributes["db.client.connection.state"]: p.value
        for p in points["db.client.connection.count"]
    }
    assert states["used"] == 0
    assert points["db.client.connection.max"][0].value == 5


@pytest.mark.parametrize(
    ("modules", "extra", "call"),
    [
        (["prometheus_client"], "prometheus", lambda m: m.prometheus()),
        (["opentelemetry", "opentelemetry.metrics"], "otel", lambda m: m.otel()),
    ],
)
def test_missing_exporter_names_the_extra(
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    modules: list[str],
    extra: str,
    call: Callable[[PoolMonitor], object],
) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    with PoolMonitor(engine) as monitor, pytest.raises(MissingDependencyError) as info:
        call(monitor)
    assert info.value.extra == extra
    assert f"dbopt[{extra}]" in str(info.value)


def test_sqlite_engine_is_monitored(tmp_path: object) -> None:
    eng = create_engine(f"sqlite:///{tmp_path}/m.db")
    with PoolMonitor(eng) as monitor:
        for _ in range(3):
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))
        snap = monitor.snapshot()
    eng.dispose()
    assert (snap.checkouts, snap.created) == (3, 1)


def test_unknown_target_is_rejected() -> None:
    with pytest.raises(InstrumentationError):
        PoolMonitor(psycopg)
