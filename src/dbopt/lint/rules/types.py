"""Types: timestamp without time zone, json instead of jsonb, keys near overflow."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dbopt.findings import Finding, Severity
from dbopt.lint.base import LintConfig, Rule, rule, table_meta
from dbopt.lint.catalog import Catalog, Column, SequenceInfo, Table
from dbopt.postgres.render import ident, literal

__all__ = ["Overflow", "sequence_overflows"]

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


@dataclass(frozen=True)
class Overflow:
    """How much of a range a sequence has used: its own, its column's, or a narrower
    column that copies it through a foreign key (that one overflows first)."""

    sequence: SequenceInfo
    object: str
    what: str
    limit: int
    used: float
    fix: str | None
    column: str | None = None  # ``table.column`` the range belongs to
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """``<what> is at <last> of <limit> (<n>% used)``."""
        return (
            f"{self.what} is at {self.sequence.last_value} of {self.limit} ({self.used:.0%} used)"
        )


def sequence_overflows(catalog: Catalog) -> Iterator[Overflow]:
    """Every range the sequences of ``catalog`` fill, whatever the ratio (LINT012, HEALTH012).

    Cycling and descending sequences and sequences never used are skipped.
    """
    for seq in catalog.sequences:
        if seq.last_value is None or seq.cycle or seq.increment_by < 0:
            continue
        owner = catalog.tables.get(seq.owner_relid or 0)
        col = owner.columns.get(seq.owner_column or 0) if owner else None
        limit = min(
            seq.max_value, _TYPE_MAX.get(col.typname, seq.max_value) if col else seq.max_value
        )
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
        column = f"{owner.name}.{col.name}" if owner and col else None
        yield Overflow(seq, target, f"sequence {seq.name}", limit, _ratio(seq, limit), fix, column)
        if not (owner and col):
            continue
        # foreign keys that copy this key into a narrower column overflow first
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
                cap = _TYPE_MAX[ref_col.typname]
                yield Overflow(
                    seq,
                    f"{table.sql_name}.{ident(ref_col.name)}",
                    f"column {ref_col.name} ({ref_col.type}) referencing {col.name}",
                    cap,
                    _ratio(seq, cap),
                    f"ALTER TABLE {table.sql_name} ALTER COLUMN {ident(ref_col.name)} "
                    "TYPE bigint;  -- rewrites the table",
                    f"{table.name}.{ref_col.name}",
                    {"constraint": fk.name, "schema": table.schema, "table": table.name},
                )


def _ratio(seq: SequenceInfo, cap: int) -> float:
    return (seq.last_value or 0) / cap if cap > 0 else 0.0


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
    for o in sequence_overflows(catalog):
        severity = _level(o.used, config)
        if severity is None:
            continue
        yield r.finding(
            o.object,
            o.message,
            fix=o.fix,
            severity=severity,
            sequence=f"{o.sequence.schema}.{o.sequence.name}",
            last_value=o.sequence.last_value,
            limit=o.limit,
            used=round(o.used, 4),
            **o.extra,
        )
