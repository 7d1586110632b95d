"""How: the DDL of each operation, composed with ``psycopg.sql`` through
:mod:`dbopt.postgres.render` (every name quoted, NUL refused).

Partitions are made the low-lock way: ``CREATE TABLE ... (LIKE parent ...)``
then ``ALTER TABLE parent ATTACH PARTITION``, which takes SHARE UPDATE
EXCLUSIVE on the parent (reads and writes go on) where ``CREATE TABLE ...
PARTITION OF`` would take ACCESS EXCLUSIVE. ``partition_of`` is kept for
tables nobody uses yet (a parent created in the same transaction).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg import sql

from dbopt.partitions.plan import (
    Bound,
    DefaultBound,
    HashBound,
    ListBound,
    Name,
    RangeBound,
    literal_text,
)
from dbopt.postgres import render

__all__ = [
    "attach",
    "bound_clause",
    "create_like",
    "create_parent",
    "detach",
    "drop",
    "finalize_detach",
    "ident",
    "lock",
    "partition_of",
]


def ident(name: Name) -> sql.Identifier:
    """The quoted ``schema.name``."""
    return render.sql_ident(name.schema, name.name)


def bound_clause(bound: Bound, zone: str = "UTC") -> sql.Composable:
    """``FOR VALUES ...`` / ``DEFAULT`` with every value as a literal."""
    if isinstance(bound, DefaultBound):
        return sql.SQL("DEFAULT")
    if isinstance(bound, HashBound):
        return sql.SQL("FOR VALUES WITH (MODULUS {}, REMAINDER {})").format(
            render.sql_literal(bound.modulus), render.sql_literal(bound.remainder)
        )
    if isinstance(bound, ListBound):
        items = [sql.SQL("NULL") if v is None else render.sql_literal(v) for v in bound.values]
        return sql.SQL("FOR VALUES IN ({})").format(sql.SQL(", ").join(items))
    if not isinstance(bound, RangeBound):
        raise TypeError(f"not a partition bound: {bound!r}")
    ends = [
        sql.SQL(word) if value is None else render.sql_literal(literal_text(value, zone))
        for value, word in ((bound.lower, "MINVALUE"), (bound.upper, "MAXVALUE"))
    ]
    return sql.SQL("FOR VALUES FROM ({}) TO ({})").format(*ends)


def _storage(tablespace: str | None, storage: Iterable[tuple[str, Any]]) -> sql.Composable:
    parts: list[sql.Composable] = []
    options = [sql.SQL("{} = {}").format(sql.SQL(k), render.sql_literal(v)) for k, v in storage]
    if options:
        parts.append(sql.SQL(" WITH ({})").format(sql.SQL(", ").join(options)))
    if tablespace:
        parts.append(sql.SQL(" TABLESPACE {}").format(render.sql_ident(tablespace)))
    return sql.Composed(parts)


def create_like(
    parent: Name,
    name: Name,
    *,
    server_version: int,
    tablespace: str | None = None,
    storage: Iterable[tuple[str, Any]] = (),
) -> sql.Composed:
    """A standalone table shaped like ``parent``, ready to be attached.

    Copies defaults, CHECK and NOT NULL constraints, generated columns,
    column storage, comments and extended statistics; indexes come from
    ATTACH, which builds the parent's indexes on the (empty) table.
    """
    including = ["DEFAULTS", "CONSTRAINTS", "GENERATED", "STORAGE", "COMMENTS", "STATISTICS"]
    if server_version >= 140000:
        including.append("COMPRESSION")
    clause = " ".join(f"INCLUDING {word}" for word in including)
    return sql.SQL("CREATE TABLE {} (LIKE {} {}){}").format(
        ident(name), ident(parent), sql.SQL(clause), _storage(tablespace, storage)
    )


def attach(parent: Name, name: Name, bound: Bound, zone: str = "UTC") -> sql.Composed:
    """``ALTER TABLE parent ATTACH PARTITION name <bound>``."""
    return sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(
        ident(parent), ident(name), bound_clause(bound, zone)
    )


def partition_of(
    parent: Name,
    name: Name,
    bound: Bound,
    zone: str = "UTC",
    *,
    tablespace: str | None = None,
    storage: Iterable[tuple[str, Any]] = (),
) -> sql.Composed:
    """``CREATE TABLE name PARTITION OF parent <bound>`` (ACCESS EXCLUSIVE on the parent)."""
    return sql.SQL("CREATE TABLE {} PARTITION OF {} {}{}").format(
        ident(name), ident(parent), bound_clause(bound, zone), _storage(tablespace, storage)
    )


def detach(parent: Name, name: Name, *, concurrently: bool) -> sql.Composed:
    """``ALTER TABLE parent DETACH PARTITION name [CONCURRENTLY]``."""
    return sql.SQL("ALTER TABLE {} DETACH PARTITION {}{}").format(
        ident(parent), ident(name), sql.SQL(" CONCURRENTLY" if concurrently else "")
    )


def finalize_detach(parent: Name, name: Name) -> sql.Composed:
    """``ALTER TABLE parent DETACH PARTITION name FINALIZE``."""
    return sql.SQL("ALTER TABLE {} DETACH PARTITION {} FINALIZE").format(ident(parent), ident(name))


def drop(name: Name) -> sql.Composed:
    """``DROP TABLE name`` (no CASCADE: a dependent view makes it fail, visibly)."""
    return sql.SQL("DROP TABLE {}").format(ident(name))


def lock(name: Name, mode: str) -> sql.Composed:
    """``LOCK TABLE ONLY name IN <mode> MODE`` (ONLY: partitions are not locked with it)."""
    return sql.SQL("LOCK TABLE ONLY {} IN {} MODE").format(ident(name), sql.SQL(mode))


def create_parent(parent: Name, columns: sql.Composable, strategy: str, key: str) -> sql.Composed:
    """``CREATE TABLE parent (<columns>) PARTITION BY <strategy> (key)``."""
    return sql.SQL("CREATE TABLE {} ({}) PARTITION BY {} ({})").format(
        ident(parent), columns, sql.SQL(strategy.upper()), render.sql_ident(key)
    )
