"""Constraints: NOT VALID constraints, enum-like columns without a CHECK."""

from __future__ import annotations

import re
from collections.abc import Iterator

from dbopt.findings import Finding, Severity
from dbopt.lint.base import LintConfig, Rule, register_rules, table_meta
from dbopt.lint.catalog import Catalog, Column, ColumnStats, Table
from dbopt.postgres.render import ident, index_name, literal

__all__: list[str] = []

_TEXT_TYPES = {"text", "varchar", "bpchar"}
_SMALL_INT_TYPES = {"int2", "int4"}
_KINDS = {"c": "CHECK", "f": "FOREIGN KEY"}


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


#: Column names whose values are open-ended text, whatever a sample of them shows.
_FREE_TEXT_NAMES = re.compile(
    r"(^|_)(name|title|description|desc|body|text|comment|comments|note|notes|message|"
    r"content|summary|language|lang|locale|country|currency|timezone|tz|email|url|city|"
    r"address|tag|tags|label|slug|username|ip|host|path|version)$"
)
#: Values that look like codes from an open standard list (ISO language, country, currency).
_CODE_VALUE = re.compile(r"^([a-z]{2}([-_][A-Za-z]{2,4})?|[A-Z]{2,3})$")
_WORD_VALUE = re.compile(r"^[A-Za-z0-9_.:/'-]{1,32}$")


def _free_text(col: Column, values: list[str]) -> bool:
    """True when the column looks like text the application writes freely, not a fixed set."""
    if _FREE_TEXT_NAMES.search(col.name.lower()):
        return True
    if any(not _WORD_VALUE.match(v) for v in values):  # empty, spaces, long or punctuated
        return True
    return all(_CODE_VALUE.match(v) for v in values)


def _int_values(values: list[str]) -> list[int] | None:
    try:
        return sorted(int(v) for v in values)
    except ValueError:
        return None


_SAMPLE_WARNING = (
    "-- from a sample: these are the values ANALYZE saw in the rows it read, not a rule the "
    "application follows;\n"
    "-- a value it writes that is not listed would make INSERT and UPDATE fail. Confirm the "
    "full set first."
)


def _check_fix(table: Table, col: Column, body: str) -> str:
    name = index_name(table.name, [col.name], "check")
    return (
        f"{_SAMPLE_WARNING}\n"
        f"ALTER TABLE {table.sql_name} ADD CONSTRAINT {ident(name)} CHECK ({body}) NOT VALID;\n"
        f"ALTER TABLE {table.sql_name} VALIDATE CONSTRAINT {ident(name)};"
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
                if _free_text(col, values):
                    continue
                shown: list[object] = [*sorted(values)]
                body = f"{ident(col.name)} IN ({', '.join(literal(str(v)) for v in shown)})"
            else:
                # a scale from 0 or 1 with no gaps (a flag, a 1..5 rating) is a rule; any
                # other observed range is data (rental_duration 3..7 today, 14 tomorrow)
                ints = _int_values(values)
                if (
                    ints is None
                    or ints[0] not in (0, 1)
                    or ints != list(range(ints[0], ints[-1] + 1))
                ):
                    continue
                shown = list(ints)
                body = f"{ident(col.name)} BETWEEN {ints[0]} AND {ints[-1]}"
            yield r.finding(
                f"{table.sql_name}.{ident(col.name)}",
                f"column {col.name} of {table.sql_name} held only {len(shown)} distinct values "
                f"({', '.join(map(str, shown))}) in ANALYZE's sample and has no CHECK "
                "constraint; if that is the full set, say so in the schema",
                fix=_check_fix(table, col, body),
                **table_meta(table, column=col.name, values=shown, type=col.type, from_sample=True),
            )


register_rules(
    Rule(
        "LINT008",
        "not_valid_constraint",
        Severity.WARNING,
        "A CHECK or FOREIGN KEY constraint was added NOT VALID and never validated.",
        "New rows are checked but existing ones are not: the planner cannot rely on the "
        "constraint, and old rows may violate it. Validating takes only a SHARE UPDATE "
        "EXCLUSIVE lock, so reads and writes continue.",
        not_valid_constraint,
    ),
    Rule(
        "LINT009",
        "enum_like_column",
        Severity.INFO,
        "A text column holds a handful of code-like values, or an integer a small scale from 0 "
        "or 1, but has no CHECK or enum type.",
        "A status or kind column with a fixed set of values accepts any typo unless the "
        "database says which values are allowed; a CHECK (or an enum type) also documents them. "
        "The values come from the planner's statistics, a sample: the finding says so, and "
        "free-text-like columns (names, languages, codes from open lists) and integer ranges "
        "that do not start at 0 or 1 are not reported, because a sample cannot tell their "
        "allowed set.",
        enum_like_column,
        needs=("relations", "columns", "constraints", "indexes", "stats"),
    ),
)
