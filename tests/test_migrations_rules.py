"""Each migration rule on SQL text: a statement that triggers it and one that must not."""

from __future__ import annotations

import pytest

from dbopt.migrations import RULES, check

EXISTING = "SET lock_timeout = '5s';\n"


def codes(sql: str, **kw: object) -> list[str]:
    return [f.code for f in check(EXISTING + sql, **kw)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # MIG001 / MIG002 / MIG003
        ("CREATE INDEX i ON users (email);", ["MIG001"]),
        ("CREATE INDEX CONCURRENTLY i ON users (email);", []),
        ("CREATE TABLE t (id bigint PRIMARY KEY, a int); CREATE INDEX i ON t (a);", []),
        ("DROP INDEX i;", ["MIG002"]),
        ("DROP INDEX CONCURRENTLY i;", []),
        ("BEGIN; CREATE INDEX CONCURRENTLY i ON users (email); COMMIT;", ["MIG003"]),
        ("BEGIN; COMMIT; CREATE INDEX CONCURRENTLY i ON users (email);", []),
        ("BEGIN; DROP INDEX CONCURRENTLY i; COMMIT;", ["MIG003"]),
        ("BEGIN; REINDEX INDEX CONCURRENTLY i; COMMIT;", ["MIG003"]),
        ("REINDEX INDEX CONCURRENTLY i;", []),
        # MIG004 / MIG005
        ("ALTER TABLE a ADD CONSTRAINT a_b FOREIGN KEY (b_id) REFERENCES b (id);", ["MIG004"]),
        (
            "ALTER TABLE a ADD CONSTRAINT a_b FOREIGN KEY (b_id) REFERENCES b (id) NOT VALID;"
            " ALTER TABLE a VALIDATE CONSTRAINT a_b;",
            [],
        ),
        ("ALTER TABLE a ADD COLUMN b_id bigint REFERENCES b (id);", ["MIG004"]),
        ("ALTER TABLE a ADD CONSTRAINT pos CHECK (n > 0);", ["MIG005"]),
        ("ALTER TABLE a ADD CONSTRAINT pos CHECK (n > 0) NOT VALID;", []),
        # MIG006
        ("ALTER TABLE a ALTER COLUMN n SET NOT NULL;", ["MIG006"]),
        (
            "ALTER TABLE a ADD CONSTRAINT n_nn CHECK (n IS NOT NULL) NOT VALID;"
            " ALTER TABLE a VALIDATE CONSTRAINT n_nn; ALTER TABLE a ALTER COLUMN n SET NOT NULL;",
            [],
        ),
        (
            "ALTER TABLE a ADD CONSTRAINT n_nn CHECK (n IS NOT NULL) NOT VALID;"
            " ALTER TABLE a ALTER COLUMN n SET NOT NULL;",
            ["MIG006"],
        ),  # never validated
        # MIG007 / MIG015
        ("ALTER TABLE a ADD COLUMN u uuid DEFAULT gen_random_uuid();", ["MIG007"]),
        ("ALTER TABLE a ADD COLUMN r float8 DEFAULT random() NOT NULL;", ["MIG007"]),
        ("ALTER TABLE a ADD COLUMN s bigserial;", ["MIG007"]),
        ("ALTER TABLE a ADD COLUMN g int GENERATED ALWAYS AS (n * 2) STORED;", ["MIG007"]),
        ("ALTER TABLE a ADD COLUMN i bigint GENERATED ALWAYS AS IDENTITY;", ["MIG007"]),
        ("ALTER TABLE a ADD COLUMN c timestamptz NOT NULL DEFAULT now();", []),
        ("ALTER TABLE a ADD COLUMN c text NOT NULL DEFAULT 'x';", []),
        ("ALTER TABLE a ADD COLUMN c jsonb DEFAULT '{}'::jsonb;", []),
        ("ALTER TABLE a ADD COLUMN c int DEFAULT my_func();", ["MIG007"]),
        ("ALTER TABLE a ADD COLUMN c int NOT NULL;", ["MIG015"]),
        ("ALTER TABLE a ADD COLUMN c int;", []),
        # MIG008
        ("ALTER TABLE a ALTER COLUMN n TYPE bigint;", ["MIG008"]),
        ("CREATE TABLE t (n int); ALTER TABLE t ALTER COLUMN n TYPE bigint;", []),
        # MIG009 / MIG010
        ("ALTER TABLE a RENAME COLUMN n TO m;", ["MIG009"]),
        ("ALTER TABLE a RENAME TO b;", ["MIG009"]),
        ("ALTER INDEX i RENAME TO j;", []),
        ("ALTER TABLE a DROP COLUMN n;", ["MIG010"]),
        ("DROP TABLE a;", ["MIG010"]),
        ("CREATE TABLE t (id bigint PRIMARY KEY); DROP TABLE t;", []),
        # MIG012 / MIG013
        ("CREATE TABLE t (id serial PRIMARY KEY);", ["MIG012"]),
        ("CREATE TABLE t (id integer, PRIMARY KEY (id));", ["MIG012"]),
        ("CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);", []),
        ("CREATE TABLE t (a int, b int, PRIMARY KEY (a, b));", []),
        ("CREATE TABLE t (id uuid PRIMARY KEY, at timestamp);", ["MIG013"]),
        ("CREATE TABLE t (id uuid PRIMARY KEY, at timestamp with time zone);", []),
        ("ALTER TABLE a ADD COLUMN at timestamp;", ["MIG013"]),
        ("ALTER TABLE a ALTER COLUMN at TYPE timestamp;", ["MIG008", "MIG013"]),
        # MIG014
        ("ALTER TABLE a ADD CONSTRAINT a_email UNIQUE (email);", ["MIG014"]),
        ("ALTER TABLE a ADD CONSTRAINT a_email UNIQUE USING INDEX a_email_idx;", []),
        ("ALTER TABLE a ADD PRIMARY KEY (id);", ["MIG014"]),
        # plain DML and reads are not migrations' risk here
        ("UPDATE a SET n = 1; SELECT 1; INSERT INTO a VALUES (1);", []),
    ],
)
def test_rule(sql: str, expected: list[str]) -> None:
    assert codes(sql) == expected


