"""LINT008-012 on real schemas: NOT VALID constraints, enum-like columns, types, overflow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dbopt.lint import LintConfig
from test_lint_support import fresh_schema, lint_schema, objects, run

pytestmark = pytest.mark.postgres

DDL = """
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (id int PRIMARY KEY, parent_id int, qty int);
INSERT INTO parent VALUES (1);
INSERT INTO child VALUES (1, 1, 1);
ALTER TABLE child ADD CONSTRAINT child_parent FOREIGN KEY (parent_id) REFERENCES parent NOT VALID;
ALTER TABLE child ADD CONSTRAINT child_qty CHECK (qty > 0) NOT VALID;
CREATE TABLE child_ok (id int PRIMARY KEY, parent_id int REFERENCES parent,
  qty int CHECK (qty > 0));

CREATE TABLE tasks (
  id int PRIMARY KEY,
  status text,                 -- enum-like, no CHECK: reported
  note text,                   -- a few values, but free text (spaces, quotes): not reported
  language text,               -- a few codes from an open list (Flask blog): not reported
  rental_duration int,         -- 3..7 is data, not a rule (Pagila's film): not reported
  kind varchar(20) CHECK (kind IN ('a', 'b', 'c')),   -- has a CHECK
  difficulty int,              -- small integer range, no CHECK: reported
  tenant_id int,               -- looks like a key: not reported as enum-like
  title text,                  -- many values
  flag text UNIQUE,            -- unique
  rare text                    -- mostly NULL, 2 values
);
INSERT INTO tasks (id, status, note, language, rental_duration, kind, difficulty, tenant_id,
  title, flag, rare)
SELECT g, (ARRAY['todo', 'doing', 'done', 'won''t_do'])[1 + g % 4],
       (ARRAY['it''s odd', 'fine', 'see above'])[1 + g % 3], (ARRAY['', 'en', 'es'])[1 + g % 3],
       3 + g % 5,
       (ARRAY['a', 'b', 'c'])[1 + g % 3], 1 + g % 5, g % 3, 'title ' || g, 'f' || g,
       CASE WHEN g % 50 = 0 THEN 'x' WHEN g % 50 = 1 THEN 'y' END
FROM generate_series(1, 400) g;
ANALYZE tasks;
CREATE TABLE small (id int PRIMARY KEY, status text);
INSERT INTO small VALUES (1, 'a'), (2, 'b'), (3, 'a');
ANALYZE small;

CREATE TABLE times (id int PRIMARY KEY, at timestamp, at_tz timestamptz, d date,
  doc json, docb jsonb);
"""


@pytest.fixture(scope="module")
def schema(pg_url: str) -> Iterator[str]:
    with fresh_schema(pg_url, DDL) as name:
        yield name


def test_not_valid_constraints(pg_url: str, schema: str) -> None:
    report = lint_schema(pg_url, schema, rules=["LINT008"])
    assert objects(report, "LINT008") == {
        f"{schema}.child.child_parent",
        f"{schema}.child.child_qty",
    }
    for f in report:
        run(pg_url, schema, f.fix or "")
    assert len(lint_schema(pg_url, schema, rules=["LINT008"])) == 0


def test_enum_like_columns(pg_url: str, schema: str) -> None:
    report = lint_schema(pg_url, schema, rules=["LINT009"])
    found = {f.metadata["column"]: f for f in report}
    assert set(found) == {"status", "difficulty", "rare"}
    assert found["status"].metadata["values"] == ["doing", "done", "todo", "won't_do"]
    assert "status IN ('doing', 'done', 'todo', 'won''t_do')" in (found["status"].fix or "")
    assert found["difficulty"].metadata["values"] == [1, 2, 3, 4, 5]
    assert "difficulty BETWEEN 1 AND 5" in (found["difficulty"].fix or "")
    for f in report:
        # the values come from a sample, and the fix says so before any statement
        assert f.metadata["from_sample"] is True
        assert "sample" in f.message
        assert (f.fix or "").startswith("-- from a sample")
    # the table with 3 rows is too small to tell
    assert all(f.metadata["table"] == "tasks" for f in report)


def test_enum_fix_applies_and_silences(pg_url: str) -> None:
    ddl = """CREATE TABLE "Jobs" (id int PRIMARY KEY, "State" text);
    INSERT INTO "Jobs" SELECT g, (ARRAY['new', 'run'])[1 + g % 2] FROM generate_series(1, 100) g;
    ANALYZE "Jobs";"""
    with fresh_schema(pg_url, ddl) as name:
        report = lint_schema(pg_url, name, rules=["LINT009"])
        assert [f.object for f in report] == [f'{name}."Jobs"."State"']
        run(pg_url, name, report[0].fix or "")
        assert len(lint_schema(pg_url, name, rules=["LINT009"])) == 0


def test_enum_thresholds_are_configurable(pg_url: str, schema: str) -> None:
    config = LintConfig(enum_max_values=4, enum_min_rows=1000)
    assert len(lint_schema(pg_url, schema, rules=["LINT009"], config=config)) == 0
    config = LintConfig(enum_max_values=4, enum_min_rows=2)
    report = lint_schema(pg_url, schema, rules=["LINT009"], config=config)
    # difficulty has 5 values; in "small", 'b' occurs once, so ANALYZE keeps only 'a' in its
    # most-common list and the value set is not known completely.
    assert {f.metadata["column"] for f in report} == {"status", "rare"}


def test_timestamp_and_json(pg_url: str, schema: str) -> None:
    report = lint_schema(pg_url, schema, rules=["LINT010", "LINT011"])
    assert objects(report, "LINT010") == {f"{schema}.times.at"}
    assert objects(report, "LINT011") == {f"{schema}.times.doc"}
    for f in report:
        run(pg_url, schema, (f.fix or "").split("  --")[0])
    assert len(lint_schema(pg_url, schema, rules=["LINT010", "LINT011"])) == 0


def test_sequences_near_overflow(pg_url: str) -> None:
    ddl = """
    CREATE TABLE big (id serial PRIMARY KEY);
    CREATE TABLE fine (id serial PRIMARY KEY);
    CREATE TABLE wide (id bigserial PRIMARY KEY);
    CREATE TABLE narrow_ref (id int PRIMARY KEY, wide_id int REFERENCES wide (id));
    CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
    CREATE SEQUENCE loose AS smallint;
    SELECT setval('big_id_seq', 2000000000);
    SELECT setval('fine_id_seq', 1000);
    SELECT setval('wide_id_seq', 1700000000);
    SELECT setval('ident_id_seq', 1700000000);
    SELECT setval('loose', 30000);
    """
    with fresh_schema(pg_url, ddl) as name:
        report = lint_schema(pg_url, name, rules=["LINT012"])
        found = {f.object: f for f in report}
        assert set(found) == {
            f"{name}.big.id",
            f"{name}.narrow_ref.wide_id",
            f"{name}.ident.id",
            f"{name}.loose",
        }
        assert found[f"{name}.big.id"].severity == "error"
        assert found[f"{name}.big.id"].metadata["used"] == pytest.approx(0.9313, abs=1e-3)
        assert found[f"{name}.ident.id"].severity == "warning"
        assert found[f"{name}.narrow_ref.wide_id"].metadata["limit"] == 2**31 - 1
        assert found[f"{name}.loose"].severity == "error"
        fix = found[f"{name}.big.id"].fix or ""
        for statement in fix.split("\n"):
            run(pg_url, name, statement.split("  --")[0])
        after = lint_schema(pg_url, name, rules=["LINT012"])
        assert f"{name}.big.id" not in objects(after, "LINT012")
