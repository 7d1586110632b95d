"""Workload and replicas: top statements (pg_stat_statements), replication lag and slots."""

from __future__ import annotations

from typing import Any

from dbopt.health.base import Context, HealthCheck, level, register_checks, worst
from dbopt.health.model import CheckResult, HealthStatus
from dbopt.postgres.render import literal

__all__ = ["statements_sql"]


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def statements_sql(extversion: str, text_chars: int = 500) -> str:
    """The top-statements query for pg_stat_statements ``extversion`` (1.8 = PG 13 ... 1.11+).

    ``query`` is cut at ``text_chars`` characters; the row count is the
    ``%(limit)s`` parameter.
    """
    version = _version_tuple(extversion)
    if version >= (1, 11):  # PostgreSQL 17 split block times into shared/local
        io = "shared_blk_read_time + shared_blk_write_time"
    else:
        io = "blk_read_time + blk_write_time"
    toplevel = "AND toplevel" if version >= (1, 9) else ""
    return f"""
SELECT queryid::text AS queryid, calls, total_exec_time::float8 AS total_ms,
       mean_exec_time::float8 AS mean_ms, rows,
       ({io})::float8 AS io_ms,
       CASE WHEN shared_blks_hit + shared_blks_read > 0
            THEN shared_blks_hit::float8 / (shared_blks_hit + shared_blks_read) END AS hit_ratio,
       shared_blks_hit, shared_blks_read,
       left(query, {int(text_chars)}) AS query
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) {toplevel}
ORDER BY total_exec_time DESC
LIMIT %(limit)s
"""


def top_statements(check: HealthCheck, ctx: Context) -> CheckResult:
    ext = ctx.rows("SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'")
    if not ext:
        return check.result(
            HealthStatus.SKIPPED,
            "pg_stat_statements is not installed in this database "
            "(CREATE EXTENSION pg_stat_statements; needs "
            "shared_preload_libraries)",
        )
    t = ctx.thresholds
    rows = ctx.rows(statements_sql(ext[0]["extversion"]), {"limit": t.top_statements})
    findings = []
    for row in rows:
        if row["mean_ms"] >= t.slow_statement_ms and row["calls"] >= t.slow_statement_min_calls:
            findings.append(
                check.finding(
                    HealthStatus.WARN,
                    f"queryid {row['queryid']}",
                    f"mean {row['mean_ms']:.1f} ms over {row['calls']} calls: "
                    f"{' '.join(row['query'].split())[:120]}",
                    "EXPLAIN (ANALYZE, BUFFERS) it; dbopt's IndexAdvisor can read "
                    "pg_stat_statements as its workload.",
                    queryid=row["queryid"],
                    mean_ms=row["mean_ms"],
                    calls=row["calls"],
                )
            )
    total = sum(r["total_ms"] for r in rows)
    summary = (
        f"{len(findings)} statement(s) slower than {t.slow_statement_ms:g} ms on average"
        if findings
        else f"top {len(rows)} statements, {total:.0f} ms in total"
    )
    return check.result(
        HealthStatus.WARN if findings else HealthStatus.OK,
        summary,
        value=float(len(findings)),
        unit="statements",
        threshold=f"warn: mean >= {t.slow_statement_ms:g} ms over >= "
        f"{t.slow_statement_min_calls} calls",
        details=rows,
        findings=findings,
    )


def _lags(ctx: Context) -> tuple[list[str], list[dict[str, Any]]]:
    """This standby's lag behind its primary, or (on a primary) each connected replica's."""
    if ctx.rows("SELECT pg_is_in_recovery() AS standby")[0]["standby"]:
        rows = ctx.rows(
            """SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                      ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())
                      END::float8 AS lag_s,
                      pg_wal_lsn_diff(pg_last_wal_receive_lsn(),
                                      pg_last_wal_replay_lsn())::int8 AS lag_bytes"""
        )
        return ["this standby"], rows
    rows = ctx.rows(
        """SELECT application_name AS replica, client_addr::text AS client, state,
                  sync_state, extract(epoch FROM coalesce(replay_lag, '0'))::float8 AS lag_s,
                  pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::int8 AS lag_bytes
           FROM pg_stat_replication"""
    )
    return [r["replica"] or r["client"] or "replica" for r in rows], rows


