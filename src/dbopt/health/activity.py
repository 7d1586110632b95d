"""Sessions: connections used, idle-in-transaction, long-running and blocked queries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dbopt.health.base import Context, HealthCheck, database_ratio, level, register_checks, worst
from dbopt.health.model import CheckResult, HealthStatus, HealthThresholds

__all__: list[str] = []

_SESSION_COLS = """
  a.pid, a.usename AS user, a.application_name AS application, a.client_addr::text AS client,
  a.state, a.wait_event_type, a.wait_event,
  extract(epoch FROM now() - a.xact_start)::float8 AS xact_s,
  extract(epoch FROM now() - a.query_start)::float8 AS query_s,
  extract(epoch FROM now() - a.state_change)::float8 AS state_s,
  left(a.query, 500) AS query
"""


def connections(check: HealthCheck, ctx: Context) -> CheckResult:
    reserved = "current_setting('superuser_reserved_connections')::int"
    if ctx.version >= 160000:
        reserved += " + current_setting('reserved_connections')::int"
    row = ctx.rows(
        f"""SELECT current_setting('max_connections')::int - {reserved} AS usable,
                   count(*) FILTER (WHERE backend_type = 'client backend') AS used
            FROM pg_stat_activity"""
    )[0]
    by_state = ctx.rows(
        """SELECT datname AS database, usename AS user, application_name AS application,
                  coalesce(state, '') AS state, count(*) AS connections
           FROM pg_stat_activity WHERE backend_type = 'client backend'
           GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC LIMIT 20"""
    )
    t = ctx.thresholds
    usable = max(int(row["usable"]), 1)
    ratio = row["used"] / usable
    return database_ratio(
        check,
        ctx,
        level(ratio, t.connections_warn, t.connections_critical),
        f"{row['used']} of {usable} usable connections ({ratio:.0%})",
        "Put a pooler (PgBouncer, or a smaller application pool) in front of the server; "
        "find idle sessions in the details.",
        value=ratio,
        threshold=f"warn >= {t.connections_warn}, critical >= {t.connections_critical}",
        details=by_state,
        used=row["used"],
        usable=usable,
    )


@dataclass(frozen=True)
class _Sessions:
    """A check of the other sessions matching ``where`` (ordered by ``order``), judged by
    their age ``key`` against the ``(warn, critical)`` seconds ``limits`` picks from the
    thresholds. ``what`` says what a flagged session does; ``fix`` is formatted with its
    ``pid``."""

    where: str
    order: str
    key: str
    limits: Callable[[HealthThresholds], tuple[float, float]]
    what: str
    fix: str

    def __call__(self, check: HealthCheck, ctx: Context) -> CheckResult:
        key, what = self.key, self.what
        warn, critical = self.limits(ctx.thresholds)
        rows = ctx.rows(
            f"""SELECT {_SESSION_COLS} FROM pg_stat_activity a
                WHERE {self.where} AND a.pid <> pg_backend_pid()
                ORDER BY {self.order}"""
        )
        statuses, findings = [], []
        for row in rows:
            status = level(row[key] or 0.0, warn, critical)
            statuses.append(status)
            if status is not HealthStatus.OK:
                findings.append(
                    check.finding(
                        status,
                        f"pid {row['pid']}",
                        f"{what} for {row[key]:.0f} s ({row['user']}, {row['application'] or '-'})",
                        self.fix.format(pid=row["pid"]),
                        pid=row["pid"],
                        seconds=row[key],
                        query=row["query"],
                    )
                )
        flagged = [r for r in rows if (r[key] or 0) >= warn]
        longest = max((r[key] or 0.0 for r in rows), default=0.0)
        summary = (
            f"{len(flagged)} session(s) {what} longer than {warn:g} s (longest {longest:.0f} s)"
            if flagged
            else f"none longer than {warn:g} s"
        )
        return check.result(
            worst(statuses),
            summary,
            value=longest,
            unit="s",
            threshold=f"warn >= {warn:g} s, critical >= {critical:g} s",
            details=flagged,
            findings=findings,
        )


def blocked_queries(check: HealthCheck, ctx: Context) -> CheckResult:
    rows = ctx.rows(
        f"""SELECT {_SESSION_COLS}, pg_blocking_pids(a.pid) AS blocked_by
            FROM pg_stat_activity a
            WHERE cardinality(pg_blocking_pids(a.pid)) > 0
            ORDER BY a.query_start"""
    )
    blockers = {
        r["pid"]: r
        for r in ctx.rows(
            f"""SELECT {_SESSION_COLS} FROM pg_stat_activity a
            WHERE a.pid IN (SELECT unnest(pg_blocking_pids(b.pid)) FROM pg_stat_activity b)"""
        )
    }
    t = ctx.thresholds
    statuses, findings, details = [], [], []
    for row in rows:
        waited = row["query_s"] or 0.0
        status = level(waited, t.blocked_warn_s, t.blocked_critical_s)
        by = [blockers.get(pid, {"pid": pid}) for pid in row["blocked_by"]]
        details.append(
            {
                "pid": row["pid"],
                "waiting_s": round(waited, 1),
                "query": row["query"],
                "blocked_by": row["blocked_by"],
                "blocker_state": [b.get("state") for b in by],
                "blocker_query": [b.get("query") for b in by],
            }
        )
        statuses.append(status)
        if status is not HealthStatus.OK:
            findings.append(
                check.finding(
                    status,
                    f"pid {row['pid']}",
                    f"waiting {waited:.0f} s for a lock held by pid(s) "
                    f"{', '.join(map(str, row['blocked_by']))}",
                    "Find why the blocker holds its lock (see details); "
                    f"SELECT pg_cancel_backend({row['blocked_by'][0]}) ends its query.",
                    pid=row["pid"],
                    blocked_by=row["blocked_by"],
                    query=row["query"],
                )
            )
    summary = (
        f"{len(rows)} blocked session(s), longest wait "
        f"{max((d['waiting_s'] for d in details), default=0):.0f} s"
        if rows
        else "no blocked sessions"
    )
    return check.counted(
        statuses,
        summary,
        details,
        findings,
        unit="sessions",
        threshold=f"warn >= {t.blocked_warn_s:g} s, critical >= {t.blocked_critical_s:g} s",
    )


register_checks(
    HealthCheck(
        "HEALTH003",
        "connections",
        "Connections in use against max_connections.",
        "When connections run out, new ones are refused: the application's requests fail. "
        "Each connection also costs server memory; a pooler keeps the count low.",
        connections,
    ),
    HealthCheck(
        "HEALTH004",
        "idle_in_transaction",
        "Sessions idle inside an open transaction.",
        "An open transaction holds its locks and its snapshot: VACUUM cannot remove rows "
        "deleted after it began (bloat), and DDL queues behind its locks. Usually a missing "
        "commit or a request that did slow work while holding a transaction.",
        _Sessions(
            "a.state LIKE 'idle in transaction%%'",
            "a.state_change",
            "state_s",
            lambda t: (t.idle_in_transaction_warn_s, t.idle_in_transaction_critical_s),
            "idle in transaction",
            "SELECT pg_terminate_backend({pid});  -- and set idle_in_transaction_session_timeout",
        ),
    ),
    HealthCheck(
        "HEALTH005",
        "long_running_queries",
        "Queries running longer than a threshold.",
        "A long query holds a snapshot (VACUUM cannot clean up behind it), its locks, and a "
        "connection; it is often a missing index or an unbounded report.",
        _Sessions(
            "a.state = 'active' AND a.backend_type = 'client backend'",
            "a.query_start",
            "query_s",
            lambda t: (t.long_query_warn_s, t.long_query_critical_s),
            "running a query",
            "SELECT pg_cancel_backend({pid});  -- and set statement_timeout",
        ),
    ),
    HealthCheck(
        "HEALTH006",
        "blocked_queries",
        "Queries waiting for a lock, and the sessions that block them.",
        "A blocked query does nothing while it waits; behind an ALTER TABLE waiting for a lock, "
        "every other query on that table queues too. The blocker is usually a long or "
        "idle-in-transaction session.",
        blocked_queries,
    ),
)
