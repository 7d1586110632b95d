"""Partition manager: plan and maintenance time against pg_partman and pg-partsmith; conversion.

Part 1, for daily tables of 30, 365 and 3,650 partitions (ending ``premake``
days after today, so every tool sees the same converged table):

* ``create``: building the table's partitions (dbopt ``create()``, pg_partman
  ``create_parent()``; pg-partsmith's are made by hand in one transaction).
* ``plan``: dbopt ``plan()``, pg-partsmith ``plan()`` (pg_partman has none).
* ``idle``: a maintenance run with nothing to do (dbopt ``maintain()``,
  pg_partman ``run_maintenance()``, pg-partsmith ``run_maintenance()``).
* ``1+1``: a maintenance run that creates one partition and detaches one:
  each repetition raises premake by one and lowers retention by one, since
  pg_partman and pg-partsmith maintain against the server's clock.

pg_partman (v4, Debian ``postgresql-15-partman``) and pg-partsmith (PyPI) are
measured when present; otherwise their rows say why not.

Part 2: converting a 1,000,000-row table to monthly partitions online, with
and without two threads writing (single-row INSERT/UPDATE/DELETE) during it;
the baseline is one ``INSERT INTO ... SELECT *`` into the same partitioned
shape (no capture, no batches: what a locked, offline copy costs).

Run: ``python bench/partitions.py [--sizes 30,365,3650] [--rows 1000000]``.
Figures are medians of ``--repeats`` runs; nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import threading
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from multiprocessing.connection import Connection
from typing import Any

import psycopg
from _common import describe_machine, interleave, mark, median, postgres_url, print_table
from psycopg import sql

from dbopt.partitions import PartitionManager, PartitionSpec
from dbopt.testing import libpq_url

PREMAKE = 4
CHUNK = 200  # partitions per transaction where a tool would otherwise make them all in one
COLUMNS = "id bigint GENERATED ALWAYS AS IDENTITY, created_at timestamptz NOT NULL, payload text"


def timed(fn: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    out = fn()
    return time.perf_counter() - began, out


def partition_count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass", (table,)
    ).fetchone()
    return int(row[0]) if row else 0


def tables(conn: psycopg.Connection[Any], prefix: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND starts_with(relname, %s)", (prefix,)
    ).fetchone()
    return int(row[0]) if row else 0


class Tool:
    """One tool's table of ``n`` daily partitions and its timed steps.

    ``idle()`` and ``work()`` each run maintenance once and return seconds;
    ``work`` makes the next 1 + 1 change (premake + 1, retention - 1).
    """

    name = ""

    def __init__(self) -> None:
        self.create = float("nan")
        self.plans: list[float] = []
        self.ops: list[int] = []
        self.error = ""

    def idle(self) -> float:
        raise NotImplementedError

    def work(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""


class Dbopt(Tool):
    """dbopt ``maintain()``; ``session``: in ``manager.session()`` (one connection, as the
    other tools have), else a connection per call, as a one-off cron run pays."""

    def __init__(self, url: str, n: int, repeats: int, shared: Dbopt | None = None) -> None:
        super().__init__()
        self.name = "dbopt" if shared is None else "dbopt, connection per call"
        self.n = n
        self.shared = shared
        self.manager = PartitionManager(url, lock_timeout=5)
        self.start = datetime.now(timezone.utc) - timedelta(days=n - PREMAKE - 1)
        self.extra = 0
        if shared is None:
            self.stack = ExitStack()
            self.stack.enter_context(self.manager.session())
            self.create, _ = timed(lambda: self.manager.create(self.spec(), columns=COLUMNS))
        self.plans = [timed(lambda: self.manager.plan(self.spec()))[0] for _ in range(repeats)]

    def spec(self) -> PartitionSpec:
        extra = self.shared.extra if self.shared is not None else self.extra
        return PartitionSpec(
            f"db_{self.n}",
            key="created_at",
            interval="day",
            premake=PREMAKE + extra,
            retention_count=self.n - PREMAKE - extra,
            start=self.start,
        )

    def idle(self) -> float:
        return timed(lambda: self.manager.maintain(self.spec()))[0]

    def work(self) -> float:
        owner = self.shared if self.shared is not None else self
        owner.extra += 1
        seconds, result = timed(lambda: self.manager.maintain(self.spec()))
        self.ops.append(len(result.done))
        return seconds

    def close(self) -> None:
        if self.shared is None:
            self.stack.close()


class Partman(Tool):
    """pg_partman ``run_maintenance(table)`` on one open connection."""

    name = "pg_partman"

    def __init__(self, url: str, n: int, repeats: int) -> None:
        super().__init__()
        self.table = f"public.pm_{n}"
        self.n = n
        self.conn = psycopg.connect(libpq_url(url), autocommit=True)
        conn, table = self.conn, self.table
        try:
            conn.execute("CREATE SCHEMA IF NOT EXISTS partman")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")
        except psycopg.Error as exc:
            self.error = f"unavailable: {str(exc).splitlines()[0]}"
            return
        conn.execute(
            sql.SQL("CREATE TABLE {} ({}) PARTITION BY RANGE (created_at)").format(
                sql.SQL(table), sql.SQL(COLUMNS)
            )
        )
        first = datetime.now(timezone.utc).date() - timedelta(days=n - PREMAKE - 1)
        # create_parent() makes every partition in one transaction; past a few hundred
        # that exhausts max_locks_per_transaction (64 by default), so older days are
        # added afterwards with create_partition_time(), CHUNK per call.
        head = max(first, datetime.now(timezone.utc).date() - timedelta(days=CHUNK - PREMAKE - 1))
        create, _ = timed(
            lambda: conn.execute(
                "SELECT partman.create_parent(p_parent_table := %s, p_control := 'created_at',"
                " p_type := 'native', p_interval := 'daily', p_premake := %s,"
                " p_start_partition := %s, p_jobmon := false)",
                (table, PREMAKE, head.isoformat()),
            )
        )
        older = [first + timedelta(days=i) for i in range((head - first).days)]
        for i in range(0, len(older), CHUNK):
            days = [f"{d} 00:00+00" for d in older[i : i + CHUNK]]
            seconds, _ = timed(
                lambda days=days: conn.execute(
                    "SELECT partman.create_partition_time(%s, %s::timestamptz[], false)",
                    (table, days),
                )
            )
            create += seconds
        self.create = create
        conn.execute(
            "UPDATE partman.part_config SET retention = %s, retention_keep_table = true,"
            " infinite_time_partitions = true WHERE parent_table = %s",
            # "older than N days" is judged on a partition's end: N - PREMAKE - 1 keeps the
            # same N - PREMAKE started days the other tools keep.
            (f"{n - PREMAKE - 1} days", table),
        )

    def run(self) -> float:
        return timed(
            lambda: self.conn.execute(
                "SELECT partman.run_maintenance(%s, false, false)", (self.table,)
            )
        )[0]

    def idle(self) -> float:
        return self.run()

    def work(self) -> float:
        conn, table = self.conn, self.table
        before = (partition_count(conn, table), tables(conn, f"pm_{self.n}_p"))
        conn.execute(
            "UPDATE partman.part_config SET premake = premake + 1,"
            " retention = (retention::interval - interval '1 day')::text"
            " WHERE parent_table = %s",
            (table,),
        )
        seconds = self.run()
        created = tables(conn, f"pm_{self.n}_p") - before[1]
        detached = created - (partition_count(conn, table) - before[0])
        self.ops.append(created + detached)
        return seconds

    def close(self) -> None:
        self.conn.close()


class Partsmith(Tool):
    """pg-partsmith ``PartitionMaintainer.run_maintenance()`` (SQLAlchemy engine, pooled)."""

    name = "pg-partsmith"

    def __init__(self, url: str, n: int, repeats: int) -> None:
        super().__init__()
        self.engine: Any = None
        try:
            from pg_partsmith import TablePartitionConfig
            from pg_partsmith.entities import PartitionGranularity
            from pg_partsmith.sync import (
                PartitionLifecycleService,
                PartitionMaintainer,
                PostgresAdvisoryLockManager,
                PostgresMetadataProvider,
                PostgresPartitionRepository,
            )
            from sqlalchemy import create_engine
        except ImportError as exc:
            self.error = f"unavailable: {exc}"
            return
        table = f"ps_{n}"
        today = datetime.now(timezone.utc).date()
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE TABLE {} ({}) PARTITION BY RANGE (created_at)").format(
                    sql.Identifier(table), sql.SQL(COLUMNS)
                )
            )
            for i in range(n):
                if i % CHUNK == 0:
                    if i:
                        conn.execute("COMMIT")
                    conn.execute("BEGIN")
                day = today - timedelta(days=n - PREMAKE - 1 - i)
                conn.execute(
                    sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                        sql.Identifier(f"{table}__{day:%Y_%m_%d}"),
                        sql.Identifier(table),
                        sql.Literal(f"{day} 00:00+00"),
                        sql.Literal(f"{day + timedelta(days=1)} 00:00+00"),
                    )
                )
            conn.execute("COMMIT")
        self.engine = create_engine(url)
        service = PartitionLifecycleService(
            repo=PostgresPartitionRepository(self.engine),
            metadata=PostgresMetadataProvider(self.engine),
            locks=PostgresAdvisoryLockManager(self.engine),
        )
        self.extra = 0

        def config() -> Any:
            return TablePartitionConfig(
                schema="public",
                table_name=table,
                partition_column="created_at",
                granularity=PartitionGranularity.DAY,
                create_ahead_count=PREMAKE + 1 + self.extra,
                retention_count=n - PREMAKE - self.extra,
            )

        self.config = config
        self.maintainer = PartitionMaintainer(service)
        self.plans = [timed(lambda: service.plan(config()))[0] for _ in range(repeats)]

    def idle(self) -> float:
        return timed(lambda: self.maintainer.run_maintenance(self.config()))[0]

    def work(self) -> float:
        self.extra += 1
        seconds, result = timed(lambda: self.maintainer.run_maintenance(self.config()))
        self.ops.append(result.created_count + result.detached_count)
        return seconds

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


def bench_size(url: str, n: int, repeats: int) -> list[list[object]]:
    """Part 1 at ``n`` partitions: every tool's idle and 1 + 1 runs, interleaved."""
    tools: list[Tool] = []
    rows: list[list[object]] = []
    for make in (Dbopt, Partman, Partsmith):
        try:
            tool = make(url, n, repeats)
        except Exception as exc:  # a peer failing to set up is reported, not fatal
            rows.append([getattr(make, "name", "") or make.__name__, n, f"failed: {exc}"[:80]])
            continue
        if tool.error:
            rows.append([tool.name, n, tool.error])
            tool.close()
            continue
        tools.append(tool)
        if isinstance(tool, Dbopt):
            tools.append(Dbopt(url, n, repeats, shared=tool))
    try:
        idle = interleave({t.name: t.idle for t in tools}, repeats)
        work = interleave({t.name: t.work for t in tools}, repeats)
    finally:
        for tool in tools:
            tool.close()
    for tool in tools:
        create = "(by hand)" if isinstance(tool, Partsmith) else f"{tool.create:.2f}"
        if isinstance(tool, Dbopt) and tool.shared is not None:
            create = "(same table)"
        rows.append(
            [
                tool.name,
                n,
                create,
                ms(tool.plans) if tool.plans else "n/a",
                ms(idle[tool.name]),
                ms(work[tool.name]),
                f"{median(tool.ops[-repeats:]):.0f}",
            ]
        )
    return rows


