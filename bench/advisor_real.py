"""The index advisor on real sample schemas, each recommendation built and measured.

Two public sample databases, loaded fresh (statistics counters as the load
left them) and advised with default settings on a ``.sql`` workload an
application on them would run:

- ``--db pagila``: Pagila's schema (``pagila-schema.sql`` from
  github.com/devrimgunduz/pagila, passed with ``--source``; not committed),
  adapted to PostgreSQL 15 on the fly (``uuidv7()`` -> ``gen_random_uuid()``,
  ``VIRTUAL`` -> ``STORED``, the pgvector table ``film_embedding`` left out),
  filled by ``bench/pagila/gen.sql`` (a generator at Pagila's row counts),
  workload ``bench/pagila/workload.sql``;
- ``--db chinook``: Chinook's ``Chinook_PostgreSql.sql`` (schema and data,
  github.com/lerocha/chinook-database, passed with ``--source``; not
  committed), scaled up by ``bench/chinook/scale.sql`` (catalogue 10x,
  customers, invoices and lines 100x, in the same distributions), workload
  ``bench/chinook/workload.sql``.

Then, for each recommendation on its own: the statements it helps run under
EXPLAIN ANALYZE (median of ``--repeat`` after a warm-up), the index is built
with its DDL, they run again, and its drop DDL undoes it. Checked and
printed, nothing asserted: that no recommendation duplicates an existing
index (same table, its keys the leading keys of a valid index with the same
predicate); that an INCLUDE or partial recommendation beats the plain index
on the same keys by more than 10 % (the plain one is built and measured the
same way); and that every rejected candidate has a reason and a message.

    python bench/advisor_real.py --db pagila --source /path/to/pagila-schema.sql
    python bench/advisor_real.py --db chinook --source /path/to/Chinook_PostgreSql.sql
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from _common import describe_machine, postgres_url, print_table

from dbopt.advisor import AdvisorReport, IndexAdvisor, Recommendation
from dbopt.postgres.render import ident, qualified
from dbopt.testing import libpq_url

HERE = Path(__file__).parent


def adapt_pagila(text: str) -> str:
    """Pagila's dump, runnable on PostgreSQL 15 without pgvector."""
    sections = re.split(r"\n(?=--\n-- Name: )", text)
    kept = [s for s in sections if not re.search(r"\bvector\b|film_embedding", s)]
    out = "\n".join(kept)
    out = out.replace("uuidv7()", "gen_random_uuid()")
    return re.sub(r"\)\s+VIRTUAL\b", ") STORED", out)


def adapt_chinook(text: str) -> str:
    """Chinook's script without its DROP/CREATE DATABASE and ``\\c`` lines."""
    return text.split("\\c chinook;", 1)[-1]


# name -> (adapt the --source file, the generator run after it, the workload)
DATABASES: dict[str, tuple[Callable[[str], str], Path, Path]] = {
    "pagila": (adapt_pagila, HERE / "pagila" / "gen.sql", HERE / "pagila" / "workload.sql"),
    "chinook": (adapt_chinook, HERE / "chinook" / "scale.sql", HERE / "chinook" / "workload.sql"),
}


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


def duplicates(conn: psycopg.Connection[Any], rec: Recommendation) -> list[str]:
    """Valid indexes that already serve ``rec``: its keys their leading keys, same predicate.

    On the table itself, or on every leaf partition of a partitioned one (the indexes
    only some partitions have are reused by its DDL, not duplicated).
    """
    table = qualified(rec.schema, rec.table, force=True)
    leaves = conn.execute(
        "SELECT relid::oid FROM pg_partition_tree(%s::regclass) WHERE isleaf", (table,)
    ).fetchall()
    rows = conn.execute(
        "SELECT c.relname, i.indrelid, pg_get_indexdef(i.indexrelid),"
        " pg_get_expr(i.indpred, i.indrelid) FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indisvalid AND i.indrelid IN"
        " (SELECT relid FROM pg_partition_tree(%s::regclass))",
        (table,),
    ).fetchall()
    want = [k.expr.strip('"') for k in rec.keys]
    found: dict[int, list[str]] = {}
    for name, relid, definition, predicate in rows:
        keys = definition.split(" USING ", 1)[-1]
        keys = keys[keys.index("(") + 1 :]
        head = [k.strip().strip('"') for k in re.split(r",\s*", keys.split(")", 1)[0])]
        same_pred = (predicate or "").strip("()") == (rec.predicate or "").strip("()")
        if head[: len(want)] == want and same_pred:
            found.setdefault(relid, []).append(name)
    if any(relid not in [r[0] for r in leaves] for relid in found):
        return [n for names in found.values() for n in names]  # on the table itself
    if leaves and all(leaf in found for (leaf,) in leaves):
        return [n for names in found.values() for n in names]
    return []


