"""Tables: cache and index hit ratios, VACUUM and ANALYZE due, wraparound, sequences."""

from __future__ import annotations

from typing import Any

from dbopt.health.base import Context, HealthCheck, database_ratio, level, register_checks, worst
from dbopt.health.model import CheckResult, HealthStatus
from dbopt.lint.rules.types import sequence_overflows
from dbopt.postgres import catalog
from dbopt.postgres.render import qualified

_SEQUENCE_PARTS = ("relations", "columns", "constraints", "sequences")

__all__: list[str] = []

_SCOPE = """
  schemaname NOT IN ('pg_catalog', 'information_schema') AND schemaname NOT LIKE 'pg\\_%%'
  AND (cardinality(%(schemas)s::text[]) = 0 OR schemaname = ANY(%(schemas)s::text[]))
"""


def _hit_ratio(
    check: HealthCheck, ctx: Context, view: str, prefix: str, name: str, what: str
) -> CheckResult:
    """The share of ``view``'s ``{prefix}_blks_*`` reads served from shared buffers.

    The details list the ten objects (``name`` column, shown as ``what``) that
    read the most blocks from disk.
    """
    params = {"schemas": list(ctx.schemas)}
    total = ctx.rows(
        f"""SELECT coalesce(sum({prefix}_blks_hit), 0)::float8 AS hit,
                   coalesce(sum({prefix}_blks_read), 0)::float8 AS read
            FROM {view} WHERE {_SCOPE}""",
        params,
    )[0]
    details = ctx.rows(
        f"""SELECT schemaname AS schema, {name} AS {what}, {prefix}_blks_read AS reads,
                   {prefix}_blks_hit AS hits FROM {view} WHERE {_SCOPE}
            ORDER BY {prefix}_blks_read DESC NULLS LAST LIMIT 10""",
        params,
    )
    hit, read = total["hit"], total["read"]
    t = ctx.thresholds
    blocks = hit + read
    threshold = f"warn < {t.hit_ratio_warn:.0%}, critical < {t.hit_ratio_critical:.0%}"
    if blocks < t.hit_ratio_min_blocks:
        return check.result(
            HealthStatus.OK,
            f"too few {what} block reads to judge ({blocks:.0f})",
            value=hit / blocks if blocks else None,
            unit="ratio",
            threshold=threshold,
            details=details,
        )
    ratio = hit / blocks
    return database_ratio(
        check,
        ctx,
        level(ratio, t.hit_ratio_warn, t.hit_ratio_critical, above=False),
        f"{what} hit ratio {ratio:.2%} ({blocks:.0f} block reads)",
        "Give shared_buffers (and the machine) more memory, or read less: the tables "
        "in the details do the most disk reads.",
        value=ratio,
        threshold=threshold,
        details=details,
        ratio=ratio,
    )


def cache_hit_ratio(check: HealthCheck, ctx: Context) -> CheckResult:
    return _hit_ratio(check, ctx, "pg_statio_user_tables", "heap", "relname", "table")


def index_hit_ratio(check: HealthCheck, ctx: Context) -> CheckResult:
    return _hit_ratio(check, ctx, "pg_statio_user_indexes", "idx", "indexrelname", "index")


def _options(reloptions: list[str] | None) -> dict[str, str]:
    out = {}
    for item in reloptions or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _tables(ctx: Context) -> list[dict[str, Any]]:
    return ctx.rows(
        f"""SELECT s.schemaname AS schema, s.relname AS table, s.n_live_tup AS live,
                   s.n_dead_tup AS dead, s.n_mod_since_analyze AS modified,
                   c.reltuples::float8 AS reltuples, c.reloptions,
                   s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze
            FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
            WHERE {_SCOPE.replace("schemaname", "s.schemaname")}
            ORDER BY s.n_dead_tup DESC""",
        {"schemas": list(ctx.schemas)},
    )


def _autovacuum(ctx: Context, row: dict[str, Any], kind: str) -> tuple[bool, float]:
    """Whether autovacuum runs on the table, and its trigger (rows) for ``kind``."""
    opts = _options(row["reloptions"])
    enabled = ctx.setting("autovacuum") == "on" and opts.get("autovacuum_enabled", "on") not in (
        "off",
        "false",
        "0",
    )
    base = float(
        opts.get(f"autovacuum_{kind}_threshold")
        or ctx.setting(f"autovacuum_{kind}_threshold")
        or 50
    )
    scale = float(
        opts.get(f"autovacuum_{kind}_scale_factor")
        or ctx.setting(f"autovacuum_{kind}_scale_factor")
        or 0.1
    )
    rows = row["reltuples"] if row["reltuples"] >= 0 else float(row["live"] or 0)
    return enabled, base + scale * rows


