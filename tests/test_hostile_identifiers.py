"""Hostile identifiers through every generator: the generated text is data, never code.

A corpus of names (quotes, ``;``, ``--``, newline, CR, tab, unicode, reserved
words, spaces, dots, colons, percent signs, 62/63/64-byte names, mixed case)
is created on the real server as schema, table, column, index and constraint
names. Each generator's output is then run the way an administrator would run
it (``psql -v ON_ERROR_STOP=1 -f``, ``alembic upgrade``/``downgrade``) and the
catalog is compared before and after: only the intended objects changed, and a
canary table and index survive.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pglast
import psycopg
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from psycopg import sql

from dbopt.advisor import AdvisorReport, IndexAdvisor, WorkloadStatement
from dbopt.lint import LintConfig, lint
from dbopt.partitions import PartitionSpec
from dbopt.partitions.alembic import offline_statements
from dbopt.schema.erd import erd
from dbopt.testing import libpq_url, postgres_url
from test_advisor_support import forget_load

pytestmark = pytest.mark.postgres

INJECT = "x\nDROP TABLE public.canary; --"
CORPUS = [
    INJECT,
    "user_id\n-- c",
    "users\n",
    'a"b',
    "it's",
    "semi;colon",
    "-- dash",
    "cr\rname",
    "tab\tname",
    "ünïcødé_表",
    "select",
    "Mixed Case",
    "dot.ted",
    "colon:name",
    "pct%name",
    "back\\slash",
    '"""\nimport os',
    "t" * 62,
    "é" * 31 + "z",  # 63 bytes
    "w" * 64,  # the server keeps the first 63 bytes
    "long_" + "a" * 57 + "1",
    "long_" + "a" * 57 + "2",  # differs from the previous one in its 63rd byte only
]
SCHEMAS = ["hostile;\n--", "Sch.ema"]

needs_psql = pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")


def ident(name: str) -> str:
    """The test's own quoting (psycopg's), independent of the renderer under test."""
    return sql.Identifier(name).as_string(None)


def qualified(*parts: str) -> str:
    return sql.Identifier(*parts).as_string(None)


def _truncated(name: str) -> str:
    return name.encode()[:63].decode(errors="ignore")


def _place(i: int, name: str) -> tuple[str, str]:
    return SCHEMAS[i % 2], name


def _snapshot(conn: psycopg.Connection[Any]) -> set[tuple[str, str, str]]:
    rows = conn.execute(
        "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
        " AND c.relkind IN ('r', 'p', 'i', 'I', 'v', 'm')"
    ).fetchall()
    return {(r[0], r[1], r[2]) for r in rows}


def _columns(conn: psycopg.Connection[Any], schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        (schema, table),
    ).fetchall()
    return [r[0] for r in rows]


