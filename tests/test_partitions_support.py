"""Helpers shared by the partition manager's tests (this module holds no tests).

Each test works in a schema of its own (tables and dbopt's ownership tables
alike), dropped afterwards, so tests never see each other's partitions.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from dbopt.partitions import PartitionManager
from dbopt.testing import libpq_url


def connect(pg_url: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A plain psycopg connection to the test database (UTC, ISO dates)."""
    conn = psycopg.connect(libpq_url(pg_url), autocommit=autocommit)
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET DateStyle = 'ISO, YMD'")
    return conn


@contextmanager
def fresh_schema(pg_url: str) -> Iterator[str]:
    """A new empty schema, dropped with everything in it afterwards."""
    name = f"pt_{secrets.token_hex(4)}"
    with connect(pg_url) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with connect(pg_url) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def make_manager(pg_url: str, schema: str, **options: Any) -> PartitionManager:
    """A manager keeping its state in ``schema``, with short lock waits for tests."""
    settings: dict[str, Any] = {"lock_timeout": 0.5, "retries": 3, "backoff": 0.05}
    settings.update(options)
    return PartitionManager(pg_url, state_schema=schema, **settings)


def bounds(pg_url: str, schema: str, table: str, zone: str = "UTC") -> list[tuple[str, str]]:
    """``(partition name, bound text)`` as PostgreSQL prints them in ``zone``, by name."""
    with connect(pg_url) as conn:
        conn.execute("SELECT set_config('TimeZone', %s, false)", (zone,))
        rows = conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass"
            " ORDER BY c.relname",
            (f'"{schema}"."{table}"',),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def routed(pg_url: str, schema: str, table: str) -> dict[str, int]:
    """Rows per partition, read through the parent (``tableoid``)."""
    with connect(pg_url) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT c.relname, count(*) FROM {} t JOIN pg_class c ON c.oid = t.tableoid"
                " GROUP BY 1 ORDER BY 1"
            ).format(sql.Identifier(schema, table))
        ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def exists(pg_url: str, schema: str, table: str) -> bool:
    """Whether ``schema.table`` exists (attached or not)."""
    with connect(pg_url) as conn:
        row = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()
    return row is not None and row[0] is not None


EVENTS_COLUMNS = (
    "id bigint GENERATED ALWAYS AS IDENTITY, created_at timestamptz NOT NULL,"
    " payload text, PRIMARY KEY (id, created_at)"
)
