"""Conventions: audit timestamps, naming.

Both rules follow the convention the schema already uses unless one is
configured: LINT013 looks for the timestamp columns most tables already have
(Pagila's ``last_update``) and reports the tables that lack them, and LINT014
reports names that break snake_case only when most names follow it. Tables
that migration tools own (``alembic_version`` and the like) are never reported.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from dbopt.findings import Finding, Severity
from dbopt.lint.base import LintConfig, Rule, register_rules, table_meta
from dbopt.lint.catalog import Catalog, Column, Table
from dbopt.postgres.render import ident, qualified, snake_case

__all__ = ["SNAKE_CASE", "TOOL_TABLES", "inferred_audit_columns"]

#: Tables that schema-migration tools create and own; their shape is the tool's business.
TOOL_TABLES = frozenset(
    {
        "alembic_version",
        "django_migrations",
        "schema_migrations",
        "ar_internal_metadata",
        "flyway_schema_history",
        "goose_db_version",
        "knex_migrations",
        "knex_migrations_lock",
        "databasechangelog",
        "databasechangeloglock",
        "__diesel_schema_migrations",
        "_prisma_migrations",
        "sequelizemeta",
    }
)

#: The naming convention LINT014 follows when none is configured.
SNAKE_CASE = r"^[a-z_][a-z0-9_]*$"

_TIME_TYPES = {"timestamp", "timestamptz", "date"}
#: Share of tables that must have a timestamp column for it to count as the convention.
_CONVENTION_SHARE = 2 / 3
_CONVENTION_MIN_TABLES = 3
#: Share of names that must already be snake_case before LINT014 reports the rest.
_NAMING_SHARE = 0.8


def _user_tables(catalog: Catalog) -> list[Table]:
    return [t for t in catalog.top_level() if t.name.lower() not in TOOL_TABLES]


@dataclass(frozen=True)
class _Convention:
    name: str
    column: Column | None  # how most tables define it (None when configured by name only)


def inferred_audit_columns(catalog: Catalog) -> list[str]:
    """Timestamp columns at least two thirds of the tables (and three or more) already have."""
    tables = _user_tables(catalog)
    counts = Counter(c.name for t in tables for c in t.columns.values() if c.typname in _TIME_TYPES)
    need = max(_CONVENTION_MIN_TABLES, len(tables) * _CONVENTION_SHARE)
    return sorted(name for name, n in counts.items() if n >= need)


def _typical(tables: list[Table], name: str) -> Column | None:
    """The most common definition (type, nullability, default) of column ``name``."""
    defs = Counter(
        (c.type, c.not_null, c.default)
        for t in tables
        for c in t.columns.values()
        if c.name == name and c.typname in _TIME_TYPES
    )
    if not defs:
        return None
    (typ, not_null, default), _ = defs.most_common(1)[0]
    return Column(0, name, typ, "", "b", "D", not_null, default=default)


def _add_column(table: Table, conv: _Convention) -> str:
    col = conv.column
    if col is None:
        return (
            f"ALTER TABLE {table.sql_name} ADD COLUMN {ident(conv.name)} timestamptz NOT NULL "
            "DEFAULT now();"
        )
    sql = f"ALTER TABLE {table.sql_name} ADD COLUMN {ident(conv.name)} {col.type}"
    if col.default is not None:
        sql += f" DEFAULT {col.default}"
    if col.not_null and col.default is not None:
        sql += " NOT NULL"
    return sql + ";"


def missing_audit_columns(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    tables = _user_tables(catalog)
    groups: list[tuple[_Convention, ...]]
    inferred = config.audit_columns is None
    if config.audit_columns is None:
        groups = [
            (_Convention(name, _typical(tables, name)),) for name in inferred_audit_columns(catalog)
        ]
    else:
        groups = [
            tuple(_Convention(n, None) for n in g.split("|")) for g in config.audit_columns if g
        ]
    for table in tables:
        names = {c.name for c in table.columns.values()}
        missing = [g[0] for g in groups if not names.intersection(c.name for c in g)]
        if not missing:
            continue
        wanted = [c.name for c in missing]
        fix = "\n".join(_add_column(table, c) for c in missing)
        if any(n.startswith(("updated", "last_")) for n in wanted):
            fix += (
                f"\n-- keep {wanted[-1]} current on UPDATE as the other tables do (trigger or ORM)"
            )
        source = "most tables have" if inferred else "configured"
        yield r.finding(
            table.sql_name,
            f"table {table.sql_name} has no {' / '.join(wanted)} column ({source})",
            fix=fix,
            **table_meta(table, missing=wanted, inferred=inferred),
        )


def _names(table: Table) -> Iterator[str]:
    yield table.name
    yield from (c.name for c in table.columns.values())


class _Name(NamedTuple):
    """A name LINT014 judges: what it names, the finding's object, and the SQL that renames
    it, up to the new name."""

    kind: str
    name: str
    object: str
    where: str  # " of <table>", " on <table>", or nothing for the table itself
    rename: str


def _named(table: Table) -> Iterator[_Name]:
    """The names of ``table``, its columns, indexes and constraints (those it owns)."""
    tbl = table.sql_name
    yield _Name("table", table.name, tbl, "", f"ALTER TABLE {tbl} RENAME TO")
    for col in table.columns.values():
        col_sql = ident(col.name)
        rename = f"ALTER TABLE {tbl} RENAME COLUMN {col_sql} TO"
        yield _Name("column", col.name, f"{tbl}.{col_sql}", f" of {tbl}", rename)
    for idx in table.indexes:
        if not idx.backs_constraint:
            idx_sql = qualified(table.schema, idx.name)
            rename = f"ALTER INDEX {idx_sql} RENAME TO"
            yield _Name("index", idx.name, idx_sql, f" on {tbl}", rename)
    for con in table.constraints:
        if not con.inherited:
            con_sql = ident(con.name)
            rename = f"ALTER TABLE {tbl} RENAME CONSTRAINT {con_sql} TO"
            yield _Name("constraint", con.name, f"{tbl}.{con_sql}", f" on {tbl}", rename)


def naming_convention(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    tables = _user_tables(catalog)
    pattern = re.compile(config.naming_pattern or SNAKE_CASE)
    shown = config.naming_pattern or SNAKE_CASE
    if config.naming_pattern is None:
        names = [n for t in tables for n in _names(t)]
        matching = sum(1 for n in names if pattern.match(n))
        if not names or matching < _NAMING_SHARE * len(names):
            return

    for table in tables:
        for n in _named(table):
            if pattern.match(n.name) is None:
                yield r.finding(
                    n.object,
                    f"{n.kind} name {n.name!r}{n.where} does not match {shown}",
                    fix=f"{n.rename} {ident(snake_case(n.name))};",
                    **table_meta(table, kind=n.kind, name=n.name),
                )


register_rules(
    Rule(
        "LINT013",
        "missing_audit_columns",
        Severity.INFO,
        "A table lacks the timestamp columns the other tables have (or the configured "
        "``audit_columns``).",
        "Without them nobody can tell when a row appeared or last changed: debugging, "
        "incremental exports and retention all need it. With no ``audit_columns`` configured "
        "the rule follows the schema's own convention: a timestamp column that two thirds of "
        "the tables have (e.g. ``last_update``) is expected on the rest; a schema without one "
        "gets no findings.",
        missing_audit_columns,
    ),
    Rule(
        "LINT014",
        "naming_convention",
        Severity.INFO,
        "A table, column, index or constraint name breaks the naming convention.",
        "Mixed-case or spaced names must be double-quoted in every query forever, and a mix of "
        "conventions makes the schema harder to read and to query correctly. With no "
        "``naming_pattern`` configured, names are held to snake_case only when at least 80 % "
        "of the schema's table and column names already are: a schema consistently in another "
        "convention is left alone.",
        naming_convention,
    ),
)