def replication_lag(check: HealthCheck, ctx: Context) -> CheckResult:
    names, rows = _lags(ctx)
    if not rows:
        return check.result(HealthStatus.SKIPPED, "no replicas connected")
    t = ctx.thresholds
    statuses, findings = [], []
    for name, row in zip(names, rows, strict=True):
        status = level(row["lag_s"] or 0.0, t.replication_lag_warn_s, t.replication_lag_critical_s)
        statuses.append(status)
        if status is not HealthStatus.OK:
            findings.append(
                check.finding(
                    status,
                    name,
                    f"{row['lag_s']:.0f} s ({row['lag_bytes']} bytes) behind",
                    "Check the replica's I/O and network, and long queries on it that delay "
                    "replay (max_standby_streaming_delay).",
                    lag_s=row["lag_s"],
                )
            )
    top = max((r["lag_s"] or 0.0 for r in rows), default=0.0)
    return check.result(
        worst(statuses),
        f"{len(rows)} replica(s), max lag {top:.1f} s",
        value=top,
        unit="s",
        threshold=f"warn >= {t.replication_lag_warn_s:g} s, critical >= "
        f"{t.replication_lag_critical_s:g} s",
        details=rows,
        findings=findings,
    )


def replication_slots(check: HealthCheck, ctx: Context) -> CheckResult:
    t = ctx.thresholds
    since = ", inactive_since" if ctx.version >= 170000 else ""
    rows = ctx.rows(
        f"""SELECT slot_name AS slot, slot_type AS type, database, active, wal_status{since},
                   pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()
                                   ELSE pg_current_wal_lsn() END, restart_lsn)::int8
                     AS retained_bytes
            FROM pg_replication_slots ORDER BY slot_name"""
    )
    if not rows:
        return check.result(HealthStatus.SKIPPED, "no replication slots")
    statuses, findings = [], []
    for row in rows:
        retained = row["retained_bytes"] or 0
        if row["wal_status"] == "lost" or retained >= t.slot_retained_critical_bytes:
            status = HealthStatus.CRITICAL
        elif not row["active"]:
            status = HealthStatus.WARN
        else:
            status = HealthStatus.OK
        statuses.append(status)
        if status is not HealthStatus.OK:
            findings.append(
                check.finding(
                    status,
                    row["slot"],
                    f"{'inactive ' if not row['active'] else ''}slot retains {retained} bytes of "
                    f"WAL (wal_status {row['wal_status']})",
                    f"SELECT pg_drop_replication_slot({literal(row['slot'])});"
                    "  -- if its consumer is gone for good",
                    retained_bytes=retained,
                    active=row["active"],
                )
            )
    inactive = sum(1 for r in rows if not r["active"])
    return check.result(
        worst(statuses),
        f"{len(rows)} slot(s), {inactive} inactive",
        value=float(inactive),
        unit="slots",
        threshold=f"warn: inactive; critical: lost or >= "
        f"{t.slot_retained_critical_bytes} bytes retained",
        details=rows,
        findings=findings,
    )


register_checks(
    HealthCheck(
        "HEALTH013",
        "top_statements",
        "The statements with the most total execution time (pg_stat_statements).",
        "A handful of statements usually account for most of the database's time; those "
        "with a high mean time are the first candidates for an index or a rewrite.",
        top_statements,
    ),
    HealthCheck(
        "HEALTH014",
        "replication_lag",
        "How far replicas are behind (on a primary), or this standby is behind its primary.",
        "Reads from a lagging replica return stale data; a replica far behind may need a new "
        "base backup, and synchronous replicas that lag slow every commit.",
        replication_lag,
    ),
    HealthCheck(
        "HEALTH015",
        "replication_slots",
        "Replication slots that are inactive or retain much WAL.",
        "A slot keeps every WAL segment its consumer has not confirmed: an abandoned slot "
        "fills the disk until the server stops, and holds back VACUUM's horizon.",
        replication_slots,
    ),
)
