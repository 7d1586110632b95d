"""Conventions: audit timestamps, naming."""

from __future__ import annotations

import re
from collections.abc import Iterator

from dbopt.findings import Finding
from dbopt.lint.base import LintConfig, Rule, rule, table_meta
from dbopt.lint.catalog import Catalog
from dbopt.postgres.render import ident, qualified, snake_case

__all__: list[str] = []


@rule(
    "LINT013",
    "missing_audit_columns",
    "info",
    "A table lacks the audit timestamp columns (created_at, updated_at by default).",
    "Without them nobody can tell when a row appeared or last changed: debugging, "
    "incremental exports and retention all need it.",
)
def missing_audit_columns(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    groups = [tuple(g.split("|")) for g in config.audit_columns if g]
    for table in catalog.top_level():
        names = {c.name for c in table.columns.values()}
        missing = [g for g in groups if not names.intersection(g)]
        if not missing:
            continue
        wanted = [g[0] for g in missing]
        fix = "\n".join(
            f"ALTER TABLE {table.sql_name} ADD COLUMN {ident(name)} timestamptz NOT NULL "
            "DEFAULT now();"
            for name in wanted
        )
        if any(name.startswith("updated") for name in wanted):
            fix += "\n-- keep updated_at current with a BEFORE UPDATE trigger or in the ORM"
        yield r.finding(
            table.sql_name,
            f"table {table.sql_name} has no {' / '.join(wanted)} column",
            fix=fix,
            **table_meta(table, missing=wanted),
        )


@rule(
    "LINT014",
    "naming_convention",
    "info",
    "A table, column, index or constraint name breaks the naming convention (snake_case).",
    "Mixed-case or spaced names must be double-quoted in every query forever, and a mix of "
    "conventions makes the schema harder to read and to query correctly.",
)
def naming_convention(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    pattern = re.compile(config.naming_pattern)

    def bad(name: str) -> bool:
        return pattern.match(name) is None

    for table in catalog.top_level():
        tbl = table.sql_name
        if bad(table.name):
            yield r.finding(
                tbl,
                f"table name {table.name!r} does not match {config.naming_pattern}",
                fix=f"ALTER TABLE {tbl} RENAME TO {ident(snake_case(table.name))};",
                **table_meta(table, kind="table", name=table.name),
            )
        for col in table.columns.values():
            if bad(col.name):
                yield r.finding(
                    f"{tbl}.{ident(col.name)}",
                    f"column name {col.name!r} of {tbl} does not match {config.naming_pattern}",
                    fix=f"ALTER TABLE {tbl} RENAME COLUMN {ident(col.name)} TO "
                    f"{ident(snake_case(col.name))};",
                    **table_meta(table, kind="column", name=col.name),
                )
        for idx in table.indexes:
            if bad(idx.name) and not idx.backs_constraint:
                yield r.finding(
                    qualified(table.schema, idx.name),
                    f"index name {idx.name!r} on {tbl} does not match {config.naming_pattern}",
                    fix=f"ALTER INDEX {qualified(table.schema, idx.name)} RENAME TO "
                    f"{ident(snake_case(idx.name))};",
                    **table_meta(table, kind="index", name=idx.name),
                )
        for con in table.constraints:
            if bad(con.name) and not con.inherited:
                yield r.finding(
                    f"{tbl}.{ident(con.name)}",
                    f"constraint name {con.name!r} on {tbl} does not match {config.naming_pattern}",
                    fix=f"ALTER TABLE {tbl} RENAME CONSTRAINT {ident(con.name)} TO "
                    f"{ident(snake_case(con.name))};",
                    **table_meta(table, kind="constraint", name=con.name),
                )
