"""What an online conversion needs to know about the table, and what it reports."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from dbopt._json import FieldsDict
from dbopt.partitions.capture import Rows
from dbopt.partitions.catalog import writable_columns
from dbopt.partitions.errors import ConversionError
from dbopt.partitions.naming import MAX_NAME_BYTES
from dbopt.partitions.plan import Name

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "ConversionResult",
    "Shape",
    "SourceTable",
    "aux_name",
    "inspect_source",
    "read_shape",
    "shape_changes",
]


def aux_name(name: str, suffix: str) -> str:
    """``<name>__dbopt_<suffix>``, shortened with a hash to fit 63 bytes."""
    full = f"{name}__dbopt_{suffix}"
    if len(full.encode()) <= MAX_NAME_BYTES:
        return full
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]  # noqa: S324 (a name, not security)
    tail = f"_{digest}__dbopt_{suffix}"
    return name.encode()[: MAX_NAME_BYTES - len(tail)].decode(errors="ignore") + tail


@dataclass(frozen=True)
class Index:
    """An index of the source: its name, the text after its table in the DDL, and kind."""

    name: str
    tail: str
    unique: bool
    primary: bool
    has_key: bool


@dataclass(frozen=True)
class SourceTable:
    """The table to convert, as the catalog has it."""

    name: Name
    oid: int
    key_type: str
    rows: Rows  # keyed by the primary key (or a unique index on NOT NULL columns)
    indexes: tuple[Index, ...]
    foreign_keys: tuple[tuple[str, str], ...]
    sequences: tuple[tuple[str, str, str], ...]  # (sequence, column, 'a' serial | 'i' identity)


@dataclass(frozen=True)
class ConversionResult(FieldsDict):
    """What ``convert``/``revert`` did; ``copied`` rows in ``copy_seconds``, the rest replayed."""

    _ROUND: ClassVar[dict[str, int]] = {"seconds": 6, "copy_seconds": 6, "swap_seconds": 6}

    table: str
    status: str
    copied: int = 0
    replayed: int = 0
    partitions: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    copy_seconds: float = 0.0
    swap_seconds: float = field(default=0.0)

    @property
    def rows_per_second(self) -> float:
        """Copy throughput (0 when nothing was copied)."""
        return self.copied / self.copy_seconds if self.copy_seconds > 0 else 0.0

    def describe(self) -> str:
        """Readable text."""
        lines = [
            f"{self.table}: {self.status}; copied {self.copied} rows"
            f" ({self.rows_per_second:,.0f} rows/s), replayed {self.replayed} changes,"
            f" swap held its lock {self.swap_seconds * 1000:.0f} ms, total {self.seconds:.2f}s"
        ]
        lines += [f"  partition {p}" for p in self.partitions]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data, with the copy throughput."""
        return {**super().to_dict(), "rows_per_second": round(self.rows_per_second, 1)}


def inspect_source(conn: psycopg.Connection[Any], name: Name, key: str) -> SourceTable:
    """Read the table to convert; ConversionError when it cannot be converted online."""
    row = conn.execute(
        "SELECT c.oid, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s",
        tuple(name),
    ).fetchone()
    if row is None:
        raise ConversionError(f"{name} does not exist")
    oid, relkind = int(row[0]), row[1]
    if relkind == "p":
        raise ConversionError(f"{name} is partitioned already")
    if relkind != "r":
        raise ConversionError(f"{name} is not a table (relkind {relkind!r})")
    key_row = conn.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = %s AND attname = %s AND NOT attisdropped AND attnum > 0",
        (oid, key),
    ).fetchone()
    if key_row is None:
        raise ConversionError(f"{name} has no column {key!r}")
    _refuse_dependents(conn, name, oid)
    pk = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_index x"
        " CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, pos)"
        " JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum"
        " WHERE x.indexrelid = (SELECT indexrelid FROM pg_index WHERE indrelid = %s"
        "  AND indisunique AND indpred IS NULL AND indexprs IS NULL AND 0 <> ALL(indkey::int2[])"
        "  AND NOT EXISTS (SELECT 1 FROM pg_attribute b WHERE b.attrelid = indrelid"
        "   AND b.attnum = ANY(indkey::int2[]) AND NOT b.attnotnull)"
        "  ORDER BY indisprimary DESC, indnatts LIMIT 1)"
        " ORDER BY k.pos",
        (oid,),
    ).fetchall()
    if not pk:
        raise ConversionError(
            f"{name} needs a primary key (or a unique index on NOT NULL columns) to be copied"
            " in keyset batches and to have its changes replayed"
        )
    indexes = conn.execute(
        "SELECT c.relname, x.indisunique, x.indisprimary,"
        " (SELECT attnum FROM pg_attribute WHERE attrelid = %s AND attname = %s)"
        "  = ANY(x.indkey::int2[]),"
        " pg_get_indexdef(x.indexrelid), format('CREATE %%sINDEX %%s ON %%I.%%I ',"
        "  CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END, quote_ident(c.relname),"
        "  n.nspname, t.relname)"
        " FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
        " JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
        " WHERE x.indrelid = %s ORDER BY c.relname",
        (oid, key, oid),
    ).fetchall()
    for r in indexes:
        if not str(r[4]).startswith(str(r[5])):
            raise ConversionError(f"cannot read the definition of index {r[0]}: {r[4]}")
    fks = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s AND contype = 'f' ORDER BY conname",
        (oid,),
    ).fetchall()
    sequences = conn.execute(
        "SELECT s.oid::regclass::text, a.attname, d.deptype FROM pg_depend d"
        " JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
        " JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
        " WHERE d.refobjid = %s AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')",
        (oid,),
    ).fetchall()
    cols = writable_columns(conn, name.schema, name.name)
    return SourceTable(
        name=name,
        oid=oid,
        key_type=str(key_row[0]),
        rows=Rows(
            tuple(r[0] for r in pk), tuple(r[1] for r in pk), cols.names, cols.identity_always
        ),
        indexes=tuple(
            Index(r[0], " " + r[4][len(r[5]) :], bool(r[1]), bool(r[2]), bool(r[3]))
            for r in indexes
        ),
        foreign_keys=tuple((r[0], r[1]) for r in fks),
        sequences=tuple((r[0], r[1], r[2]) for r in sequences),
    )


