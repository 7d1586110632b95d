"""Index advisor on Dexter's published test schema and expectations.

Schema of ankane/dexter's test suite: ``posts`` with 100,000 rows, ``blogs``,
a view, a materialized view, a quoted mixed-case schema and table, a
foreign table, plus a hash-partitioned table. Priced with hypopg.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from dbopt.advisor import AdvisorReport, IndexAdvisor, WorkloadStatement
from dbopt.testing import libpq_url, postgres_url
from test_advisor_support import wait_for_load

pytestmark = [pytest.mark.postgres, pytest.mark.extensions("hypopg", "postgres_fdw")]

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE posts (id int, blog_id int, user_id int, json json, jsonb jsonb, point point,
                    indexed int);
INSERT INTO posts (id, blog_id, user_id, indexed)
  SELECT n, n % 1000, n % 10, n FROM generate_series(1, 100000) n;
CREATE INDEX ON posts (indexed);
CREATE TABLE blogs (id int PRIMARY KEY);
INSERT INTO blogs SELECT generate_series(1, 1000);
CREATE VIEW posts_view AS SELECT id AS view_id FROM posts;
CREATE MATERIALIZED VIEW posts_materialized AS SELECT * FROM posts;
CREATE SCHEMA "Bar";
CREATE TABLE "Bar"."Foo" ("Id" int);
INSERT INTO "Bar"."Foo" SELECT generate_series(1, 100000);
CREATE TABLE hash_posts (id int, user_id int) PARTITION BY HASH (id);
CREATE TABLE hash_posts_0 PARTITION OF hash_posts FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE hash_posts_1 PARTITION OF hash_posts FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE hash_posts_2 PARTITION OF hash_posts FOR VALUES WITH (MODULUS 3, REMAINDER 2);
INSERT INTO hash_posts SELECT n, n % 1000 FROM generate_series(1, 100000) n;
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE SERVER other FOREIGN DATA WRAPPER postgres_fdw;
CREATE FOREIGN TABLE comments (post_id int) SERVER other;
CREATE TABLE busy (id int, v int);
INSERT INTO busy SELECT n, n FROM generate_series(1, 100000) n;
ANALYZE;
"""


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with postgres_url(prefix="dbopt_advisor_dexter") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute(SCHEMA)
        # Freshly loaded, as a new user has it: the load's inserts stay in
        # pg_stat_user_tables (counters flush when the loading session ends), and
        # the cases pass with default settings anyway.
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            wait_for_load(conn)
        yield u


def advise(url: str, *statements: str | WorkloadStatement, **options: object) -> AdvisorReport:
    options.setdefault("findings", False)
    return IndexAdvisor(url, **options).advise(list(statements))  # type: ignore[arg-type]


def labels(report: AdvisorReport) -> list[str]:
    return [r.label for r in report.recommendations]


