"""Write cost in the workload's window: a freshly bulk-loaded database still gets advice.

Each module loads 50,000 rows and does not reset the counters: the load stays
in pg_stat_user_tables, as on a database a new user just restored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, text

import dbopt
from dbopt.advisor import IndexAdvisor, WorkloadStatement
from dbopt.advisor.catalog import load_catalog
from dbopt.advisor.workload import Workload
from dbopt.advisor.writes import choose_window, counters
from dbopt.errors import ConfigurationError
from dbopt.testing import libpq_url, postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.extensions("hypopg")]

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE customers (id int PRIMARY KEY, email text, last_name text, city text);
CREATE TABLE rentals (id int PRIMARY KEY, customer_id int, rented_at timestamptz, amount numeric);
INSERT INTO customers
SELECT n, 'user' || n || '@example.com', 'name' || (n % 5000), 'city' || (n % 40)
FROM generate_series(1, 50000) n;
INSERT INTO rentals
SELECT n, 1 + n % 50000, timestamptz '2024-01-01' + n * interval '7 minutes', n % 13
FROM generate_series(1, 50000) n;
ANALYZE;
"""

WORKLOAD = [
    "SELECT * FROM customers WHERE email = 'user42@example.com'",
    "SELECT * FROM customers WHERE last_name = 'name7'",
    "SELECT * FROM rentals WHERE customer_id = 42 ORDER BY rented_at DESC",
    "SELECT count(*) FROM customers",
]


def _wait_counted(conn: psycopg.Connection[object], table: str, rows: int) -> None:
    """The loading session's inserts reach the statistics a moment after it ends."""
    for _ in range(200):
        row = conn.execute(
            "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = %s", (table,)
        ).fetchone()
        if row is not None and row[0] >= rows:
            return
        time.sleep(0.05)
    raise AssertionError(f"the load of {table} was never counted")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with postgres_url(prefix="dbopt_advisor_windows") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute(SCHEMA)
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            _wait_counted(conn, "customers", 50_000)
            _wait_counted(conn, "rentals", 50_000)
        yield u


def labels(report: object) -> list[str]:
    return sorted(r.label for r in report.recommendations)  # type: ignore[attr-defined]


def test_sql_list_after_a_bulk_load_gets_indexes_and_shows_the_writes(url: str) -> None:
    report = IndexAdvisor(url, findings=False).advise(WORKLOAD)
    assert labels(report) == [
        "public.customers (email)",
        "public.customers (last_name)",
        "public.rentals (customer_id)",
    ]
    assert all(r.write_cost == 0 for r in report.recommendations)
    assert report.writes["mode"] == "none"
    observed = "\n".join(report.writes["observed"])
    assert "public.customers: 50,000 inserted" in observed
    text_out = report.to_text()
    assert "write cost: a SQL workload has no time window" in text_out
    assert "public.rentals: 50,000 inserted" in text_out


def test_counters_window_vetoes_and_says_why(url: str) -> None:
    report = IndexAdvisor(url, findings=False, write_window="counters").advise(WORKLOAD)
    assert report.recommendations == []
    reasons = {r.label: r for r in report.rejected}
    email = reasons["public.customers (email)"]
    assert email.reason == "write_cost"
    assert email.write_cost == pytest.approx(50_000, rel=0.01)
    assert 0 < email.saving < email.write_cost
    assert "write cost 50,000 exceeds its saving" in email.message
    assert report.to_dict()["rejected"][0]["reason"] in {"write_cost", "covered", "unused"}
    text_out = report.to_text()
    assert "not recommended:" in text_out
    assert "public.customers (email): its write cost" in text_out
    # the statements are not silent either
    status = {s.sql: s for s in report.statements}
    assert "write cost" in (status[WORKLOAD[0]].reason or "")


