"""Schema lint and health report on a schema of ~300 tables, next to the same checks as SQL.

The schema: ``--tables`` tables (300 by default) chained by foreign keys, with
the problems the seed documents list planted at known rates (foreign keys
without an index, tables without a primary key, duplicate and prefix-covered
indexes, ``timestamp``, ``json``, enum-like status columns, camelCase
columns, missing audit columns), ``--rows`` rows each, analyzed.

Configurations, run interleaved (see ``_common.interleave``):

* ``dbopt lint``: ``dbopt.lint(url)``, every rule (one catalog
  snapshot, rules in Python).
* ``plain SQL``: the peer, the way Supabase's splinter and PgHero do it: one
  catalog query per check (foreign keys without index, no primary key,
  duplicate indexes, unused indexes, invalid indexes, NOT VALID constraints,
  timestamp and json columns, sequences near overflow, missing audit columns,
  naming, tables never scanned, enum-like columns from pg_stats), on one
  connection. Written here; the counts it finds are checked against dbopt's.
* ``dbopt health``: ``dbopt.health(url)``, every check.

Then one lint while another session holds ACCESS EXCLUSIVE on a table, to
show it does not wait. Run: ``python bench/lint.py`` (``--quick``: 40 tables).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from _common import describe_machine, interleave, median, postgres_url, print_table

from dbopt.health import health
from dbopt.lint import LintConfig, lint
from dbopt.testing import libpq_url

# the peer SQL checks created_at/updated_at by name; LINT013 is told the same
AUDIT = LintConfig(audit_columns=("created_at", "updated_at"))
SCHEMA = "lintbench"

# The peer: one query per check, catalog and statistics only (splinter's shape).
PEER_SQL: dict[str, str] = {
    "fk_without_index": """
        SELECT c.conrelid::regclass, c.conname FROM pg_constraint c
        JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE c.contype = 'f' AND n.nspname = %(s)s AND c.conparentid = 0
          AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid
            AND i.indpred IS NULL AND i.indisvalid
            AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
            AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)""",
    "no_primary_key": """
        SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(s)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid
                          AND k.contype = 'p')""",
    "duplicate_index": """
        SELECT a.indexrelid::regclass, b.indexrelid::regclass FROM pg_index a
        JOIN pg_index b ON a.indrelid = b.indrelid AND a.indexrelid > b.indexrelid
         AND a.indkey = b.indkey AND a.indclass = b.indclass
         AND a.indoption = b.indoption
         AND coalesce(a.indexprs::text, '') = coalesce(b.indexprs::text, '')
         AND coalesce(a.indpred::text, '') = coalesce(b.indpred::text, '')
        JOIN pg_class c ON c.oid = a.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(s)s""",
    "unused_index": """
        SELECT s.indexrelid::regclass FROM pg_stat_user_indexes s
        JOIN pg_index i ON i.indexrelid = s.indexrelid
        WHERE s.schemaname = %(s)s AND s.idx_scan = 0 AND NOT i.indisunique""",
    "invalid_index": """
        SELECT i.indexrelid::regclass FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(s)s AND NOT i.indisvalid""",
    "not_valid_constraint": """
        SELECT c.conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = %(s)s AND NOT c.convalidated""",
    "timestamp_and_json": """
        SELECT c.relname, a.attname, t.typname FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        WHERE n.nspname = %(s)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND a.attnum > 0 AND NOT a.attisdropped AND t.typname IN ('timestamp', 'json')""",
    "sequence_overflow": """
        SELECT schemaname, sequencename, last_value::float8 / max_value FROM pg_sequences
        WHERE schemaname = %(s)s AND last_value::float8 / max_value > 0.75""",
    "audit_columns": """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(s)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND (NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                           AND a.attname = 'created_at' AND NOT a.attisdropped)
            OR NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                           AND a.attname = 'updated_at' AND NOT a.attisdropped))""",
    "naming": """
        SELECT c.relname, a.attname FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(s)s AND c.relkind IN ('r', 'p') AND a.attnum > 0
          AND NOT a.attisdropped AND a.attname !~ '^[a-z_][a-z0-9_]*$'""",
    "never_scanned": """
        SELECT relname FROM pg_stat_user_tables
        WHERE schemaname = %(s)s AND coalesce(seq_scan, 0) + coalesce(idx_scan, 0) = 0""",
    "enum_like": """
        SELECT s.tablename, s.attname FROM pg_stats s
        WHERE s.schemaname = %(s)s AND s.most_common_freqs IS NOT NULL
          AND array_length(s.most_common_freqs, 1) BETWEEN 2 AND 10
          AND (SELECT sum(f) FROM unnest(s.most_common_freqs) f) + s.null_frac >= 0.99
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                          JOIN pg_class c ON c.oid = k.conrelid
                          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = s.attname
                          WHERE c.relname = s.tablename AND k.contype IN ('c', 'f', 'p', 'u')
                            AND a.attnum = ANY(k.conkey))""",
}


def build_schema(url: str, tables: int, rows: int) -> None:
    """``tables`` tables with the seeds' problems planted at fixed rates, analyzed."""
    parts = [
        f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA};",
        f"SET search_path = {SCHEMA};",
    ]
    for i in range(tables):
        pk = "bigint PRIMARY KEY" if i % 25 else "bigint NOT NULL"  # 4 % without a key
        stamp = "timestamp" if i % 5 == 0 else "timestamptz"
        doc = "json" if i % 7 == 0 else "jsonb"
        audit = "" if i % 3 == 0 else ", updated_at timestamptz DEFAULT now()"
        check = " CHECK (status IN ('new', 'active', 'done'))" if i % 2 else ""
        ref = f", parent_id bigint REFERENCES t{i - 1} (id)" if i and (i - 1) % 25 else ""
        camel = ', "ownerName" text' if i % 10 == 0 else ""
        parts.append(
            f"CREATE TABLE t{i} (id {pk}, status text{check}, payload {doc},"
            f" created_at {stamp} DEFAULT now(){audit}{ref}{camel});"
        )
        if ref and i % 2:
            parts.append(f"CREATE INDEX t{i}_parent ON t{i} (parent_id);")
        parts.append(f"CREATE INDEX t{i}_status ON t{i} (status);")
        if i % 10 == 1:
            parts.append(f"CREATE INDEX t{i}_status_copy ON t{i} (status);")
            parts.append(f"CREATE INDEX t{i}_status_created ON t{i} (status, created_at);")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("\n".join(parts))
        for i in range(tables):
            parent = ", parent_id" if i and (i - 1) % 25 else ""
            conn.execute(
                f"INSERT INTO {SCHEMA}.t{i} (id, status{parent}) SELECT g,"
                f" (ARRAY['new', 'active', 'done'])[1 + g % 3]{', NULL' if parent else ''}"
                f" FROM generate_series(1, {rows}) g"
            )
        conn.execute(f"ANALYZE {SCHEMA}.t0")
        conn.execute("ANALYZE")


