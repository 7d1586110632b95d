"""Read a partitioned table from the catalog: strategy, key, partitions and their bounds.

Bounds come from ``pg_get_expr(relpartbound, oid)`` and are parsed into
Python values for single-column range keys of type ``timestamptz``,
``timestamp``, ``date`` or an integer; other keys keep their bound text.
The session must use ``DateStyle = ISO`` (the manager's connections do).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from dbopt.partitions.grid import KeyKind, Value

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "Columns",
    "Partition",
    "PartitionedTable",
    "parse_bound",
    "partition_from_row",
    "read_table",
    "relation_kind",
    "writable_columns",
]

PartitionKind = Literal["range", "list", "hash", "default"]
STRATEGIES = {"r": "range", "l": "list", "h": "hash"}
KINDS: dict[str, KeyKind] = {
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "date": "date",
    "smallint": "integer",
    "integer": "integer",
    "bigint": "integer",
}
_TOKEN = re.compile(r"\s*(?:'((?:[^']|'')*)'|([^,'()\s]+))\s*(?:,|$)")
_OFFSET = re.compile(r"([+-]\d\d)$")
_SIMPLE_RANGE = re.compile(r"FOR VALUES FROM \('([^']*)'\) TO \('([^']*)'\)")


@dataclass(frozen=True)
class Partition:
    """One partition: its bound (text and parsed), size and state."""

    oid: int
    schema: str
    name: str
    bound: str
    kind: PartitionKind
    lower: Value | None = None
    upper: Value | None = None
    values: tuple[str | None, ...] = ()
    modulus: int | None = None
    remainder: int | None = None
    parsed: bool = True
    detach_pending: bool = False
    subpartitioned: bool = False
    rows_estimate: int | None = None
    size_bytes: int | None = None
    reloptions: tuple[str, ...] = ()
    tablespace: str | None = None

    @property
    def qualified(self) -> str:
        """``schema.name`` (unquoted)."""
        return f"{self.schema}.{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (bounds as ISO text)."""
        return {
            "name": self.qualified,
            "bound": self.bound,
            "kind": self.kind,
            "lower": _json(self.lower),
            "upper": _json(self.upper),
            "values": list(self.values),
            "modulus": self.modulus,
            "remainder": self.remainder,
            "detach_pending": self.detach_pending,
            "subpartitioned": self.subpartitioned,
            "rows_estimate": self.rows_estimate,
            "size_bytes": self.size_bytes,
        }


@dataclass(frozen=True)
class PartitionedTable:
    """A partitioned parent as the catalog has it."""

    oid: int
    schema: str
    name: str
    strategy: str
    key: str
    key_definition: str
    key_type: str | None
    key_kind: KeyKind | None
    partitions: tuple[Partition, ...]

    @property
    def qualified(self) -> str:
        """``schema.name`` (unquoted)."""
        return f"{self.schema}.{self.name}"

    @property
    def default(self) -> Partition | None:
        """The DEFAULT partition, if any."""
        return next((p for p in self.partitions if p.kind == "default"), None)

    def ranges(self) -> list[Partition]:
        """Range partitions with parsed bounds, ordered by lower bound (MINVALUE first)."""
        parts = [p for p in self.partitions if p.kind == "range" and p.parsed]
        return sorted(parts, key=lambda p: (p.lower is not None, p.lower or 0))


def relation_kind(conn: psycopg.Connection[Any], schema: str, name: str) -> str | None:
    """``pg_class.relkind`` of ``schema.name`` ('r', 'p', ...), or None when absent."""
    row = conn.execute(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    ).fetchone()
    return None if row is None else str(row[0])