def test_the_load_is_still_counted(url: str) -> None:
    # the cases below run on a freshly loaded database: nothing was reset
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        rows = dict(
            conn.execute(
                "SELECT relname, n_tup_ins FROM pg_stat_user_tables"
                " WHERE relname IN ('posts', 'blogs', 'Foo')"
            ).fetchall()
        )
    assert rows == {"posts": 100_000, "blogs": 1000, "Foo": 100_000}


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM posts WHERE id = 1", "public.posts (id)"),
        (
            "SELECT * FROM posts WHERE user_id = 1 AND blog_id = 2",
            "public.posts (user_id, blog_id)",
        ),
        (
            "SELECT * FROM posts WHERE user_id = 1 ORDER BY blog_id LIMIT 1000",
            "public.posts (user_id, blog_id)",
        ),
        ("SELECT * FROM posts ORDER BY user_id DESC LIMIT 10", "public.posts (user_id)"),
        ("SELECT user_id FROM posts ORDER BY 1 DESC LIMIT 10", "public.posts (user_id)"),
        ("SELECT user_id AS u FROM posts ORDER BY u DESC LIMIT 10", "public.posts (user_id)"),
        (
            "SELECT * FROM posts ORDER BY user_id, blog_id LIMIT 10",
            "public.posts (user_id, blog_id)",
        ),
        (
            "SELECT * FROM posts INNER JOIN blogs ON blogs.id = posts.blog_id WHERE blogs.id = 1",
            "public.posts (blog_id)",
        ),
        ("UPDATE posts SET user_id = 2 WHERE user_id = 1", "public.posts (user_id)"),
        ("DELETE FROM posts WHERE user_id = 1", "public.posts (user_id)"),
        ("SELECT * FROM posts_view WHERE view_id = 1", "public.posts (id)"),
        ("SELECT * FROM posts_materialized WHERE id = 1", "public.posts_materialized (id)"),
        ("WITH cte AS (SELECT * FROM posts WHERE id = 1) SELECT * FROM cte", "public.posts (id)"),
        ("WITH cte AS (SELECT * FROM posts) SELECT * FROM cte WHERE id = 1", "public.posts (id)"),
        (
            "WITH cte AS NOT MATERIALIZED (SELECT * FROM posts) SELECT * FROM cte WHERE id = 1",
            "public.posts (id)",
        ),
        ('SELECT * FROM "Bar"."Foo" WHERE "Id" = 10000', "Bar.Foo (Id)"),
        ("SELECT * FROM posts WHERE id = $1", "public.posts (id)"),
        ("SELECT * FROM hash_posts WHERE user_id = 3", "public.hash_posts (user_id)"),
    ],
)
def test_dexter_expectations(url: str, sql: str, expected: str) -> None:
    report = advise(url, sql)
    assert report.method == "hypopg"
    assert labels(report) == [expected]
    rec = report.recommendations[0]
    assert rec.statements[0].cost_after < rec.statements[0].cost_before / 2
    assert report.statements[0].status == "improved"
    assert not report.errors


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM posts",
        "SELECT 1",
        "SELECT * FROM posts WHERE indexed = 1",
        "WITH cte AS MATERIALIZED (SELECT * FROM posts) SELECT * FROM cte WHERE id = 1",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM pg_catalog.pg_index",
        "SELECT * FROM pg_index",
        "SELECT * FROM comments WHERE post_id = 1",
        "SELECT * FROM posts WHERE json::text = '{}'",
    ],
)
def test_dexter_no_index(url: str, sql: str) -> None:
    report = advise(url, sql)
    assert report.recommendations == []
    assert not report.errors


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT +", "cannot parse"),
        ("SELECT * FROM missing WHERE id = 1", 'relation "missing" does not exist'),
        ("SELECT * FROM posts WHERE nope = 1", 'column "nope" does not exist'),
    ],
)
def test_errors_become_report_entries(url: str, sql: str, message: str) -> None:
    report = advise(url, sql, "SELECT * FROM posts WHERE id = 1")
    assert [e.sql for e in report.errors] == [sql]
    assert message in report.errors[0].message
    assert report.statements[0].status == "error"
    assert labels(report) == ["public.posts (id)"]


def test_mixed_order_gets_mixed_directions(url: str) -> None:
    report = advise(url, "SELECT * FROM posts ORDER BY user_id DESC, blog_id LIMIT 10")
    assert labels(report) == ["public.posts (user_id DESC, blog_id)"]
    assert '("user_id" DESC, "blog_id")' in report.recommendations[0].ddl[0]


def test_quoted_names_are_quoted_in_ddl(url: str) -> None:
    report = advise(url, 'SELECT * FROM "Bar"."Foo" WHERE "Id" = 10000')
    (rec,) = report.recommendations
    assert rec.ddl == (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Foo_Id_idx" ON "Bar"."Foo" USING btree ("Id")',
    )


