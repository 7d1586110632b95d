"""The lint runner: no locks on user tables, timeouts, rule selection, suppression, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbopt import ConfigurationError, ServerUnavailableError
from dbopt.findings import Finding, Severity
from dbopt.lint import RULES, LintConfig, Rule, lint
from dbopt.lint.base import register_rules, rule
from dbopt.lint.catalog import Catalog
from dbopt.postgres.connect import read_only_connection
from dbopt.suppress import Suppression, Suppressions
from test_lint_support import connect, fresh_schema, lint_schema

pytestmark = pytest.mark.postgres

DDL = """
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE busy (id serial PRIMARY KEY, parent_id int REFERENCES parent, at timestamp,
  doc json, "Mixed" int);
CREATE INDEX busy_at ON busy (at);
CREATE INDEX busy_at2 ON busy (at);
CREATE TABLE "we""ird tab" (id int PRIMARY KEY, "parent_id" int REFERENCES parent);
CREATE TABLE parts (id int, at date, parent_id int REFERENCES parent) PARTITION BY RANGE (at);
CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
"""


def test_lint_completes_while_a_migration_holds_access_exclusive(pg_url: str) -> None:
    with fresh_schema(pg_url, DDL) as name:
        baseline = lint_schema(pg_url, name)
        assert baseline.findings
        holder = connect(pg_url)
        holder.autocommit = False
        try:
            # what a migration in flight looks like: locks plus uncommitted catalog changes
            holder.execute(f'LOCK TABLE "{name}".busy IN ACCESS EXCLUSIVE MODE')
            holder.execute(f'LOCK TABLE "{name}".parts IN ACCESS EXCLUSIVE MODE')
            holder.execute(f'ALTER TABLE "{name}"."we""ird tab" ADD COLUMN extra int')
            holder.execute(f'CREATE INDEX busy_doc ON "{name}".busy ((doc::text))')
            started = time.monotonic()
            report = lint(pg_url, schemas=[name], lock_timeout_ms=200)
            elapsed = time.monotonic() - started
        finally:
            holder.rollback()
            holder.close()
        assert report.errors == {}
        assert elapsed < 5
        assert sorted(map(str, report)) == sorted(map(str, baseline))


def test_a_locked_sequence_costs_only_the_rule_that_reads_it(pg_url: str) -> None:
    with fresh_schema(pg_url, DDL) as name:
        holder = connect(pg_url)
        holder.autocommit = False
        try:
            holder.execute(f'ALTER SEQUENCE "{name}".busy_id_seq RESTART WITH 10')
            report = lint(pg_url, schemas=[name], lock_timeout_ms=100)
        finally:
            holder.rollback()
            holder.close()
        assert set(report.errors) == {"LINT012"}
        assert "lock timeout" in report.errors["LINT012"]
        assert "LINT001" in report.codes()


def test_linter_session_is_read_only_with_both_timeouts(pg_url: str) -> None:
    with read_only_connection(
        pg_url, tool="lint", statement_timeout_ms=1234, lock_timeout_ms=321
    ) as conn:
        row = conn.execute(
            "SELECT current_setting('statement_timeout') AS st,"
            " current_setting('lock_timeout') AS lt,"
            " current_setting('transaction_read_only') AS ro"
        ).fetchone()
    assert row == {"st": "1234ms", "lt": "321ms", "ro": "on"}
    with (
        pytest.raises(ConfigurationError),
        read_only_connection(pg_url, tool="lint", statement_timeout_ms=0),
    ):
        pass


def test_rule_selection_and_unknown_rules(pg_url: str) -> None:
    with fresh_schema(pg_url, DDL) as name:
        only = lint_schema(pg_url, name, rules=["LINT004", "timestamp_without_time_zone"])
        assert only.codes() == {"LINT004", "LINT010"}
        assert only.rules == ["LINT004", "LINT010"]
        without = lint_schema(pg_url, name, exclude=["LINT013", "naming_convention"])
        assert not without.codes() & {"LINT013", "LINT014"}
        assert len(without.rules) == len(RULES) - 2
    with pytest.raises(ConfigurationError, match="unknown lint rule"):
        lint(pg_url, rules=["LINT999"])


def test_a_rule_registered_with_the_decorator_runs_beside_the_tables(pg_url: str) -> None:
    """dbopt's rules come from each module's table; ``rule()`` still adds one of a user's."""

    @rule("XLINT900", "every_table", "info", "Lists every table.", "A test rule.")
    def every_table(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
        return (r.finding(t.sql_name, f"table {t.name}") for t in catalog.top_level())

    try:
        assert RULES["XLINT900"].check is every_table
        assert RULES["XLINT900"].severity is Severity.INFO
        with pytest.raises(ConfigurationError, match="XLINT900 registered twice"):
            register_rules(RULES["XLINT900"])
        with fresh_schema(pg_url, DDL) as name:
            report = lint_schema(pg_url, name, rules=["every_table", "LINT004"])
            assert sorted(report.rules) == ["LINT004", "XLINT900"]
            assert f"{name}.parent" in {f.object for f in report.of("XLINT900")}
    finally:
        del RULES["XLINT900"]


def test_suppressions_by_code_object_and_glob(pg_url: str, tmp_path: Path) -> None:
    with fresh_schema(pg_url, DDL) as name:
        full = lint_schema(pg_url, name)
        report = lint_schema(
            pg_url,
            name,
            suppress=["LINT013", f"fk_without_index:{name}.busy.*", {"code": "LINT01[01]"}],
        )
        assert not report.codes() & {"LINT013", "LINT010", "LINT011"}
        assert all(not f.object.startswith(f"{name}.busy.") for f in report.of("LINT001"))
        assert report.of("LINT001")  # the other tables still report
        assert len(report) + len(report.suppressed) == len(full)
        (tmp_path / "pyproject.toml").write_text(
            '[tool.dbopt]\nsuppress = ["LINT014", { code = "LINT004", object = "*.busy_at*",'
            ' reason = "legacy" }]\n'
        )
        from_file = Suppressions.from_pyproject(tmp_path)
        assert from_file.entries[1] == Suppression("LINT004", "*.busy_at*", "legacy")
        report = lint_schema(pg_url, name, suppress=from_file)
        assert not report.codes() & {"LINT014", "LINT004"}


def test_hostile_identifiers_are_quoted_in_objects_and_fixes(pg_url: str) -> None:
    with fresh_schema(pg_url, DDL) as name:
        report = lint_schema(pg_url, name, rules=["LINT001"])
        weird = next(f for f in report if f.metadata["table"] == 'we"ird tab')
        assert weird.object == f'{name}."we""ird tab"."we""ird tab_parent_id_fkey"'
        with connect(pg_url) as conn:
            conn.execute(weird.fix or "")
        assert 'we"ird tab' not in {
            f.metadata["table"] for f in lint_schema(pg_url, name, rules=["LINT001"])
        }


def test_config_validation_and_pyproject_mapping() -> None:
    with pytest.raises(ConfigurationError):
        LintConfig(naming_pattern="([")
    with pytest.raises(ConfigurationError):
        LintConfig(overflow_warn=0.95, overflow_error=0.9)
    with pytest.raises(ConfigurationError, match="unknown lint settings"):
        LintConfig.from_mapping({"nope": 1})
    config = LintConfig.from_mapping({"audit_columns": ["created_at"], "enum_max_values": 5})
    assert config.audit_columns == ("created_at",)


def test_async_engine_and_non_postgres_targets(pg_url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from dbopt.postgres.connect import conninfo

    engine = create_async_engine(pg_url)
    assert conninfo(engine).startswith("postgresql://")
    with pytest.raises(ConfigurationError, match="needs PostgreSQL"):
        lint("sqlite:///x.db")
    with pytest.raises(ConfigurationError):
        lint(42)


def test_unreachable_server_raises_server_unavailable() -> None:
    with pytest.raises(ServerUnavailableError):
        lint("postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2")


def test_report_shape(pg_url: str) -> None:
    with fresh_schema(pg_url, DDL) as name:
        report = lint_schema(pg_url, name)
        data = report.to_dict()
        assert data["tables"] == 5  # parts_1 included
        assert data["server_version"] >= 130000
        assert [f["code"] for f in data["findings"]] == [f.code for f in report]
        ranks = [f.severity.rank for f in report]
        assert ranks == sorted(ranks, reverse=True)
        assert report.worst is not None
