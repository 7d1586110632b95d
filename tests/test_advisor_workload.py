"""Index advisor workload sources: QueryStats, pg_stat_statements, SQL lists and files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

import dbopt
from dbopt.advisor import IndexAdvisor, PgStatStatements, Workload, WorkloadStatement
from dbopt.advisor.workload import load_workload
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