def test_partitioned_table_ddl(url: str) -> None:
    (rec,) = advise(url, "SELECT * FROM hash_posts WHERE user_id = 3").recommendations
    assert rec.partitioned
    assert rec.ddl[0] == (
        'CREATE INDEX IF NOT EXISTS "hash_posts_user_id_idx" ON ONLY "public"."hash_posts" '
        'USING btree ("user_id")'
    )
    for n in range(3):
        assert (
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "hash_posts_{n}_user_id_idx" '
            f'ON "public"."hash_posts_{n}" USING btree ("user_id")'
        ) in rec.ddl
        assert (
            'ALTER INDEX "public"."hash_posts_user_id_idx" '
            f'ATTACH PARTITION "public"."hash_posts_{n}_user_id_idx"'
        ) in rec.ddl
    assert len(rec.ddl) == 7
    assert rec.drop_ddl == ('DROP INDEX IF EXISTS "public"."hash_posts_user_id_idx"',)


def test_partition_queried_directly_gets_the_parent_index(url: str) -> None:
    report = advise(url, "SELECT * FROM hash_posts_1 WHERE user_id = 3")
    assert labels(report) == ["public.hash_posts (user_id)"]


def test_one_index_serves_several_statements(url: str) -> None:
    report = advise(
        url,
        "SELECT * FROM posts WHERE user_id = 1 AND blog_id = 2",
        "SELECT count(*) FROM posts WHERE user_id = 5",
        "SELECT * FROM posts WHERE user_id = $1 ORDER BY blog_id LIMIT 5",
    )
    assert labels(report) == ["public.posts (user_id, blog_id)"]
    (rec,) = report.recommendations
    assert len(rec.statements) == 3
    assert rec.saving_share == pytest.approx(1.0)
    assert [s.status for s in report.statements] == ["improved"] * 3


def test_min_saving_threshold(url: str) -> None:
    assert advise(url, "SELECT * FROM posts WHERE id = 1", min_saving=1.0).recommendations == []


def test_max_indexes_budget(url: str) -> None:
    report = advise(
        url,
        WorkloadStatement("SELECT * FROM posts WHERE id = 1", calls=100),
        "SELECT * FROM posts WHERE blog_id = 2",
        max_indexes=1,
    )
    assert labels(report) == ["public.posts (id)"]


def test_max_total_bytes_budget(url: str) -> None:
    report = advise(url, "SELECT * FROM posts WHERE id = 1", max_total_bytes=100_000)
    assert report.recommendations == []


def test_write_overhead_is_charged(url: str) -> None:
    # busy kept the 100,000 inserts of its load in pg_stat_user_tables; a SQL list
    # is charged them only when asked (write_window="counters").
    rare = advise(url, "SELECT * FROM busy WHERE id = 1", write_window="counters")
    assert rare.recommendations == []
    frequent = advise(
        url,
        WorkloadStatement("SELECT * FROM busy WHERE id = 1", calls=1000),
        write_window="counters",
    )
    assert labels(frequent) == ["public.busy (id)"]
    assert frequent.recommendations[0].write_cost == pytest.approx(100_000, rel=0.01)
    assert labels(advise(url, "SELECT * FROM busy WHERE id = 1")) == ["public.busy (id)"]
    assert labels(
        advise(url, "SELECT * FROM busy WHERE id = 1", write_scale=0.0, write_window="counters")
    ) == ["public.busy (id)"]


def test_report_lists_callsites_and_calls(url: str) -> None:
    stmt = WorkloadStatement(
        "SELECT * FROM posts WHERE id = %(id)s",
        {"id": 7},
        calls=12,
        total_time=0.5,
        callsites=("app/views.py:10",),
    )
    report = advise(url, stmt)
    (rec,) = report.recommendations
    (impact,) = rec.statements
    assert impact.calls == 12
    assert impact.callsites == ("app/views.py:10",)
    assert report.total_cost_before == pytest.approx(12 * impact.cost_before)