def ms(samples: list[float]) -> str:
    return f"{median(samples) * 1000:.1f}"


# -- conversion ------------------------------------------------------------------------


def fill(url: str, table: str, rows: int) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(table)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
                " user_id int NOT NULL, created_at timestamptz NOT NULL, payload text)"
            ).format(sql.Identifier(table))
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (user_id, created_at, payload) SELECT g %% 5000,"
                " now() - (g %% 365) * interval '1 day', md5(g::text) FROM generate_series(1, %s) g"
            ).format(sql.Identifier(table)),
            (rows,),
        )
        conn.execute(sql.SQL("CREATE INDEX ON {} (user_id)").format(sql.Identifier(table)))
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))


def baseline_copy(url: str, table: str) -> float:
    """Seconds of one ``INSERT INTO ... SELECT *`` into the shape ``convert()`` builds.

    The same monthly partitions (made by dbopt from the oldest row to
    ``premake`` months ahead, plus the default) and the same primary key.
    """
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS copy_target CASCADE")
        conn.execute(
            sql.SQL(
                "CREATE TABLE copy_target (LIKE {} INCLUDING DEFAULTS)"
                " PARTITION BY RANGE (created_at)"
            ).format(sql.Identifier(table))
        )
        row = conn.execute(
            sql.SQL("SELECT min(created_at) FROM {}").format(sql.Identifier(table))
        ).fetchone()
        spec = PartitionSpec(
            "copy_target",
            key="created_at",
            interval="month",
            premake=2,
            start=row[0] if row else None,
        )
        PartitionManager(url).create(spec)
        conn.execute("ALTER TABLE copy_target ADD PRIMARY KEY (id, created_at)")
        seconds, _ = timed(
            lambda: conn.execute(
                sql.SQL("INSERT INTO copy_target SELECT * FROM {}").format(sql.Identifier(table))
            )
        )
        conn.execute("DROP TABLE copy_target CASCADE")
        conn.execute("DELETE FROM dbopt_partition_state WHERE parent = 'public.copy_target'")
        conn.execute("DELETE FROM dbopt_partition_parent WHERE parent = 'public.copy_target'")
    return seconds


