"""Index advisor workload sources: QueryStats, pg_stat_statements, SQL lists and files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

import dbopt
from dbopt.advisor import IndexAdvisor, PgStatStatements, Workload, WorkloadStatement
from dbopt.advisor.workload import load_workload, split_statements
from dbopt.errors import ConfigurationError
from dbopt.testing import libpq_url, postgres_url
from test_advisor_support import forget_load

pytestmark = [pytest.mark.postgres, pytest.mark.extensions("hypopg")]

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE orders (id int, customer_id int, status text, total numeric, created_at date);
INSERT INTO orders
SELECT n, n % 5000, CASE WHEN n % 10 = 0 THEN 'open' ELSE 'closed' END, n % 977,
       date '2024-01-01' + (n % 365)
FROM generate_series(1, 100000) n;
ANALYZE orders;
"""


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with postgres_url(prefix="dbopt_advisor_wl") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute(SCHEMA)
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            forget_load(conn)
        yield u


def test_driver_placeholders_become_dollar_params() -> None:
    named = WorkloadStatement(
        "SELECT * FROM t WHERE a = %(x)s AND b = %(y)s AND c = %(x)s AND d LIKE 'a%%'",
        {"x": 1, "y": "<str>"},
    )
    assert named.parse_text() == (
        "SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $1 AND d LIKE 'a%'",
        {1: 1},
    )
    assert named.explain_mode(2) == "params"
    positional = WorkloadStatement("SELECT * FROM t WHERE a = %s AND b = %s", (5, 6))
    assert positional.parse_text() == ("SELECT * FROM t WHERE a = $1 AND b = $2", {1: 5, 2: 6})
    redacted = WorkloadStatement("SELECT * FROM t WHERE a = %(x)s", {"x": "<int>"})
    assert redacted.explain_mode(1) == "generic"
    dropped = WorkloadStatement("SELECT * FROM t WHERE a = %(x)s", None)
    assert dropped.parse_text()[0] == "SELECT * FROM t WHERE a = $1"
    assert dropped.explain_mode(1) == "generic"
    dollar = WorkloadStatement("SELECT * FROM t WHERE a = $1", [7])
    assert dollar.explain_mode(1) == "prepared"
    assert dollar.parse_text() == ("SELECT * FROM t WHERE a = $1", {1: 7})
    plain = WorkloadStatement("SELECT * FROM t WHERE a LIKE '%x%'")
    assert plain.explain_mode(0) == "plain"
    assert plain.parse_text() == ("SELECT * FROM t WHERE a LIKE '%x%'", {})


def test_list_merges_by_fingerprint() -> None:
    wl = load_workload(
        [
            "SELECT * FROM orders WHERE id = 1",
            "select * from orders where id = 2;",
            WorkloadStatement("SELECT * FROM orders WHERE id = 3", calls=5, callsites=("a:1",)),
        ]
    )
    assert len(wl) == 1
    (stmt,) = wl.statements
    assert stmt.calls == 7
    assert stmt.callsites == ("a:1",)


def test_bad_workload_types() -> None:
    with pytest.raises(ConfigurationError):
        load_workload(42)
    with pytest.raises(ConfigurationError):
        load_workload([1, 2])
    with pytest.raises(ConfigurationError):
        load_workload(Path("/nonexistent/workload.sql"))


@pytest.mark.postgres
def test_sql_file(url: str, tmp_path: Path) -> None:
    path = tmp_path / "workload.sql"
    path.write_text(
        "-- the report page\n"
        "SELECT * FROM orders WHERE customer_id = 42;\n"
        "SELECT ';' AS x FROM orders WHERE id = 7;\n"
        "/* nothing to index */ SELECT count(*) FROM orders;\n"
    )
    for source in (path, str(path)):
        report = IndexAdvisor(url, findings=False).advise(source)
        assert sorted(r.label for r in report.recommendations) == [
            "public.orders (customer_id)",
            "public.orders (id)",
        ]
        assert len(report.statements) == 3


