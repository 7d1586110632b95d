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
import random
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from _common import describe_machine, median, postgres_url, print_table
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


def bench_dbopt(url: str, n: int, repeats: int) -> list[object]:
    manager = PartitionManager(url, lock_timeout=5)
    start = datetime.now(timezone.utc) - timedelta(days=n - PREMAKE - 1)
    table = f"db_{n}"

    def spec(extra: int = 0) -> PartitionSpec:
        return PartitionSpec(
            table,
            key="created_at",
            interval="day",
            premake=PREMAKE + extra,
            retention_count=n - PREMAKE - extra,
            start=start,
        )

    create, _ = timed(lambda: manager.create(spec(), columns=COLUMNS))
    plans = [timed(lambda: manager.plan(spec()))[0] for _ in range(repeats)]
    idle = [timed(lambda: manager.maintain(spec()))[0] for _ in range(repeats)]
    work, ops = [], []
    for rep in range(1, repeats + 1):
        seconds, result = timed(lambda rep=rep: manager.maintain(spec(rep)))
        work.append(seconds)
        ops.append(len(result.done))
    return ["dbopt", n, f"{create:.2f}", ms(plans), ms(idle), ms(work), f"{median(ops):.0f}"]


def bench_partman(url: str, n: int, repeats: int) -> list[object]:
    table = f"public.pm_{n}"
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        try:
            conn.execute("CREATE SCHEMA IF NOT EXISTS partman")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")
        except psycopg.Error as exc:
            return ["pg_partman", n, f"unavailable: {str(exc).splitlines()[0]}"]
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
        conn.execute(
            "UPDATE partman.part_config SET retention = %s, retention_keep_table = true,"
            " infinite_time_partitions = true WHERE parent_table = %s",
            # "older than N days" is judged on a partition's end: N - PREMAKE - 1 keeps the
            # same N - PREMAKE started days the other tools keep.
            (f"{n - PREMAKE - 1} days", table),
        )

        def run() -> None:
            conn.execute("SELECT partman.run_maintenance(%s, false, false)", (table,))

        idle = [timed(run)[0] for _ in range(repeats)]
        work, ops = [], []
        for _ in range(repeats):
            before = (partition_count(conn, table), tables(conn, f"pm_{n}_p"))
            conn.execute(
                "UPDATE partman.part_config SET premake = premake + 1,"
                " retention = (retention::interval - interval '1 day')::text"
                " WHERE parent_table = %s",
                (table,),
            )
            work.append(timed(run)[0])
            created = tables(conn, f"pm_{n}_p") - before[1]
            detached = created - (partition_count(conn, table) - before[0])
            ops.append(created + detached)
        return ["pg_partman", n, f"{create:.2f}", "n/a", ms(idle), ms(work), f"{median(ops):.0f}"]


def bench_partsmith(url: str, n: int, repeats: int) -> list[object]:
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
        return ["pg-partsmith", n, f"unavailable: {exc}"]
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
    engine = create_engine(url)
    service = PartitionLifecycleService(
        repo=PostgresPartitionRepository(engine),
        metadata=PostgresMetadataProvider(engine),
        locks=PostgresAdvisoryLockManager(engine),
    )

    def config(extra: int = 0) -> Any:
        return TablePartitionConfig(
            schema="public",
            table_name=table,
            partition_column="created_at",
            granularity=PartitionGranularity.DAY,
            create_ahead_count=PREMAKE + 1 + extra,
            retention_count=n - PREMAKE - extra,
        )

    try:
        plans = [timed(lambda: service.plan(config()))[0] for _ in range(repeats)]
        maintainer = PartitionMaintainer(service)
        idle = [timed(lambda: maintainer.run_maintenance(config()))[0] for _ in range(repeats)]
        work, ops = [], []
        for rep in range(1, repeats + 1):
            seconds, result = timed(lambda rep=rep: maintainer.run_maintenance(config(rep)))
            work.append(seconds)
            ops.append(result.created_count + result.detached_count)
    except Exception as exc:
        return ["pg-partsmith", n, f"failed: {type(exc).__name__}: {exc}"[:90]]
    finally:
        engine.dispose()
    return ["pg-partsmith", n, "(by hand)", ms(plans), ms(idle), ms(work), f"{median(ops):.0f}"]


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
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE copy_target (LIKE {} INCLUDING DEFAULTS)"
                " PARTITION BY RANGE (created_at)"
            ).format(sql.Identifier(table))
        )
        conn.execute("CREATE TABLE copy_target_all PARTITION OF copy_target DEFAULT")
        conn.execute("ALTER TABLE copy_target ADD PRIMARY KEY (id, created_at)")
        seconds, _ = timed(
            lambda: conn.execute(
                sql.SQL("INSERT INTO copy_target SELECT * FROM {}").format(sql.Identifier(table))
            )
        )
        conn.execute("DROP TABLE copy_target")
    return seconds