class Writers:
    """``count`` threads of single-row INSERT/UPDATE/DELETE, each statement's latency kept.

    ``mark(label)`` starts a new phase; latencies are kept per phase.
    """

    def __init__(self, url: str, table: str, rows: int, count: int) -> None:
        self.url, self.table, self.rows = url, table, rows
        self.stop = threading.Event()
        self.phase = "before"
        self.latency: dict[str, list[float]] = {"before": [], "during": []}
        self.spans: dict[str, float] = {}
        self.began = time.perf_counter()
        self.threads = [threading.Thread(target=self.run) for _ in range(count)]
        for th in self.threads:
            th.start()

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.spans[self.phase] = now - self.began
        self.phase, self.began = phase, now

    def run(self) -> None:
        rnd = random.Random()
        t = sql.Identifier(self.table)
        statements = [
            sql.SQL("INSERT INTO {} (user_id, created_at, payload) VALUES (%s, now(), 'w')").format(
                t
            ),
            sql.SQL("UPDATE {} SET payload = 'u' WHERE id = %s").format(t),
            sql.SQL("DELETE FROM {} WHERE id = %s").format(t),
        ]
        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            while not self.stop.is_set():
                statement = rnd.choice(statements)
                began = time.perf_counter()
                conn.execute(statement, (rnd.randrange(1, self.rows),))
                self.latency.setdefault(self.phase, []).append(time.perf_counter() - began)

    def finish(self) -> None:
        self.mark("after")
        self.stop.set()
        for th in self.threads:
            th.join()

    def p95(self, phase: str) -> float:
        values = sorted(self.latency[phase])
        return values[int(0.95 * (len(values) - 1))] if values else float("nan")

    def rate(self, phase: str) -> float:
        return len(self.latency[phase]) / self.spans[phase] if self.spans.get(phase) else 0.0