def read_table(
    conn: psycopg.Connection[Any], schema: str, name: str, *, sizes: bool = False
) -> PartitionedTable | None:
    """The partitioned table ``schema.name`` and its partitions; None if it is not one.

    ``sizes`` adds row estimates and total sizes (one size call per partition).
    """
    head = conn.execute(
        "SELECT c.oid, p.partstrat, pg_get_partkeydef(c.oid), a.attname,"
        " format_type(a.atttypid, NULL), p.partnatts"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_partitioned_table p ON p.partrelid = c.oid"
        " LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0]"
        " WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    ).fetchone()
    if head is None:
        return None
    oid, strat, keydef, column, key_type, natts = head
    single = natts == 1 and column is not None
    kind = KINDS.get(key_type) if single else None
    pending = "i.inhdetachpending" if conn.info.server_version >= 140000 else "false"
    measure = (
        "(SELECT sum(pg_total_relation_size(t.relid)) FROM pg_partition_tree(c.oid) t"
        " WHERE t.isleaf)::bigint,"
        " (SELECT sum(x.reltuples) FROM pg_partition_tree(c.oid) t"
        " JOIN pg_class x ON x.oid = t.relid WHERE t.isleaf AND x.reltuples >= 0)::bigint"
        if sizes
        else "NULL::bigint, NULL::bigint"
    )
    rows = conn.execute(
        "SELECT c.oid, n.nspname, c.relname, pg_get_expr(c.relpartbound, c.oid),"
        f" {pending}, c.relkind = 'p', c.reloptions, t.spcname, {measure}"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace"
        " WHERE i.inhparent = %s ORDER BY c.oid",
        (oid,),
    ).fetchall()
    partitions = tuple(
        partition_from_row(row, STRATEGIES[strat], kind if single else None) for row in rows
    )
    return PartitionedTable(
        oid=oid,
        schema=schema,
        name=name,
        strategy=STRATEGIES[strat],
        key=column if single else keydef,
        key_definition=keydef,
        key_type=key_type if single else None,
        key_kind=kind,
        partitions=partitions,
    )


def partition_from_row(row: Sequence[Any], strategy: str, kind: KeyKind | None) -> Partition:
    """A ``Partition`` from (oid, schema, name, bound, pending, sub, reloptions,
    tablespace, size, rows)."""
    oid, schema, name, bound, pending, sub, reloptions, tablespace, size, rows = row
    common: dict[str, Any] = {
        "oid": oid,
        "schema": schema,
        "name": name,
        "bound": bound,
        "detach_pending": bool(pending),
        "subpartitioned": bool(sub),
        "rows_estimate": rows,
        "size_bytes": size,
        "reloptions": tuple(reloptions or ()),
        "tablespace": tablespace,
    }
    if bound == "DEFAULT":
        return Partition(kind="default", **common)
    if strategy == "hash":
        match = re.search(r"modulus (\d+), remainder (\d+)", bound)
        if match is None:
            return Partition(kind="hash", parsed=False, **common)
        return Partition(kind="hash", modulus=int(match[1]), remainder=int(match[2]), **common)
    if strategy == "list":
        inner = bound[bound.index("(") + 1 : bound.rindex(")")]
        return Partition(kind="list", values=tuple(_literals(inner)), **common)
    parsed = parse_bound(bound, kind)
    if parsed is None:
        return Partition(kind="range", parsed=False, **common)
    return Partition(kind="range", lower=parsed[0], upper=parsed[1], **common)


def parse_bound(bound: str, kind: KeyKind | None) -> tuple[Value | None, Value | None] | None:
    """``(lower, upper)`` of ``FOR VALUES FROM (a) TO (b)``; None when not understood.

    MINVALUE/MAXVALUE (and ``-infinity``/``infinity``) become None.
    """
    if kind is None:
        return None
    simple = _SIMPLE_RANGE.fullmatch(bound)
    if simple is not None:
        try:
            return _value(simple[1], kind), _value(simple[2], kind)
        except ValueError:
            return None
    match = re.fullmatch(r"FOR VALUES FROM \((.*)\) TO \((.*)\)", bound)
    if match is None:
        return None
    ends: list[Value | None] = []
    for text in (match[1], match[2]):
        literals = _literals(text)
        if len(literals) != 1:
            return None
        try:
            ends.append(_value(literals[0], kind))
        except ValueError:
            return None
    return ends[0], ends[1]


def _literals(text: str) -> list[str | None]:
    out: list[str | None] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"cannot read partition bound list {text!r}")
        quoted, bare = match.group(1), match.group(2)
        if quoted is not None:
            out.append(quoted.replace("''", "'"))
        else:
            out.append(None if bare.upper() == "NULL" else bare)
        pos = match.end()
    return out


def _value(text: str | None, kind: KeyKind) -> Value | None:
    if text is None:
        return None
    return _parse_value(text, kind)


@lru_cache(maxsize=16_384)
def _parse_value(text: str, kind: KeyKind) -> Value | None:
    # Cached: a range's upper bound is the next one's lower, and maintenance rereads
    # the same bounds run after run (values are immutable, so sharing them is safe).
    if text.upper() in ("MINVALUE", "MAXVALUE", "INFINITY", "-INFINITY"):
        return None
    if kind == "integer":
        return int(text)
    if kind == "date":
        return date.fromisoformat(text)
    if kind == "timestamptz":
        if _OFFSET.search(text):  # "+05" -> "+05:00" (fromisoformat before 3.11)
            text += ":00"
        return datetime.fromisoformat(text).astimezone(timezone.utc)
    return datetime.fromisoformat(text)


def _json(value: Value | None) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


@dataclass(frozen=True)
class Columns:
    """Columns a copy can write: not dropped, not generated; whether identity needs OVERRIDING."""

    names: tuple[str, ...]
    identity_always: bool


def writable_columns(conn: psycopg.Connection[Any], schema: str, name: str) -> Columns:
    """The columns of ``schema.name`` an ``INSERT ... SELECT`` copy should list, in order."""
    rows = conn.execute(
        "SELECT a.attname, a.attidentity FROM pg_attribute a"
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped"
        " AND a.attgenerated = '' ORDER BY a.attnum",
        (schema, name),
    ).fetchall()
    return Columns(tuple(r[0] for r in rows), any(r[1] == "a" for r in rows))