def writer(url: str, table: str, stop: threading.Event, counts: list[int], rows: int) -> None:
    rnd = random.Random()
    t = sql.Identifier(table)
    statements = [
        sql.SQL("INSERT INTO {} (user_id, created_at, payload) VALUES (%s, now(), 'w')").format(t),
        sql.SQL("UPDATE {} SET payload = 'u' WHERE id = %s").format(t),
        sql.SQL("DELETE FROM {} WHERE id = %s").format(t),
    ]
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        while not stop.is_set():
            conn.execute(rnd.choice(statements), (rnd.randrange(1, rows),))
            counts[0] += 1


def bench_convert(url: str, rows: int, writers: int) -> list[object]:
    table = f"conv_{writers}"
    fill(url, table, rows)
    manager = PartitionManager(url, lock_timeout=2, retries=20)
    spec = PartitionSpec(table, key="created_at", interval="month", premake=2)
    stop, counts = threading.Event(), [0]
    threads = [
        threading.Thread(target=writer, args=(url, table, stop, counts, rows))
        for _ in range(writers)
    ]
    for th in threads:
        th.start()
    began = time.perf_counter()
    result = manager.convert(table, spec, batch_size=10_000)
    elapsed = time.perf_counter() - began
    stop.set()
    for th in threads:
        th.join()
    manager.finish_conversion(table, drop_old=True)
    return [
        f"dbopt convert, {writers} writers",
        rows,
        f"{result.rows_per_second:,.0f}",
        f"{result.seconds:.2f}",
        f"{result.swap_seconds * 1000:.0f}",
        result.replayed,
        f"{counts[0] / elapsed:,.0f}" if writers else "-",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="30,365,3650")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-convert", action="store_true")
    args = parser.parse_args(argv)
    if any(int(s) < PREMAKE + 3 for s in args.sizes.split(",")):
        parser.error(f"sizes must be at least {PREMAKE + 3}")
    print(describe_machine())
    sizes = [int(s) for s in args.sizes.split(",")]
    with postgres_url(prefix="dbopt_bench_partitions") as url:
        rows = []
        for n in sizes:
            for name, bench in (
                ("dbopt", bench_dbopt),
                ("pg_partman", bench_partman),
                ("pg-partsmith", bench_partsmith),
            ):
                try:
                    rows.append(bench(url, n, args.repeats))
                except Exception as exc:
                    rows.append([name, n, f"failed: {str(exc).splitlines()[0]}"[:80]])
                print("  " + "  ".join(map(str, rows[-1])), flush=True)
        print(
            "\nDaily partitions, times in ms except create (s); 1+1 = one partition"
            " created and one detached per run"
        )
        print_table(
            ["tool", "partitions", "create s", "plan ms", "idle ms", "1+1 ms", "ops"],
            [r + [""] * (7 - len(r)) for r in rows],
        )
        print(
            "ops: partitions created plus detached in a 1+1 run (pg_partman: counted in the"
            " catalog, it returns nothing)"
        )
        if args.skip_convert:
            return
        conv = []
        fill(url, "conv_base", args.rows)
        copy = baseline_copy(url, "conv_base")
        conv.append(
            [
                "INSERT ... SELECT (offline baseline)",
                args.rows,
                f"{args.rows / copy:,.0f}",
                f"{copy:.2f}",
                "-",
                "-",
                "-",
            ]
        )
        for writers in (0, 2):
            conv.append(bench_convert(url, args.rows, writers))
        print("\nOnline conversion to monthly partitions")
        print_table(
            ["run", "rows", "copy rows/s", "total s", "swap lock ms", "replayed", "writer ops/s"],
            conv,
        )


if __name__ == "__main__":
    main()