def test_every_candidate_not_recommended_has_a_reason(url: str) -> None:
    report = IndexAdvisor(url, findings=False, max_indexes=1).advise(
        [
            WorkloadStatement(WORKLOAD[0], calls=100),
            WORKLOAD[1],
            "SELECT * FROM customers WHERE id = 5",
            "SELECT * FROM customers WHERE email = 'a' AND city = 'city3'",
        ]
    )
    assert labels(report) == ["public.customers (email)"]
    by_label = {r.label: r for r in report.rejected}
    assert by_label["public.customers (last_name)"].reason == "budget"
    assert "max_indexes (1)" in by_label["public.customers (last_name)"].message
    assert by_label["public.customers (id)"].reason == "covered"
    assert "customers_pkey" in by_label["public.customers (id)"].message
    assert all(r.message for r in report.rejected)
    data = report.to_dict()
    assert {r["reason"] for r in data["rejected"]} >= {"budget", "covered"}


def test_min_saving_reason(url: str) -> None:
    report = IndexAdvisor(url, findings=False, min_saving=1.0).advise([WORKLOAD[0]])
    assert report.recommendations == []
    [rej] = [r for r in report.rejected if r.label == "public.customers (email)"]
    assert rej.reason == "min_saving"
    assert "of the workload's cost, below min_saving 100.00%" in rej.message


def test_workload_window_charges_its_own_writes(url: str) -> None:
    report = IndexAdvisor(url, findings=False, write_window="workload").advise(
        [
            WORKLOAD[0],
            "UPDATE customers SET email = 'x' || email WHERE city = 'city3'",
        ]
    )
    charged = report.writes["charged"]["public.customers"]
    # about 50,000 / 40 rows estimated by the planner, HOT (no index on email yet)
    assert 800 < charged["updated"] < 1800
    assert charged["hot_updated"] == charged["updated"]
    assert charged["inserted"] == 0


def test_querystats_window_scales_the_counters(url: str) -> None:
    engine = create_engine(url)
    stats = dbopt.QueryStats()
    handle = dbopt.instrument(engine, stats)
    try:
        with engine.connect() as conn:
            for i in range(50):
                conn.execute(text("SELECT * FROM customers WHERE email = :e"), {"e": f"u{i}"})
            conn.execute(text("SELECT * FROM rentals WHERE amount = 99"))
    finally:
        handle.close()
        engine.dispose()
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")  # this database's counters start now
        conn.execute(
            "INSERT INTO rentals SELECT n, n, now(), 1 FROM generate_series(100001, 110000) n"
        )
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        _wait_counted(conn, "rentals", 10_000)
        time.sleep(1.0)
        age = conn.execute(
            "SELECT extract(epoch FROM now() - stats_reset) FROM pg_stat_database"
            " WHERE datname = current_database()"
        ).fetchone()
    assert age is not None
    stats.started_at = time.time() - float(age[0]) / 4  # recorded over a quarter of it
    report = IndexAdvisor(url, findings=False, write_window="auto").advise(stats)
    assert report.writes["mode"] == "scaled"
    assert 0.15 < report.writes["scale"] < 0.35
    rentals = report.writes["charged"]["public.rentals"]
    assert rentals["inserted"] == pytest.approx(10_000 * report.writes["scale"], rel=0.01)
    assert "QueryStats" in report.writes["reason"]
    assert labels(report) == ["public.customers (email)"]
    # a snapshot saved without its window is charged its own writes only
    data = stats.to_dict()
    del data["started_at"]
    restored = dbopt.QueryStats.from_dict(data)
    assert restored.started_at == 0.0
    old = IndexAdvisor(url, findings=False).advise(restored)
    assert old.writes["mode"] == "workload"


@pytest.mark.extensions("pg_stat_statements")
def test_pg_stat_statements_windows(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")
        catalog = load_catalog(conn)
        oid = catalog.lookup("public", "customers").oid  # type: ignore[union-attr]
        same = Workload(source="pg_stat_statements", since=catalog.stats_reset, window_s=5.0)
        window = choose_window("auto", catalog, same, {}, {oid})
        assert window.mode == "counters"
        assert window.writes(oid) == counters(catalog, oid)
        assert "reset together" in window.reason
        other = Workload(source="pg_stat_statements", since=None, window_s=None)
        window = choose_window("auto", catalog, other, {}, {oid})
        assert window.mode == "workload"
        assert "cover different periods" in window.reason
        with pytest.raises(ConfigurationError):
            choose_window("sometimes", catalog, other, {}, {oid})
    with pytest.raises(ConfigurationError):
        IndexAdvisor(url, write_window="sometimes")
