"""AdvisorReport rendering: SQL script, dict/JSON, text, and an Alembic migration that runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config

from dbopt.advisor import AdvisorReport, IndexAdvisor, WorkloadStatement
from dbopt.testing import libpq_url, postgres_url
from test_advisor_support import forget_load

pytestmark = [pytest.mark.postgres, pytest.mark.extensions("hypopg")]

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE accounts (id int PRIMARY KEY, email text, plan text, deleted_at timestamptz,
                       created_at timestamptz, settings jsonb, score int);
INSERT INTO accounts
SELECT n, 'A' || n || '@x.org', CASE WHEN n % 50 = 0 THEN 'pro' ELSE 'free' END,
       CASE WHEN n % 40 = 0 THEN NULL ELSE now() END, now() - n * interval '1 min',
       jsonb_build_object('k', n), n % 500
FROM generate_series(1, 100000) n;
CREATE TABLE logs (id int, account_id int, at date) PARTITION BY RANGE (at);
CREATE TABLE logs_2024 PARTITION OF logs FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE logs_2025 PARTITION OF logs FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')
  PARTITION BY RANGE (at);
CREATE TABLE logs_2025_h1 PARTITION OF logs_2025 FOR VALUES FROM ('2025-01-01') TO ('2025-07-01');
CREATE TABLE logs_2025_h2 PARTITION OF logs_2025 FOR VALUES FROM ('2025-07-01') TO ('2026-01-01');
INSERT INTO logs SELECT n, n % 3000, date '2024-01-01' + (n % 700) FROM generate_series(1, 90000) n;
CREATE SCHEMA "My App";
CREATE TABLE "My App"."Odd ""Table"" X" ("Key" int, "order" int);
INSERT INTO "My App"."Odd ""Table"" X" SELECT n, n % 10 FROM generate_series(1, 50000) n;
ANALYZE;
"""

WORKLOAD = [
    WorkloadStatement("SELECT * FROM accounts WHERE lower(email) = %(e)s", {"e": "a5@x.org"}, 50),
    WorkloadStatement(
        "SELECT * FROM accounts WHERE deleted_at IS NULL ORDER BY created_at LIMIT 5", calls=40
    ),
    WorkloadStatement(
        "SELECT * FROM accounts WHERE score = 3 ORDER BY created_at DESC, id LIMIT 10", calls=30
    ),
    WorkloadStatement("""SELECT id FROM accounts WHERE settings @> '{"k": 5}'""", calls=20),
    WorkloadStatement("SELECT * FROM logs WHERE account_id = 42", calls=10),
    WorkloadStatement('SELECT * FROM "My App"."Odd ""Table"" X" WHERE "Key" = 5', calls=5),
]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with postgres_url(prefix="dbopt_advisor_report") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute(SCHEMA)
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            forget_load(conn)
        yield u


@pytest.fixture(scope="module")
def report(url: str) -> AdvisorReport:
    return IndexAdvisor(url).advise(WORKLOAD)


def test_recommendations(report: AdvisorReport) -> None:
    assert sorted(r.label for r in report.recommendations) == [
        'My App.Odd "Table" X (Key)',
        "public.accounts (created_at) WHERE deleted_at IS NULL",
        "public.accounts (lower(email))",
        "public.accounts (score, created_at DESC, id)",
        "public.accounts (settings jsonb_path_ops) USING gin",
        "public.logs (account_id)",
    ]
    shares = [r.saving_share for r in report.recommendations]
    assert shares == sorted(shares, reverse=True)
    assert sum(shares) == pytest.approx(1.0)
    assert not report.errors


def test_to_sql(report: AdvisorReport) -> None:
    script = report.to_sql()
    assert script.count("CREATE INDEX CONCURRENTLY IF NOT EXISTS") == 8
    assert 'ON ONLY "public"."logs"' in script
    assert 'ON ONLY "public"."logs_2025"' in script
    assert (
        'ALTER INDEX "public"."logs_account_id_idx" ATTACH PARTITION '
        '"public"."logs_2025_account_id_idx";'
    ) in script
    assert '"My App"."Odd ""Table"" X"' in script


