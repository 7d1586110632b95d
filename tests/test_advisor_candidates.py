"""Index advisor: candidate shapes beyond plain btree, and Supabase index_advisor's cases."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from dbopt.advisor import AdvisorReport, IndexAdvisor, WorkloadStatement
from dbopt.testing import libpq_url, postgres_url
from test_advisor_support import wait_for_load

pytestmark = [pytest.mark.postgres, pytest.mark.extensions("hypopg", "pg_trgm")]

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE users (
  id int PRIMARY KEY, email text, status text, deleted_at timestamptz, created_at timestamptz,
  metadata jsonb, tags text[], name text, score int, a int, b int, c int);
INSERT INTO users
SELECT n, 'User' || n || '@example.com',
       CASE WHEN n % 100 = 0 THEN 'active' WHEN n % 3 = 0 THEN 'banned' ELSE 'inactive' END,
       CASE WHEN n % 50 = 0 THEN NULL ELSE now() - n * interval '1 minute' END,
       now() - n * interval '1 second',
       jsonb_build_object('plan', CASE WHEN n % 20 = 0 THEN 'pro' ELSE 'free' END, 'n', n),
       ARRAY['t' || n], md5(n::text), n % 1000, n % 20, (n / 20) % 20, (n / 400) % 20
FROM generate_series(1, 200000) n;
CREATE TABLE author (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE publisher (id serial PRIMARY KEY, name text NOT NULL, corporate_address text);
CREATE TABLE book (id serial PRIMARY KEY, author_id int NOT NULL REFERENCES author (id),
                   publisher_id int NOT NULL REFERENCES publisher (id), title text);
CREATE TABLE review (id serial PRIMARY KEY, book_id int REFERENCES book (id), body text NOT NULL);
CREATE SCHEMA "Sch ""ema";
CREATE TABLE "Sch ""ema"."Tab; DROP TABLE users; --" (
  "Id" int, "we""ird col" int, "select" text, "ÄÖ" int);
INSERT INTO "Sch ""ema"."Tab; DROP TABLE users; --"
SELECT n, n % 5000, 's' || n, n FROM generate_series(1, 100000) n;
ANALYZE "Sch ""ema"."Tab; DROP TABLE users; --";
"""

SUPABASE_QUERY = """
select book.id, book.title, publisher.name as publisher_name, author.name as author_name,
       review.body review_body
from book
join publisher on book.publisher_id = publisher.id
join author on book.author_id = author.id
join review on book.id = review.book_id
where author.id = $1 and publisher.id = $2
"""


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with postgres_url(prefix="dbopt_advisor_cand") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute(SCHEMA)
            conn.execute("VACUUM ANALYZE users")  # index-only scans need the visibility map
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            wait_for_load(conn)  # freshly loaded: the load stays counted
        yield u


def advise(url: str, *sql: str | WorkloadStatement, **options: object) -> AdvisorReport:
    options.setdefault("findings", False)
    return IndexAdvisor(url, **options).advise(list(sql))  # type: ignore[arg-type]


def labels(report: AdvisorReport) -> list[str]:
    return [r.label for r in report.recommendations]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT * FROM users WHERE lower(email) = 'user5@example.com'",
            "public.users (lower(email))",
        ),
        (
            "SELECT * FROM users WHERE deleted_at IS NULL AND score = 5",
            "public.users (score) WHERE deleted_at IS NULL",
        ),
        (
            "SELECT * FROM users WHERE status = 'active' ORDER BY created_at DESC LIMIT 20",
            "public.users (created_at) WHERE status = 'active'",
        ),
        (
            "SELECT id, score FROM users WHERE score = 5 ORDER BY created_at DESC, id LIMIT 10",
            "public.users (score, created_at DESC, id)",
        ),
        (
            "SELECT score, created_at FROM users WHERE score BETWEEN 10 AND 20",
            "public.users (score) INCLUDE (created_at)",
        ),
        (
            "SELECT * FROM users WHERE a = 3 AND b = 4 AND c = 5",
            "public.users (a, b, c)",
        ),
        (
            "SELECT * FROM users WHERE email LIKE 'User12345%'",
            "public.users (email text_pattern_ops)",
        ),
    ],
)
def test_btree_shapes(url: str, sql: str, expected: str) -> None:
    report = advise(url, sql)
    assert labels(report) == [expected]
    assert report.recommendations[0].evaluated_by == "hypopg"
    impact = report.recommendations[0].statements[0]
    assert impact.cost_after < impact.cost_before * 0.7


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            """SELECT id FROM users WHERE metadata @> '{"n": 5}'""",
            "public.users (metadata jsonb_path_ops) USING gin",
        ),
        ("SELECT id FROM users WHERE metadata ? 'zzz'", "public.users (metadata) USING gin"),
        ("SELECT id FROM users WHERE tags @> ARRAY['t5']", "public.users (tags) USING gin"),
        (
            "SELECT id FROM users WHERE name ILIKE '%abcd%'",
            "public.users (name gin_trgm_ops) USING gin",
        ),
    ],
)
def test_gin_shapes_are_priced_by_heuristics(url: str, sql: str, expected: str) -> None:
    report = advise(url, sql)
    assert labels(report) == [expected]
    rec = report.recommendations[0]
    assert rec.evaluated_by == "heuristic"
    assert rec.size_bytes > 1_000_000
    assert rec.ddl[0].startswith(
        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{rec.name}" ON "public"."users" USING gin ('
    )


