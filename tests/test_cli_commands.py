"""The CLI's subcommands against a real PostgreSQL database of their own."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

import dbopt
from dbopt.cli import ExitCode, main
from dbopt.demo.data import reset_statistics
from dbopt.testing import libpq_url, postgres_url

SCHEMA = """
CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE posts (
  id bigserial PRIMARY KEY,
  author_id int NOT NULL REFERENCES authors(id),
  status text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  body text
);
INSERT INTO authors (name) SELECT 'author ' || n FROM generate_series(1, 200) AS n;
INSERT INTO posts (author_id, status, created_at, body)
SELECT 1 + n % 200, (ARRAY['draft', 'published', 'published'])[1 + n % 3],
       now() - make_interval(mins => n), repeat('x', 40)
FROM generate_series(1, 30000) AS n;
CREATE INDEX posts_status_idx ON posts (status);
CREATE INDEX posts_status_copy_idx ON posts (status);
CREATE TABLE events (id bigint NOT NULL, created_at timestamptz NOT NULL, kind text)
  PARTITION BY RANGE (created_at);
ANALYZE;
"""

WORKLOAD = "SELECT id, status FROM posts WHERE author_id = 42 ORDER BY created_at DESC LIMIT 10;\n"


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    with postgres_url(prefix="dbopt_cli") as url:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(SCHEMA)
            reset_statistics(conn)  # or the advisor charges the bulk load as writes
        yield url


@pytest.fixture
def workload(tmp_path: Path) -> Path:
    path = tmp_path / "workload.sql"
    path.write_text(WORKLOAD)
    return path


def test_advise_sql_file_in_every_format(
    db: str, workload: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["advise", str(workload), "--dsn", db, "--install-hypopg"]
    assert main(base) == ExitCode.OK
    out = capsys.readouterr().out
    assert "Index advisor" in out
    assert "public.posts (author_id" in out
    assert main([*base, "--format", "sql"]) == 0
    assert 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "posts_author_id' in capsys.readouterr().out
    assert main([*base, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["recommendations"][0]["table"] == "posts"
    assert report["recommendations"][0]["columns"][0] == "author_id"
    target = tmp_path / "migration.py"
    assert main([*base, "--format", "alembic", "--revision", "abc123", "-o", str(target)]) == 0
    migration = target.read_text()
    assert "revision = 'abc123'" in migration or 'revision = "abc123"' in migration
    assert "postgresql_concurrently=True" in migration
    assert main([*base, "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| name | index |" in markdown
    assert "```sql" in markdown


def test_advise_fail_on_existing_index_findings(
    db: str, workload: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # posts_status_idx and posts_status_copy_idx duplicate each other: IDX001, a warning
    assert main(["advise", str(workload), "--dsn", db]) == ExitCode.OK
    assert "IDX001" in capsys.readouterr().out
    assert main(["advise", str(workload), "--dsn", db, "--fail-on", "warning"]) == 1
    assert main(["advise", str(workload), "--dsn", db, "--fail-on", "none"]) == 0


def test_advise_a_saved_query_stats_file(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = dbopt.QueryStats()
    engine = create_engine(db)
    try:
        with dbopt.instrument(engine, stats), engine.connect() as conn:
            for author in (3, 5, 8):
                conn.execute(
                    text("SELECT id FROM posts WHERE author_id = :a ORDER BY created_at DESC"),
                    {"a": author},
                ).all()
    finally:
        engine.dispose()
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(stats.to_dict()))
    assert main(["advise", str(path), "--dsn", db, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert any(r["columns"][0] == "author_id" for r in report["recommendations"])
    assert report["statements"][0]["calls"] == 3
    assert main(["stats", str(path), "--format", "markdown"]) == 0
    assert "| calls | total ms |" in capsys.readouterr().out


def test_partitions_plan_apply_check(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({"table": "events", "key": "created_at", "interval": "month", "premake": 3})
    )
    assert main(["partitions", "check", str(spec), "--dsn", db]) == ExitCode.FINDINGS
    assert "needs attention" in capsys.readouterr().out
    assert main(["partitions", "plan", str(spec), "--dsn", db, "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    creates = [op for op in plan["operations"] if op["kind"] == "create_partition"]
    assert len(creates) >= 4  # the current month and three ahead
    with psycopg.connect(libpq_url(db)) as conn:
        before = conn.execute("SELECT count(*) FROM pg_inherits").fetchone()
    assert before == (0,)  # plan changed nothing
    assert main(["partitions", "apply", str(spec), "--dsn", db]) == 0
    assert "failed" in capsys.readouterr().out  # the summary line: "N done, 0 skipped, 0 failed"
    assert main(["partitions", "check", str(spec), "--dsn", db, "--format", "markdown"]) == 0
    assert "| public.events | ok |" in capsys.readouterr().out
    assert main(["partitions", "plan", str(spec), "--dsn", db]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_bad_partition_spec(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"table": "events", "key": "created_at", "interval": "fortnight"}))
    assert main(["partitions", "plan", str(spec), "--dsn", db]) == ExitCode.INPUT
    err = capsys.readouterr().err
    assert err.startswith("dbopt: error: spec file")
    assert "Traceback" not in err


def test_lint_formats_and_fail_on(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--dsn", db]) == 0  # warnings only; default --fail-on error
    out = capsys.readouterr().out
    assert "LINT001" in out  # posts.author_id has a foreign key and no index
    assert main(["lint", "--dsn", db, "--fail-on", "warning"]) == ExitCode.FINDINGS
    capsys.readouterr()
    assert main(["lint", "--dsn", db, "--format", "sarif", "--fail-on", "none"]) == 0
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["version"] == "2.1.0"
    assert any(r["ruleId"] == "LINT001" for r in sarif["runs"][0]["results"])
    assert main(["lint", "--dsn", db, "--format", "json", "--rule", "LINT001"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {f["code"] for f in data["findings"]} == {"LINT001"}


def test_health(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["health", "--dsn", db, "--format", "json", "--fail-on", "none"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert {c["code"] for c in report["checks"]} >= {"HEALTH001", "HEALTH003"}


def test_check_migrations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "0001_index.sql"
    bad.write_text("CREATE INDEX posts_body_idx ON posts (body);\n")
    good = tmp_path / "0002_index.sql"
    good.write_text(
        "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY posts_kind_idx ON posts (status);\n"
    )
    assert main(["check-migrations", str(bad)]) == ExitCode.FINDINGS
    assert "MIG001" in capsys.readouterr().out
    assert main(["check-migrations", str(good)]) == 0
    capsys.readouterr()
    assert main(["check-migrations", str(bad), "--format", "sarif", "--fail-on", "error"]) in (0, 1)
    sarif = json.loads(capsys.readouterr().out)
    results = sarif["runs"][0]["results"]
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(
        "0001_index.sql"
    )


def test_check_migrations_opt_in_rules_and_server_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mig = tmp_path / "0001_cluster.sql"
    mig.write_text("SET lock_timeout = '2s';\nCLUSTER posts USING posts_pkey;\n")
    main(["check-migrations", str(mig), "--format", "json"])
    default = {f["code"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert "MIG018" in default
    assert "MIG022" not in default
    assert "MIG023" not in default
    main(["check-migrations", str(mig), "--format", "json", "--pg-version", "19"])
    assert "MIG022" in {f["code"] for f in json.loads(capsys.readouterr().out)["findings"]}
    main(["check-migrations", str(mig), "--format", "json", "--enable", "MIG023"])
    assert "MIG023" in {f["code"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert main(["check-migrations", str(mig), "--enable", "no-such-rule"]) != 0


def test_diff_and_erd(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cli_models_mod.py").write_text(
        textwrap.dedent(
            """
            import sqlalchemy as sa

            metadata = sa.MetaData()
            authors = sa.Table(
                "authors", metadata,
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("name", sa.Text, nullable=False),
                sa.Column("email", sa.Text),
            )
            """
        )
    )
    code = main(
        [
            "diff",
            "cli_models_mod:metadata",
            "--path",
            str(tmp_path),
            "--dsn",
            db,
            "--format",
            "json",
            "--fail-on",
            "none",
        ]
    )
    assert code == 0
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert any("email" in f["object"] or "email" in f["message"] for f in findings)
    assert main(["erd", "--dsn", db]) == 0
    mermaid = capsys.readouterr().out
    assert "erDiagram" in mermaid
    assert "posts" in mermaid
    assert "authors" in mermaid
    assert (
        main(
            [
                "erd",
                "--models",
                "cli_models_mod:metadata",
                "--path",
                str(tmp_path),
                "--format",
                "dot",
            ]
        )
        == 0
    )
    assert "digraph" in capsys.readouterr().out
    assert main(["diff", "no_such_module:metadata", "--dsn", db]) == ExitCode.INPUT


def test_report_from_stats_and_database(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = dbopt.QueryStats()
    engine = create_engine(db)
    try:
        with dbopt.instrument(engine, stats), engine.connect() as conn:
            for author in (1, 2):
                conn.execute(text("SELECT count(*) FROM posts WHERE author_id = :a"), {"a": author})
    finally:
        engine.dispose()
    stats_file = tmp_path / "stats.json"
    stats_file.write_text(json.dumps(stats.to_dict()))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"table": "events", "key": "created_at", "interval": "month"}))
    assert main(["partitions", "apply", str(spec), "--dsn", db]) == 0
    data_file = tmp_path / "report.json"
    args = [
        "report",
        "--dsn",
        db,
        "--stats",
        str(stats_file),
        "--advise",
        "--lint",
        "--partitions",
        str(spec),
        "--format",
        "json",
        "-o",
        str(data_file),
    ]
    assert main(args) == 0
    data = json.loads(data_file.read_text())
    assert data["statements"][0]["calls"] == 2
    assert data["advisor"]["recommendations"]
    assert data["findings"]["Schema lint"]
    assert data["partitions"]["table"] == "public.events"
    html_file = tmp_path / "report.html"
    assert main(["report", "--from", str(data_file), "-o", str(html_file)]) == 0
    assert capsys.readouterr().out.strip().endswith("report.html")
    page = html_file.read_text()
    assert page.count("<svg") >= 2  # top statements, partition timeline
    assert "LINT001" in page
    assert main(["report", "-o", str(html_file)]) == ExitCode.INPUT


def test_partitions_convert_a_regular_table(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(libpq_url(db), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE payments (id bigserial PRIMARY KEY, paid_at timestamptz NOT NULL,"
            " amount int);"
            "INSERT INTO payments (paid_at, amount) SELECT now() - make_interval(days => n), n"
            " FROM generate_series(1, 300) AS n"
        )
    spec = tmp_path / "payments.json"
    spec.write_text(json.dumps({"table": "payments", "key": "paid_at", "interval": "month"}))
    assert main(["partitions", "convert", str(spec), "--dsn", db, "--batch-size", "100"]) == 0
    capsys.readouterr()
    with psycopg.connect(libpq_url(db)) as conn:
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'payments'").fetchone()
        rows = conn.execute("SELECT count(*) FROM payments").fetchone()
    assert kind == ("p",)
    assert rows == (300,)


def test_progress_draws_only_when_asked() -> None:
    import io

    from dbopt.cli._output import Progress

    quiet = io.StringIO()
    with Progress("working", total=10, stream=quiet) as progress:
        progress.update(5)
    assert quiet.getvalue() == ""  # not a terminal
    shown = io.StringIO()
    with Progress("working", total=10, stream=shown, enabled=True) as progress:
        progress.update(5, "half way")
    assert "half way [###############---------------]  50% 5/10" in shown.getvalue()


@pytest.mark.extensions("pg_stat_statements")
@pytest.mark.usefixtures("pgss_room")
def test_report_puts_the_apps_statements_beside_the_servers(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = dbopt.QueryStats()
    engine = create_engine(db)
    try:
        with dbopt.instrument(engine, stats), engine.connect() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            # the report reads this database's top statements by server time: forget
            # what the other tests ran here (the advisor's EXPLAINs) so ours is among them
            conn.exec_driver_sql(
                "SELECT pg_stat_statements_reset(0, oid, 0) FROM pg_database"
                " WHERE datname = current_database()"
            )
            conn.commit()
            for author in (1, 2, 3):
                conn.execute(
                    text("SELECT count(*) AS server_side FROM posts WHERE author_id = :a"),
                    {"a": author},
                )
    finally:
        engine.dispose()
    stats_file = tmp_path / "stats.json"
    stats_file.write_text(json.dumps(stats.to_dict()))
    base = ["report", "--dsn", db, "--stats", str(stats_file), "--server-stats"]
    data_file = tmp_path / "report.json"
    assert main([*base, "--format", "json", "-o", str(data_file)]) == 0
    joined = json.loads(data_file.read_text())["server_statements"]
    assert joined["available"]
    [row] = [r for r in joined["rows"] if "server_side" in r["text"]]
    assert row["matched"] == "fingerprint"
    assert row["app"]["calls"] == 3
    assert row["server"]["calls"] >= 3
    assert row["server"]["shared_blks_hit"] + row["server"]["shared_blks_read"] > 0
    assert any("test_cli_commands.py" in site for site in row["app"]["callsites"])
    html_file = tmp_path / "report.html"
    assert main([*base, "-o", str(html_file)]) == 0
    page = html_file.read_text()
    assert "The same statements on the server" in page
    assert "server_side" in page
    assert main(["report", "--dsn", db, "--server-stats", "-o", str(html_file)]) == ExitCode.INPUT