def _convert_job(url: str, table: str, pipe: Connection) -> None:
    """The conversion as a migration job runs it: in a process of its own.

    Waits for a word on ``pipe``, converts ``table``, sends back the figures;
    at the next word keeps the conversion (``finish_conversion``).
    In the writers' process it would compete with them for the GIL, which
    adds to their latency what the database does not (see
    docs/benchmarks/partitions.md).
    """
    manager = PartitionManager(url, lock_timeout=2, retries=20)
    spec = PartitionSpec(table, key="created_at", interval="month", premake=2)
    pipe.recv()
    result = manager.convert(table, spec)
    pipe.send(
        {
            "rate": result.rows_per_second,
            "seconds": result.seconds,
            "swap": result.swap_seconds,
            "replayed": float(result.replayed),
        }
    )
    pipe.recv()  # once the writers have stopped
    manager.finish_conversion(table, drop_old=True)
    pipe.send("finished")


def bench_convert(url: str, rows: int, writers: int, warm: float) -> dict[str, float]:
    """One online conversion of a fresh ``rows``-row table with ``writers`` writing.

    The writers run alone for ``warm`` seconds first (their latency before).
    The conversion runs in another process (``_convert_job``).
    """
    table = f"conv_{writers}"
    fill(url, table, rows)
    here, there = multiprocessing.get_context("spawn").Pipe()
    job = multiprocessing.get_context("spawn").Process(
        target=_convert_job, args=(url, table, there)
    )
    job.start()
    load = Writers(url, table, rows, writers) if writers else None
    if load is not None:
        time.sleep(warm)
        load.mark("during")
    here.send("go")
    out: dict[str, float] = here.recv()
    if load is not None:
        load.finish()
    here.send("finish")
    here.recv()
    job.join()
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE {} CASCADE").format(sql.Identifier(table)))
    if load is not None:
        out |= {
            "p95_before": load.p95("before"),
            "p95_during": load.p95("during"),
            "ops_before": load.rate("before"),
            "ops_during": load.rate("during"),
        }
    return out


