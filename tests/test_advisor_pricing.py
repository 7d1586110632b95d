"""The selection's cached and derived plan costs match a fresh EXPLAIN of the chosen set."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest

from dbopt.advisor import IndexAdvisor
from dbopt.testing import libpq_url, postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.extensions("hypopg")]

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE customers (id int NOT NULL, region int NOT NULL, segment text NOT NULL,
                        name text NOT NULL);
CREATE TABLE orders (id int NOT NULL, customer_id int NOT NULL, placed date NOT NULL,
                     status text NOT NULL, total numeric NOT NULL);
CREATE TABLE items (order_id int NOT NULL, product int NOT NULL, qty int NOT NULL,
                    price numeric NOT NULL, shipped date NOT NULL);
INSERT INTO customers SELECT n, n % 25, 'seg' || n % 5, 'c' || n FROM generate_series(1, 20000) n;
INSERT INTO orders SELECT n, 1 + (n * 7) % 20000, date '2020-01-01' + n % 1500,
       CASE WHEN n % 10 = 0 THEN 'open' ELSE 'done' END, n % 1000
FROM generate_series(1, 150000) n;
INSERT INTO items SELECT 1 + n % 150000, n % 5000, 1 + n % 50, n % 300,
       date '2020-01-01' + (n * 13) % 1500
FROM generate_series(1, 400000) n;
ANALYZE;
"""

# statements sharing tables, so a pick on one table changes several plans
WORKLOAD = [
    "SELECT * FROM orders WHERE customer_id = 42",
    "SELECT o.id, sum(i.price) FROM orders o JOIN items i ON i.order_id = o.id"
    " WHERE o.placed BETWEEN '2021-01-01' AND '2021-01-10' GROUP BY o.id",
    "SELECT c.name, o.total FROM customers c JOIN orders o ON o.customer_id = c.id"
    " WHERE c.region = 3 AND o.status = 'open'",
    "SELECT sum(qty) FROM items WHERE product = 17",
    "SELECT i.product, count(*) FROM items i JOIN orders o ON o.id = i.order_id"
    " WHERE i.shipped >= '2023-06-01' AND o.customer_id = 99 GROUP BY i.product",
    "SELECT id FROM customers WHERE segment = 'seg1' ORDER BY name LIMIT 10",
]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with postgres_url(prefix="dbopt_advisor_pricing") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute(SCHEMA)
            conn.execute("VACUUM")  # all-visible pages: index-only scans are in play
        yield u


def _plain(ddl: str) -> str:
    ddl = ddl.replace("CONCURRENTLY ", "").replace("IF NOT EXISTS ", "")
    return re.sub(r'^CREATE INDEX "[^"]+" ON', "CREATE INDEX ON", ddl)


@pytest.mark.parametrize("budget", [None, 6 * 1024 * 1024])
def test_costs_after_match_a_fresh_explain(url: str, budget: int | None) -> None:
    report = IndexAdvisor(
        url, findings=False, min_saving=0.0, max_total_bytes=budget, max_indexes=None
    ).advise(WORKLOAD)
    assert not report.errors
    assert report.recommendations
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("SELECT hypopg_reset()")
        for rec in report.recommendations:
            conn.execute("SELECT * FROM hypopg_create_index(%s)", (_plain(rec.ddl[0]),))
        checked = 0
        for result in report.statements:
            if result.cost_after is None:
                continue
            row = conn.execute(f"EXPLAIN (FORMAT JSON) {result.sql}").fetchone()
            assert row is not None
            fresh = float(row[0][0]["Plan"]["Total Cost"])
            assert result.cost_after == pytest.approx(fresh, rel=0.01), result.sql
            checked += 1
        conn.execute("SELECT hypopg_reset()")
    assert checked == len(WORKLOAD)
