"""Partitioned tables: rows in the default partition, few future partitions left."""

from __future__ import annotations

from dbopt.health.base import Context, HealthCheck, register_checks, worst
from dbopt.health.model import CheckResult, HealthStatus
from dbopt.postgres.render import qualified

__all__: list[str] = []

# pg_get_expr(relpartbound, 0): bounds hold only constants, so no relation is opened.
_PARTITIONS = """
WITH parts AS (
  SELECT p.oid, n.nspname AS schema, p.relname AS table, pt.partstrat AS strategy,
         kt.typname AS key_type, pt.partdefid AS default_oid, ch.oid AS child,
         pg_get_expr(ch.relpartbound, 0) AS bound
  FROM pg_partitioned_table pt
  JOIN pg_class p ON p.oid = pt.partrelid
  JOIN pg_namespace n ON n.oid = p.relnamespace
  JOIN pg_attribute ka ON ka.attrelid = p.oid AND ka.attnum = pt.partattrs[0]
  JOIN pg_type kt ON kt.oid = ka.atttypid
  LEFT JOIN pg_inherits i ON i.inhparent = p.oid
  LEFT JOIN pg_class ch ON ch.oid = i.inhrelid AND ch.oid <> pt.partdefid
  WHERE NOT p.relispartition
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
    AND (cardinality(%(schemas)s::text[]) = 0 OR n.nspname = ANY(%(schemas)s::text[]))
), timed AS (
  SELECT *,
    CASE WHEN strategy = 'r' AND key_type IN ('date', 'timestamp', 'timestamptz') THEN
      (regexp_match(bound, 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz END AS lower_at,
    CASE WHEN strategy = 'r' AND key_type IN ('date', 'timestamp', 'timestamptz') THEN
      (regexp_match(bound, 'TO \\(''([^'']+)''\\)'))[1]::timestamptz END AS upper_at
  FROM parts
)
SELECT oid, schema, "table", strategy, key_type, default_oid,
       count(child)::int AS partitions,
       (SELECT greatest(dc.reltuples, 0)::float8 + coalesce(ds.n_live_tup, 0)
          FROM pg_class dc LEFT JOIN pg_stat_user_tables ds ON ds.relid = dc.oid
         WHERE dc.oid = default_oid) AS default_rows,
       strategy = 'r' AND key_type IN ('date', 'timestamp', 'timestamptz') AS by_time,
       max(upper_at) AS last_upper,
       coalesce(bool_or(bound ~ 'TO \\(MAXVALUE\\)'), false)
         OR coalesce(max(upper_at) > now(), false) AS covers_now,
       count(*) FILTER (WHERE lower_at > now())::int AS future
FROM timed
GROUP BY oid, schema, "table", strategy, key_type, default_oid
ORDER BY schema, "table"
"""


def partitions(check: HealthCheck, ctx: Context) -> CheckResult:
    t = ctx.thresholds
    rows = ctx.rows(_PARTITIONS, {"schemas": list(ctx.schemas)})
    if not rows:
        return check.result(HealthStatus.SKIPPED, "no partitioned tables")
    statuses, findings, details = [], [], []
    for row in rows:
        name = qualified(row["schema"], row["table"])
        problems = []
        status = HealthStatus.OK
        if row["default_oid"] and (row["default_rows"] or 0) > 0:
            status = HealthStatus.WARN
            problems.append(f"about {row['default_rows']:.0f} row(s) in the default partition")
        if row["by_time"] and row["partitions"]:
            future = int(row["future"] or 0)
            if not row["covers_now"]:
                status = HealthStatus.CRITICAL
                problems.append(
                    f"no partition for the current time (last ends {row['last_upper']})"
                )
            elif future < t.partitions_min_future:
                status = worst([status, HealthStatus.WARN])
                problems.append(f"only {future} future partition(s)")
        details.append(
            {
                "table": name,
                "partitions": row["partitions"],
                "future": row["future"],
                "default_rows": row["default_rows"],
                "last_upper": row["last_upper"],
                "status": status.value,
            }
        )
        statuses.append(status)
        if problems:
            findings.append(
                check.finding(
                    status,
                    name,
                    "; ".join(problems),
                    "Create the coming partitions ahead of time (dbopt's PartitionManager "
                    "premakes them) and move default-partition rows into real partitions.",
                    partitions=row["partitions"],
                    future=row["future"],
                )
            )
    bad = sum(1 for s in statuses if s is not HealthStatus.OK)
    return check.result(
        worst(statuses),
        f"{len(rows)} partitioned table(s), {bad} need attention",
        value=float(bad),
        unit="tables",
        threshold=f"warn: rows in default or < {t.partitions_min_future} future "
        "partitions; critical: current time not covered",
        details=details,
        findings=findings,
    )


register_checks(
    HealthCheck(
        "HEALTH016",
        "partitions",
        "Partitioned tables with rows in the default partition or few future partitions left.",
        "Rows in a default partition make creating the matching partition later scan and lock "
        "it; when no partition covers the current time, inserts fail (or pile into the "
        "default).",
        partitions,
    ),
)
