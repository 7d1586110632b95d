"""Per-statement cost of sqlcommenter tags and metric export, beside the hook's own cost.

Configurations, all on one engine, interleaved, inside one ``dbopt.scope``
(``GET /items/<int:id>``) so every configuration pays the same for it:

* ``bare``: no listeners.
* ``hook``: ``dbopt.instrument(engine, QueryStats())``, call sites depth 5:
  the hook's own cost, the baseline the others are compared with.
* ``hook+prometheus``: as ``hook`` plus ``dbopt.export.register_prometheus``
  and one scrape per block (the collector reads the stats when scraped: it
  adds nothing per statement; the scrape is amortized over the block).
* ``hook+otel``: as ``hook`` plus ``register_otel``'s sink recording
  ``db.client.operation.duration`` per statement (OpenTelemetry SDK meter,
  in-memory reader, one collection per block).
* ``hook+tags``: as ``hook`` plus ``SQLCommenter()`` (per scope).
* ``hook+tags/line``: as ``hook`` plus ``SQLCommenter(per="line")``.
* ``tags``: ``SQLCommenter()`` alone, no hook.

Workload: ``conn.execute(text("SELECT id, name FROM <t> WHERE id = :id"),
{"id": n}).one()`` on one connection. Databases: SQLite in memory and
PostgreSQL over loopback (``DBOPT_TEST_DSN``, else an embedded server).
Also printed: the time of one Prometheus scrape and one OpenTelemetry
collection of a QueryStats holding 5,000 fingerprints (``top_k=100``).
Nothing asserts a timing. Run: ``python bench/fleet.py`` (``--quick``: seconds).
"""

from __future__ import annotations

import argparse
import functools
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from _common import databases, describe_machine, interleave, median, paired_delta, print_table
from sqlalchemy import Engine, text

import dbopt
from dbopt.export import register_otel, register_prometheus
from dbopt.tags import SQLCommenter

CONFIGS = ("bare", "hook", "hook+prometheus", "hook+otel", "hook+tags", "hook+tags/line", "tags")
HOOK = "hook"
QUERIES = {"sqlite": 1500, "postgresql": 300}
#: Where scrapes and collections go (kept only until the next block).
_sink: list[Any] = []


@contextmanager
def configured(name: str, engine: Engine, seen: list[int]) -> Iterator[Callable[[], None]]:
    """Put ``engine`` in configuration ``name``; yield what to run once per block (a scrape)."""
    import prometheus_client
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    with ExitStack() as stack:
        after_block: Callable[[], None] = lambda: None  # noqa: E731
        stats = dbopt.QueryStats()
        sinks: list[Any] = [stats]
        if name == "hook+prometheus":
            registry = prometheus_client.CollectorRegistry()
            register_prometheus(stats, registry)
            after_block = lambda: _sink.append(prometheus_client.generate_latest(registry))  # noqa: E731
        if name == "hook+otel":
            reader = InMemoryMetricReader()
            meter = MeterProvider(metric_readers=[reader]).get_meter("bench")
            sinks.append(register_otel(stats, meter))
            after_block = lambda: _sink.append(reader.get_metrics_data())  # noqa: E731
        if name.startswith("hook"):
            handle = dbopt.instrument(engine, *sinks)
            stack.callback(handle.close)
        if "tags" in name:
            commenter = SQLCommenter(per="line" if name.endswith("/line") else "scope")
            commenter.attach(engine)
            stack.callback(commenter.detach)
        yield after_block
        if name.startswith("hook"):
            seen.append(stats.total_calls)


