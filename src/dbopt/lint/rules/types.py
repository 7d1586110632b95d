"""Types: timestamp without time zone, json instead of jsonb, keys near overflow."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from dbopt.findings import Finding, Severity
from dbopt.lint.base import LintConfig, Rule, register_rules, table_meta
from dbopt.lint.catalog import Catalog, Column, SequenceInfo, Table
from dbopt.lint.samples import reader
from dbopt.postgres.render import ident, literal

__all__ = ["Overflow", "sequence_overflows"]

_TYPE_MAX = {"int2": 2**15 - 1, "int4": 2**31 - 1, "int8": 2**63 - 1}


def _columns_of(catalog: Catalog, typname: str) -> Iterator[tuple[Table, Column]]:
    for table in catalog.top_level():
        for col in table.columns.values():
            if col.typname == typname:
                yield table, col


# The values pg_stats keeps for each ``timestamp`` column (most common values and
# histogram bounds), and how many of them fall exactly on midnight.
TIMESTAMP_SAMPLES = """
SELECT c.oid AS relid, a.attname AS column,
       cardinality(v.vals) AS seen,
       (SELECT count(*) FROM unnest(v.vals) x WHERE x = date_trunc('day', x))::int AS midnight
FROM pg_stats s
JOIN pg_namespace n ON n.nspname = s.schemaname
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = s.attname AND NOT a.attisdropped
CROSS JOIN LATERAL (
  SELECT COALESCE(s.most_common_vals::text::timestamp[], '{}')
         || COALESCE(s.histogram_bounds::text::timestamp[], '{}') AS vals
) v
WHERE a.atttypid = 'timestamp'::regtype
  AND s.inherited = (c.relkind = 'p')
  AND c.oid = ANY(%(relids)s::oid[])
"""

#: Fewest sampled values before LINT010 trusts that a column only holds dates.
MIN_DATE_SAMPLE = 5


@reader("timestamp_samples")
def _timestamp_samples(cur: psycopg.Cursor[dict[str, Any]], catalog: Catalog) -> None:
    relids = sorted({t.oid for t, _ in _columns_of(catalog, "timestamp")})
    found: dict[tuple[int, str], tuple[int, int]] = {}
    if relids:
        for row in cur.execute(TIMESTAMP_SAMPLES, {"relids": relids}).fetchall():
            found[(row["relid"], row["column"])] = (row["seen"], row["midnight"])
    catalog.derived["timestamp_samples"] = found


def _date_only(catalog: Catalog, table: Table, col: Column) -> int | None:
    """How many sampled values there were, when every one of them is at midnight."""
    samples: dict[tuple[int, str], tuple[int, int]] = catalog.derived.get("timestamp_samples", {})
    seen, midnight = samples.get((table.oid, col.name), (0, 0))
    return seen if seen >= MIN_DATE_SAMPLE and midnight == seen else None


def timestamp_without_time_zone(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    for table, col in _columns_of(catalog, "timestamp"):
        name = ident(col.name)
        seen = _date_only(catalog, table, col)
        if seen is not None:
            yield r.finding(
                f"{table.sql_name}.{name}",
                f"column {col.name} of {table.sql_name} is timestamp without time zone, but "
                f"all {seen} values in its planner statistics are at midnight: it holds dates",
                fix=(
                    "-- the statistics hold a sample: first check that no row has a time of day\n"
                    f"-- SELECT count(*) FROM {table.sql_name} WHERE {name} <> {name}::date;"
                    "  -- expect 0\n"
                    f"ALTER TABLE {table.sql_name} ALTER COLUMN {name} TYPE date;"
                    "  -- rewrites the table under ACCESS EXCLUSIVE"
                ),
                severity=Severity.INFO,
                **table_meta(table, column=col.name, suggested_type="date", sampled=seen),
            )
            continue
        yield r.finding(
            f"{table.sql_name}.{name}",
            f"column {col.name} of {table.sql_name} is timestamp without time zone",
            fix=(
                f"ALTER TABLE {table.sql_name} ALTER COLUMN {name} TYPE timestamptz "
                f"USING {name} AT TIME ZONE {literal('UTC')};"
                "  -- rewrites the table under ACCESS EXCLUSIVE (no rewrite when the"
                " session TimeZone is UTC and no USING clause is given); if the column"
                " holds calendar dates, use date instead"
            ),
            **table_meta(table, column=col.name, suggested_type="timestamptz"),
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


register_rules(
    Rule(
        "LINT010",
        "timestamp_without_time_zone",
        Severity.WARNING,
        "A column is ``timestamp`` (without time zone).",
        "A timestamp without time zone stores wall-clock time with no offset: values written "
        "from servers or sessions in different time zones cannot be compared, and DST makes "
        "some local times ambiguous. timestamptz stores an instant and costs the same 8 bytes. "
        "A column whose values are all at midnight holds calendar dates: ``date`` says so, "
        "takes 4 bytes, and has no time zone to get wrong.",
        timestamp_without_time_zone,
        needs=("relations", "columns", "timestamp_samples"),
    ),
    Rule(
        "LINT011",
        "json_column",
        Severity.INFO,
        "A column is ``json`` rather than ``jsonb``.",
        "json keeps the text as written and reparses it on every access; it has no equality "
        "operator (no DISTINCT, GROUP BY or UNIQUE) and no GIN indexing. jsonb is what "
        "queries on the content want.",
        json_column,
    ),
    Rule(
        "LINT012",
        "key_overflow",
        Severity.ERROR,
        "An integer key or its sequence has used most of its range.",
        "When the sequence reaches the column type's maximum, every INSERT fails. Widening an "
        "integer column to bigint rewrites the table, which takes hours on a large one: start "
        "early (add a bigint column, backfill in batches, swap).",
        key_overflow,
        needs=("relations", "columns", "constraints", "sequences"),
    ),
)