@pytest.mark.postgres
def test_query_stats_source(url: str) -> None:
    engine = create_engine(url)
    stats = dbopt.QueryStats()
    handle = dbopt.instrument(engine, stats)
    try:
        with engine.connect() as conn:
            for customer in range(30):
                conn.execute(
                    text("SELECT * FROM orders WHERE customer_id = :c AND status = :s"),
                    {"c": customer, "s": "open"},
                )
            conn.execute(text("SELECT * FROM orders WHERE id = :id"), {"id": 5})
    finally:
        handle.close()
        engine.dispose()
    report = IndexAdvisor(url, findings=False).advise(stats)
    assert report.method == "hypopg"
    labels = [r.label for r in report.recommendations]
    # 30 calls with the real status value: narrowing by status pays too.
    assert labels[0] == "public.orders (customer_id, status)"
    assert "public.orders (id)" in labels
    top = report.recommendations[0]
    (impact,) = top.statements
    assert impact.calls == 30
    assert impact.callsites
    assert all("test_advisor_workload.py" in s for s in impact.callsites)
    assert "%(c)s" in impact.sql
    assert top.saving_share > 0.9  # 30 calls against one


@pytest.mark.postgres
def test_query_stats_round_trip_through_json(url: str) -> None:
    stats = dbopt.QueryStats()
    engine = create_engine(url)
    dbopt.instrument(engine, stats)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT * FROM orders WHERE created_at = :d"), {"d": "2024-03-01"})
    finally:
        engine.dispose()
    restored = dbopt.QueryStats.from_dict(stats.to_dict())
    report = IndexAdvisor(url, findings=False).advise(restored)
    assert [r.label for r in report.recommendations] == ["public.orders (created_at)"]