def vacuum_needed(check: HealthCheck, ctx: Context) -> CheckResult:
    t = ctx.thresholds
    details, findings, statuses = [], [], []
    for row in _tables(ctx):
        dead, live = int(row["dead"] or 0), int(row["live"] or 0)
        enabled, trigger = _autovacuum(ctx, row, "vacuum")
        if dead < t.vacuum_min_dead_rows or dead <= trigger:
            continue
        ratio = dead / max(dead + live, 1)
        status = (
            HealthStatus.CRITICAL if ratio >= t.vacuum_critical_dead_ratio else HealthStatus.WARN
        )
        statuses.append(status)
        name = qualified(row["schema"], row["table"])
        last = row["last_autovacuum"] or row["last_vacuum"]
        details.append(
            {
                "table": name,
                "dead": dead,
                "live": live,
                "dead_ratio": round(ratio, 3),
                "autovacuum": enabled,
                "last_vacuum": last,
            }
        )
        findings.append(
            check.finding(
                status,
                name,
                f"{dead} dead rows ({ratio:.0%}), autovacuum trigger {trigger:.0f}"
                + ("" if enabled else ", autovacuum disabled on this table"),
                f"VACUUM (ANALYZE) {name};",
                dead=dead,
                live=live,
                autovacuum=enabled,
            )
        )
    summary = f"{len(details)} table(s) need VACUUM" if details else "no table needs VACUUM"
    return check.counted(
        statuses,
        summary,
        details,
        findings,
        unit="tables",
        threshold=f"dead rows above autovacuum's trigger and >= {t.vacuum_min_dead_rows}",
    )


def analyze_needed(check: HealthCheck, ctx: Context) -> CheckResult:
    t = ctx.thresholds
    details, findings = [], []
    for row in _tables(ctx):
        modified = int(row["modified"] or 0)
        never = row["last_analyze"] is None and row["last_autoanalyze"] is None
        _, trigger = _autovacuum(ctx, row, "analyze")
        if modified < t.analyze_min_changes or (modified <= trigger and not never):
            continue
        name = qualified(row["schema"], row["table"])
        details.append(
            {
                "table": name,
                "modified": modified,
                "never_analyzed": never,
                "last_analyze": row["last_autoanalyze"] or row["last_analyze"],
            }
        )
        findings.append(
            check.finding(
                HealthStatus.WARN,
                name,
                f"{modified} rows changed since the last ANALYZE"
                + (" (never analyzed)" if never else ""),
                f"ANALYZE {name};",
                modified=modified,
                never_analyzed=never,
            )
        )
    summary = f"{len(details)} table(s) need ANALYZE" if details else "statistics are current"
    return check.counted(
        [HealthStatus.WARN] * len(details),  # every table found warns
        summary,
        details,
        findings,
        unit="tables",
        threshold=f"changes above autovacuum's trigger and >= {t.analyze_min_changes}",
    )


_XID_LIMIT = 2**31


def wraparound(check: HealthCheck, ctx: Context) -> CheckResult:
    t = ctx.thresholds
    dbs = ctx.rows("""SELECT datname AS database, age(datfrozenxid)::int8 AS xid_age,
                             mxid_age(datminmxid)::int8 AS mxid_age
                      FROM pg_database WHERE datallowconn ORDER BY 2 DESC""")
    tables = ctx.rows("""SELECT n.nspname AS schema, c.relname AS table,
                                age(c.relfrozenxid)::int8 AS xid_age
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE c.relkind IN ('r', 'm', 't') AND c.relfrozenxid <> '0'
                         ORDER BY 3 DESC LIMIT 10""")
    statuses, findings = [], []
    for db in dbs:
        ratio = max(db["xid_age"], db["mxid_age"]) / _XID_LIMIT
        db["used"] = round(ratio, 6)
        status = level(ratio, t.wraparound_warn, t.wraparound_critical)
        statuses.append(status)
        if status is not HealthStatus.OK:
            findings.append(
                check.finding(
                    status,
                    db["database"],
                    f"transaction ID age {db['xid_age']} ({ratio:.0%} of the limit)",
                    "VACUUM (FREEZE) the oldest tables of this database (see details); find what "
                    "holds back the horizon (old transactions, replication slots, prepared "
                    "transactions).",
                    xid_age=db["xid_age"],
                    mxid_age=db["mxid_age"],
                )
            )
    top = max((d["used"] for d in dbs), default=0.0)
    oldest = dbs[0]["database"] if dbs else "-"
    return check.result(
        worst(statuses),
        f"oldest: {oldest} at {top:.2%} of the limit",
        value=top,
        unit="ratio",
        threshold=f"warn >= {t.wraparound_warn:.0%}, critical >= {t.wraparound_critical:.0%}",
        details=dbs + tables,
        findings=findings,
    )


