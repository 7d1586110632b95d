"""The index advisor on Pagila: each recommendation built for real, EXPLAIN ANALYZE before/after.

Loads Pagila's schema (``pagila-schema.sql`` from github.com/devrimgunduz/pagila,
passed with ``--schema``; not committed), adapted to PostgreSQL 15 on the fly
(``uuidv7()`` -> ``gen_random_uuid()``, ``VIRTUAL`` -> ``STORED``, the pgvector
table ``film_embedding`` left out), fills it with ``bench/pagila/gen.sql`` (a
generator at Pagila's row counts) and advises ``bench/pagila/workload.sql``
with default settings, counters as the load left them.

Then, for each recommendation on its own: the statements it helps are run
with EXPLAIN ANALYZE (``--repeat`` times, interleaved before/after is not
possible across a build, so: before, build with its DDL, after, drop with its
drop DDL); medians per statement are printed with the ratio, and the built
size next to the advisor's two estimates. Nothing is asserted.

    python bench/advisor_pagila.py --schema /path/to/pagila-schema.sql
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path
from typing import Any

import psycopg
from _common import describe_machine, postgres_url, print_table

from dbopt.advisor import IndexAdvisor
from dbopt.testing import libpq_url

HERE = Path(__file__).parent / "pagila"


def adapt_schema(text: str) -> str:
    """Pagila's dump, runnable on PostgreSQL 15 without pgvector."""
    sections = re.split(r"\n(?=--\n-- Name: )", text)
    kept = [s for s in sections if not re.search(r"\bvector\b|film_embedding", s)]
    out = "\n".join(kept)
    out = out.replace("uuidv7()", "gen_random_uuid()")
    return re.sub(r"\)\s+VIRTUAL\b", ") STORED", out)


def analyze_ms(conn: psycopg.Connection[Any], sql: str, repeat: int) -> float:
    """Median execution time (ms) of ``sql`` under EXPLAIN ANALYZE, after one warm-up."""
    times = []
    for i in range(repeat + 1):
        row = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}").fetchone()
        assert row is not None
        plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])
        if i:
            times.append(float(plan[0]["Execution Time"]))
    return statistics.median(times)


def _index_bytes(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(pg_relation_size(indexrelid)), 0) FROM pg_index"
    ).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schema", required=True, type=Path, help="pagila-schema.sql")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(describe_machine())
    with postgres_url("dbopt_bench_pagila") as url:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(adapt_schema(args.schema.read_text()))
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
            conn.execute((HERE / "gen.sql").read_text())
        report = IndexAdvisor(url, findings=False).advise(HERE / "workload.sql")
        print(report.to_text())
        print()
        rows = []
        total_before = total_after = 0.0
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            for rec in report.recommendations:
                sqls = [s.sql for s in rec.statements]
                before = [analyze_ms(conn, sql, args.repeat) for sql in sqls]
                stored = _index_bytes(conn)
                for stmt in rec.ddl:
                    conn.execute(stmt)
                conn.execute("ANALYZE")
                built = _index_bytes(conn) - stored  # new storage: reused indexes add nothing
                after = [analyze_ms(conn, sql, args.repeat) for sql in sqls]
                for stmt in rec.drop_ddl:
                    conn.execute(stmt)
                for sql, b, a in zip(sqls, before, after, strict=True):
                    total_before += b
                    total_after += a
                    short = " ".join(sql.split())
                    rows.append(
                        [
                            rec.label,
                            short[:60] + ("..." if len(short) > 60 else ""),
                            f"{b:.3f}",
                            f"{a:.3f}",
                            f"{b / a:.1f}x" if a > 0 else "-",
                            f"{built / 1024:.0f}",
                            f"{(rec.built_bytes or 0) / 1024:.0f}",
                            f"{rec.size_bytes / 1024:.0f}",
                        ]
                    )
        print_table(
            [
                "recommendation",
                "statement",
                "before ms",
                "after ms",
                "ratio",
                "built kB",
                "est. kB",
                "hypopg kB",
            ],
            rows,
        )
        if total_after > 0:
            print(
                f"\nall helped statements: {total_before:.3f} ms -> {total_after:.3f} ms "
                f"({total_before / total_after:.1f}x), medians of {args.repeat}"
            )


if __name__ == "__main__":
    main()