@pytest.mark.postgres
@pytest.mark.extensions("pg_stat_statements")
def test_pg_stat_statements_source(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for i in range(20):
            conn.execute("SELECT * FROM orders WHERE customer_id = %s", (i,))
        for i in range(3):
            conn.execute("SELECT * FROM orders WHERE total = %s ORDER BY id LIMIT 5", (i,))
    try:
        report = IndexAdvisor(url, findings=False).advise("pg_stat_statements")
        by_sql = {s.sql: s for s in report.statements}
        stmt = by_sql["SELECT * FROM orders WHERE customer_id = $1"]
        assert stmt.calls == 20
        assert stmt.status == "improved"
        labels = [r.label for r in report.recommendations]
        assert any(label.startswith("public.orders (customer_id") for label in labels)
        limited = IndexAdvisor(url, findings=False).advise(PgStatStatements(limit=1))
        assert len(limited.statements) == 1
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("DROP EXTENSION pg_stat_statements")


@pytest.mark.postgres
def test_pg_stat_statements_missing_is_an_error_entry(url: str) -> None:
    report = IndexAdvisor(url, findings=False).advise("pg_stat_statements")
    assert report.recommendations == []
    assert "pg_stat_statements is not installed" in report.errors[0].message


@pytest.mark.postgres
def test_empty_workload(url: str) -> None:
    report = IndexAdvisor(url, findings=False).advise(Workload())
    assert report.recommendations == []
    assert report.statements == []
    assert report.total_cost_before == 0


def test_percent_inside_literals_is_not_a_placeholder() -> None:
    plain = WorkloadStatement("SELECT * FROM o WHERE c NOT LIKE '%special%requests%'")
    assert plain.parse_text() == (plain.sql, {})
    assert plain.explain_mode(0) == "plain"
    quoted = WorkloadStatement('SELECT "%s" FROM o /* %s */ WHERE a = $$%s$$ -- %s\n')
    assert quoted.parse_text()[0] == quoted.sql
    driver = WorkloadStatement("SELECT * FROM o WHERE a = %s AND c LIKE 'x%%'", (3,))
    assert driver.parse_text() == ("SELECT * FROM o WHERE a = $1 AND c LIKE 'x%'", {1: 3})


def test_split_keeps_lines_and_literals() -> None:
    text = "-- head\nSELECT ';';\n\n/* a; b */ SELECT $q$;$q$\n;SELECT E'\\';' ;\n-- tail;\n"
    assert split_statements(text) == [
        (2, "-- head\nSELECT ';'"),
        (4, "/* a; b */ SELECT $q$;$q$"),
        (5, "SELECT E'\\';'"),
    ]


@pytest.mark.postgres
def test_multi_statement_item_with_a_view(url: str) -> None:
    q15 = (
        "CREATE VIEW revenue0 (cust, revenue) AS SELECT customer_id, sum(total) FROM orders "
        "WHERE created_at >= date '2024-03-01' AND created_at < date '2024-03-08' "
        "GROUP BY customer_id; "
        "SELECT cust, revenue FROM revenue0 "
        "WHERE revenue = (SELECT max(revenue) FROM revenue0) ORDER BY cust; "
        "DROP VIEW revenue0;"
    )
    report = IndexAdvisor(url, findings=False).advise([q15])
    assert report.errors == []
    assert [r.label for r in report.recommendations] == ["public.orders (created_at)"]
    [stmt] = report.statements
    assert stmt.sql.startswith("WITH revenue0(cust, revenue) AS NOT MATERIALIZED (SELECT")
    assert stmt.status == "improved"
    assert any("revenue0 created by the workload" in n for n in report.notes)
    with psycopg.connect(libpq_url(url)) as conn:  # nothing was created
        assert conn.execute("SELECT to_regclass('revenue0')").fetchone() == (None,)


@pytest.mark.postgres
def test_tpch_q13_literal_is_priced_as_written(url: str) -> None:
    sql = "SELECT count(*) FROM orders WHERE status NOT LIKE '%special%requests%' AND id = 3"
    report = IndexAdvisor(url, findings=False).advise([sql])
    assert report.errors == []
    assert [r.label for r in report.recommendations] == ["public.orders (id)"]


BAD_FILE = """\
SELECT * FROM orders WHERE customer_id = 42;
SELEC oops FROM orders;

SELECT * FROM no_such_table WHERE id = 1;
SELECT * FROM orders
 WHERE id = 7;
"""


@pytest.mark.postgres
def test_file_with_bad_statements_reports_each_with_its_line(url: str, tmp_path: Path) -> None:
    path = tmp_path / "workload.sql"
    path.write_text(BAD_FILE)
    report = IndexAdvisor(url, findings=False).advise(path)
    assert sorted(r.label for r in report.recommendations) == [
        "public.orders (customer_id)",
        "public.orders (id)",
    ]
    errors = {e.line: e.message for e in report.errors}
    assert sorted(errors) == [2, 4]
    assert errors[2].startswith("cannot parse")
    assert 'relation "no_such_table" does not exist' in errors[4]
    assert report.to_dict()["errors"][0]["line"] == 2
    assert "line 4: SELECT * FROM no_such_table" in report.to_text()


@pytest.mark.postgres
def test_cli_fail_on_error_and_report_advise_sql(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dbopt.cli import ExitCode, main

    path = tmp_path / "workload.sql"
    path.write_text(BAD_FILE)
    assert main(["advise", str(path), "--dsn", url]) == ExitCode.OK
    out = capsys.readouterr()
    assert "line 2: SELEC oops FROM orders" in out.err
    assert main(["advise", str(path), "--dsn", url, "--fail-on-error"]) == ExitCode.INPUT
    good = tmp_path / "good.sql"
    good.write_text("SELECT * FROM orders WHERE customer_id = 42;\n")
    assert main(["advise", str(good), "--dsn", url, "--fail-on-error"]) == ExitCode.OK
    target = tmp_path / "report.json"
    code = main(
        ["report", "--dsn", url, "--advise", str(good), "--format", "json", "-o", str(target)]
    )
    assert code == ExitCode.OK
    data = json.loads(target.read_text())
    labels = [r["schema"] + "." + r["table"] for r in data["advisor"]["recommendations"]]
    assert labels == ["public.orders"]
    assert data["advisor"]["writes"]["mode"] == "none"
