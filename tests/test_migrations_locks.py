"""The lock model on findings, the same-transaction NOT VALID + VALIDATE, the
cross-migration recipes, opt-in rules and the target server version."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbopt.errors import ConfigurationError
from dbopt.migrations import RULES, check

LT = "SET lock_timeout = '5s';\n"


def codes(sql: str, **kw: object) -> list[str]:
    return [f.code for f in check(LT + sql, **kw)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sql", "mode", "duration"),
    [
        ("CLUSTER orders USING orders_pkey;", "ACCESS EXCLUSIVE", "rewrite"),
        ("VACUUM FULL orders;", "ACCESS EXCLUSIVE", "rewrite"),
        ("REFRESH MATERIALIZED VIEW totals;", "ACCESS EXCLUSIVE", "rewrite"),
        ("TRUNCATE orders;", "ACCESS EXCLUSIVE", "instant"),
        ("DROP VIEW totals_v;", "ACCESS EXCLUSIVE", "instant"),
        ("DROP MATERIALIZED VIEW totals;", "ACCESS EXCLUSIVE", "instant"),
        ("LOCK TABLE orders;", "ACCESS EXCLUSIVE", "transaction"),
        ("LOCK TABLE orders IN SHARE MODE;", "SHARE", "transaction"),
        ("LOCK TABLE orders IN EXCLUSIVE MODE;", "EXCLUSIVE", "transaction"),
        ("ALTER TABLE orders SET TABLESPACE fast;", "ACCESS EXCLUSIVE", "rewrite"),
    ],
)
def test_write_blocking_statements_are_reported_with_their_lock(
    sql: str, mode: str, duration: str
) -> None:
    report = check(LT + sql)
    assert [f.code for f in report] == ["MIG018"]
    meta = report[0].metadata
    assert (meta["lock"], meta["lock_duration"]) == (mode, duration)
    # a materialized view takes no writes: its ACCESS EXCLUSIVE blocks the reads
    assert set(meta["blocks"]) & {"reads", "writes"}
    assert mode in report[0].message


@pytest.mark.parametrize(
    "sql",
    [
        "REFRESH MATERIALIZED VIEW CONCURRENTLY totals;",
        "LOCK TABLE orders IN ACCESS SHARE MODE;",
        "LOCK TABLE orders IN ROW EXCLUSIVE MODE;",
        "VACUUM orders;",
        "VACUUM (FULL false) orders;",
        "ALTER TABLE orders ADD COLUMN note text;",  # instant: lock_timeout is the answer
        "CREATE TABLE t (id bigint PRIMARY KEY); LOCK TABLE t; TRUNCATE t; CLUSTER t;",
    ],
)
def test_statements_that_do_not_block_writes_for_long_are_quiet(sql: str) -> None:
    assert codes(sql) == []


def test_reindex_and_detach_partition() -> None:
    assert codes("REINDEX TABLE orders;") == ["MIG020"]
    assert codes("REINDEX (CONCURRENTLY false) INDEX i;") == ["MIG020"]
    assert codes("REINDEX TABLE CONCURRENTLY orders;") == []
    report = check(LT + "ALTER TABLE events DETACH PARTITION events_2020;")
    assert [f.code for f in report] == ["MIG021"]
    assert report[0].fix.startswith("ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY")
    assert codes("ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;") == []
    assert codes("BEGIN; ALTER TABLE e DETACH PARTITION p CONCURRENTLY; COMMIT;") == ["MIG003"]


def test_prefer_repack_only_where_repack_exists() -> None:
    assert codes("VACUUM FULL orders;", pg_version=19) == ["MIG022"]
    assert codes("CLUSTER orders;", pg_version=19) == ["MIG022"]
    assert codes("CLUSTER orders;", pg_version=17) == ["MIG018"]


def test_not_valid_then_validate_in_one_transaction_is_a_finding() -> None:
    add = "ALTER TABLE a ADD CONSTRAINT a_b FOREIGN KEY (b_id) REFERENCES b (id) NOT VALID;"
    validate = "ALTER TABLE a VALIDATE CONSTRAINT a_b;"
    report = check(LT + f"BEGIN; {add} {validate} COMMIT;")
    assert [f.code for f in report] == ["MIG019"]
    assert report[0].object == "a.a_b"
    # the runner's transaction counts too
    assert codes(f"{add} {validate}", in_transaction=True) == ["MIG019"]
    # committed in between: the recipe
    assert codes(f"BEGIN; {add} COMMIT; BEGIN; {validate} COMMIT;") == []
    assert codes(f"{add} {validate}") == []  # autocommit: each statement its own transaction


def test_stored_generated_not_null_column_is_a_rewrite_not_a_failure() -> None:
    # existing rows get the computed value, so NOT NULL without DEFAULT does not fail (no
    # MIG015); computing it rewrites the table under ACCESS EXCLUSIVE (MIG007)
    sql = "ALTER TABLE a ADD COLUMN total numeric GENERATED ALWAYS AS (p * q) STORED NOT NULL;"
    report = check(LT + sql)
    assert [f.code for f in report] == ["MIG007"]
    assert report[0].metadata["lock"] == "ACCESS EXCLUSIVE"


def test_check_validated_in_one_migration_set_not_null_in_the_next(tmp_path: Path) -> None:
    first = tmp_path / "0001_check.sql"
    first.write_text(
        LT + "ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) "
        "NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT users_email_nn;\n"
    )
    second = tmp_path / "0002_not_null.sql"
    second.write_text(
        LT + "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n"
        "ALTER TABLE users DROP CONSTRAINT users_email_nn;\n"
    )
    assert [f.code for f in check(tmp_path)] == []
    # alone, the second migration cannot know the CHECK exists
    assert [f.code for f in check(second)] == ["MIG006"]
    # a CHECK on another column proves nothing
    first.write_text(
        LT + "ALTER TABLE users ADD CONSTRAINT users_name_nn CHECK (name IS NOT NULL) "
        "NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT users_name_nn;\n"
    )
    assert [f.code for f in check(tmp_path)] == ["MIG006"]
    # never validated: proves nothing either
    first.write_text(
        LT + "ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) "
        "NOT VALID;\n"
    )
    assert [f.code for f in check(tmp_path)] == ["MIG006"]


def test_validate_then_set_not_null_in_one_migration() -> None:
    sql = (
        "ALTER TABLE foo VALIDATE CONSTRAINT foo_bar_not_null;"
        " ALTER TABLE foo ALTER COLUMN bar SET NOT NULL;"
    )
    assert codes(sql) == []
    assert codes(sql, pg_version=11) == ["MIG006"]  # PostgreSQL 11 scans regardless


def test_opt_in_rules_are_off_by_default_and_can_be_enabled() -> None:
    sql = (
        "CREATE TABLE t (id serial PRIMARY KEY, name varchar(40), n int);"
        " ALTER TYPE e ADD VALUE 'x';"
    )
    assert codes(sql) == ["MIG012"]
    on = codes(sql, enable=["prefer-identity", "MIG035", "MIG039", "MIG033"])
    assert sorted(set(on)) == ["MIG012", "MIG033", "MIG034", "MIG035", "MIG039"]
    assert set(codes(sql, enable=["all"])) >= {"MIG032", "MIG038"}
    with pytest.raises(ConfigurationError):
        check("SELECT 1", enable=["no-such-rule"])
    off = {r.code for r in RULES.values() if not r.default_enabled}
    assert off == {"MIG023", "MIG032", "MIG033", "MIG034", "MIG035", "MIG038", "MIG039"}


def test_default_on_new_rules() -> None:
    assert codes("TRUNCATE a, b CASCADE;") == ["MIG027"]
    assert check(LT + "TRUNCATE a CASCADE;")[0].metadata["lock"] == "ACCESS EXCLUSIVE"
    assert codes("DROP DATABASE prod;") == ["MIG026"]
    assert codes("ALTER TABLE a ALTER COLUMN n DROP NOT NULL;") == ["MIG028"]
    assert codes("ALTER DOMAIN d ADD CONSTRAINT pos CHECK (VALUE > 0);") == ["MIG024"]
    assert codes("CREATE DOMAIN d AS int CHECK (VALUE > 0);") == ["MIG025"]
    assert codes("BEGIN; CREATE TABLE t (id bigint);") == ["MIG029"]
    assert codes("BEGIN; BEGIN; SELECT 1; COMMIT;") == ["MIG030"]
    assert codes("UPDATE a SET n = 1, n = 2;") == ["MIG031"]
    assert codes("CREATE TABLE t (code char(2));") == ["MIG036"]
    long = "x" * 64
    assert codes(f"CREATE TABLE {long} (id bigint);") == ["MIG037"]
    assert codes(f"CREATE TABLE {long[:63]} (id bigint);") == []


def test_a_file_that_runs_outside_a_transaction_says_so() -> None:
    sql = "-- dbopt:no-transaction\n" + LT + "CREATE INDEX CONCURRENTLY i ON users (email);"
    assert [f.code for f in check(sql, in_transaction=True)] == []
    assert [f.code for f in check(sql.split("\n", 1)[1], in_transaction=True)] == ["MIG003"]
