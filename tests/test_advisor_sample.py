"""Without hypopg: large tables are priced on a sampled copy, close to full builds."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from dbopt.advisor import AdvisorReport, IndexAdvisor, WorkloadStatement
from dbopt.testing import libpq_url, postgres_url

pytestmark = pytest.mark.postgres

SCHEMA = """
CREATE TABLE accounts (id int PRIMARY KEY, country text, tier int);
INSERT INTO accounts SELECT n, 'c' || (n % 40), n % 5 FROM generate_series(1, 4000) n;
CREATE TABLE orders (id int PRIMARY KEY, account_id int, status text, total numeric,
                     placed date);
INSERT INTO orders
  SELECT n, 1 + (n::bigint * 7919) % 4000, (ARRAY['new','paid','shipped','void'])[1 + n % 4],
         (n % 997) / 10.0, date '2024-01-01' + (n % 700)
  FROM generate_series(1, 300000) n;
CREATE TABLE visits (id int, account_id int, at date, page text) PARTITION BY RANGE (at);
CREATE TABLE visits_2024 PARTITION OF visits FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE visits_2025 PARTITION OF visits FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX ON visits (at);
INSERT INTO visits SELECT n, 1 + n % 4000, date '2024-01-01' + (n % 730), 'p' || (n % 300)
  FROM generate_series(1, 200000) n;
"""

WORKLOAD = [
    WorkloadStatement("SELECT * FROM orders WHERE account_id = %(a)s", {"a": 17}, calls=50),
    WorkloadStatement(
        "SELECT * FROM orders WHERE account_id = %(a)s ORDER BY placed DESC LIMIT 10",
        {"a": 17},
        calls=20,
    ),
    WorkloadStatement(
        "SELECT sum(total) FROM orders WHERE placed BETWEEN %(a)s AND %(b)s",
        {"a": "2024-03-01", "b": "2024-03-07"},
        calls=10,
    ),
    WorkloadStatement(
        "SELECT a.country, count(*) FROM orders o JOIN accounts a ON a.id = o.account_id"
        " WHERE a.tier = 3 AND o.status = 'void' GROUP BY a.country",
        calls=2,
    ),
    WorkloadStatement(
        "SELECT count(*) FROM visits WHERE account_id = %(a)s AND at >= %(d)s",
        {"a": 99, "d": "2025-06-01"},
        calls=30,
    ),
]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A database without hypopg, its tables freshly loaded."""
    with postgres_url(prefix="dbopt_advisor_sample") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute(SCHEMA)
            conn.execute("VACUUM ANALYZE")
        yield u


def advise(
    url: str, sample_rows: int | None, workload: list[object] | None = None
) -> AdvisorReport:
    return IndexAdvisor(
        url, findings=False, real_indexes=True, real_index_sample_rows=sample_rows
    ).advise(workload or WORKLOAD)


def leading(report: AdvisorReport) -> set[tuple[str, str]]:
    """Each recommendation as (table, first key column)."""
    return {(r.table, r.columns[0]) for r in report.recommendations}


def costs(report: AdvisorReport) -> dict[str, float]:
    return {i.sql: i.cost_after for r in report.recommendations for i in r.statements}


def test_sampled_estimate_is_close_to_the_full_build(url: str) -> None:
    full = advise(url, None)
    # orders (300,000 rows) priced on a third of its rows, visits (200,000) on half
    sampled = advise(url, 100_000)
    assert full.method == sampled.method == "real"
    assert not full.errors
    assert not sampled.errors
    labels = {r.label for r in full.recommendations}
    assert {"public.orders (account_id, placed)", "public.visits (account_id, at)"} <= labels
    # the same indexes, but for one near-tie: the join's small accounts index may
    # come as (tier, country) or as the covering (tier, country, id) depending on
    # the random sample of orders it is priced against; so compare by table and
    # leading column, and allow one recommendation more or less
    assert len(leading(full) ^ leading(sampled)) <= 1
    assert sampled.total_cost_before == pytest.approx(full.total_cost_before)
    # the whole workload with the recommended indexes: within 15 % (measured: 8 %)
    assert sampled.total_cost_after == pytest.approx(full.total_cost_after, rel=0.15)
    before = {i.sql: i.cost_before for r in full.recommendations for i in r.statements}
    after_full, after_sampled = costs(full), costs(sampled)
    for sql, cost in after_full.items():
        # each statement's cost with its index, within 10 % of its cost without. The
        # farthest: the join with accounts (6 %: 1,378 against 1,059 of 5,441), and
        # ORDER BY ... LIMIT 10 per account (1.4 %: on a sample each account has a
        # third of its rows, so the sort the index saves is smaller)
        assert after_sampled[sql] == pytest.approx(cost, abs=0.1 * before[sql]), sql
    # sizes are the sample's scaled up, within half of the real build
    real = {r.label: r.size_bytes for r in full.recommendations}
    for r in sampled.recommendations:
        if r.label in real:
            assert r.size_bytes == pytest.approx(real[r.label], rel=0.5), r.label


def test_sampling_leaves_nothing_behind_and_falls_back_when_qualified(url: str) -> None:
    with psycopg.connect(libpq_url(url)) as conn:
        before = conn.execute("SELECT count(*) FROM pg_class").fetchone()
    qualified = [
        WorkloadStatement("SELECT * FROM public.orders WHERE account_id = %(a)s", {"a": 5}, calls=5)
    ]
    report = advise(url, 100_000, qualified)  # a qualified name cannot reach the copy: real build
    assert [r.label for r in report.recommendations] == ["public.orders (account_id)"]
    impact = report.recommendations[0].statements[0]
    assert impact.cost_after < impact.cost_before / 10
    with psycopg.connect(libpq_url(url)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_class").fetchone() == before


def test_a_large_table_reached_by_a_qualified_name_is_not_built(url: str) -> None:
    # over real_index_max_table_bytes the table is only ever indexed on its sample; a
    # statement that cannot reach the sample is priced without its candidates
    qualified = [
        WorkloadStatement("SELECT * FROM public.orders WHERE account_id = %(a)s", {"a": 5}, calls=5)
    ]
    report = IndexAdvisor(
        url,
        findings=False,
        real_indexes=True,
        real_index_sample_rows=100_000,
        real_index_max_table_bytes=1024 * 1024,
    ).advise(qualified)
    assert report.recommendations == []
    assert not report.errors
    plain = [WorkloadStatement("SELECT * FROM orders WHERE account_id = %(a)s", {"a": 5}, calls=5)]
    sampled = IndexAdvisor(
        url,
        findings=False,
        real_indexes=True,
        real_index_sample_rows=100_000,
        real_index_max_table_bytes=1024 * 1024,
    ).advise(plain)
    assert [r.label for r in sampled.recommendations] == ["public.orders (account_id)"]