def measure(
    conn: psycopg.Connection[Any], sqls: list[str], ddl: list[str], drop: list[str], repeat: int
) -> tuple[list[float], list[float], int]:
    """Before and after ``ddl`` (ms per statement) and the storage it added; ``drop`` undoes it."""
    before = [analyze_ms(conn, sql, repeat) for sql in sqls]
    stored = _index_bytes(conn)
    for stmt in ddl:
        conn.execute(stmt)
    conn.execute("ANALYZE")
    built = _index_bytes(conn) - stored  # new storage: reused partition indexes add nothing
    after = [analyze_ms(conn, sql, repeat) for sql in sqls]
    for stmt in drop:
        conn.execute(stmt)
    return before, after, built


def plain_variant(rec: Recommendation) -> tuple[list[str], list[str]] | None:
    """DDL and drop DDL of the plain index to compare ``rec`` with (None if it is plain).

    INCLUDE: the same keys without it. Partial: the predicate's column first, then the
    same keys, without the predicate.
    """
    if not rec.include and not rec.predicate:
        return None
    keys = [k.expr + (f" {k.opclass}" if k.opclass else "") for k in rec.keys]
    if rec.predicate:
        m = re.match(r'^\(*\s*(?:NOT\s+)?("(?:[^"]|"")+"|\w+)', rec.predicate)
        if m is None:
            return None
        lead = m.group(1)
        keys = [lead, *(k for k in keys if k != lead)]
    name = "bench_plain_variant"
    table = qualified(rec.schema, rec.table, force=True)
    return (
        [f"CREATE INDEX {ident(name, force=True)} ON {table} ({', '.join(keys)})"],
        [f"DROP INDEX {qualified(rec.schema, name, force=True)}"],
    )


def report_rejections(report: AdvisorReport) -> None:
    reasons = Counter(r.reason for r in report.rejected)
    unexplained = [r.label for r in report.rejected if not r.reason or not r.message]
    shown = ", ".join(f"{n} {k}" for k, n in reasons.most_common())
    print(
        f"rejected candidates: {len(report.rejected)} ({shown}); without a reason: "
        f"{len(unexplained)}{' ' + str(unexplained) if unexplained else ''}"
    )
    unchanged = [s for s in report.statements if s.status == "unchanged"]
    print(
        f"statements unchanged: {len(unchanged)}, without a reason: "
        f"{len([s for s in unchanged if not s.reason])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=sorted(DATABASES), required=True)
    parser.add_argument("--source", required=True, type=Path, help="the public schema/data file")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    adapt, generator, workload = DATABASES[args.db]
    print(describe_machine())
    with postgres_url(f"dbopt_bench_{args.db}") as url:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(adapt(args.source.read_text(encoding="utf-8")))
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
            conn.execute(generator.read_text(encoding="utf-8"))
        report = IndexAdvisor(url, findings=False).advise(workload)
        print(report.to_text())
        print()
        report_rejections(report)
        rows = []
        checks = []
        total_before = total_after = 0.0
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            for rec in report.recommendations:
                dup = duplicates(conn, rec)
                checks.append(f"{rec.label}: duplicates {dup}" if dup else "")
                sqls = [s.sql for s in rec.statements]
                before, after, built = measure(conn, sqls, rec.ddl, rec.drop_ddl, args.repeat)
                variant = plain_variant(rec)
                if variant is not None:
                    _, plain, _ = measure(conn, sqls, *variant, args.repeat)
                    gain = sum(plain) / max(sum(after), 1e-9)
                    verdict = "keeps" if gain > 1.1 else "FAILS"
                    checks.append(
                        f"{rec.label}: {sum(after):.3f} ms, plain index {sum(plain):.3f} ms "
                        f"({gain:.2f}x): {verdict} the 10 % rule"
                    )
                for sql, b, a in zip(sqls, before, after, strict=True):
                    total_before += b
                    total_after += a
                    short = " ".join(line for line in sql.splitlines() if not line.startswith("--"))
                    short = " ".join(short.split())
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
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            helped = list(
                dict.fromkeys(s.sql for r in report.recommendations for s in r.statements)
            )
            ddl = [d for r in report.recommendations for d in r.ddl]
            drop = [d for r in reversed(report.recommendations) for d in r.drop_ddl]
            before, after, built = measure(conn, helped, ddl, drop, args.repeat)
        if helped:
            print(
                f"all recommendations built together, the {len(helped)} statements they help: "
                f"{sum(before):.3f} ms -> {sum(after):.3f} ms "
                f"({sum(before) / max(sum(after), 1e-9):.1f}x), {built / 1024:.0f} kB built"
            )
            for sql, b, a in zip(helped, before, after, strict=True):
                if a > 1.1 * b and a - b > 0.05:
                    short = " ".join(sql.split())
                    print(f"  slower together: {b:.3f} -> {a:.3f} ms: {short[:90]}")
        found = [c for c in checks if c]
        print(f"duplicates of existing indexes: {sum('duplicates' in c for c in found)}")
        for line in found:
            print(f"  {line}")


if __name__ == "__main__":
    main()
