"""Table and B-tree index bloat, estimated from ``pg_class`` and ``pg_stats`` alone.

The estimate (in the spirit of the widely used ioguide/pgexperts queries)
computes how many pages the rows would need at their average width and
compares it with the pages the relation has. It needs ANALYZE statistics
for every column and reads no table data; expect +/- 20 %, and an
underestimate for B-trees that deduplicate (PostgreSQL 13+).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dbopt.health.base import Context, HealthCheck, register_checks
from dbopt.health.model import CheckResult, HealthStatus
from dbopt.postgres.render import qualified

__all__ = ["estimate_index_pages", "estimate_table_pages"]

_MAXALIGN = 8
_PAGE_HEADER = 24
_LINE_POINTER = 4
_BTREE_SPECIAL = 16

_SCOPE = """
  n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
  AND (cardinality(%(schemas)s::text[]) = 0 OR n.nspname = ANY(%(schemas)s::text[]))
"""

_TABLES = f"""
WITH st AS MATERIALIZED (
  SELECT schemaname, tablename, attname, null_frac, avg_width FROM pg_stats
  WHERE NOT inherited AND {_SCOPE.replace("n.nspname", "schemaname")}
)
SELECT n.nspname AS schema, c.relname AS name, c.reltuples::float8 AS tuples,
       c.relpages::int8 AS pages, c.reloptions, count(a.attnum)::int AS columns,
       count(st.attname)::int AS with_stats,
       coalesce(sum((1 - st.null_frac) * st.avg_width), 0)::float8 AS width,
       coalesce(bool_or(st.null_frac > 0), false) AS has_nulls
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN st ON st.schemaname = n.nspname AND st.tablename = c.relname
 AND st.attname = a.attname
WHERE c.relkind IN ('r', 'm') AND c.relpages > 0 AND {_SCOPE}
GROUP BY 1, 2, 3, 4, 5
"""

_INDEXES = f"""
WITH st AS MATERIALIZED (
  SELECT schemaname, tablename, attname, null_frac, avg_width FROM pg_stats
  WHERE NOT inherited AND {_SCOPE.replace("n.nspname", "schemaname")}
), keys AS (
  SELECT i.indexrelid, i.indrelid, n.nspname, c.relname AS table, a.attname
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN LATERAL unnest(i.indkey::int2[]) AS k(attnum) ON true
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
  WHERE i.indexprs IS NULL AND {_SCOPE}
)
SELECT k.nspname AS schema, ic.relname AS name, k.table,
       ic.reltuples::float8 AS tuples, ic.relpages::int8 AS pages, ic.reloptions,
       count(*)::int AS columns, count(st.attname)::int AS with_stats,
       coalesce(sum((1 - st.null_frac) * st.avg_width), 0)::float8 AS width,
       coalesce(bool_or(st.null_frac > 0), false) AS has_nulls