def bench_conversion(url: str, rows: int, repeats: int, warm: float) -> None:
    """Part 2: baseline and the two conversions, interleaved, ``repeats`` times; medians."""
    fill(url, "conv_base", rows)
    runs: dict[str, list[dict[str, float]]] = {"base": [], "0": [], "2": []}
    blocks = {
        "base": lambda: runs["base"].append({"rate": rows / baseline_copy(url, "conv_base")}),
        "0": lambda: runs["0"].append(bench_convert(url, rows, 0, warm)),
        "2": lambda: runs["2"].append(bench_convert(url, rows, 2, warm)),
    }
    for rep in range(repeats):
        names = list(blocks)
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            blocks[name]()

    def med(name: str, key: str) -> float:
        return median([r[key] for r in runs[name] if key in r])

    base = med("base", "rate")
    table = [["INSERT ... SELECT (offline baseline)", f"{base:,.0f}", "1.00", "(whole copy)"]]
    table[0] += ["-"] * 5
    for name, label, target in (
        ("0", "convert(), no writers", 0.8),
        ("2", "convert(), 2 writers", 0.7),
    ):
        rate = med(name, "rate")
        row: list[object] = [
            label,
            f"{rate:,.0f}",
            f"{rate / base:.2f} {mark(target, rate / base)}",
            f"{med(name, 'swap') * 1000:.0f}",
            f"{med(name, 'replayed'):.0f}",
        ]
        if name == "2":
            before, during = med(name, "p95_before"), med(name, "p95_during")
            row += [
                f"{before * 1000:.2f}",
                f"{during * 1000:.2f}",
                f"{during / before:.2f} {mark(during / before, 2.0)}",
                f"{med(name, 'ops_before'):,.0f} / {med(name, 'ops_during'):,.0f}",
            ]
        else:
            row += ["-"] * 4
        table.append(row)
    print(f"\nOnline conversion of {rows:,} rows to monthly partitions, medians of {repeats}")
    print_table(
        [
            "run",
            "copy rows/s",
            "x baseline",
            "swap lock ms",
            "replayed",
            "writer p95 before ms",
            "p95 during ms",
            "p95 ratio",
            "writer ops/s before / during",
        ],
        table,
    )
    print(
        "targets (informational): no writers >= 0.80x, 2 writers >= 0.70x the baseline,"
        " writers' p95 at most doubled, swap lock < 100 ms"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="30,365,3650")
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--convert-repeats", type=int, default=3)
    parser.add_argument("--warm", type=float, default=2.0, help="seconds writers run alone first")
    parser.add_argument("--skip-convert", action="store_true")
    parser.add_argument("--skip-maintain", action="store_true")
    args = parser.parse_args(argv)
    # Each 1 + 1 run (warm-up included, by dbopt in and out of a session) keeps one
    # partition fewer.
    least = PREMAKE + 1 + 2 * (args.repeats + 1)
    if any(int(s) < least for s in args.sizes.split(",")):
        parser.error(f"sizes must be at least {least} with --repeats {args.repeats}")
    print(describe_machine())
    sizes = [int(s) for s in args.sizes.split(",")]
    with postgres_url(prefix="dbopt_bench_partitions") as url:
        if not args.skip_maintain:
            rows: list[list[object]] = []
            for n in sizes:
                for row in bench_size(url, n, args.repeats):
                    rows.append(row)
                    print("  " + "  ".join(map(str, row)), flush=True)
            print(
                f"\nDaily partitions, medians of {args.repeats} interleaved runs; times in ms"
                " except create (s); 1+1 = one partition created and one detached per run"
            )
            print_table(
                ["tool", "partitions", "create s", "plan ms", "idle ms", "1+1 ms", "ops"],
                [r + [""] * (7 - len(r)) for r in rows],
            )
            print(
                "ops: partitions created plus detached in a 1+1 run (pg_partman: counted in the"
                " catalog, it returns nothing)"
            )
            ratios = []
            for n in sizes:
                found = {r[0]: r for r in rows if r[1] == n and len(r) == 7}
                peer = found.get("pg_partman")
                for name in ("dbopt", "dbopt, connection per call"):
                    mine = found.get(name)
                    if mine is None or peer is None:
                        continue
                    idle = float(str(mine[4])) / float(str(peer[4]))
                    work = float(str(mine[5])) / float(str(peer[5]))
                    ratios.append(
                        [name, n, f"{idle:.2f} {mark(idle, 1.0)}", f"{work:.2f} {mark(work, 1.0)}"]
                    )
            if ratios:
                print("\nRatio to pg_partman (target <= 1.00, informational)")
                print_table(["tool", "partitions", "idle", "1+1"], ratios)
        if args.skip_convert:
            return
        bench_conversion(url, args.rows, args.convert_repeats, args.warm)


if __name__ == "__main__":
    main()