def run_peer(url: str) -> dict[str, int]:
    """Row counts of every peer query (one connection, read-only, under a timeout)."""
    counts = {}
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("SET statement_timeout = '5s'; SET lock_timeout = '1s'")
        for name, sql in PEER_SQL.items():
            counts[name] = len(conn.execute(sql, {"s": SCHEMA}).fetchall())
    return counts


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 tables, 2 repeats")
    parser.add_argument("--tables", type=int, default=300)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--pg-url", help="an existing database (a schema is created and dropped)")
    args = parser.parse_args(argv)
    if args.quick:
        args.tables, args.rows, args.repeats = 40, 50, 2
    print(describe_machine())
    if args.pg_url:
        return _run(args.pg_url, args)
    with postgres_url() as url:
        return _run(url, args)


def _run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    build_schema(url, args.tables, args.rows)
    print(
        f"schema: {args.tables} tables x {args.rows} rows, built in "
        f"{time.perf_counter() - started:.1f} s"
    )
    try:
        samples = interleave(
            {
                "dbopt lint": lambda: timed(lambda: lint(url, schemas=[SCHEMA], config=AUDIT)),
                "plain SQL": lambda: timed(lambda: run_peer(url)),
                "dbopt health": lambda: timed(lambda: health(url, schemas=[SCHEMA])),
            },
            args.repeats,
        )
        report = lint(url, schemas=[SCHEMA], config=AUDIT)
        peer = run_peer(url)
        rows = [
            (name, f"{median(v) * 1000:.1f}", f"{min(v) * 1000:.1f}") for name, v in samples.items()
        ]
        print_table(("configuration", "median ms", "min ms"), rows)
        lint_ms, peer_ms = median(samples["dbopt lint"]), median(samples["plain SQL"])
        print(
            f"dbopt lint / plain SQL: {lint_ms / peer_ms:.2f}x "
            f"({len(report.rules)} rules vs {len(PEER_SQL)} queries)"
        )
        compare = [
            ("fk_without_index", len(report.of("LINT001")), peer["fk_without_index"]),
            ("no_primary_key", len(report.of("LINT002")), peer["no_primary_key"]),
            ("duplicate_index", len(report.of("LINT004")), peer["duplicate_index"]),
            (
                "timestamp + json",
                len(report.of("LINT010")) + len(report.of("LINT011")),
                peer["timestamp_and_json"],
            ),
            ("missing audit columns", len(report.of("LINT013")), peer["audit_columns"]),
            ("enum-like columns", len(report.of("LINT009")), peer["enum_like"]),
        ]
        print_table(("finding", "dbopt", "plain SQL"), compare)
        locked = _lint_while_locked(url)
        print(
            f"lint while another session holds ACCESS EXCLUSIVE on {SCHEMA}.t1: "
            f"{locked['seconds'] * 1000:.0f} ms, rules not run: {locked['errors'] or 'none'}"
        )
        return {"samples": samples, "compare": compare, "findings": len(report), "locked": locked}
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")


def _lint_while_locked(url: str) -> dict[str, Any]:
    holder = psycopg.connect(libpq_url(url))
    try:
        holder.execute(f"LOCK TABLE {SCHEMA}.t1 IN ACCESS EXCLUSIVE MODE")
        started = time.perf_counter()
        report = lint(url, schemas=[SCHEMA], lock_timeout_ms=500)
        return {"seconds": time.perf_counter() - started, "errors": report.errors}
    finally:
        holder.rollback()
        holder.close()


if __name__ == "__main__":
    main()
