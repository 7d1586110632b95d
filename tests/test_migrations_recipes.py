"""The rules' premises and fixes, on a real server: what rewrites, what fails, and that
every fix the checker prints runs (hostile identifiers included)."""

from __future__ import annotations

import psycopg
import pytest

from dbopt.migrations import check
from test_lint_support import connect, fresh_schema

pytestmark = pytest.mark.postgres

DDL = """
CREATE TABLE "Users" (id bigint PRIMARY KEY, "E mail" text, n int);
CREATE TABLE "Orders" (id bigint PRIMARY KEY, "User Id" bigint, qty int);
INSERT INTO "Users" SELECT g, 'u' || g, g FROM generate_series(1, 100) g;
INSERT INTO "Orders" SELECT g, 1 + g % 100, g FROM generate_series(1, 200) g;
"""


def _filenode(conn: psycopg.Connection[object], schema: str, table: str) -> int:
    row = conn.execute(
        "SELECT relfilenode FROM pg_class"
        " WHERE oid = format('%%I.%%I', %s::text, %s::text)::regclass",
        (schema, table),
    ).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def _fixes(sql: str) -> list[str]:
    return [f.fix or "" for f in check("SET lock_timeout = '5s';\n" + sql)]


def _run_fix(conn: psycopg.Connection[object], fix: str) -> None:
    for statement in fix.split(";\n"):
        body = "\n".join(x for x in statement.splitlines() if not x.startswith("--"))
        body = body.split("  --")[0].strip().rstrip(";")
        if body:
            conn.execute(body)


def test_volatile_default_rewrites_and_stable_default_does_not(pg_url: str) -> None:
    with fresh_schema(pg_url, DDL, prefix="mig") as name, connect(pg_url) as conn:
        conn.execute(f'SET search_path = "{name}"')
        before = _filenode(conn, name, "Users")
        stable = 'ALTER TABLE "Users" ADD COLUMN created timestamptz NOT NULL DEFAULT now()'
        assert [f.code for f in check("SET lock_timeout = '1s';" + stable)] == []
        conn.execute(stable)
        assert _filenode(conn, name, "Users") == before
        volatile = 'ALTER TABLE "Users" ADD COLUMN token uuid DEFAULT gen_random_uuid()'
        assert [f.code for f in check("SET lock_timeout = '1s';" + volatile)] == ["MIG007"]
        conn.execute(volatile)
        assert _filenode(conn, name, "Users") != before


def test_type_change_rewrites(pg_url: str) -> None:
    with fresh_schema(pg_url, DDL, prefix="mig") as name, connect(pg_url) as conn:
        conn.execute(f'SET search_path = "{name}"')
        before = _filenode(conn, name, "Orders")
        change = 'ALTER TABLE "Orders" ALTER COLUMN qty TYPE bigint'
        assert [f.code for f in check("SET lock_timeout = '1s';" + change)] == ["MIG008"]
        conn.execute(change)
        assert _filenode(conn, name, "Orders") != before


def test_required_column_without_default_fails_on_rows(pg_url: str) -> None:
    with fresh_schema(pg_url, DDL, prefix="mig") as name, connect(pg_url) as conn:
        conn.execute(f'SET search_path = "{name}"')
        sql = 'ALTER TABLE "Users" ADD COLUMN must int NOT NULL'
        assert [f.code for f in check("SET lock_timeout = '1s';" + sql)] == ["MIG015"]
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute(sql)


def test_concurrently_in_a_transaction_fails(pg_url: str) -> None:
    sql = 'BEGIN; CREATE INDEX CONCURRENTLY users_n ON "Users" (n); COMMIT;'
    assert [f.code for f in check(sql)] == ["MIG003"]
    with fresh_schema(pg_url, DDL, prefix="mig") as name, connect(pg_url) as conn:
        conn.execute(f'SET search_path = "{name}"')
        conn.execute("BEGIN")
        with pytest.raises(psycopg.errors.ActiveSqlTransaction):
            conn.execute('CREATE INDEX CONCURRENTLY users_n ON "Users" (n)')
        conn.execute("ROLLBACK")


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ('CREATE INDEX "Orders By User" ON "Orders" ("User Id");', "MIG001"),
        (
            'ALTER TABLE "Orders" ADD CONSTRAINT "Orders User" FOREIGN KEY ("User Id") '
            'REFERENCES "Users" (id);',
            "MIG004",
        ),
        ('ALTER TABLE "Orders" ADD CONSTRAINT "Qty > 0" CHECK (qty > 0);', "MIG005"),
        ('ALTER TABLE "Users" ALTER COLUMN "E mail" SET NOT NULL;', "MIG006"),
        ('ALTER TABLE "Users" ADD CONSTRAINT "Users E mail" UNIQUE ("E mail");', "MIG014"),
        ('ALTER TABLE "Users" RENAME TO "People";', "MIG009"),
    ],
)
def test_printed_fix_runs(pg_url: str, sql: str, code: str) -> None:
    report = check("SET lock_timeout = '5s';\n" + sql)
    assert [f.code for f in report] == [code]
    fix = report[0].fix or ""
    with fresh_schema(pg_url, DDL, prefix="mig") as name, connect(pg_url) as conn:
        conn.execute(f'SET search_path = "{name}"')
        _run_fix(conn, fix)
        # the fixed migration achieves what the original wanted
        facts = conn.execute(
            """SELECT
                 (SELECT count(*) FROM pg_indexes WHERE schemaname = %(s)s) AS indexes,
                 (SELECT count(*) FROM pg_constraint c JOIN pg_namespace n
                    ON n.oid = c.connamespace WHERE n.nspname = %(s)s AND c.convalidated
                    AND c.contype IN ('f', 'c', 'u')) AS constraints,
                 (SELECT bool_and(attnotnull) FROM pg_attribute
                   WHERE attrelid = to_regclass(format('%%I.%%I', %(s)s, 'Users'))
                     AND attname = 'E mail') AS email_not_null,
                 to_regclass(format('%%I.%%I', %(s)s, 'People')) IS NOT NULL AS renamed""",
            {"s": name},
        ).fetchone()
        assert facts is not None
        indexes, constraints, email_not_null, renamed = facts
        expected = {
            "MIG001": indexes == 3,
            "MIG004": constraints == 1,
            "MIG005": constraints == 1,
            "MIG006": email_not_null is True and constraints == 0,
            "MIG014": constraints == 1 and indexes == 3,
            "MIG009": renamed is True,
        }
        assert expected[code], (code, facts, fix)
        if code == "MIG009":  # the old name still answers, through the view
            assert conn.execute('SELECT count(*) FROM "Users"').fetchone() == (100,)
