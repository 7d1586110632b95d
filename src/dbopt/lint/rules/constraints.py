"""Constraints: NOT VALID constraints, enum-like columns without a CHECK."""

from __future__ import annotations

import re
from collections.abc import Iterator

from dbopt.findings import Finding
from dbopt.lint.base import LintConfig, Rule, rule, table_meta
from dbopt.lint.catalog import Catalog, Column, ColumnStats, Table
from dbopt.postgres.render import ident, index_name, literal

__all__: list[str] = []

_TEXT_TYPES = {"text", "varchar", "bpchar"}
_SMALL_INT_TYPES = {"int2", "int4"}
_KINDS = {"c": "CHECK", "f": "FOREIGN KEY"}


@rule(
    "LINT008",
    "not_valid_constraint",
    "warning",
    "A CHECK or FOREIGN KEY constraint was added NOT VALID and never validated.",
    "New rows are checked but existing ones are not: the planner cannot rely on the "
    "constraint, and old rows may violate it. Validating takes only a SHARE UPDATE "
    "EXCLUSIVE lock, so reads and writes continue.",
)
def not_valid_constraint(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    for table in catalog:
        for con in table.constraints:
            if con.validated or con.inherited or con.type not in _KINDS:
                continue
            yield r.finding(
                f"{table.sql_name}.{ident(con.name)}",
                f"{_KINDS[con.type]} constraint {con.name} on {table.sql_name} is NOT VALID",
                fix=f"ALTER TABLE {table.sql_name} VALIDATE CONSTRAINT {ident(con.name)};",
                **table_meta(table, constraint=con.name, kind=_KINDS[con.type]),
            )


def _rows(catalog: Catalog, table: Table) -> float:
    if table.reltuples >= 0 and not table.partitioned:
        return table.reltuples
    return sum(max(t.reltuples, 0) for t in catalog.leaves(table))


def _constrained(table: Table) -> set[int]:
    """Columns that a CHECK, key or foreign key already governs."""
    out = {n for c in table.constraints if c.type in "cfpu" for n in c.columns}
    out.update(n for i in table.indexes if i.is_unique and i.key_count == 1 for n in i.columns)
    return out


def _value_set(stats: ColumnStats, max_values: int) -> list[str] | None:
    """The column's complete value set, when the MCV list covers every non-null row."""
    if not 2 <= len(stats.values) <= max_values:
        return None
    if sum(stats.freqs) + stats.null_frac < 0.99:
        return None
    return stats.values


def _int_values(values: list[str]) -> list[int] | None:
    try:
        return sorted(int(v) for v in values)
    except ValueError:
        return None


def _check_fix(table: Table, col: Column, body: str) -> str:
    name = index_name(table.name, [col.name], "check")
    return (
        f"ALTER TABLE {table.sql_name} ADD CONSTRAINT {ident(name)} CHECK ({body}) NOT VALID;\n"
        f"ALTER TABLE {table.sql_name} VALIDATE CONSTRAINT {ident(name)};"
    )


@rule(
    "LINT009",
    "enum_like_column",
    "info",
    "A text or small-integer column holds a handful of values but has no CHECK or enum type.",
    "A status or difficulty column with a fixed set of values accepts any typo unless the "
    "database says which values are allowed; a CHECK (or an enum type) also documents them.",
    needs=("relations", "columns", "constraints", "indexes", "stats"),
)
def enum_like_column(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    id_pattern = re.compile(config.id_column_pattern)
    for table in catalog.top_level():
        if _rows(catalog, table) < config.enum_min_rows:
            continue
        constrained = _constrained(table)
        for col in table.columns.values():
            if col.num in constrained or col.typtype != "b":
                continue
            is_text = col.typname in _TEXT_TYPES
            if not is_text and (col.typname not in _SMALL_INT_TYPES or id_pattern.match(col.name)):
                continue
            stats = catalog.stats.get((table.oid, col.name))
            values = _value_set(stats, config.enum_max_values) if stats else None
            if values is None:
                continue
            if is_text:
                seen = sorted(values)
                body = f"{ident(col.name)} IN ({', '.join(literal(v) for v in seen)})"
                shown: list[object] = list(seen)
            else:
                ints = _int_values(values)
                if ints is None:
                    continue
                body = f"{ident(col.name)} BETWEEN {ints[0]} AND {ints[-1]}"
                shown = list(ints)
            yield r.finding(
                f"{table.sql_name}.{ident(col.name)}",
                f"column {col.name} of {table.sql_name} holds {len(values)} distinct values "
                f"({', '.join(map(str, shown))}) and has no CHECK constraint",
                fix=_check_fix(table, col, body)
                + "\n-- values are those ANALYZE saw; review the list before applying",
                **table_meta(table, column=col.name, values=shown, type=col.type),
            )
