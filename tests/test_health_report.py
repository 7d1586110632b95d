"""The health report as a whole: every check runs here, statuses, selection, rendering,
pg_stat_statements gating, and no waiting on locks held by migrations."""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg
import pytest

from dbopt import ConfigurationError
from dbopt.health import RULES, HealthReport, HealthStatus, HealthThresholds, health
from dbopt.health.workload import statements_sql
from dbopt.report.sarif import to_sarif
from dbopt.testing import libpq_url, postgres_url
from test_lint_support import LEARNING_SQL, connect, fresh_schema

pytestmark = pytest.mark.postgres


def test_every_check_runs_on_this_server(pg_url: str) -> None:
    report = health(pg_url)
    assert [c.code for c in report.checks] == sorted(RULES)
    assert [c.code for c in report.checks] == [f"HEALTH{n:03d}" for n in range(1, 17)]
    unknown = {c.name: c.summary for c in report.checks if c.status is HealthStatus.UNKNOWN}
    assert unknown == {}
    assert report.server_version >= 130000
    assert report.status in (HealthStatus.OK, HealthStatus.WARN, HealthStatus.CRITICAL)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["checks"][0]["name"] == "cache_hit_ratio"
    text = report.to_text()
    assert text.splitlines()[0].startswith(f"health of {report.database}")
    assert "cache_hit_ratio" in text


def test_health_completes_while_a_migration_holds_access_exclusive(pg_url: str) -> None:
    with fresh_schema(pg_url, LEARNING_SQL, prefix="health") as name:
        holder = connect(pg_url)
        holder.autocommit = False
        try:
            holder.execute(f'LOCK TABLE "{name}".users IN ACCESS EXCLUSIVE MODE')
            holder.execute(f'LOCK TABLE "{name}".user_interactions IN ACCESS EXCLUSIVE MODE')
            holder.execute(f'ALTER TABLE "{name}".courses ADD COLUMN extra int')
            started = time.monotonic()
            report = health(pg_url, schemas=[name], lock_timeout_ms=200)
            elapsed = time.monotonic() - started
        finally:
            holder.rollback()
            holder.close()
    assert [c.name for c in report.checks if c.status is HealthStatus.UNKNOWN] == []
    assert elapsed < 10
    # the holder is idle in transaction and shows up as a session, not as an error
    assert report["partitions"].details[0]["table"] == f"{name}.user_interactions"


# pg_stat_statements collects only when preloaded (shared_preload_libraries):
# the marker skips, with that reason, on servers where it is not.
@pytest.mark.extensions("pg_stat_statements")
def test_top_statements_is_skipped_without_the_extension_and_reads_it_with(pg_url: str) -> None:
    with postgres_url() as fresh:
        report = health(fresh, checks=["top_statements"])
        check = report["top_statements"]
        assert check.status is HealthStatus.SKIPPED
        assert "not installed" in check.summary
        with psycopg.connect(libpq_url(fresh), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("CREATE TABLE s (id int)")
            for _ in range(12):
                conn.execute("SELECT count(*) FROM s, pg_sleep(0.01)")
            version = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'"
            ).fetchone()
        assert version is not None
        check = health(
            fresh, checks=["top_statements"], thresholds=HealthThresholds(slow_statement_ms=5)
        )["top_statements"]
        assert check.status is HealthStatus.WARN
        slow = next(d for d in check.details if "pg_sleep" in d["query"])
        assert slow["calls"] == 12
        assert slow["mean_ms"] >= 10
        assert any(f.metadata["queryid"] == slow["queryid"] for f in check.findings)
        quiet = health(fresh, checks=["top_statements"])["top_statements"]
        assert quiet.status is HealthStatus.OK


def test_statement_sql_is_gated_on_the_extension_version() -> None:
    pg13 = statements_sql("1.8")
    assert "toplevel" not in pg13
    assert "blk_read_time + blk_write_time" in pg13
    pg15 = statements_sql("1.10")
    assert "AND toplevel" in pg15
    pg17 = statements_sql("1.11")
    assert "shared_blk_read_time + shared_blk_write_time" in pg17