def test_tables_created_earlier_in_the_file_are_exempt_by_schema() -> None:
    sql = (
        "CREATE TABLE app.t (id bigint PRIMARY KEY, a int); CREATE INDEX i ON app.t (a);"
        " CREATE INDEX j ON other.t (a);"
    )
    assert codes(sql) == ["MIG001"]


def test_missing_lock_timeout_reported_once_at_the_first_locking_statement() -> None:
    report = check(
        "CREATE TABLE t (id bigint PRIMARY KEY);\n"
        "ALTER TABLE users ADD COLUMN x int;\nALTER TABLE users ADD COLUMN y int;"
    )
    assert [f.code for f in report] == ["MIG011"]
    assert report[0].metadata["line"] == 2
    assert report[0].object == "users"
    assert [
        f.code for f in check("SET lock_timeout = '2s'; ALTER TABLE users ADD COLUMN x int;")
    ] == []
    assert [f.code for f in check("SET lock_timeout = 0; ALTER TABLE users ADD COLUMN x int;")] == [
        "MIG011"
    ]
    # SET LOCAL ends with its transaction
    assert [
        f.code
        for f in check(
            "BEGIN; SET LOCAL lock_timeout = '1s'; ALTER TABLE u ADD x int; COMMIT;"
            " ALTER TABLE u ADD y int;"
        )
    ] == ["MIG011"]
    assert [f.code for f in check("ALTER TABLE u ADD x int;", require_lock_timeout=False)] == []


def test_runner_transaction_makes_concurrently_fail() -> None:
    sql = EXISTING + "CREATE INDEX CONCURRENTLY i ON users (email);"
    assert [f.code for f in check(sql)] == []
    assert [f.code for f in check(sql, in_transaction=True)] == ["MIG003"]


def test_locations_and_metadata() -> None:
    sql = "SET lock_timeout = '5s';\n\n-- add an index\nCREATE INDEX\n  i ON \"Odd Users\" (email);"
    finding = check(sql)[0]
    assert finding.code == "MIG001"
    assert finding.object == '"Odd Users"'
    assert (finding.metadata["line"], finding.metadata["column"], finding.metadata["end_line"]) == (
        4,
        1,
        5,
    )
    assert finding.metadata["statement"] == 'CREATE INDEX i ON "Odd Users" (email)'
    assert finding.fix == (
        'CREATE INDEX CONCURRENTLY i ON "Odd Users" (email);  -- outside a transaction'
    )
    assert finding.metadata["recipe"] == RULES["MIG001"].recipe
    assert finding.metadata["rule"] == "require-concurrent-index-creation"


def test_dropped_index_names_are_quoted() -> None:
    finding = check('SET lock_timeout = 1; DROP INDEX "My Schema"."Odd Idx";')[0]
    assert finding.object == '"My Schema"."Odd Idx"'
    assert finding.fix == 'DROP INDEX CONCURRENTLY "My Schema"."Odd Idx";  -- outside a transaction'


def test_parse_errors_are_findings_and_the_rest_is_checked() -> None:
    report = check(EXISTING + "CREATE INDX oops;\nCREATE INDEX i ON users (email);")
    assert [f.code for f in report] == ["MIG000", "MIG001"]
    assert report[0].metadata["line"] == 2


def test_every_rule_has_a_recipe_and_a_test() -> None:
    assert sorted(RULES) == [f"MIG{n:03d}" for n in range(45)]
    for rule in RULES.values():
        assert rule.recipe
        assert rule.why
