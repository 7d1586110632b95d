"""LINT004-007 on real schemas: duplicate, prefix-covered, unused and invalid indexes."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from dbopt.lint import LintConfig
from test_lint_support import connect, flush_stats, fresh_schema, lint_schema, objects, run

#: Statistics as old as they are: the test database is minutes old.
NOW = LintConfig(unused_index_min_stats_age_s=0)

pytestmark = pytest.mark.postgres

DDL = """
CREATE TABLE t (id bigint PRIMARY KEY, a int, b int, c text, d int);
CREATE INDEX t_a ON t (a);
CREATE INDEX t_a_copy ON t (a);                -- duplicate of t_a
CREATE INDEX t_a_b ON t (a, b);                -- covers t_a and t_a_copy
CREATE INDEX t_a_desc ON t (a DESC);           -- different ordering: not a duplicate
CREATE INDEX t_lower_c ON t (lower(c));
CREATE INDEX t_lower_c2 ON t (lower(c));       -- duplicate expression index
CREATE INDEX t_upper_c ON t (upper(c));        -- different expression
CREATE INDEX t_b_part ON t (b) WHERE d > 0;
CREATE INDEX t_b_part2 ON t (b) WHERE d > 1;   -- different predicate
CREATE INDEX t_b_hash ON t USING hash (b);     -- different method
CREATE UNIQUE INDEX t_d_unique ON t (d);
CREATE INDEX t_d_b ON t (d, b);                -- the unique t_d is not redundant
CREATE INDEX t_id ON t (id);                   -- duplicate of the primary key index
"""


@pytest.fixture(scope="module")
def schema(pg_url: str) -> Iterator[str]:
    with fresh_schema(pg_url, DDL) as name:
        yield name


def test_duplicate_indexes(pg_url: str, schema: str) -> None:
    report = lint_schema(pg_url, schema, rules=["LINT004"])
    found = {f.metadata["index"]: f.metadata["duplicate_of"] for f in report}
    assert found == {"t_a_copy": "t_a", "t_lower_c2": "t_lower_c", "t_id": "t_pkey"}
    fixes = {f.metadata["index"]: f.fix for f in report}
    assert fixes["t_id"] == f"DROP INDEX CONCURRENTLY {schema}.t_id;"


def test_prefix_covered_indexes(pg_url: str, schema: str) -> None:
    report = lint_schema(pg_url, schema, rules=["LINT005"])
    found = {f.metadata["index"]: f.metadata["covered_by"] for f in report}
    assert found == {"t_a": "t_a_b", "t_a_copy": "t_a_b"}


def test_dropping_per_the_fixes_clears_both_rules(pg_url: str) -> None:
    ddl = (
        "CREATE TABLE x (id int PRIMARY KEY, a int, b int);"
        "CREATE INDEX x_a ON x (a); CREATE INDEX x_a2 ON x (a); CREATE INDEX x_ab ON x (a, b);"
    )
    with fresh_schema(pg_url, ddl) as name:
        report = lint_schema(pg_url, name, rules=["LINT004"])
        run(pg_url, name, report[0].fix or "")
        report = lint_schema(pg_url, name, rules=["LINT004", "LINT005"])
        assert [f.code for f in report] == ["LINT005"]
        run(pg_url, name, report[0].fix or "")
        assert len(lint_schema(pg_url, name, rules=["LINT004", "LINT005"])) == 0


def test_unused_index(pg_url: str) -> None:
    ddl = """
    CREATE TABLE u (id int PRIMARY KEY, a int, b int, p_id int);
    CREATE TABLE p (id int PRIMARY KEY);
    ALTER TABLE u ADD FOREIGN KEY (p_id) REFERENCES p (id);
    CREATE INDEX u_a ON u (a);
    CREATE INDEX u_b ON u (b);
    CREATE INDEX u_p ON u (p_id);
    INSERT INTO p SELECT g FROM generate_series(1, 10) g;
    INSERT INTO u SELECT g, g, g, 1 + g % 10 FROM generate_series(1, 2000) g;
    ANALYZE u;
    """
    with fresh_schema(pg_url, ddl) as name, connect(pg_url) as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute(f'SELECT * FROM "{name}".u WHERE a = 5').fetchall()
        flush_stats(conn)
        # the test database is minutes old: by default nothing is called unused yet
        assert len(lint_schema(pg_url, name, rules=["LINT006"])) == 0
        report = lint_schema(pg_url, name, rules=["LINT006"], config=NOW)
        # u_a was used; u_b was not; u_p is unused but the only index of a foreign key;
        # the primary key is never reported.
        assert objects(report, "LINT006") == {f"{name}.u_b"}
        assert report[0].fix == f"DROP INDEX CONCURRENTLY {name}.u_b;"
        assert report[0].metadata["size_bytes"] > 0


def test_unused_partitioned_index_counts_every_partition(pg_url: str) -> None:
    ddl = """
    CREATE TABLE m (id int, at date, v int) PARTITION BY RANGE (at);
    CREATE TABLE m_1 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
    CREATE TABLE m_2 PARTITION OF m FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
    CREATE INDEX m_v ON m (v);
    CREATE INDEX m_id ON m (id);
    INSERT INTO m SELECT g, '2024-01-01'::date + g % 50, g FROM generate_series(1, 1000) g;
    """
    with fresh_schema(pg_url, ddl) as name, connect(pg_url) as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute(f"SELECT * FROM \"{name}\".m WHERE at = '2024-02-03' AND v = 40").fetchall()
        flush_stats(conn)
        report = lint_schema(pg_url, name, rules=["LINT006"], config=NOW)
        assert objects(report, "LINT006") == {f"{name}.m_id"}
        assert "CONCURRENTLY is not allowed" in (report[0].fix or "")


def test_invalid_index(pg_url: str) -> None:
    ddl = (
        "CREATE TABLE v (id int, k int); INSERT INTO v VALUES (1, 1), (2, 1);"
        "CREATE INDEX v_id ON v (id);"
    )
    with fresh_schema(pg_url, ddl) as name, connect(pg_url) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(f'CREATE UNIQUE INDEX CONCURRENTLY v_k ON "{name}".v (k)')
        report = lint_schema(pg_url, name, rules=["LINT007", "LINT004", "LINT005"])
        assert [(f.code, f.metadata["index"]) for f in report] == [("LINT007", "v_k")]
        assert report[0].severity == "error"
        assert report[0].fix == f"REINDEX INDEX CONCURRENTLY {name}.v_k;"
        conn.execute(f'UPDATE "{name}".v SET k = id')
        run(pg_url, name, report[0].fix or "")
        assert len(lint_schema(pg_url, name, rules=["LINT007"])) == 0
