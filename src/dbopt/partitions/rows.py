"""Rows in the default partition: how many, and which new bounds they would conflict with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import sql

from dbopt.partitions.catalog import Partition, PartitionedTable
from dbopt.partitions.plan import Bound, HashBound, ListBound, RangeBound, literal_text

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DEFAULT_ROWS_CAP",
    "bound_predicate",
    "collect_conflicts",
    "count_rows",
    "default_conflicts",
    "fetch_count",
    "send_conflicts",
    "send_count",
]

#: Row counts in the default partition are counted up to this many.
DEFAULT_ROWS_CAP = 100_000


def count_rows(conn: psycopg.Connection[Any], part: Partition) -> int:
    """Rows in ``part``, counted up to ``DEFAULT_ROWS_CAP``."""
    return fetch_count(send_count(conn, part))


def send_count(conn: psycopg.Connection[Any], part: Partition) -> psycopg.Cursor[Any]:
    """Send ``count_rows``'s query without fetching (for a caller's pipeline)."""
    return conn.execute(
        sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT %s) s").format(
            sql.Identifier(part.schema, part.name)
        ),
        (DEFAULT_ROWS_CAP,),
    )


def fetch_count(cur: psycopg.Cursor[Any]) -> int:
    """The count ``send_count``'s query returned."""
    row = cur.fetchone()
    return int(row[0]) if row else 0


def default_conflicts(
    conn: psycopg.Connection[Any] | None, table: PartitionedTable, bounds: list[Bound], zone: str
) -> list[int]:
    """Rows (up to a cap) in the default partition that each bound would have to hold."""
    return collect_conflicts(send_conflicts(conn, table, bounds, zone), len(bounds))


def send_conflicts(
    conn: psycopg.Connection[Any] | None, table: PartitionedTable, bounds: list[Bound], zone: str
) -> list[psycopg.Cursor[Any]]:
    """Send ``default_conflicts``'s queries without fetching (a caller's pipeline may
    carry others in the same round trip); ``collect_conflicts`` reads them."""
    default = table.default
    if default is None or not bounds or conn is None:
        return []
    key = sql.Identifier(table.key)
    where = [bound_predicate(sql.SQL("d.{}").format(key), bound, zone, table) for bound in bounds]
    counts = [
        sql.SQL("(SELECT count(*) FROM (SELECT 1 FROM {} d WHERE {} LIMIT {}) s)").format(
            sql.Identifier(default.schema, default.name), pred, sql.Literal(DEFAULT_ROWS_CAP)
        )
        for pred in where
    ]
    return [
        conn.execute(
            sql.SQL("SELECT ARRAY[{}]::bigint[]").format(
                sql.SQL(", ").join(counts[start : start + 500])
            )
        )
        for start in range(0, len(counts), 500)
    ]


def collect_conflicts(cursors: list[psycopg.Cursor[Any]], bounds: int) -> list[int]:
    """The counts of ``send_conflicts``'s queries (zeros when it sent none)."""
    if not cursors:
        return [0] * bounds
    out: list[int] = []
    for cur in cursors:
        row = cur.fetchone()
        out += [int(n) for n in (row[0] if row else [])]
    return out


def bound_predicate(
    col: sql.Composable, bound: Bound, zone: str, table: PartitionedTable
) -> sql.Composable:
    """SQL that is true for a value of ``col`` the bound would hold."""
    if isinstance(bound, RangeBound):
        typ = sql.SQL(table.key_type or "text")
        parts = []
        if bound.lower is not None:
            parts.append(
                sql.SQL("{} >= {}::{}").format(
                    col, sql.Literal(literal_text(bound.lower, zone)), typ
                )
            )
        if bound.upper is not None:
            parts.append(
                sql.SQL("{} < {}::{}").format(
                    col, sql.Literal(literal_text(bound.upper, zone)), typ
                )
            )
        return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")
    if isinstance(bound, ListBound):
        values = [v for v in bound.values if v is not None]
        parts = [sql.SQL("{} IS NULL").format(col)] if None in bound.values else []
        if values:
            parts.append(
                sql.SQL("{} IN ({})").format(col, sql.SQL(", ").join(map(sql.Literal, values)))
            )
        return sql.SQL("({})").format(sql.SQL(" OR ").join(parts))
    if isinstance(bound, HashBound):
        return sql.SQL("satisfies_hash_partition({}, {}, {}, {})").format(
            sql.Literal(table.oid), sql.Literal(bound.modulus), sql.Literal(bound.remainder), col
        )
    return sql.SQL("false")
