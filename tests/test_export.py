"""QueryStats as Prometheus and OpenTelemetry metrics: two real app processes, one sum.

Each worker process runs its own statements against the real PostgreSQL
server, serves its Prometheus exposition over HTTP and collects its
OpenTelemetry metrics with the SDK's in-memory reader. The test scrapes both
expositions, parses them with prometheus_client's own parser and checks that
the sums equal the sum of the two processes' QueryStats.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import urllib.request
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

import dbopt
from dbopt import NPlusOneDetector, QueryStats
from dbopt.export import OTHER, StatementSeries, register_otel, register_prometheus

prometheus_client = pytest.importorskip("prometheus_client")
pytest.importorskip("opentelemetry.sdk.metrics")

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

_WORKLOADS = {
    # each process runs a different mix; "SELECT $1" is shared by both
    0: [("SELECT CAST(:v AS int)", 30), ("SELECT count(*) FROM pg_class WHERE relpages > :v", 7)],
    1: [("SELECT CAST(:v AS int)", 11), ("SELECT pg_sleep(:v / 1000.0)", 5), ("SELECT nope", 3)],
}


def _otel_points(reader: Any) -> list[dict[str, Any]]:
    data = reader.get_metrics_data()
    out = []
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    out.append(
                        {
                            "name": metric.name,
                            "attributes": dict(point.attributes),
                            "value": getattr(point, "value", None),
                            "count": getattr(point, "count", None),
                            "sum": getattr(point, "sum", None),
                        }
                    )
    return out


def _app_process(index: int, url: str, results: Any, done: Any) -> None:
    """One application instance: runs its workload, exposes its metrics, waits to be scraped."""
    registry = prometheus_client.CollectorRegistry()
    stats = QueryStats()
    # three slots: every statement of a process has its own series whatever the machine's
    # timings make the top (the totals, "other" included, are checked as well)
    register_prometheus(stats, registry, labels={"instance": f"app{index}"}, top_k=3)
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    metrics = register_otel(stats, meter, attributes={"instance": f"app{index}"}, top_k=3)
    engine = create_engine(url, pool_size=1)
    handle = dbopt.instrument(engine, stats, metrics)
    try:
        reader.get_metrics_data()  # a first collection gives the slots
        for sql, times in _WORKLOADS[index]:
            for i in range(times):
                with contextlib.suppress(DBAPIError), engine.connect() as conn:
                    conn.execute(text(sql), {"v": i})  # "SELECT nope" fails on purpose
        server, _thread = prometheus_client.start_http_server(0, "127.0.0.1", registry)
        results.put((index, server.server_port, stats.to_dict("keep"), _otel_points(reader)))
        done.wait(60)
        server.shutdown()
    finally:
        handle.close()
        engine.dispose()


def _scrape(port: int) -> list[Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return list(text_string_to_metric_families(response.read().decode()))


def _sum_samples(families: list[Any], name: str, by: str | None = None) -> Counter[Any]:
    total: Counter[Any] = Counter()
    for family in families:
        for sample in family.samples:
            if sample.name == name:
                total[sample.labels.get(by) if by else None] += sample.value
    return total


def test_two_processes_sum_to_their_query_stats(pg_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    results, done = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_app_process, args=(i, pg_url, results, done)) for i in (0, 1)]
    for proc in procs:
        proc.start()
    try:
        got = [results.get(timeout=120) for _ in procs]
        families = [f for _, port, _, _ in got for f in _scrape(port)]
    finally:
        done.set()
        for proc in procs:
            proc.join(30)
    merged = QueryStats().merge(*[QueryStats.from_dict(d) for _, _, d, _ in got])

    calls = _sum_samples(families, "dbopt_query_duration_seconds_count")
    seconds = _sum_samples(families, "dbopt_query_duration_seconds_sum")
    errors = _sum_samples(families, "dbopt_query_errors_total")
    assert calls[None] == merged.total_calls == 30 + 7 + 11 + 5 + 3
    assert seconds[None] == pytest.approx(sum(s.total_time for s in merged.statements()))
    assert errors[None] == sum(s.errors for s in merged.statements()) == 3

    # the statement both processes ran is one series per process, summed here by fingerprint
    shared = next(s for s in merged.statements() if s.normalized.startswith("select cast"))
    by_statement = _sum_samples(families, "dbopt_query_duration_seconds_count", "statement")
    assert by_statement[shared.fingerprint] == shared.calls == 41
    instances = {
        s.labels["instance"] for f in families for s in f.samples if f.name.startswith("dbopt")
    }
    assert instances == {"app0", "app1"}

    # OpenTelemetry: the histogram and the counters both add up to the same calls
    points = [p for _, _, _, pts in got for p in pts]
    histogram = [p for p in points if p["name"] == "db.client.operation.duration"]
    assert sum(p["count"] for p in histogram) == merged.total_calls
    assert sum(p["sum"] for p in histogram) == pytest.approx(seconds[None], rel=0.2)
    counted = sum(p["value"] for p in points if p["name"] == "dbopt.query.calls")
    assert counted == merged.total_calls
    assert all(p["attributes"]["db.system.name"] == "postgresql" for p in histogram)
    failed = [p for p in histogram if "error.type" in p["attributes"]]
    assert sum(p["count"] for p in failed) == 3
    assert {p["attributes"]["db.operation.name"] for p in histogram} == {"SELECT"}


def test_100000_distinct_statements_stay_under_the_bound() -> None:
    engine = create_engine("sqlite://")
    stats = QueryStats(max_statements=200_000, samples=1, max_callsites=0, max_bytes=1 << 30)
    registry = prometheus_client.CollectorRegistry()
    top_k = 25
    collector = register_prometheus(stats, registry, top_k=top_k)
    handle = dbopt.instrument(engine, stats, callsite_depth=0, orm_context=False)
    try:
        with engine.connect() as conn:
            for i in range(100_000):
                conn.exec_driver_sql(f"SELECT {i % 7} AS c{i}")
                if i == 999:
                    prometheus_client.generate_latest(registry)  # a scrape part way
    finally:
        handle.close()
    assert len(stats) == 100_000
    exposition = prometheus_client.generate_latest(registry).decode()
    families = list(text_string_to_metric_families(exposition))
    series = {
        tuple(sorted(s.labels.items()))
        for f in families
        for s in f.samples
        if s.name == "dbopt_query_duration_seconds_count"
    }
    assert len(series) <= top_k + 9
    assert len({dict(k)["statement"] for k in series} - {OTHER}) == top_k
    assert _sum_samples(families, "dbopt_query_duration_seconds_count")[None] == 100_000
    assert len(exposition) < 20_000
    assert len(collector.series._named) == top_k


def test_counters_never_go_backwards_when_the_top_changes_or_stats_evict(
    sqlite_engine: Any,
) -> None:
    stats = QueryStats(max_statements=20)
    series = StatementSeries(stats, top_k=3)
    handle = dbopt.instrument(sqlite_engine, stats, callsite_depth=0)
    previous: dict[tuple[str, str], int] = {}
    total = 0
    try:
        with sqlite_engine.connect() as conn:
            for round_ in range(6):
                for i in range(40):  # more fingerprints than the stats hold: evictions
                    for _ in range(1 + (i * round_) % 5):
                        conn.exec_driver_sql(f"SELECT {i} AS r{round_}_{i}")
                        total += 1
                read = {(s.statement, s.operation): s.calls for s in series.read()}
                for key, calls in previous.items():
                    assert read[key] >= calls
                previous = read
    finally:
        handle.close()
    assert stats.evicted > 0
    assert len(previous) <= 3 + 9
    # what the stats evicted before a read is lost to both; the rest is all there
    assert sum(previous.values()) <= total
    assert sum(previous.values()) >= sum(s.calls for s in stats.statements())


def test_nplusone_findings_are_counted(pg_engine: Any) -> None:
    stats = QueryStats()
    detector = NPlusOneDetector(action=lambda finding: None)
    registry = prometheus_client.CollectorRegistry()
    register_prometheus(stats, registry, nplusone=detector)
    handle = dbopt.instrument(pg_engine, stats, detector)
    try:
        for _ in range(2):
            with dbopt.scope("GET /items"), pg_engine.connect() as conn:
                for i in range(5):
                    conn.execute(text("SELECT relname FROM pg_class WHERE oid = :v"), {"v": i})
    finally:
        handle.close()
    families = list(
        text_string_to_metric_families(prometheus_client.generate_latest(registry).decode())
    )
    counts = _sum_samples(families, "dbopt_nplusone_findings_total", "kind")
    assert counts["n_plus_one"] == 2
    assert detector.reported == {"n_plus_one": 2}
