"""``health()``: run the checks on a connection of dbopt's own and gather a report."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

import psycopg

from dbopt.errors import ConfigurationError
from dbopt.health.base import Context
from dbopt.health.checks import RULES
from dbopt.health.model import CheckResult, HealthReport, HealthStatus, HealthThresholds
from dbopt.postgres.connect import Target, read_only_connection
from dbopt.suppress import Suppressions, SuppressionsLike

__all__ = ["health"]


def _select(checks: Iterable[str] | None) -> list[str]:
    if checks is None:
        return sorted(RULES)
    by_key = {
        **{c.code: c.code for c in RULES.values()},
        **{c.name: c.code for c in RULES.values()},
    }
    out = []
    for key in checks:
        if key not in by_key:
            raise ConfigurationError(
                f"unknown health check {key!r}; known: {', '.join(c.name for c in RULES.values())}"
            )
        out.append(by_key[key])
    return out


def health(
    target: Target,
    *,
    thresholds: HealthThresholds | None = None,
    checks: Iterable[str] | None = None,
    schemas: Sequence[str] = (),
    statement_timeout_ms: int = 5000,
    lock_timeout_ms: int = 1000,
    suppress: SuppressionsLike = None,
) -> HealthReport:
    """Check the health of the database ``target`` (an Engine, URL or libpq string).

    Runs every check (or those named in ``checks``, by code or name) on a
    read-only connection of its own; each check reads statistics and
    catalog views only, under ``statement_timeout_ms``. A check that fails
    (a timeout, a missing privilege) is reported with status ``unknown``
    and its error; the others still run. ``schemas`` limits the per-table
    checks. ``suppress`` (codes, names, object globs; see :mod:`dbopt.suppress`)
    moves findings from ``report.findings`` to ``report.suppressed``. Raises
    :class:`~dbopt.ServerUnavailableError` when the server cannot be reached.
    """
    selected = _select(checks)
    limits = thresholds or HealthThresholds()
    started = time.perf_counter()
    results: list[CheckResult] = []
    with read_only_connection(
        target,
        tool="health",
        statement_timeout_ms=statement_timeout_ms,
        lock_timeout_ms=lock_timeout_ms,
    ) as conn:
        info = conn.execute(
            "SELECT current_setting('server_version_num')::int AS v, current_database() AS db"
        ).fetchone() or {"v": 0, "db": ""}
        ctx = Context(conn, int(info["v"]), str(info["db"]), limits, tuple(schemas))
        for code in selected:
            check = RULES[code]
            try:
                with conn.transaction():
                    results.append(check.run(check, ctx))
            except psycopg.Error as exc:
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                results.append(check.result(HealthStatus.UNKNOWN, f"could not run: {message}"))
    found = [f for result in results for f in result.findings]
    _, silenced = Suppressions.coerce(suppress).split(found)
    return HealthReport(
        checks=results,
        suppressed=silenced,
        database=ctx.database,
        server_version=ctx.version,
        taken_at=datetime.now(timezone.utc),
        duration_s=time.perf_counter() - started,
    )
