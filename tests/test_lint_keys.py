"""LINT001-003 on real schemas: foreign keys without index, tables without PK, *_id without FK."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dbopt.lint import LintConfig
from test_lint_support import fresh_schema, lint_schema, objects, run

pytestmark = pytest.mark.postgres

DDL = """
CREATE TABLE parent (id bigint PRIMARY KEY);
CREATE TABLE pair (a int, b int, PRIMARY KEY (a, b));
-- LINT001 fires
CREATE TABLE child_bare (id bigint PRIMARY KEY, parent_id bigint REFERENCES parent (id));
CREATE TABLE child_second (id bigint PRIMARY KEY, x int,
  parent_id bigint REFERENCES parent (id));
CREATE INDEX child_second_x_parent ON child_second (x, parent_id);
CREATE TABLE child_partial (id bigint PRIMARY KEY, parent_id bigint REFERENCES parent (id));
CREATE INDEX child_partial_idx ON child_partial (parent_id) WHERE id > 10;
-- LINT001 stays quiet
CREATE TABLE child_lead (id bigint PRIMARY KEY, note text,
  parent_id bigint REFERENCES parent (id));
CREATE INDEX child_lead_idx ON child_lead (parent_id, note);
CREATE TABLE pair_ref (id bigint PRIMARY KEY, a int, b int,
  CONSTRAINT pair_ref_pair FOREIGN KEY (a, b) REFERENCES pair (a, b));
CREATE INDEX pair_ref_ba ON pair_ref (b, a, id);
CREATE TABLE child_pk (parent_id bigint PRIMARY KEY REFERENCES parent (id));
-- partitioned: FK on the parent, indexed only on the parent
CREATE TABLE events (id bigint, parent_id bigint REFERENCES parent (id), at date,
  PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_bare (id bigint, parent_id bigint REFERENCES parent (id), at date,
  PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_bare_2024 PARTITION OF events_bare
  FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE INDEX events_parent_idx ON events (parent_id);
-- LINT002
CREATE TABLE no_pk (id int NOT NULL, v text);
CREATE UNIQUE INDEX no_pk_id ON no_pk (id);
CREATE TABLE no_pk_at_all (v text);
-- LINT003
CREATE TABLE users (id int PRIMARY KEY);
CREATE TABLE categories (id int PRIMARY KEY);
CREATE TABLE words (id int PRIMARY KEY, category_id int, owner_id int, entity_id uuid,
  user_id int REFERENCES users (id));
"""


@pytest.fixture(scope="module")
def schema(pg_url: str) -> Iterator[str]:
    with fresh_schema(pg_url, DDL) as name:
        yield name


def test_fk_without_index(pg_url: str, schema: str) -> None:
    report = lint_schema(pg_url, schema, rules=["LINT001"])
    assert objects(report, "LINT001") == {
        f"{schema}.child_bare.child_bare_parent_id_fkey",
        f"{schema}.child_second.child_second_parent_id_fkey",
        f"{schema}.child_partial.child_partial_parent_id_fkey",
        f"{schema}.events_bare.events_bare_parent_id_fkey",
        f"{schema}.words.words_user_id_fkey",
    }
    bare = next(f for f in report if f.metadata["table"] == "child_bare")
    assert bare.fix == (
        f"CREATE INDEX CONCURRENTLY child_bare_parent_id_idx ON {schema}.child_bare (parent_id);"
    )
    assert bare.metadata["columns"] == ["parent_id"]
    assert bare.metadata["referenced"] == f"{schema}.parent"
    partitioned = next(f for f in report if f.metadata["table"] == "events_bare")
    # ON ONLY the parent, each partition CONCURRENTLY, then attached
    assert f"ON ONLY {schema}.events_bare " in (partitioned.fix or "")
    assert (partitioned.fix or "").count("ATTACH PARTITION") == 1


def test_fk_fix_makes_the_finding_go_away(pg_url: str) -> None:
    ddl = (
        "CREATE TABLE p (id int PRIMARY KEY);"
        "CREATE TABLE c (id int PRIMARY KEY, p_id int REFERENCES p);"
    )
    with fresh_schema(pg_url, ddl) as name:
        report = lint_schema(pg_url, name, rules=["fk_without_index"])
        assert len(report) == 1
        run(pg_url, name, report[0].fix or "")
        assert len(lint_schema(pg_url, name, rules=["fk_without_index"])) == 0


def test_no_primary_key(pg_url: str, schema: str) -> None:
    report = lint_schema(pg_url, schema, rules=["LINT002"])
    assert objects(report, "LINT002") == {f"{schema}.no_pk", f"{schema}.no_pk_at_all"}
    fixes = {f.metadata["table"]: f.fix for f in report}
    assert fixes["no_pk"] == (
        f"ALTER TABLE {schema}.no_pk ADD CONSTRAINT no_pk_pkey PRIMARY KEY USING INDEX no_pk_id;"
    )
    assert fixes["no_pk_at_all"] is None
    # partitions are not reported on their own, and the partitioned parents have keys
    assert not any("events_2024" in o for o in objects(report, "LINT002"))
    run(pg_url, schema, fixes["no_pk"] or "")
    after = lint_schema(pg_url, schema, rules=["LINT002"])
    assert objects(after, "LINT002") == {f"{schema}.no_pk_at_all"}


def test_id_column_without_fk(pg_url: str, schema: str) -> None:
    report = lint_schema(pg_url, schema, rules=["LINT003"])
    by_column = {f.metadata["column"]: f for f in report if f.metadata["table"] == "words"}
    assert set(by_column) == {"category_id", "owner_id", "entity_id"}
    assert by_column["category_id"].metadata["guessed_target"] == f"{schema}.categories"
    assert "REFERENCES " + f"{schema}.categories (id) NOT VALID" in (
        by_column["category_id"].fix or ""
    )
    assert by_column["owner_id"].fix is None  # no owners table to guess
    assert by_column["entity_id"].fix is None
    # primary-key *_id columns and columns already in a foreign key are not reported
    tables = {f.metadata["table"] for f in report}
    assert "child_pk" not in tables
    assert not any(f.metadata["column"] == "user_id" for f in report)


def test_id_column_heuristic_is_configurable(pg_url: str, schema: str) -> None:
    config = LintConfig(id_column_ignore=("words.entity_id", "owner_*"))
    report = lint_schema(pg_url, schema, rules=["LINT003"], config=config)
    columns = {f.metadata["column"] for f in report if f.metadata["table"] == "words"}
    assert columns == {"category_id"}
    other = LintConfig(id_column_pattern=r"^(.+)Ref$")
    assert len(lint_schema(pg_url, schema, rules=["LINT003"], config=other)) == 0


def test_id_column_fix_adds_the_foreign_key(pg_url: str) -> None:
    ddl = """CREATE TABLE "Teams" (id bigint PRIMARY KEY);
    CREATE TABLE teams (id bigint PRIMARY KEY);
    CREATE TABLE players (id bigint PRIMARY KEY, team_id bigint);
    INSERT INTO teams VALUES (1); INSERT INTO players VALUES (1, 1), (2, NULL);"""
    with fresh_schema(pg_url, ddl) as name:
        report = lint_schema(pg_url, name, rules=["LINT003"])
        assert [f.metadata["guessed_target"] for f in report] == [f"{name}.teams"]
        run(pg_url, name, report[0].fix or "")
        assert len(lint_schema(pg_url, name, rules=["LINT003"])) == 0
