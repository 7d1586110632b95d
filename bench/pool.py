"""Throughput and p95 latency of a read workload under each pool preset vs SQLAlchemy's defaults.

Workload: each operation checks a connection out of the engine's pool
(``with engine.connect()``), runs ``SELECT name, value FROM bench_pool WHERE
id = :id`` for a random id among 10,000 rows, and returns the connection,
as a web request does. ``--workers`` threads (1, 8 and 32 by default) run it;
latency is per operation, checkout included, for every operation that
overlaps the measured window (so a thread the pool starves through the whole
window counts: ``max ms`` shows it); throughput counts operations finished
inside the window.

Configurations: ``default`` is ``create_engine(url)`` (QueuePool 5 + 10
overflow, no pre-ping, no timeouts); every preset is sized for the number of
workers against the server's real connection budget
(``dbopt.pool.connection_budget``), as the presets do by default, and
rendered with ``.sqlalchemy(url)``. ``web (cores cap)`` also applies
HikariCP's ``cores * 2 + 1`` with the server's cores (``--db-cores``, this
machine's CPU count by default, since the bench server is local).
``async_web`` runs its pool settings on a sync engine; ``pgbouncer``
connects to the server directly (it shows what turning off prepared
statements costs, not PgBouncer). Cells run interleaved ``--repeats`` times
in one run (rotating order, so a noisy moment hits all configurations);
nothing is asserted. Run: ``python bench/pool.py`` (``DBOPT_TEST_DSN`` names
the server, else an embedded one is started).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from _common import describe_machine, postgres_url, print_table, ratio
from sqlalchemy import Engine, create_engine, text

from dbopt import pool

ROWS = 10_000
QUERY = text("SELECT name, value FROM bench_pool WHERE id = :id")


def _setup(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_pool (id int PRIMARY KEY, name text, value int)"))
        conn.execute(
            text(
                "INSERT INTO bench_pool SELECT g, 'name ' || g, g % 97 "
                "FROM generate_series(1, :n) g"
            ),
            {"n": ROWS},
        )
        conn.execute(text("ANALYZE bench_pool"))
    engine.dispose()


def _configs(
    workers: int, budget: pool.ConnectionBudget, cores: int
) -> dict[str, pool.PoolConfig | None]:
    return {
        "default": None,
        "web": pool.web(threads=workers, budget=budget),
        "web (cores cap)": pool.web(threads=workers, budget=budget, db_cores=cores),
        "async_web": pool.async_web(workers, budget=budget),
        "worker": pool.worker(workers, budget=budget),
        "serverless": pool.serverless(budget=budget),
        "pgbouncer": pool.pgbouncer(workers),
        "analytics": pool.analytics(budget=budget),
    }


@dataclass
class Cell:
    """One configuration at one worker count, over its repetitions."""

    shape: str = ""
    done: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)


def _run(engine: Engine, workers: int, seconds: float, warmup: float, cell: Cell) -> None:
    """Run the workload; add the operations completed after the warm-up to ``cell``."""
    latencies: list[list[float]] = [[] for _ in range(workers)]
    errors = [0] * workers
    completed = [0] * workers
    start = threading.Barrier(workers + 1)
    bounds = [0.0, 0.0]  # measure from, stop at

    def work(index: int) -> None:
        rng = random.Random()
        mine = latencies[index]
        start.wait()
        while True:
            begun = time.perf_counter()
            if begun >= bounds[1]:
                return
            try:
                with engine.connect() as conn:
                    conn.execute(QUERY, {"id": rng.randint(1, ROWS)}).one()
            except Exception:
                errors[index] += 1
                continue
            ended = time.perf_counter()
            if ended >= bounds[0]:
                mine.append(ended - begun)
                if ended <= bounds[1]:
                    completed[index] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    now = time.perf_counter()
    bounds[0], bounds[1] = now + warmup, now + warmup + seconds
    start.wait()
    for t in threads:
        t.join()
    flat = [x for lat in latencies for x in lat]
    cell.done += sum(completed)
    cell.errors += sum(errors)
    cell.seconds += seconds
    cell.latencies += flat


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1] if ordered else float("nan")


def _engine(url: str, config: pool.PoolConfig | None) -> Engine:
    if config is None:
        return create_engine(url)
    return create_engine(url, **config.sqlalchemy(url))


def _pool_shape(engine: Engine) -> str:
    p: Any = engine.pool
    return f"{p.size()}+{p._max_overflow}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=0.5, help="measured per repetition")
    parser.add_argument("--warmup", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db-cores", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    print(describe_machine())
    with postgres_url("dbopt_bench_pool") as url:
        _setup(url)
        probe = create_engine(url)
        budget = pool.connection_budget(probe)
        probe.dispose()
        print(f"server budget: {budget.to_dict()}, db_cores={args.db_cores}")
        print(
            f"{args.repeats} interleaved repetitions x {args.seconds:g} s per cell "
            "(one engine per block, disposed after it)"
        )
        rows: list[list[object]] = []
        for workers in args.workers:
            configs = _configs(workers, budget, args.db_cores)
            cells = {name: Cell() for name in configs}
            names = list(configs)
            for rep in range(args.repeats):
                shift = rep % len(names)
                for name in names[shift:] + names[:shift]:
                    engine = _engine(url, configs[name])
                    try:
                        _run(engine, workers, args.seconds, args.warmup, cells[name])
                        cells[name].shape = _pool_shape(engine)
                    finally:
                        engine.dispose()
            base = cells["default"]
            base_tput = base.done / base.seconds
            base_p95 = _percentile(base.latencies, 0.95)
            for name, cell in cells.items():
                tput = cell.done / cell.seconds
                p95 = _percentile(cell.latencies, 0.95)
                rows.append(
                    [
                        name,
                        workers,
                        cell.shape,
                        f"{tput:,.0f}",
                        f"{p95 * 1000:.2f}",
                        f"{max(cell.latencies, default=float('nan')) * 1000:.1f}",
                        cell.errors,
                        f"{ratio(tput, base_tput):.2f}x",
                        f"{ratio(p95, base_p95):.2f}x",
                    ]
                )
        print()
        print_table(
            [
                "config",
                "workers",
                "pool",
                "ops/s",
                "p95 ms",
                "max ms",
                "errors",
                "ops/s vs default",
                "p95 vs default",
            ],
            rows,
        )


if __name__ == "__main__":
    main()
