"""Types: timestamp without time zone, json instead of jsonb, keys near overflow."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dbopt.findings import Finding, Severity
from dbopt.lint.base import LintConfig, Rule, rule, table_meta
from dbopt.lint.catalog import Catalog, Column, Table
from dbopt.postgres.render import ident, literal

__all__: list[str] = []

_TYPE_MAX = {"int2": 2**15 - 1, "int4": 2**31 - 1, "int8": 2**63 - 1}


def _columns_of(catalog: Catalog, typname: str) -> Iterator[tuple[Table, Column]]:
    for table in catalog.top_level():
        for col in table.columns.values():
            if col.typname == typname:
                yield table, col


@rule(
    "LINT010",
    "timestamp_without_time_zone",
    "warning",
    "A column is ``timestamp`` (without time zone).",
    "A timestamp without time zone stores wall-clock time with no offset: values written "
    "from servers or sessions in different time zones cannot be compared, and DST makes "
    "some local times ambiguous. timestamptz stores an instant and costs the same 8 bytes.",
)
def timestamp_without_time_zone(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    for table, col in _columns_of(catalog, "timestamp"):
        yield r.finding(
            f"{table.sql_name}.{ident(col.name)}",
            f"column {col.name} of {table.sql_name} is timestamp without time zone",
            fix=(
                f"ALTER TABLE {table.sql_name} ALTER COLUMN {ident(col.name)} TYPE timestamptz "
                f"USING {ident(col.name)} AT TIME ZONE {literal('UTC')};"
                "  -- rewrites the table under ACCESS EXCLUSIVE (no rewrite when the"
                " session TimeZone is UTC and no USING clause is given)"
            ),
            **table_meta(table, column=col.name),
        )


@rule(
    "LINT011",
    "json_column",
    "info",
    "A column is ``json`` rather than ``jsonb``.",
    "json keeps the text as written and reparses it on every access; it has no equality "
    "operator (no DISTINCT, GROUP BY or UNIQUE) and no GIN indexing. jsonb is what "
    "queries on the content want.",
)
def json_column(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    for table, col in _columns_of(catalog, "json"):
        yield r.finding(
            f"{table.sql_name}.{ident(col.name)}",
            f"column {col.name} of {table.sql_name} is json, not jsonb",
            fix=(
                f"ALTER TABLE {table.sql_name} ALTER COLUMN {ident(col.name)} TYPE jsonb "
                f"USING {ident(col.name)}::jsonb;  -- rewrites the table under ACCESS EXCLUSIVE"
            ),
            **table_meta(table, column=col.name),
        )


def _level(ratio: float, config: LintConfig) -> Severity | None:
    if ratio >= config.overflow_error:
        return Severity.ERROR
    if ratio >= config.overflow_warn:
        return Severity.WARNING
    return None


@rule(
    "LINT012",
    "key_overflow",
    "error",
    "An integer key or its sequence has used most of its range.",
    "When the sequence reaches the column type's maximum, every INSERT fails. Widening an "
    "integer column to bigint rewrites the table, which takes hours on a large one: start "
    "early (add a bigint column, backfill in batches, swap).",
    needs=("relations", "columns", "constraints", "sequences"),
)
def key_overflow(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    for seq in catalog.sequences:
        if seq.last_value is None or seq.cycle or seq.increment_by < 0:
            continue
        owner = catalog.tables.get(seq.owner_relid or 0)
        col = owner.columns.get(seq.owner_column or 0) if owner else None
        limit = min(
            seq.max_value, _TYPE_MAX.get(col.typname, seq.max_value) if col else seq.max_value
        )
        checks: list[tuple[str, str, int, str | None, dict[str, Any]]] = []
        target = f"{owner.sql_name}.{ident(col.name)}" if owner and col else seq.sql_name
        fix = None
        if owner and col and col.typname in ("int2", "int4"):
            fix = (
                f"ALTER SEQUENCE {seq.sql_name} AS bigint;\n"
                f"ALTER TABLE {owner.sql_name} ALTER COLUMN {ident(col.name)} TYPE bigint;"
                "  -- rewrites the table; on a large table add a bigint column and backfill"
            )
        elif col is None or seq.max_value < _TYPE_MAX["int8"]:
            fix = f"ALTER SEQUENCE {seq.sql_name} AS bigint MAXVALUE {_TYPE_MAX['int8']};"
        checks.append((target, f"sequence {seq.name}", limit, fix, {}))
        # foreign keys that copy this key into a narrower column overflow first
        if owner and col:
            for table in catalog:
                for fk in table.constraints:
                    if (
                        fk.type != "f"
                        or fk.inherited
                        or fk.ref_relid != owner.oid
                        or fk.ref_columns != [col.num]
                    ):
                        continue
                    ref_col = table.columns.get(fk.columns[0])
                    if ref_col is None or _TYPE_MAX.get(ref_col.typname, 0) >= limit:
                        continue
                    checks.append(
                        (
                            f"{table.sql_name}.{ident(ref_col.name)}",
                            f"column {ref_col.name} ({ref_col.type}) referencing {col.name}",
                            _TYPE_MAX[ref_col.typname],
                            f"ALTER TABLE {table.sql_name} ALTER COLUMN {ident(ref_col.name)} "
                            "TYPE bigint;  -- rewrites the table",
                            {"constraint": fk.name, "schema": table.schema, "table": table.name},
                        )
                    )
        for obj, what, cap, fix_sql, extra in checks:
            ratio = seq.last_value / cap if cap > 0 else 0.0
            severity = _level(ratio, config)
            if severity is None:
                continue
            yield r.finding(
                obj,
                f"{what} is at {seq.last_value} of {cap} ({ratio:.0%} used)",
                fix=fix_sql,
                severity=severity,
                sequence=f"{seq.schema}.{seq.name}",
                last_value=seq.last_value,
                limit=cap,
                used=round(ratio, 4),
                **extra,
            )