FROM keys k
JOIN pg_class ic ON ic.oid = k.indexrelid
JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
LEFT JOIN st ON st.schemaname = k.nspname AND st.tablename = k.table AND st.attname = k.attname
WHERE ic.relkind = 'i' AND ic.relpages > 1
GROUP BY 1, 2, 3, 4, 5, 6
"""


def _align(n: float) -> float:
    return math.ceil(n / _MAXALIGN) * _MAXALIGN


def _fillfactor(reloptions: list[str] | None, default: int) -> int:
    for item in reloptions or []:
        key, _, value = item.partition("=")
        if key == "fillfactor":
            return int(value)
    return default


def estimate_table_pages(
    tuples: float, columns: int, width: float, has_nulls: bool, block_size: int, fillfactor: int
) -> int:
    """Pages a heap of ``tuples`` rows of average ``width`` bytes needs at ``fillfactor``."""
    header = 23 + (math.ceil(columns / 8) if has_nulls else 0)
    row = _align(_align(header) + width) + _LINE_POINTER
    per_page = max(math.floor((block_size - _PAGE_HEADER) * fillfactor / 100 / row), 1)
    return math.ceil(max(tuples, 0) / per_page)


def estimate_index_pages(
    tuples: float, width: float, has_nulls: bool, block_size: int, fillfactor: int
) -> int:
    """Pages a B-tree over ``tuples`` keys of average ``width`` bytes needs (leaves + meta)."""
    item = _align(8 + (4 if has_nulls else 0) + width) + _LINE_POINTER
    usable = (block_size - _PAGE_HEADER - _BTREE_SPECIAL) * fillfactor / 100
    per_page = max(math.floor(usable / item), 1)
    return math.ceil(max(tuples, 0) / per_page) + 1


def _table_pages(row: dict[str, Any], block_size: int) -> int:
    fillfactor = _fillfactor(row["reloptions"], 100)
    return estimate_table_pages(
        row["tuples"], row["columns"], row["width"], row["has_nulls"], block_size, fillfactor
    )


def _index_pages(row: dict[str, Any], block_size: int) -> int:
    fillfactor = _fillfactor(row["reloptions"], 90)
    return estimate_index_pages(
        row["tuples"], row["width"], row["has_nulls"], block_size, fillfactor
    )


def _judge(
    check: HealthCheck,
    ctx: Context,
    sql: str,
    estimate: Callable[[dict[str, Any], int], int],
    kind: str,
    fix: str,
) -> CheckResult:
    """Bloat of the relations ``sql`` reads, each against the pages ``estimate`` expects.

    Relations whose columns are not all analyzed are counted as not judged.
    """
    t = ctx.thresholds
    block_size = int(ctx.setting("block_size") or 8192)
    details, findings, statuses, unknown = [], [], [], 0
    for row in ctx.rows(sql, {"schemas": list(ctx.schemas)}):
        if row["with_stats"] != row["columns"] or row["tuples"] < 0:
            unknown += 1
            continue
        expected = estimate(row, block_size)
        wasted = max(row["pages"] - expected, 0) * block_size
        ratio = wasted / (row["pages"] * block_size)
        if ratio < t.bloat_warn_ratio or wasted < t.bloat_min_bytes:
            continue
        status = HealthStatus.CRITICAL if ratio >= t.bloat_critical_ratio else HealthStatus.WARN
        statuses.append(status)
        name = qualified(row["schema"], row["name"])
        details.append(
            {
                kind: name,
                "pages": row["pages"],
                "expected_pages": expected,
                "wasted_bytes": wasted,
                "bloat": round(ratio, 3),
            }
        )
        findings.append(
            check.finding(
                status,
                name,
                f"about {ratio:.0%} bloat ({wasted // 1024} kB wasted)",
                fix.format(name=name),
                wasted_bytes=wasted,
                bloat=round(ratio, 3),
            )
        )
    summary = (
        f"{len(details)} {kind}(s) with estimated bloat above {t.bloat_warn_ratio:.0%}"
        if details
        else f"no {kind} above {t.bloat_warn_ratio:.0%} estimated bloat"
    )
    if unknown:
        summary += f"; {unknown} not analyzed"
    return check.counted(
        statuses,
        summary,
        details,
        findings,
        unit=f"{kind}s",
        threshold=f"warn >= {t.bloat_warn_ratio:.0%} and >= "
        f"{t.bloat_min_bytes} bytes, critical >= {t.bloat_critical_ratio:.0%}",
    )


def table_bloat(check: HealthCheck, ctx: Context) -> CheckResult:
    return _judge(
        check,
        ctx,
        _TABLES,
        _table_pages,
        "table",
        "VACUUM FULL {name};  -- ACCESS EXCLUSIVE for the whole rewrite; "
        "pg_repack or pg_squeeze rebuild it online",
    )


def index_bloat(check: HealthCheck, ctx: Context) -> CheckResult:
    fix = "REINDEX INDEX CONCURRENTLY {name};"
    return _judge(check, ctx, _INDEXES, _index_pages, "index", fix)


register_checks(
    HealthCheck(
        "HEALTH009",
        "table_bloat",
        "Tables whose pages hold much less live data than they could (estimated).",
        "Bloated tables cost disk, cache and scan time for empty space. Plain VACUUM makes the "
        "space reusable but rarely returns it; only a rewrite does.",
        table_bloat,
    ),
    HealthCheck(
        "HEALTH010",
        "index_bloat",
        "B-tree indexes much larger than their entries need (estimated).",
        "A bloated index is read page by page like a full one: more I/O and cache per lookup. "
        "REINDEX CONCURRENTLY rebuilds it without blocking writes.",
        index_bloat,
    ),
)