def test_sql_script_runs(url: str, report: AdvisorReport) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for rec in report.recommendations:
            for stmt in rec.ddl:
                conn.execute(stmt)
        try:
            names = [r.name for r in report.recommendations]
            rows = conn.execute(
                "SELECT c.relname, i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(%s)",
                (names,),
            ).fetchall()
            assert sorted(rows) == sorted((n, True) for n in names)
            again = IndexAdvisor(url, findings=False).advise(WORKLOAD)
            assert again.recommendations == []  # everything is covered now
        finally:
            for rec in report.recommendations:
                for stmt in rec.drop_ddl:
                    conn.execute(stmt)


def test_to_dict_is_json(report: AdvisorReport) -> None:
    data = json.loads(json.dumps(report.to_dict()))
    assert data["method"] == "hypopg"
    assert len(data["recommendations"]) == 6
    first = data["recommendations"][0]
    assert set(first) >= {"name", "ddl", "size_bytes", "statements", "saving_share", "columns"}
    assert first["statements"][0]["calls"] > 0
    assert data["total_cost_after"] < data["total_cost_before"]
    assert len(data["statements"]) == len(WORKLOAD)


def test_text(report: AdvisorReport) -> None:
    text = str(report)
    assert text.startswith("Index advisor (hypopg): 6 recommendation(s)")
    assert "public.accounts (lower(email))" in text
    assert "50x cost" in text


def _alembic(tmp_path: Path, url: str, migration: str) -> Config:
    scripts = tmp_path / "migrations"
    (scripts / "versions").mkdir(parents=True)
    (scripts / "env.py").write_text(
        "from alembic import context\n"
        "from sqlalchemy import create_engine\n"
        "engine = create_engine(context.config.get_main_option('sqlalchemy.url'))\n"
        "with engine.connect() as connection:\n"
        "    context.configure(connection=connection, target_metadata=None)\n"
        "    with context.begin_transaction():\n"
        "        context.run_migrations()\n"
        "engine.dispose()\n"
    )
    (scripts / "script.py.mako").write_text("")
    (scripts / "versions" / "0001_indexes.py").write_text(migration)
    cfg = Config()
    cfg.set_main_option("script_location", str(scripts))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _indexes(url: str) -> list[tuple[str, bool]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c "
            "ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE NOT i.indisprimary ORDER BY 1"
        ).fetchall()


def test_alembic_migration_upgrades_and_downgrades(
    url: str, report: AdvisorReport, tmp_path: Path
) -> None:
    source = report.to_alembic(revision="0001", message="add advised indexes")
    assert "postgresql_concurrently=True" in source
    assert "autocommit_block()" in source
    compile(source, "0001_indexes.py", "exec")
    cfg = _alembic(tmp_path, url, source)
    before = _indexes(url)
    command.upgrade(cfg, "head")
    try:
        created = sorted(set(_indexes(url)) - set(before))
        names = {r.name for r in report.recommendations}
        assert names <= {n for n, _ in created}
        assert all(valid for _, valid in created)
        assert len(created) == 6 + 4  # logs: parent, logs_2024, logs_2025 (parent) and two halves
    finally:
        command.downgrade(cfg, "base")
    assert _indexes(url) == before
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("DROP TABLE alembic_version")


def test_empty_migration_is_valid(url: str, tmp_path: Path) -> None:
    empty = IndexAdvisor(url, findings=False).advise(["SELECT 1"])
    assert empty.recommendations == []
    source = empty.to_alembic(revision="0001")
    assert "create_index" not in source
    assert "drop_index" not in source
    cfg = _alembic(tmp_path, url, source)
    before = _indexes(url)
    command.upgrade(cfg, "head")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        # the revision ran (alembic recorded it) and changed nothing
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
        assert _indexes(url) == before
        command.downgrade(cfg, "base")
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == []
        assert _indexes(url) == before
        conn.execute("DROP TABLE alembic_version")