def test_check_selection_and_threshold_validation(pg_url: str) -> None:
    report = health(pg_url, checks=["HEALTH001", "connections"])
    assert [c.name for c in report.checks] == ["cache_hit_ratio", "connections"]
    with pytest.raises(KeyError):
        report["wraparound"]
    with pytest.raises(ConfigurationError, match="unknown health check"):
        health(pg_url, checks=["nope"])
    with pytest.raises(ConfigurationError):
        HealthThresholds(connections_warn=0.9, connections_critical=0.5)
    with pytest.raises(ConfigurationError):
        HealthThresholds(bloat_min_bytes=-1)


def test_a_check_that_times_out_is_unknown_and_the_rest_still_run(pg_url: str) -> None:
    holder = connect(pg_url)
    holder.autocommit = False
    with fresh_schema(pg_url, "CREATE SEQUENCE s;", prefix="health") as name:
        try:
            holder.execute(f'ALTER SEQUENCE "{name}".s RESTART WITH 5')
            report = health(pg_url, checks=["sequences", "connections"], lock_timeout_ms=100)
        finally:
            holder.rollback()
            holder.close()
    assert report["sequences"].status is HealthStatus.UNKNOWN
    assert "lock timeout" in report["sequences"].summary
    assert report["connections"].status is not HealthStatus.UNKNOWN


def test_status_order_and_findings_to_sarif(pg_url: str) -> None:
    report = health(
        pg_url,
        checks=["connections", "wraparound"],
        thresholds=HealthThresholds(connections_warn=0.0001, wraparound_warn=1e-12),
    )
    assert report.status is HealthStatus.WARN
    assert (
        HealthStatus.CRITICAL.rank
        > HealthStatus.WARN.rank
        > HealthStatus.UNKNOWN.rank
        > HealthStatus.OK.rank
    )
    findings = report.findings
    assert {f.code for f in findings} == {"HEALTH003", "HEALTH011"}
    log = to_sarif(findings)
    rules = {r["id"]: r for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["HEALTH003"]["name"] == "connections"
    assert HealthReport(checks=[]).status is HealthStatus.OK


def test_health_findings_can_be_suppressed(pg_url: str) -> None:
    limits = HealthThresholds(connections_warn=0.0001, wraparound_warn=1e-12)
    checks = ["connections", "wraparound"]
    report = health(pg_url, checks=checks, thresholds=limits, suppress=["connections"])
    assert report.codes() == {"HEALTH011"}
    assert [f.code for f in report.suppressed] == ["HEALTH003"]
    assert report["connections"].findings  # the check's own result still lists it
    everything = health(pg_url, checks=checks, thresholds=limits, suppress=["HEALTH0*"])
    assert everything.findings == []
    assert not everything
    assert everything.codes() == frozenset()
    assert {f.code for f in everything.suppressed} == {"HEALTH003", "HEALTH011"}


def test_findings_called_as_a_method_still_works_with_a_warning(pg_url: str) -> None:
    limits = HealthThresholds(connections_warn=0.0001, wraparound_warn=1e-12)
    report = health(pg_url, checks=["connections", "wraparound"], thresholds=limits)
    with pytest.warns(DeprecationWarning, match="attribute"):
        called = report.findings()
    assert called == report.findings
    with pytest.warns(DeprecationWarning, match="attribute"):
        assert {f.code for f in report.findings(suppress=["connections"])} == {"HEALTH011"}


def test_a_check_registered_by_the_user_runs_with_the_others(pg_url: str) -> None:
    from dbopt.health.base import Context, HealthCheck, register_check

    @register_check("HEALTH901", "user_max_connections", "max_connections", "a user's own check")
    def user_check(check: HealthCheck, ctx: Context) -> Any:
        row = ctx.conn.execute("SELECT current_setting('max_connections')::int AS n").fetchone()
        assert row is not None
        return check.result(HealthStatus.OK, f"max_connections is {row['n']}", value=row["n"])

    try:
        report = health(pg_url)
        assert [c.code for c in report.checks][-1] == "HEALTH901"
        mine = report["user_max_connections"]
        assert mine.status is HealthStatus.OK
        assert mine.summary.startswith("max_connections is ")
        assert health(pg_url, checks=["user_max_connections"]).checks[0].code == "HEALTH901"
    finally:
        RULES.pop("HEALTH901")
    assert "HEALTH901" not in RULES