def test_expression_ddl(url: str) -> None:
    (rec,) = advise(url, "SELECT * FROM users WHERE lower(email) = 'x'").recommendations
    assert rec.ddl == (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "users_expr_email_idx" '
        'ON "public"."users" USING btree ((lower(email)))',
    )


def test_partial_ddl(url: str) -> None:
    report = advise(url, "SELECT * FROM users WHERE deleted_at IS NULL AND score = 5")
    (rec,) = report.recommendations
    assert rec.predicate == "deleted_at IS NULL"
    assert rec.ddl[0].endswith('USING btree ("score") WHERE (deleted_at IS NULL)')
    full = advise(url, "SELECT id FROM users WHERE score = 5").recommendations[0]
    assert rec.size_bytes < full.size_bytes / 10


def test_numeric_literal_is_not_a_partial_predicate(url: str) -> None:
    report = advise(url, "SELECT * FROM users WHERE score = 5 AND a = 3")
    assert all(r.predicate is None for r in report.recommendations)


def test_trigram_needs_pg_trgm(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CREATE DATABASE dbopt_advisor_cand_notrgm")
    try:
        other = url.rsplit("/", 1)[0] + "/dbopt_advisor_cand_notrgm"
        with psycopg.connect(libpq_url(other), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION hypopg")
            conn.execute("CREATE TABLE t (id int, name text)")
            conn.execute("INSERT INTO t SELECT n, md5(n::text) FROM generate_series(1, 50000) n")
            conn.execute("ANALYZE t")
        report = advise(other, "SELECT id FROM t WHERE name LIKE '%abc%'")
        assert report.recommendations == []
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS dbopt_advisor_cand_notrgm WITH (FORCE)")


def test_supabase_multi_index_single_columns(url: str) -> None:
    # Supabase index_advisor considers single-column btree candidates only.
    report = advise(url, SUPABASE_QUERY, max_columns=1, max_include=0)
    assert sorted(labels(report)) == [
        "public.book (author_id)",
        "public.book (publisher_id)",
        "public.review (book_id)",
    ]


def test_supabase_multi_index_default(url: str) -> None:
    report = advise(url, SUPABASE_QUERY)
    got = sorted(labels(report))
    assert "public.review (book_id)" in got
    book = [r for r in report.recommendations if r.table == "book"]
    assert len(book) == 1
    assert set(book[0].columns) == {"author_id", "publisher_id"}
    assert report.total_cost_after < report.total_cost_before * 0.7


def test_supabase_single_column(url: str) -> None:
    report = advise(url, "select * from book where id = $1", "select * from author where id = $1")
    assert report.recommendations == []  # primary keys already serve both
    report = advise(url, "select * from book where title = $1")
    assert labels(report) == ["public.book (title)"]


def test_hostile_names_are_quoted_and_the_ddl_runs(url: str) -> None:
    sql = (
        'SELECT "select" FROM "Sch ""ema"."Tab; DROP TABLE users; --" '
        'WHERE "we""ird col" = 42 AND "ÄÖ" > 10'
    )
    report = advise(url, sql)
    (rec,) = report.recommendations
    assert rec.schema == 'Sch "ema'
    assert rec.table == "Tab; DROP TABLE users; --"
    assert rec.columns[0] == 'we"ird col'
    assert '"Sch ""ema"."Tab; DROP TABLE users; --"' in rec.ddl[0]
    assert '"we""ird col"' in rec.ddl[0]
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for stmt in rec.ddl:
            conn.execute(stmt)
        try:
            row = conn.execute(
                "SELECT indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = %s",
                (rec.name,),
            ).fetchone()
            assert row == (True,)
            assert conn.execute("SELECT count(*) FROM users").fetchone() == (200000,)
        finally:
            for stmt in rec.drop_ddl:
                conn.execute(stmt)
    again = advise(url, sql)
    assert labels(again) == labels(report)


def test_partial_only_for_a_value_constant_across_the_workload(url: str) -> None:
    one = "SELECT * FROM users WHERE status = 'active' ORDER BY created_at DESC LIMIT 20"
    assert [r.predicate for r in advise(url, one).recommendations] == ["status = 'active'"]
    other = "SELECT * FROM users WHERE status = 'banned' ORDER BY created_at DESC LIMIT 20"
    param = WorkloadStatement(
        "SELECT id, email FROM users WHERE status = %(s)s ORDER BY created_at DESC LIMIT 5",
        {"s": "active"},
    )
    for workload in ([one, other], [one, param]):
        report = advise(url, *workload)
        assert report.recommendations
        assert all(r.predicate is None for r in report.recommendations)


def test_no_include_on_a_small_table(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CREATE TABLE small_t AS SELECT n AS id, n % 100 AS k, n AS v"
                     " FROM generate_series(1, 20000) n")  # fmt: skip
        conn.execute("ANALYZE small_t")
    report = advise(url, "SELECT k, v FROM small_t WHERE k BETWEEN 10 AND 12")
    assert report.recommendations
    assert all(not r.include for r in report.recommendations)
