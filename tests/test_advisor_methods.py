"""Index advisor pricing (hypopg, heuristics, rolled-back real indexes), read-only, verify."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from dbopt.advisor import IndexAdvisor, WorkloadStatement
from dbopt.testing import libpq_url, postgres_url
from test_advisor_support import forget_load

pytestmark = pytest.mark.postgres

SCHEMA = """
CREATE TABLE posts (id int, blog_id int, user_id int, body text);
INSERT INTO posts SELECT n, n % 1000, n % 10, md5(n::text) FROM generate_series(1, 100000) n;
CREATE TABLE events (id int, kind text, at date) PARTITION BY RANGE (at);
CREATE TABLE events_a PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2024-07-01');
CREATE TABLE events_b PARTITION OF events FOR VALUES FROM ('2024-07-01') TO ('2025-01-01');
INSERT INTO events SELECT n, 'k' || (n % 500), date '2024-01-01' + (n % 360)
  FROM generate_series(1, 60000) n;
ANALYZE;
"""

WORKLOAD = [
    "SELECT * FROM posts WHERE id = 1",
    "SELECT * FROM posts WHERE user_id = 1 AND blog_id = 2",
    WorkloadStatement("SELECT * FROM posts WHERE blog_id = %(b)s", {"b": 7}, calls=10),
    "SELECT * FROM events WHERE kind = 'k7'",
    "UPDATE posts SET body = 'x' WHERE id = 5",
]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A database without hypopg."""
    with postgres_url(prefix="dbopt_advisor_methods") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute(SCHEMA)
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            forget_load(conn)
        yield u


def catalog(url: str) -> Any:
    """Everything an advise() must leave untouched."""
    with psycopg.connect(libpq_url(url)) as conn:
        return (
            conn.execute(
                "SELECT c.oid, c.relname, c.relkind, c.relpages, i.indisvalid FROM pg_class c "
                "LEFT JOIN pg_index i ON i.indexrelid = c.oid ORDER BY c.oid"
            ).fetchall(),
            conn.execute("SELECT extname, extversion FROM pg_extension ORDER BY 1").fetchall(),
            conn.execute("SELECT count(*), sum(stanullfrac) FROM pg_statistic").fetchall(),
            conn.execute("SELECT count(*), sum(hashtext(body)) FROM posts").fetchall(),
        )


def labels(report: Any) -> list[str]:
    return sorted(r.label for r in report.recommendations)


# blog_id is the column most calls filter on, so it leads the index both statements share.
EXPECTED = ["public.events (kind)", "public.posts (blog_id, user_id)", "public.posts (id)"]


def test_heuristics_without_hypopg(url: str) -> None:
    before = catalog(url)
    report = IndexAdvisor(url, findings=False).advise(WORKLOAD)
    assert report.method == "heuristic"
    assert "hypopg not installed; using heuristics" in report.notes
    got = labels(report)
    assert "public.posts (id)" in got
    assert "public.events (kind)" in got
    assert any(g.startswith("public.posts (blog_id") or "blog_id" in g for g in got)
    assert all(r.evaluated_by == "heuristic" for r in report.recommendations)
    assert report.total_cost_after < report.total_cost_before / 5
    assert catalog(url) == before


def test_real_indexes_in_a_rolled_back_transaction(url: str) -> None:
    before = catalog(url)
    report = IndexAdvisor(url, findings=False, real_indexes=True).advise(WORKLOAD)
    assert report.method == "real"
    assert labels(report) == EXPECTED
    assert all(r.size_bytes > 100_000 for r in report.recommendations)
    assert catalog(url) == before


def test_real_indexes_respect_the_table_size_guard(url: str) -> None:
    report = IndexAdvisor(
        url, findings=False, real_indexes=True, real_index_max_table_bytes=1024
    ).advise(WORKLOAD)
    assert report.recommendations == []
    assert any("larger than real_index_max_table_bytes" in n for n in report.notes)


@pytest.mark.extensions("hypopg")
def test_install_hypopg_only_when_told(url: str) -> None:
    try:
        report = IndexAdvisor(url, findings=False, install_hypopg=True).advise(WORKLOAD)
        assert report.method == "hypopg"
        assert any("installed the hypopg extension" in n for n in report.notes)
        assert labels(report) == EXPECTED
        before = catalog(url)
        again = IndexAdvisor(url, findings=False).advise(WORKLOAD)
        assert again.method == "hypopg"
        assert not any("installed" in n for n in again.notes)
        assert catalog(url) == before
        forced = IndexAdvisor(url, findings=False, use_hypopg=False).advise(WORKLOAD)
        assert forced.method == "heuristic"
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("DROP EXTENSION IF EXISTS hypopg")


def test_verify_measures_and_leaves_nothing_behind(url: str) -> None:
    before = catalog(url)
    report = IndexAdvisor(url, findings=False, real_indexes=True, verify_repeat=2).advise(
        WORKLOAD, verify=True
    )
    assert catalog(url) == before
    assert report.measurements is not None
    measured = {m.sql: m for m in report.measurements}
    assert set(measured) == {str(s) if isinstance(s, str) else s.sql for s in WORKLOAD}
    point = measured["SELECT * FROM posts WHERE id = 1"]
    assert point.after_ms < point.before_ms / 3
    assert report.measured_after_ms is not None
    assert report.measured_before_ms is not None
    assert report.measured_after_ms < report.measured_before_ms / 3
    assert "measured (EXPLAIN ANALYZE)" in report.to_text()