def _refuse_dependents(conn: psycopg.Connection[Any], name: Name, oid: int) -> None:
    """Objects that follow the table's OID, not its name, would keep pointing at the old one."""
    blockers = conn.execute(
        "SELECT 'foreign key ' || conname || ' on ' || conrelid::regclass FROM pg_constraint"
        " WHERE confrelid = %s AND contype = 'f'"
        " UNION ALL SELECT DISTINCT 'view ' || v.oid::regclass FROM pg_depend d"
        " JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class"
        " WHERE d.refobjid = %s AND d.classid = 'pg_rewrite'::regclass AND v.oid <> %s"
        " UNION ALL SELECT 'inheritance with ' || inhparent::regclass FROM pg_inherits"
        " WHERE inhrelid = %s"
        " UNION ALL SELECT 'inheritance with ' || inhrelid::regclass FROM pg_inherits"
        " WHERE inhparent = %s",
        (oid, oid, oid, oid, oid),
    ).fetchall()
    if blockers:
        what = ", ".join(r[0] for r in blockers)
        raise ConversionError(
            f"{name} cannot be swapped by name while these refer to it by OID: {what}."
            " Drop and recreate them around the conversion."
        )


@dataclass(frozen=True)
class Shape:
    """What the capture cannot see change: the table's name, columns, constraints, indexes.

    Columns are ``(name, type, not null, default, generated, identity, collation,
    attnum)`` in column order (``attnum`` tells a column dropped and added
    again); constraints and indexes are ``(name, definition)`` by name.
    """

    name: Name
    columns: tuple[tuple[str, str, bool, str | None, str, str, str | None, int], ...]
    constraints: tuple[tuple[str, str], ...]
    indexes: tuple[tuple[str, str], ...]


def read_shape(conn: psycopg.Connection[Any], oid: int) -> Shape | None:
    """The shape of the table with OID ``oid`` now, or None when it is gone."""
    # One round trip: the four reads are pipelined (each sees the catalog as it is).
    with conn.pipeline():
        head = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.oid = %s AND c.relkind = 'r'",
            (oid,),
        )
        cols = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
            " pg_get_expr(d.adbin, d.adrelid), a.attgenerated::text, a.attidentity::text,"
            " CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation::text END,"
            " a.attnum FROM pg_attribute a LEFT JOIN pg_attrdef d"
            "  ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (oid,),
        )
        cons = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = %s ORDER BY conname",
            (oid,),
        )
        idx = conn.execute(
            "SELECT c.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x"
            " JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = %s ORDER BY c.relname",
            (oid,),
        )
    row = head.fetchone()
    if row is None:
        return None
    columns, constraints, indexes = cols.fetchall(), cons.fetchall(), idx.fetchall()
    return Shape(
        Name(str(row[0]), str(row[1])),
        tuple(
            (str(r[0]), str(r[1]), bool(r[2]), r[3], str(r[4]), str(r[5]), r[6], int(r[7]))
            for r in columns
        ),
        tuple((str(r[0]), str(r[1])) for r in constraints),
        tuple((str(r[0]), str(r[1])) for r in indexes),
    )


def shape_changes(before: Shape, after: Shape | None) -> list[str]:
    """How ``after`` differs from ``before``, readably (empty when it does not)."""
    if after is None:
        return ["the table was dropped"]
    out: list[str] = []
    if after.name != before.name:
        out.append(f"renamed to {after.name}")
    old = {c[0]: c for c in before.columns}
    new = {c[0]: c for c in after.columns}
    out += [f"column {c!r} added" for c in new if c not in old]
    out += [f"column {c!r} dropped or renamed" for c in old if c not in new]
    for c in (c for c in old if c in new):
        if old[c][1] != new[c][1]:
            out.append(f"column {c!r} changed type from {old[c][1]} to {new[c][1]}")
        elif old[c][7] != new[c][7]:
            out.append(f"column {c!r} was dropped and added again")
        elif old[c] != new[c]:
            out.append(f"column {c!r} changed its default, NOT NULL, identity or collation")
    for what, was, now in (
        ("constraint", dict(before.constraints), dict(after.constraints)),
        ("index", dict(before.indexes), dict(after.indexes)),
    ):
        out += [f"{what} {n!r} added" for n in now if n not in was]
        out += [f"{what} {n!r} dropped" for n in was if n not in now]
        out += [f"{what} {n!r} changed" for n in was if n in now and was[n] != now[n]]
    return sorted(set(out), key=out.index)
