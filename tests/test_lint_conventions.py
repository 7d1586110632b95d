"""LINT013-015 on real schemas: audit columns, naming, tables never scanned; hostile names."""

from __future__ import annotations

import pytest

from dbopt.lint import LintConfig
from dbopt.lint.rules.conventions import SNAKE_CASE
from test_lint_support import connect, flush_stats, fresh_schema, lint_schema, objects, run

pytestmark = pytest.mark.postgres


def test_missing_audit_columns(pg_url: str) -> None:
    ddl = """
    CREATE TABLE full_audit (id int PRIMARY KEY, created_at timestamptz, updated_at timestamptz);
    CREATE TABLE half (id int PRIMARY KEY, created_at timestamptz);
    CREATE TABLE none_at_all (id int PRIMARY KEY);
    CREATE TABLE alt (id int PRIMARY KEY, inserted_at timestamptz, modified_at timestamptz);
    CREATE TABLE "Odd Table" (id int PRIMARY KEY);
    """
    with fresh_schema(pg_url, ddl) as name:
        # only 2 of 5 tables have created_at: no convention to follow, nothing by default
        assert len(lint_schema(pg_url, name, rules=["LINT013"])) == 0
        asked = LintConfig(audit_columns=("created_at", "updated_at"))
        report = lint_schema(pg_url, name, rules=["LINT013"], config=asked)
        missing = {f.metadata["table"]: f.metadata["missing"] for f in report}
        assert missing == {
            "half": ["updated_at"],
            "none_at_all": ["created_at", "updated_at"],
            "alt": ["created_at", "updated_at"],
            "Odd Table": ["created_at", "updated_at"],
        }
        config = LintConfig(audit_columns=("created_at|inserted_at", "updated_at|modified_at"))
        report = lint_schema(pg_url, name, rules=["LINT013"], config=config)
        assert "alt" not in {f.metadata["table"] for f in report}
        for f in report:
            run(
                pg_url,
                name,
                "\n".join(line for line in (f.fix or "").splitlines() if not line.startswith("--")),
            )
        assert len(lint_schema(pg_url, name, rules=["LINT013"], config=config)) == 0


def test_naming_convention(pg_url: str) -> None:
    ddl = """
    CREATE TABLE good_name (id int PRIMARY KEY, user_id int);
    CREATE TABLE "userAccounts" (id int PRIMARY KEY, "createdAt" timestamptz,
      "Display Name" text, CONSTRAINT "Positive" CHECK (id > 0));
    CREATE INDEX "IdxDisplay" ON "userAccounts" ("Display Name");
    """
    snake = LintConfig(naming_pattern=SNAKE_CASE)
    with fresh_schema(pg_url, ddl) as name:
        # 3 of 7 table and column names break snake_case: too many for it to be the
        # schema's convention, so nothing is reported unless the pattern is configured
        assert len(lint_schema(pg_url, name, rules=["LINT014"])) == 0
        report = lint_schema(pg_url, name, rules=["LINT014"], config=snake)
        kinds = {(f.metadata["kind"], f.metadata["name"]) for f in report}
        assert kinds == {
            ("table", "userAccounts"),
            ("column", "createdAt"),
            ("column", "Display Name"),
            ("constraint", "Positive"),
            ("constraint", "userAccounts_pkey"),  # named after the table by PostgreSQL
            ("index", "IdxDisplay"),
        }
        fixes = {f.metadata["name"]: f.fix for f in report}
        assert fixes["Display Name"] == (
            f'ALTER TABLE {name}."userAccounts" RENAME COLUMN "Display Name" TO display_name;'
        )
        # renaming the table last, so the other fixes still name it as it is
        for f in sorted(report, key=lambda f: f.metadata["kind"] == "table"):
            run(pg_url, name, f.fix or "")
        assert len(lint_schema(pg_url, name, rules=["LINT014"], config=snake)) == 0
        assert (
            len(
                lint_schema(
                    pg_url, name, rules=["LINT014"], config=LintConfig(naming_pattern=r"^[a-z]+$")
                )
            )
            > 0
        )


def test_tables_never_scanned(pg_url: str) -> None:
    ddl = """
    CREATE TABLE read_me (id int PRIMARY KEY);
    CREATE TABLE ignored (id int PRIMARY KEY);
    INSERT INTO read_me SELECT generate_series(1, 10);
    INSERT INTO ignored SELECT generate_series(1, 10);
    CREATE TABLE parts (id int, at date) PARTITION BY RANGE (at);
    CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
    CREATE TABLE parts_2 PARTITION OF parts FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
    """
    with fresh_schema(pg_url, ddl) as name, connect(pg_url) as conn:
        conn.execute(f'SELECT count(*) FROM "{name}".read_me').fetchall()
        conn.execute(f"SELECT * FROM \"{name}\".parts WHERE at = '2024-02-02'").fetchall()
        flush_stats(conn)
        # the test database is minutes old: a week of statistics is the default wait
        assert len(lint_schema(pg_url, name, rules=["LINT015"])) == 0
        now = LintConfig(unused_table_min_stats_age_s=0)
        report = lint_schema(pg_url, name, rules=["LINT015"], config=now)
        assert objects(report, "LINT015") == {f"{name}.ignored"}
        assert 0 <= report[0].metadata["stats_age_s"] < 24 * 3600
        assert report[0].metadata["live_rows"] == 10