def test_verify_skips_statements_without_values(url: str) -> None:
    report = IndexAdvisor(url, findings=False, real_indexes=True, verify_repeat=1).advise(
        ["SELECT * FROM posts WHERE id = $1", "SELECT * FROM posts WHERE user_id = 3 AND id = 9"],
        verify=True,
    )
    assert report.measurements is not None
    assert [m.sql for m in report.measurements] == [
        "SELECT * FROM posts WHERE user_id = 3 AND id = 9"
    ]
    assert any("without parameter values were not measured" in n for n in report.notes)


def test_hot_updates_prevented_are_charged(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE hot (id int, status text, kind int, pad text) WITH (fillfactor = 50)"
        )
        conn.execute(
            "INSERT INTO hot SELECT n, 's' || n % 1000, n % 100, repeat('x', 50) "
            "FROM generate_series(1, 50000) n"
        )
        conn.execute("ANALYZE hot")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for _ in range(200):  # wait for the load to be counted, then forget it
            row = conn.execute(
                "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'hot'"
            ).fetchone()
            if row is not None and row[0] > 0:
                break
            time.sleep(0.05)
        conn.execute("SELECT pg_stat_reset_single_table_counters('hot'::regclass)")
        conn.execute("UPDATE hot SET status = 't' || id % 1000 WHERE id % 5 = 0")
    with psycopg.connect(libpq_url(url)) as conn:
        for _ in range(200):  # the update reaches the statistics when its session ends
            hot = conn.execute(
                "SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'hot'"
            ).fetchone()
            conn.rollback()
            if hot is not None and hot[0] > 0:
                break
            time.sleep(0.05)
    assert hot is not None
    assert hot[0] > 5000
    report = IndexAdvisor(url, findings=False, write_window="counters").advise(
        [
            # as frequent as the reads: min_saving is a share of the whole workload's cost
            WorkloadStatement(
                "UPDATE hot SET status = %(s)s WHERE id = %(i)s", {"s": "a", "i": 3}, calls=1000
            ),
            WorkloadStatement("SELECT * FROM hot WHERE status = 's7'", calls=1000),
            WorkloadStatement("SELECT * FROM hot WHERE kind = 7", calls=1000),
        ]
    )
    costs = {r.label: r.write_cost for r in report.recommendations}
    assert costs["public.hot (kind)"] == pytest.approx(0.0)
    assert costs["public.hot (status)"] >= hot[0]  # each HOT update it breaks now costs a write
    assert costs["public.hot (id)"] == pytest.approx(0.0)  # id is never updated


def test_real_index_unusable_inside_its_transaction_is_reported(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CREATE TABLE chains (id int, v int, w int) WITH (fillfactor = 50)")
        conn.execute("INSERT INTO chains SELECT n, n, n % 100 FROM generate_series(1, 20000) n")
        conn.execute("ANALYZE chains")
    with (
        psycopg.connect(libpq_url(url)) as old,  # an old snapshot keeps the HOT chains alive
        psycopg.connect(libpq_url(url), autocommit=True) as conn,
    ):
        old.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        old.execute("SELECT 1").fetchone()
        conn.execute("UPDATE chains SET w = w + 1 WHERE id % 2 = 0")  # HOT: w has no index
        report = IndexAdvisor(url, findings=False, real_indexes=True, write_scale=0).advise(
            ["SELECT * FROM chains WHERE w = 7"]
        )
        old.rollback()
    assert report.recommendations == []
    assert any("HOT update chains" in n for n in report.notes)


def test_bad_options() -> None:
    from dbopt.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        IndexAdvisor("postgresql://localhost/x", min_saving=1.5)
    with pytest.raises(ConfigurationError):
        IndexAdvisor("postgresql://localhost/x", max_columns=0)
    with pytest.raises(ConfigurationError):
        IndexAdvisor("sqlite://")
    with pytest.raises(ConfigurationError):
        IndexAdvisor(42)  # type: ignore[arg-type]


def test_no_two_recommendations_where_one_covers_the_other() -> None:
    """The demo's case: (course_id) next to (course_id, created_at) keeps only the wider."""
    from dbopt.advisor.model import IndexSpec, KeyElem
    from dbopt.advisor.select import drop_covered

    def spec(*cols: str, predicate: str | None = None) -> IndexSpec:
        keys = tuple(KeyElem(c, (c,)) for c in cols)
        return IndexSpec(1, "btree", keys, predicate=predicate)

    specs = {
        0: spec("course_id"),
        1: spec("course_id", "created_at"),
        2: spec("session_id"),
        3: spec("course_id", predicate="is_processed IS FALSE"),
        4: spec("course_id", "created_at"),  # the same index twice is not "covered"
    }
    assert drop_covered(specs, [0, 1, 2, 3]) == [1, 2, 3]
    assert drop_covered(specs, [1, 0]) == [1]  # order does not matter
    assert drop_covered(specs, [2, 3]) == [2, 3]  # a partial one is not covered by a full one
    assert drop_covered(specs, [1, 4]) == [1, 4]
