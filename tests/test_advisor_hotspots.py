"""Ranking by measured time, and hot statements no index fixes (with their dominant node)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, text

import dbopt
from dbopt.advisor import IndexAdvisor, WorkloadStatement
from dbopt.advisor.hotspots import dominant_node
from dbopt.cli.advise import render_markdown
from dbopt.report.html_sections import advisor_section
from dbopt.testing import libpq_url, postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.extensions("hypopg")]

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE posts (id int PRIMARY KEY, author_id int NOT NULL, blog_id int NOT NULL,
                    score int NOT NULL, body text NOT NULL);
INSERT INTO posts SELECT n, 1 + (n * 7) % 2000, 1 + n % 300, n % 97, repeat('x', 40 + n % 200)
FROM generate_series(1, 200000) n;
ANALYZE;
"""

FEED = (
    "SELECT author_id, count(*), max(length(body)) FROM posts"
    " GROUP BY author_id ORDER BY 2 DESC LIMIT 20"
)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with postgres_url(prefix="dbopt_advisor_hot") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute(SCHEMA)
        yield u


def test_slowest_statement_no_index_fixes_is_flagged(url: str) -> None:
    engine = create_engine(url)
    stats = dbopt.QueryStats()
    handle = dbopt.instrument(engine, stats)
    try:
        with engine.connect() as conn:
            for author in range(20):
                conn.execute(
                    text("SELECT id, score FROM posts WHERE author_id = :a"), {"a": author}
                )
            for _ in range(6):
                conn.execute(text(FEED))
    finally:
        handle.close()
        engine.dispose()
    report = IndexAdvisor(url, findings=False).advise(stats)
    labels = [r.label for r in report.recommendations]
    assert labels[0].startswith("public.posts (author_id"), labels
    assert report.recommendations[0].time_saved_s is not None
    assert report.recommendations[0].time_saved_s > 0
    (hot,) = report.hotspots
    assert "GROUP BY author_id" in hot.sql
    assert hot.calls == 6
    assert hot.time_share > 0.1
    assert hot.best_cost >= 0.8 * hot.cost_before
    assert hot.callsites
    assert all("test_advisor_hotspots.py" in s for s in hot.callsites)
    # the plan that runs it, EXPLAINed here, names the same node
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(f"EXPLAIN (FORMAT JSON) {FEED}").fetchone()
    assert row is not None
    plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    found = dominant_node(plan)
    assert found is not None
    assert hot.dominant == found[0]
    assert hot.dominant in ("Seq Scan on posts", "Parallel Seq Scan on posts", "HashAggregate")
    result = next(s for s in report.statements if "GROUP BY author_id" in s.sql)
    assert result.status == "unchanged"
    assert result.reason is not None
    assert result.reason.startswith(f"hot, no index fixes it; dominated by {hot.dominant}")
    out = report.to_text()
    assert "hot statements no index fixes:" in out
    assert f"dominated by {hot.dominant}" in out
    assert "time saved" in out
    markdown = render_markdown(report)
    assert "## Hot statements no index fixes" in markdown
    assert f"dominated by {hot.dominant}" in markdown
    html = advisor_section(report.to_dict())
    assert "Hot statements no index fixes" in html
    assert f"<td>{hot.dominant}</td>" in html
    data = json.loads(json.dumps(report.to_dict()))
    assert data["hotspots"][0]["dominant"] == hot.dominant


def test_ranked_by_measured_time_not_cost(url: str) -> None:
    # by planner cost the blog lookup (50 calls) saves far more; by measured time the
    # score lookup does: the ranking follows the time
    workload = [
        WorkloadStatement("SELECT id FROM posts WHERE blog_id = 7", calls=50, total_time=0.5),
        WorkloadStatement("SELECT id FROM posts WHERE score = 3", calls=1, total_time=30.0),
    ]
    report = IndexAdvisor(url, findings=False).advise(workload)
    labels = [r.label for r in report.recommendations]
    assert labels == ["public.posts (score)", "public.posts (blog_id)"]
    first, second = report.recommendations
    assert first.saving < second.saving  # cost says the other order
    assert first.time_saved_s is not None
    assert second.time_saved_s is not None
    assert first.time_saved_s > second.time_saved_s
    assert report.hotspots == []  # the hot statement is fixed by an index

    untimed = IndexAdvisor(url, findings=False).advise(
        [WorkloadStatement(w.sql, calls=w.calls) for w in workload]
    )
    assert [r.label for r in untimed.recommendations] == labels[::-1]
    assert all(r.time_saved_s is None for r in untimed.recommendations)
    assert untimed.hotspots == []


@pytest.mark.extensions("pg_stat_statements")
def test_pg_stat_statements_times_rank_and_flag(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for author in range(20):
            conn.execute("SELECT id, score FROM posts WHERE author_id = %s", (author,))
        for _ in range(6):
            conn.execute(FEED)
    try:
        report = IndexAdvisor(url, findings=False).advise("pg_stat_statements")
        assert report.recommendations
        assert report.recommendations[0].label.startswith("public.posts (author_id")
        assert report.recommendations[0].time_saved_s is not None
        (hot,) = [h for h in report.hotspots if "GROUP BY author_id" in h.sql]
        assert hot.calls >= 6  # the server may have counted the calls of the other tests
        assert hot.total_time_s > 0
        assert hot.dominant is not None
        assert not any("author_id = $1" in h.sql for h in report.hotspots)
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("DROP EXTENSION pg_stat_statements")
