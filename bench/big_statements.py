"""Big statements and long runs: dbopt's cost per statement and its state stay bounded.

Part 1, time and memory per statement: ``SELECT count(*) FROM dbopt_bench_big WHERE
id IN (...)`` of about 1 KB, 1 MB and 10 MB, run with ``exec_driver_sql`` on one
PostgreSQL connection over loopback, ``bare`` (no dbopt) against ``full``
(``dbopt.instrument(engine, QueryStats(), QueryLogger(), NPlusOneDetector())``
inside a ``dbopt.scope``; the ``dbopt.sql`` logger has a handler that drops
records, so slow statements build their records as in production). Blocks are
interleaved (``_common.interleave``); each run gets a text not seen before
(the first value differs), so no cache helps; figures are medians; the added time is
quoted in ms of wall time (paired with the bare block next to it; noisy, as
the server's own time for a 10 MB statement varies by seconds on a shared
machine) and in ms of this process's CPU time (the hook does no I/O, so this
is its cost), as a share of the bare statement's own time (target: under 5 %
for the 10 MB one, judged on CPU). Added peak memory is traced (tracemalloc) around one
statement of each size, bare and full.

Part 2, state after a long run: ``--statements`` (1,000,000) events with
``--distinct`` (200,000) fingerprints fed to the three sinks directly (20 per
scope), then the memory they hold (tracemalloc), against the documented bounds
(QueryStats ``max_bytes``, QueryLogger ``max_plan_bytes``, the fingerprint
cache's 16 M characters).

Nothing asserts a timing; figures are printed with PASS/MISS markers.
Run: ``python bench/big_statements.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

from _common import describe_machine, interleave, mark, median, postgres_url, print_table

import dbopt
from dbopt.core import fingerprint as fp_module
from dbopt.core.events import CallSite, QueryEvent
from dbopt.core.fingerprint import fingerprint_info

SIZES = {"1 KB": 1_000, "1 MB": 1_000_000, "10 MB": 10_000_000}
TARGET_SHARE = 0.05


def in_list(size: int) -> str:
    """A SELECT of about ``size`` bytes: an IN-list of numbers."""
    head = "SELECT count(*) FROM dbopt_bench_big WHERE id IN ("
    count = max(1, (size - len(head)) // 8)
    return head + ",".join(str(1_000_000 + i) for i in range(count)) + ")"


_counter = [0]


def fresh(sql: str) -> str:
    """A text dbopt has not seen (other values, as in production): no cache helps it."""
    _counter[0] += 1
    return sql.replace("(1000000,", f"({2_000_000 + _counter[0]},", 1)


def _quiet_logger() -> logging.Logger:
    log = logging.getLogger("dbopt.bench.big")
    log.handlers[:] = [logging.NullHandler()]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


def _sinks() -> list[Any]:
    return [
        dbopt.QueryStats(),
        dbopt.QueryLogger(_quiet_logger()),
        dbopt.NPlusOneDetector(action="log"),
    ]


def time_statements(url: str, repeats: int, sizes: dict[str, int]) -> list[list[str]]:
    from sqlalchemy import create_engine

    engine = create_engine(url, pool_size=1, max_overflow=0)
    rows: list[list[str]] = []
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS dbopt_bench_big")
            conn.exec_driver_sql("CREATE TABLE dbopt_bench_big (id int PRIMARY KEY)")
            conn.exec_driver_sql("INSERT INTO dbopt_bench_big SELECT generate_series(1, 10000)")
            conn.exec_driver_sql("ANALYZE dbopt_bench_big")
        for label, size in sizes.items():
            sql = in_list(size)
            with engine.connect() as conn:
                cpu: dict[str, list[float]] = {"bare": [], "full": []}

                def bare(sql: str = sql, conn: Any = conn, cpu: Any = cpu) -> float:
                    sql = fresh(sql)
                    started, cpu_started = time.perf_counter(), time.process_time()
                    conn.exec_driver_sql(sql).scalar()
                    cpu["bare"].append(time.process_time() - cpu_started)
                    return time.perf_counter() - started

                def full(sql: str = sql, conn: Any = conn, cpu: Any = cpu) -> float:
                    sql = fresh(sql)
                    with dbopt.instrument(engine, *_sinks()), dbopt.scope("bench"):
                        started, cpu_started = time.perf_counter(), time.process_time()
                        conn.exec_driver_sql(sql).scalar()
                        cpu["full"].append(time.process_time() - cpu_started)
                        return time.perf_counter() - started

                reps = repeats if size < 5_000_000 else max(3, repeats // 2)
                samples = interleave({"bare": bare, "full": full}, reps)
                cpu_bare, cpu_full = cpu["bare"][-reps:], cpu["full"][-reps:]
                peak_bare = _peak(bare)
                peak_full = _peak(full)
            base, with_dbopt = median(samples["bare"]), median(samples["full"])
            added = median([f - b for f, b in zip(samples["full"], samples["bare"], strict=True)])
            # The hook does no I/O: its cost is client CPU, far less noisy than the
            # server's time for a 10 MB statement on a shared machine.
            added_cpu = median([f - b for f, b in zip(cpu_full, cpu_bare, strict=True)])
            share = added_cpu / base if base > 0 else float("nan")
            rows.append(
                [
                    label,
                    f"{len(sql) / 1e6:.3f}",
                    f"{base * 1000:.2f}",
                    f"{with_dbopt * 1000:.2f}",
                    f"{added * 1000:+.2f}",
                    f"{added / base if base > 0 else float('nan'):+.1%}",
                    f"{added_cpu * 1000:+.2f}",
                    f"{share:+.1%}",
                    f"{(peak_full - peak_bare) / 1e6:+.2f}",
                    mark(share, TARGET_SHARE) if size >= 5_000_000 else "",
                ]
            )
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS dbopt_bench_big")
        engine.dispose()
    return rows


def _peak(block: Callable[[], float]) -> int:
    """Peak traced bytes while ``block`` runs once (after a warm-up run)."""
    block()
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        block()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def long_run(statements: int, distinct: int) -> list[list[str]]:
    """Feed the sinks directly; return the memory they hold after, against the bounds."""
    site = CallSite("app.py", 1, "view")
    texts = [f"SELECT c{k} FROM t{k % 97} WHERE id = %(id)s" for k in range(distinct)]
    plan = [{"Plan": {"Node Type": "Seq Scan", "Filter": "(id = 1)"}}]
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    stats = dbopt.QueryStats()
    log = dbopt.QueryLogger(_quiet_logger(), slow_ms=1.0, explain=lambda e: plan)
    det = dbopt.NPlusOneDetector(action=lambda f: None)
    sinks = (stats, log, det)
    started = time.perf_counter()
    scope_cm = None
    scope = None
    for i in range(statements):
        if i % 20 == 0:
            if scope_cm is not None:
                scope_cm.__exit__(None, None, None)
                det.scope_end(scope)  # type: ignore[arg-type]
            scope_cm = dbopt.scope("request")
            scope = scope_cm.__enter__()
        sql = texts[(i * 7919) % distinct]
        info = fingerprint_info(sql)
        event = QueryEvent(
            sql=sql,
            parameters={"id": i},
            fingerprint=info.fingerprint,
            duration=0.002 if i % 10 == 0 else 0.0005,  # a tenth are slow: logged, explained
            rowcount=1,
            executemany=False,
            error=None,
            callsite=site,
            stack=(site,),
            scope=scope,
            adapter="bench",
            dialect="postgresql",
            timestamp=0.0,
            kind=info.kind,
        )
        for sink in sinks:
            sink(event)
    if scope_cm is not None:
        scope_cm.__exit__(None, None, None)
    log.flush()
    log.close()
    elapsed = time.perf_counter() - started
    del event, texts
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    cache_chars = fp_module._cache_chars
    rows = [
        ["QueryStats entries", f"{len(stats):,}", f"{stats.max_statements:,}", ""],
        [
            "QueryStats bytes (estimate)",
            f"{stats.nbytes / 1e6:.1f} MB",
            f"{stats.max_bytes / 1e6:.1f} MB",
            mark(stats.nbytes, stats.max_bytes),
        ],
        ["QueryLogger plans", f"{len(log.plans):,}", f"{log.max_plans:,}", ""],
        [
            "QueryLogger plan bytes",
            f"{log.plans_nbytes / 1e6:.2f} MB",
            f"{log.max_plan_bytes / 1e6:.1f} MB",
            mark(log.plans_nbytes, log.max_plan_bytes),
        ],
        ["QueryLogger rate-limit map", f"{len(log._explained_at):,}", f"{log.max_plans:,}", ""],
        ["N+1 open scope states", f"{len(det._states):,}", f"{det.max_scopes:,}", ""],
        [
            "fingerprint cache",
            f"{len(fp_module._cache):,} texts, {cache_chars / 1e6:.1f} M chars",
            f"{fp_module._CACHE_MAX:,}, {fp_module._CACHE_MAX_CHARS / 1e6:.0f} M",
            "",
        ],
    ]
    bound = stats.max_bytes + log.max_plan_bytes + 2 * fp_module._CACHE_MAX_CHARS
    rows.append(
        [
            "all held (tracemalloc)",
            f"{held / 1e6:.1f} MB",
            f"{bound / 1e6:.0f} MB",
            mark(held, bound),
        ]
    )
    print(
        f"\n{statements:,} statements, {distinct:,} distinct fingerprints, "
        f"{elapsed:.1f} s ({elapsed / statements * 1e6:.1f} us per statement, traced)"
    )
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, list[list[str]]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--statements", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=200_000)
    parser.add_argument("--pg-url", help="an existing database (default: a throwaway one)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny counts, for a smoke run")
    parser.add_argument("--no-long-run", action="store_true", help="skip part 2")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.statements, args.distinct = 2, 2_000, 400
    sizes = {"1 KB": 1_000, "1 MB": 100_000} if args.quick else SIZES
    print(describe_machine())
    result: dict[str, list[list[str]]] = {}
    if not args.no_postgres:
        with ExitStack() as stack:
            try:
                url = args.pg_url or stack.enter_context(postgres_url())
            except (dbopt.ServerUnavailableError, dbopt.MissingDependencyError) as exc:
                print(f"\nPostgreSQL skipped: {exc}")
                url = None
            if url is not None:
                rows = time_statements(url, args.repeats, sizes)
                print("\nPart 1: one statement through the full hook, PostgreSQL loopback")
                print_table(
                    [
                        "size",
                        "MB",
                        "bare ms",
                        "full ms",
                        "added ms",
                        "added %",
                        "added CPU ms",
                        "CPU % of bare",
                        "added peak MB",
                        f"< {TARGET_SHARE:.0%}",
                    ],
                    rows,
                )
                result["statements"] = rows
    if not args.no_long_run:
        rows = long_run(args.statements, args.distinct)
        print("\nPart 2: state after a long run (sinks fed directly)")
        print_table(["state", "held", "bound", ""], rows)
        result["state"] = rows
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