def run_block(engine: Engine, table: str, name: str, queries: int, seen: list[int]) -> float:
    """Seconds per statement of ``queries`` selects in configuration ``name``."""
    sql = text(f"SELECT id, name FROM {table} WHERE id = :id")
    with configured(name, engine, seen) as after_block, engine.connect() as conn:
        with dbopt.scope("GET /items/<int:id>"):
            conn.execute(sql, {"id": 1}).one()  # untimed: connection and caches warm
            started = time.perf_counter()
            for i in range(queries):
                conn.execute(sql, {"id": i % 100 + 1}).one()
            elapsed = time.perf_counter() - started
        after_block()
        _sink.clear()
        return elapsed / queries


def export_read_cost(repeats: int) -> tuple[float, float]:
    """Median seconds of one scrape and one OTel collection of 5,000 fingerprints."""
    import prometheus_client
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from sqlalchemy import create_engine

    engine = create_engine("sqlite://")
    stats = dbopt.QueryStats()
    with dbopt.instrument(engine, stats, callsite_depth=0), engine.connect() as conn:
        for i in range(5000):
            conn.exec_driver_sql(f"SELECT {i} AS c{i}")
    engine.dispose()
    registry = prometheus_client.CollectorRegistry()
    register_prometheus(stats, registry)
    reader = InMemoryMetricReader()
    register_otel(stats, MeterProvider(metric_readers=[reader]).get_meter("bench"))
    scrapes, collections = [], []
    for _ in range(repeats):
        stats.merge({"version": 1, "statements": [s.to_dict("keep") for s in stats.top(50)]})
        started = time.perf_counter()
        prometheus_client.generate_latest(registry)
        scrapes.append(time.perf_counter() - started)
        started = time.perf_counter()
        reader.get_metrics_data()
        collections.append(time.perf_counter() - started)
    return median(scrapes), median(collections)


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, list[float]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (smoke test)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--pg-url", default=None)
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    print(describe_machine())
    results: dict[str, dict[str, list[float]]] = {}
    for label, engine in databases(args):
        kind = engine.dialect.name
        queries = 20 if args.quick else QUERIES[kind]
        table = f"bench_fleet_{secrets.token_hex(4)}"
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE {table} (id integer PRIMARY KEY, name text)")
            conn.exec_driver_sql(
                f"INSERT INTO {table} SELECT i, 'item ' || i FROM "
                + (
                    "generate_series(1, 100) AS i"
                    if kind == "postgresql"
                    else "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s "
                    "WHERE i < 100) SELECT i FROM s)"
                )
            )
        seen: list[int] = []
        try:
            samples = interleave(
                {
                    name: functools.partial(run_block, engine, table, name, queries, seen)
                    for name in CONFIGS
                },
                repeats,
            )
        finally:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE {table}")
        # every hooked block saw all its statements (queries + 1 warm-up)
        assert set(seen) == {queries + 1}, seen
        results[label] = samples
        report(label, queries, repeats, samples)
    scrape, collect = export_read_cost(3 if args.quick else 15)
    print(
        f"\nReading a QueryStats of 5,000 fingerprints (top_k=100): one Prometheus scrape "
        f"{scrape * 1000:.2f} ms, one OpenTelemetry collection {collect * 1000:.2f} ms (medians)"
    )
    return results


def report(label: str, queries: int, repeats: int, samples: dict[str, list[float]]) -> None:
    hook_added = paired_delta(samples, HOOK, "bare")
    print(f"\n{label}: {queries} statements per block, {repeats} repetitions, medians")
    rows = []
    for name in CONFIGS:
        added = paired_delta(samples, name, "bare")
        over_hook = paired_delta(samples, name, HOOK) if name.startswith("hook+") else None
        rows.append(
            [
                name,
                f"{median(samples[name]) * 1e6:.1f}",
                f"{added * 1e6:+.1f}",
                f"{over_hook * 1e6:+.2f}" if over_hook is not None else "",
                f"{over_hook / hook_added:.2f}" if over_hook is not None and hook_added else "",
            ]
        )
    print_table(
        ["config", "µs/stmt", "added vs bare µs", "added vs hook µs", "added / hook's own"],
        rows,
    )


if __name__ == "__main__":
    main()