def _psql(url: str, script: str, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(script, encoding="utf-8")
    argv = [
        shutil.which("psql") or "psql",
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        libpq_url(url),
        "-f",
        str(path),
    ]
    result = subprocess.run(  # noqa: S603 - fixed argv; the script is a file
        argv, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr


def _assert_canary(conn: psycopg.Connection[Any]) -> None:
    snap = _snapshot(conn)
    assert ("public", "canary", "r") in snap
    assert ("public", "canary_idx", "i") in snap
    assert conn.execute("SELECT count(*) FROM public.canary").fetchone() == (3,)


def _create_corpus(conn: psycopg.Connection[Any], rows: int) -> None:
    conn.execute("CREATE TABLE public.canary (id int PRIMARY KEY, v int)")
    conn.execute("CREATE INDEX canary_idx ON public.canary (v)")
    conn.execute("INSERT INTO public.canary VALUES (1, 1), (2, 2), (3, 3)")
    for schema in SCHEMAS:
        conn.execute(f"CREATE SCHEMA {ident(schema)}")
    for i, name in enumerate(CORPUS):
        schema, table = _place(i, name)
        conn.execute(
            f"CREATE TABLE {qualified(schema, table)} (id int PRIMARY KEY, {ident(name)} int,"
            f" created_at timestamptz)"
        )
        conn.execute(
            f"INSERT INTO {qualified(schema, table)} SELECT n, n % 5000, now()"
            f" FROM generate_series(1, {rows}) n"
        )
    conn.execute("ANALYZE")


# -- the advisor: SQL script and Alembic revision -------------------------------------


@pytest.fixture(scope="module")
def advisor_db() -> Iterator[str]:
    with postgres_url(prefix="dbopt_hostile_advisor") as url:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
            _create_corpus(conn, 20000)
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            forget_load(conn)  # the bulk load is no write workload to charge indexes for
        yield url


def _workload() -> list[WorkloadStatement]:
    out = []
    for i, name in enumerate(CORPUS):
        schema, table = _place(i, name)
        table, column = _truncated(table), _truncated(name)
        out.append(
            WorkloadStatement(
                f"SELECT * FROM {qualified(schema, table)} WHERE {ident(column)} = 42", calls=20
            )
        )
    return out


@pytest.fixture(scope="module")
def advice(advisor_db: str) -> AdvisorReport:
    return IndexAdvisor(advisor_db, max_indexes=None).advise(_workload())


def _expected_indexes(report: AdvisorReport) -> set[tuple[str, str, str]]:
    return {(r.schema, r.name, "i") for r in report.recommendations}


@pytest.mark.extensions("hypopg")
def test_advisor_recommends_for_hostile_tables(advice: AdvisorReport) -> None:
    assert advice.errors == []
    tables = {(r.schema, r.table) for r in advice.recommendations}
    assert (SCHEMAS[0], INJECT) in tables
    assert len(tables) >= len(CORPUS) - 2
    names = [r.name for r in advice.recommendations]
    assert len(set(names)) == len(names)
    assert all(len(n.encode()) <= 63 for n in names)
    # the two long tables differing only in the last byte got distinct index names
    longs = [r.name for r in advice.recommendations if r.table.startswith("long_")]
    assert len(set(longs)) == len(longs) == 2


@needs_psql
@pytest.mark.extensions("hypopg")
def test_advisor_sql_script_changes_only_its_indexes(
    advisor_db: str, advice: AdvisorReport, tmp_path: Path
) -> None:
    script = advice.to_sql()
    statements = pglast.parse_sql(script)  # comments are dropped: what is left is what runs
    assert len(statements) == len(advice.recommendations)
    assert all(isinstance(s.stmt, pglast.ast.IndexStmt) for s in statements)
    with psycopg.connect(libpq_url(advisor_db), autocommit=True) as conn:
        before = _snapshot(conn)
        _psql(advisor_db, script, tmp_path, "advice.sql")
        after = _snapshot(conn)
        _assert_canary(conn)
        assert before - after == set()
        assert after - before == _expected_indexes(advice)
        for rec in advice.recommendations:  # each index is on the table it was meant for
            row = conn.execute(
                "SELECT t.relname, n.nspname FROM pg_index x"
                " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
                " JOIN pg_namespace n ON n.oid = t.relnamespace"
                " WHERE i.relname = %s AND n.nspname = %s",
                (rec.name, rec.schema),
            ).fetchone()
            assert row == (rec.table, rec.schema)
        drop = "".join(f"{stmt};\n" for rec in advice.recommendations for stmt in rec.drop_ddl)
        _psql(advisor_db, drop, tmp_path, "drop.sql")
        assert _snapshot(conn) == before


def _only_op_calls(func: ast.FunctionDef) -> None:
    """Every statement of ``func`` is ``op.<name>(...)``, or a ``with`` of an op call."""

    def is_op_call(node: ast.expr) -> bool:
        if not isinstance(node, ast.Call):
            return False
        target = node.func
        while isinstance(target, ast.Attribute):
            if isinstance(target.value, ast.Name):
                return target.value.id == "op"
            if isinstance(target.value, ast.Call):
                return is_op_call(target.value)
            target = target.value
        return False

    def check(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.With):
                assert all(is_op_call(item.context_expr) for item in stmt.items)
                check(stmt.body)
            elif isinstance(stmt, ast.Expr):
                assert is_op_call(stmt.value), ast.unparse(stmt)
            else:
                assert isinstance(stmt, ast.Pass), ast.unparse(stmt)

    check(func.body)


def _check_revision(source: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(source)
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert set(funcs) == {"upgrade", "downgrade"}
    for func in funcs.values():
        _only_op_calls(func)
    for node in tree.body:  # module level: docstring, imports, plain assignments only
        assert isinstance(node, (ast.Expr, ast.Import, ast.ImportFrom, ast.Assign, ast.FunctionDef))
        if isinstance(node, ast.Expr):
            assert isinstance(node.value, ast.Constant)
    return funcs


def _run_revision(url: str, source: str, step: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            with Operations.context(context):
                namespace: dict[str, Any] = {}
                exec(compile(source, "revision.py", "exec"), namespace)  # noqa: S102
                namespace[step]()
            conn.commit()
    finally:
        engine.dispose()


@pytest.mark.extensions("hypopg")
def test_advisor_alembic_revision_is_inert_and_runs(advisor_db: str, advice: AdvisorReport) -> None:
    source = advice.to_alembic(
        revision='abc"""\nimport os',
        down_revision="x'\n",
        message='hostile """ message\nimport os\r# \\',
    )
    _check_revision(source)
    with psycopg.connect(libpq_url(advisor_db), autocommit=True) as conn:
        before = _snapshot(conn)
        _run_revision(advisor_db, source, "upgrade")
        assert _snapshot(conn) - before == _expected_indexes(advice)
        assert before - _snapshot(conn) == set()
        _run_revision(advisor_db, source, "downgrade")
        assert _snapshot(conn) == before
        _assert_canary(conn)


# -- lint fixes -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lint_db() -> Iterator[str]:
    with postgres_url(prefix="dbopt_hostile_lint") as url:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            _create_corpus(conn, 10)
            # LINT004: a duplicate whose name differs from the kept one by a trailing newline
            schema = SCHEMAS[0]
            conn.execute(f"CREATE TABLE {qualified(schema, 'items')} (id int, email text)")
            conn.execute(f"CREATE INDEX items_email_idx ON {qualified(schema, 'items')} (email)")
            conn.execute(
                f"CREATE INDEX {ident('items_email_idx' + chr(10))}"
                f" ON {qualified(schema, 'items')} (email)"
            )
            # LINT013 for "users\n" must alter "users\n", never users
            conn.execute(
                f"CREATE TABLE {qualified(schema, 'users')} (id int PRIMARY KEY,"
                " created_at timestamptz, updated_at timestamptz)"
            )
            for i, name in enumerate(CORPUS[:8]):  # hostile constraint names: LINT008
                s, t = _place(i, name)
                conn.execute(
                    f"ALTER TABLE {qualified(s, t)} ADD CONSTRAINT {ident(name + ' chk')}"
                    f" CHECK ({ident(_truncated(name))} >= 0) NOT VALID"
                )
        yield url


@needs_psql
def test_lint_fixes_touch_only_what_they_name(lint_db: str, tmp_path: Path) -> None:
    report = lint(
        lint_db,
        schemas=SCHEMAS,
        rules=["LINT004", "LINT008", "LINT013", "LINT001"],
        # LINT013 asked for created_at/updated_at by name (its default follows the schema)
        config=LintConfig(audit_columns=("created_at", "updated_at")),
    )
    fixes = [f for f in report if f.fix]
    codes = {f.code for f in fixes}
    assert {"LINT004", "LINT008", "LINT013"} <= codes
    dup = next(f for f in report.of("LINT004") if f.metadata.get("table") == "items")
    dropped, kept = dup.metadata["index"], dup.metadata["duplicate_of"]
    assert {dropped, kept} == {"items_email_idx", "items_email_idx\n"}
    script = "\n".join(f.fix or "" for f in fixes) + "\n"
    with psycopg.connect(libpq_url(lint_db), autocommit=True) as conn:
        before = _snapshot(conn)
        users_before = _columns(conn, SCHEMAS[0], "users")
        _psql(lint_db, script, tmp_path, "fixes.sql")
        after = _snapshot(conn)
        _assert_canary(conn)
        assert before - after == {(SCHEMAS[0], dropped, "i")}
        assert (SCHEMAS[0], kept, "i") in after
        audited = {
            (f.metadata.get("schema"), f.metadata.get("table")) for f in report.of("LINT013")
        }
        assert (SCHEMAS[0], "users\n") in audited
        assert (SCHEMAS[0], "users") not in audited
        for i, name in enumerate(CORPUS):  # LINT013 added created/updated to each table named
            schema, table = _place(i, _truncated(name))
            if (schema, table) in audited:
                assert "updated_at" in _columns(conn, schema, table)
        validated = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'c' AND NOT convalidated"
        ).fetchone()
        assert validated == (0,)
        assert users_before == _columns(conn, SCHEMAS[0], "users")


# -- partition DDL --------------------------------------------------------------------


@needs_psql
@pytest.mark.parametrize("name", [INJECT, "users\n", 'a"b', "Mixed Case", "dot.ted", "t" * 58])
def test_partition_ddl_creates_only_its_partitions(pg_url: str, tmp_path: Path, name: str) -> None:
    schema = SCHEMAS[0]
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.canary (id int PRIMARY KEY, v int)")
        conn.execute("CREATE INDEX IF NOT EXISTS canary_idx ON public.canary (v)")
        conn.execute("TRUNCATE public.canary")
        conn.execute("INSERT INTO public.canary VALUES (1, 1), (2, 2), (3, 3)")
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
        conn.execute(
            f"CREATE TABLE {qualified(schema, name)} (id int, {ident(name)} int)"
            f" PARTITION BY HASH ({ident(name)})"
        )
        try:
            spec = PartitionSpec(table=name, schema=schema, key=name, strategy="hash", modulus=3)
            statements = offline_statements(spec, None, None)
            assert len(statements) == 3
            before = _snapshot(conn)
            _psql(pg_url, "".join(f"{s};\n" for s in statements), tmp_path, "parts.sql")
            added = _snapshot(conn) - before
            assert before - _snapshot(conn) == set()
            assert {k for _, _, k in added} == {"r"}
            assert {s for s, _, _ in added} == {schema}
            parents = conn.execute(
                "SELECT DISTINCT p.relname FROM pg_inherits i"
                " JOIN pg_class p ON p.oid = i.inhparent JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE c.relname = ANY(%s)",
                ([n for _, n, _ in added],),
            ).fetchall()
            assert parents == [(name,)]
            assert len(added) == 3
            _assert_canary(conn)
        finally:
            conn.execute(f"DROP TABLE {qualified(schema, name)} CASCADE")


# -- ERD and schema docs --------------------------------------------------------------


def test_erd_keeps_every_table_distinct(lint_db: str) -> None:
    with psycopg.connect(libpq_url(lint_db)) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p')",
            (SCHEMAS,),
        ).fetchone()
    assert tables is not None
    count = tables[0]
    mermaid = erd(lint_db, "mermaid", schemas=SCHEMAS)
    heads = [
        line for line in mermaid.splitlines() if line.startswith("    ") and line.endswith("{")
    ]
    ids = [line.split()[0].split("[")[0] for line in heads]
    assert len(ids) == count
    assert len(set(ids)) == count
    assert all(line.isprintable() for line in mermaid.splitlines())
    labels = [line.split("[", 1)[1] for line in heads if "[" in line.split()[0]]
    assert len(set(labels)) == len(labels)
    dot = erd(lint_db, "dot", schemas=SCHEMAS)
    nodes = [line.split(" [label=<")[0] for line in dot.splitlines() if " [label=<" in line]
    assert len(nodes) == count
    assert len(set(nodes)) == count
    markdown = erd(lint_db, "markdown", schemas=SCHEMAS)
    anchors = [line for line in markdown.splitlines() if line.startswith('<a id="')]
    assert len(anchors) == count
    assert len(set(anchors)) == count
    sections = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert len(set(sections)) == count