def sequences(check: HealthCheck, ctx: Context) -> CheckResult:
    # one implementation with lint's LINT012: the same ranges, columns and fixes
    t = ctx.thresholds
    cat = catalog.load(
        ctx.conn, schemas=ctx.schemas, parts=_SEQUENCE_PARTS, sequence_owners_only=True
    )
    if cat.errors:
        return check.result(
            HealthStatus.UNKNOWN,
            "could not run: " + "; ".join(f"{k}: {v}" for k, v in cat.errors.items()),
        )
    details, findings, statuses = [], [], []
    for o in sequence_overflows(cat):
        status = level(o.used, t.sequence_warn, t.sequence_critical)
        if status is HealthStatus.OK:
            continue
        statuses.append(status)
        details.append(
            {
                "sequence": o.sequence.sql_name,
                "last_value": o.sequence.last_value,
                "limit": o.limit,
                "used": round(o.used, 4),
                "column": o.column,
            }
        )
        findings.append(
            check.finding(
                status,
                o.object,
                o.message,
                o.fix,
                sequence=f"{o.sequence.schema}.{o.sequence.name}",
                last_value=o.sequence.last_value,
                limit=o.limit,
                used=round(o.used, 4),
                **o.extra,
            )
        )
    rows = cat.sequences
    summary = (
        f"{len(details)} sequence(s) above {t.sequence_warn:.0%}"
        if details
        else f"{len(rows)} sequence(s), none above {t.sequence_warn:.0%}"
    )
    return check.counted(
        statuses,
        summary,
        details,
        findings,
        unit="sequences",
        threshold=f"warn >= {t.sequence_warn:.0%}, critical >= {t.sequence_critical:.0%}",
    )


register_checks(
    HealthCheck(
        "HEALTH001",
        "cache_hit_ratio",
        "Share of table block reads served from shared buffers (target above 95 %).",
        "Below about 95 % the working set no longer fits in memory: queries wait on disk and "
        "latency becomes erratic.",
        cache_hit_ratio,
    ),
    HealthCheck(
        "HEALTH002",
        "index_hit_ratio",
        "Share of index block reads served from shared buffers (target above 95 %).",
        "Indexes that do not stay in memory turn every lookup into disk reads; it also points "
        "at oversized or unused indexes competing for the cache.",
        index_hit_ratio,
    ),
    HealthCheck(
        "HEALTH007",
        "vacuum_needed",
        "Tables with more dead rows than autovacuum's trigger (VACUUM is overdue).",
        "Dead rows take space and slow scans until VACUUM reclaims them; when autovacuum is "
        "off, too slow, or blocked by an old transaction, tables bloat and index-only scans "
        "stop paying off.",
        vacuum_needed,
    ),
    HealthCheck(
        "HEALTH008",
        "analyze_needed",
        "Tables changed beyond autovacuum's ANALYZE trigger, or never analyzed.",
        "Stale statistics make the planner misjudge row counts: wrong join orders, sequential "
        "scans where an index would do.",
        analyze_needed,
    ),
    HealthCheck(
        "HEALTH011",
        "wraparound",
        "Transaction ID and multixact age of each database against the 2^31 limit.",
        "At about 2 billion transactions without a freezing VACUUM PostgreSQL stops accepting "
        "writes to prevent data loss. Anti-wraparound vacuums of big tables take hours, so "
        "the margin must be kept large.",
        wraparound,
    ),
    HealthCheck(
        "HEALTH012",
        "sequences",
        "Sequences (and the integer columns they feed) near their maximum.",
        "When a sequence or its column reaches its maximum, every INSERT fails.",
        sequences,
    ),
)
