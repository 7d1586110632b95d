"""dbopt.postgres.render: quoting that round-trips through the server, inert comments and Python."""

from __future__ import annotations

import ast
import re
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from dbopt.errors import ConfigurationError, DboptError
from dbopt.postgres import render
from dbopt.testing import libpq_url

# Any character PostgreSQL accepts in a name (no NUL, no surrogates), at most 63 bytes.
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=63,
).filter(lambda s: len(s.encode()) <= render.MAX_IDENTIFIER_BYTES)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))

_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")


def unescape(text: str) -> str:
    """The inverse of render.escape (written independently, to check it)."""
    return _ESCAPE.sub(lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(1)[1:], 16)), text)


def test_ident_quotes_what_is_not_plain() -> None:
    assert render.ident("users") == "users"
    assert render.ident("users", force=True) == '"users"'
    assert render.ident("items_email_idx\n") == '"items_email_idx\n"'
    assert render.ident("Users") == '"Users"'
    assert render.ident("select") == '"select"'
    assert render.ident('a"b') == '"a""b"'
    assert render.ident("ü") == '"ü"'
    assert render.qualified("public", "a.b") == 'public."a.b"'
    assert render.qualified(None, "t") == "t"


@pytest.mark.parametrize("bad", ["", "a\x00b"])
def test_ident_refuses_nul_and_empty(bad: str) -> None:
    with pytest.raises(render.RenderError):
        render.ident(bad)
    with pytest.raises(ConfigurationError):
        render.sql_ident("public", bad)


def test_literal_refuses_nul() -> None:
    assert render.literal("it's") == "'it''s'"
    assert render.literal("a\\b") == "'a\\b'"
    with pytest.raises(DboptError):
        render.literal("a\x00")
    with pytest.raises(DboptError):
        render.sql_literal("a\x00")


@given(texts)
def test_comments_are_one_line_and_reversible(text: str) -> None:
    for line in (render.comment(text), render.py_comment(text)):
        assert len(line.splitlines()) == 1
        assert "\n" not in line
        assert "\r" not in line
    assert unescape(render.escape(text)) == text


@given(texts)
def test_python_rendering_is_inert(text: str) -> None:
    doc, value, note = render.py_docstring(text), render.py_literal(text), render.py_comment(text)
    source = f'"""{doc}"""\nx = {value}  {note}\n'
    tree = ast.parse(source)
    assert len(tree.body) == 2  # the docstring and one assignment: nothing else got in
    assert isinstance(tree.body[1], ast.Assign)
    assert ast.literal_eval(tree.body[1].value) == text
    shown = ast.get_docstring(tree, clean=False)
    assert shown is not None
    assert unescape(shown) == text


@given(texts)
def test_sa_text_has_no_bind_parameters(text: str) -> None:
    clause = sa.text(render.sa_text(text))
    assert clause._bindparams == {}
    assert str(clause) == text


def test_index_name_unique_after_truncation() -> None:
    a = "t" * 62 + "1"
    b = "t" * 62 + "2"
    na, nb = render.index_name(a, ["col"]), render.index_name(b, ["col"])
    assert na != nb
    assert len(na.encode()) <= 63
    assert len(nb.encode()) <= 63
    assert render.index_name(a, ["col"]) == na  # stable
    assert render.index_name("users", ["email"]) == "users_email_idx"
    # replaced characters get a hash too: "users\n" and "users_" do not collide
    assert render.index_name("users\n", ["x"]) != render.index_name("users_", ["x"])
    assert render.index_name("users", ["email"], taken={"users_email_idx"}) != "users_email_idx"


@given(names, st.lists(names, min_size=1, max_size=3))
def test_index_name_fits_and_is_valid_utf8(table: str, columns: list[str]) -> None:
    name = render.index_name(table, columns)
    assert 0 < len(name.encode()) <= 63
    name.encode().decode()  # cut on a character boundary


@given(names, names)
def test_label_is_injective(a: str, b: str) -> None:
    assert render.label(a, b) != render.label(a + "." + b)
    if a != b:
        assert render.label(a) != render.label(b)
        assert render.label("s", a) != render.label("s", b)


# -- round trips through the server ---------------------------------------------------


@pytest.fixture(scope="module")
def conn(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    schema = f"render_{secrets.token_hex(4)}"
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as c:
        c.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        c.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        try:
            yield c
        finally:
            c.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _round_trip(conn: psycopg.Connection[Any], schema: str, table: str, column: str) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute(f"CREATE SCHEMA {render.ident(schema)}")
        conn.execute(f"CREATE TABLE {render.qualified(schema, table)} ({render.ident(column)} int)")
        conn.execute(
            f"INSERT INTO {render.qualified(schema, table)} ({render.ident(column)}) "
            f"VALUES (1)  {render.comment(table)}\n"
        )
        rows = conn.execute(
            "SELECT n.nspname, c.relname, a.attname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
            " WHERE n.nspname = %s",
            (schema,),
        ).fetchall()
        assert rows == [(schema, table, column)]
        literal = conn.execute(f"SELECT {render.literal(table)}").fetchone()
        assert literal == (table,)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(schema=names, table=names, column=names)
def test_quoted_names_round_trip_through_the_server(
    conn: psycopg.Connection[Any], schema: str, table: str, column: str
) -> None:
    if schema.startswith("pg_"):
        schema = "x" + schema[:-1] if len(schema.encode()) >= 63 else "x" + schema
    _round_trip(conn, schema, table, column)


@pytest.mark.parametrize(
    "name",
    [
        "items_email_idx\n",
        "x\nDROP TABLE canary; --",
        "select",
        "Mixed Case",
        'q"uote',
        "tab\tcr\r",
        "ü" * 31 + "x",  # 63 bytes
        "e" * 63,
        "colon:name",
        "pct%s",
    ],
)
def test_corpus_round_trips(conn: psycopg.Connection[Any], name: str) -> None:
    _round_trip(conn, "s " + render.truncate_bytes(name, 60), name, name)
