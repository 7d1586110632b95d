"""Ownership records: which partitions dbopt created or adopted, and parent metadata.

Three small tables in a schema of the caller's choosing (``public`` by default):

``dbopt_partition_state``
    one row per partition dbopt owns, keyed by the table's OID and checked
    against its current name, with how it came to be owned (``created``,
    ``adopted``, ``converted``), its status (``attached``, ``detaching``,
    ``detached``, or ``staging``: being filled by ``drain_default`` before it
    is attached) and when it was detached. Retention only ever detaches or
    drops a table whose OID *and* name match a row here.
``dbopt_partition_parent``
    one row per managed parent: the learned naming template, the spec last
    applied and the time and summary of the last maintenance.
``dbopt_partition_conversion``
    one row per online conversion in progress or kept for rollback: its
    status (``copying``, ``swapped``) and what ``revert()`` needs to undo it.

Both are created on the first write (``CREATE ... IF NOT EXISTS`` under a
global advisory lock); reading before that sees an empty state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from psycopg import errors, sql

from dbopt.partitions.catalog import KINDS, STRATEGIES, PartitionedTable, partition_from_row

if TYPE_CHECKING:
    import psycopg

__all__ = ["Owned", "ParentState", "Snapshot", "StateStore"]

STATE_TABLE = "dbopt_partition_state"
PARENT_TABLE = "dbopt_partition_parent"
CONVERSION_TABLE = "dbopt_partition_conversion"
_SETUP_LOCK = "dbopt.partitions.state"


@dataclass(frozen=True)
class Owned:
    """A partition dbopt owns (created, adopted or made by a conversion)."""

    oid: int
    schema: str
    name: str
    origin: str
    status: str
    bound: str | None
    detached_at: datetime | None
    #: Where the catalog has the table of ``oid`` now, as ``(schema, name, is a partition)``
    #: (None: no such table), when read with the record (``located``).
    here: tuple[str, str, bool] | None = None
    located: bool = False

    @property
    def qualified(self) -> str:
        """``schema.name`` (unquoted)."""
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class ParentState:
    """What dbopt remembers about a parent."""

    naming: str | None
    spec: dict[str, Any] | None
    last_maintenance_at: datetime | None
    last_maintenance: dict[str, Any] | None


@dataclass(frozen=True)
class Snapshot:
    """A parent as one query reads it: catalog, ownership records and parent row together.

    ``kind`` is the relation's ``relkind`` (None when absent); ``table`` is
    set only for a partitioned table; ``tablespace`` is the parent's.
    """

    kind: str | None
    table: PartitionedTable | None
    owned: dict[int, Owned]
    parent: ParentState | None
    tablespace: str | None = None
    #: md5 of the row as the server read it (``snapshot(..., fingerprint=True)``);
    #: ``unchanged_sql`` compares a later read with it. Not part of equality.
    fingerprint: str | None = field(default=None, compare=False)
    #: The default partition is a plain table with no rows at all (its heap is 0
    #: bytes): no row can conflict with a new range and there is none to count.
    default_empty: bool = field(default=False, compare=False)


class StateStore:
    """Reads and writes the ownership tables in ``schema``."""

    def __init__(self, schema: str = "public") -> None:
        self.schema = schema
        self.state = sql.Identifier(schema, STATE_TABLE)
        self.parents = sql.Identifier(schema, PARENT_TABLE)
        self.conversions = sql.Identifier(schema, CONVERSION_TABLE)
        self._seen = False

    def exists(self, conn: psycopg.Connection[Any]) -> bool:
        """Whether the state tables exist yet (once seen, remembered for this store)."""
        if self._seen:
            return True
        row = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL"
            " AND to_regclass(%s) IS NOT NULL",
            (
                self.state.as_string(conn),
                self.parents.as_string(conn),
                self.conversions.as_string(conn),
            ),
        ).fetchone()
        self._seen = bool(row and row[0])
        return self._seen

    def ensure(self, conn: psycopg.Connection[Any]) -> None:
        """Create the schema and tables if missing (safe when run concurrently)."""
        if self.exists(conn):
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_SETUP_LOCK,))
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    " partition_oid oid PRIMARY KEY,"
                    " parent text NOT NULL,"
                    " partition_schema text NOT NULL,"
                    " partition_name text NOT NULL,"
                    " origin text NOT NULL"
                    "  CHECK (origin IN ('created', 'adopted', 'converted')),"
                    " status text NOT NULL"
                    "  CHECK (status IN ('attached', 'detaching', 'detached', 'staging')),"
                    " bound text,"
                    " recorded_at timestamptz NOT NULL DEFAULT now(),"
                    " detached_at timestamptz)"
                ).format(self.state)
            )
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    " parent text PRIMARY KEY,"
                    " naming text,"
                    " spec jsonb,"
                    " created_at timestamptz NOT NULL DEFAULT now(),"
                    " last_maintenance_at timestamptz,"
                    " last_maintenance jsonb)"
                ).format(self.parents)
            )
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    " table_name text PRIMARY KEY,"
                    " status text NOT NULL CHECK (status IN ('copying', 'swapped')),"
                    " detail jsonb NOT NULL,"
                    " started_at timestamptz NOT NULL DEFAULT now(),"
                    " swapped_at timestamptz)"
                ).format(self.conversions)
            )

    def snapshot(
        self, conn: psycopg.Connection[Any], schema: str, name: str, *, fingerprint: bool = False
    ) -> Snapshot:
        """Read ``schema.name``, its partitions and what dbopt records of it in ONE query.

        One round trip and one MVCC snapshot: the catalog and the ownership
        records are seen as of the same instant. Before the state tables
        exist the records read as empty (that costs a second query, once).
        ``fingerprint``: also the md5 of what was read, for ``unchanged_sql``.
        """
        state = self._seen or self.exists(conn)

        def query(state: bool) -> sql.Composed:
            inner = self._snapshot_sql(conn, state)
            if not fingerprint:
                return inner
            return sql.SQL("SELECT s.*, md5(s::text) FROM ({}) s").format(inner)

        try:
            row = conn.execute(query(state), (schema, name)).fetchone()
        except errors.UndefinedTable:
            if not state:
                raise
            self._seen = False  # dropped since: read without them
            row = conn.execute(query(False), (schema, name)).fetchone()
        if row is None:
            return Snapshot(None, None, {}, None)
        digest = str(row[-1]) if fingerprint and state else None
        oid, relkind, strat, keydef, column, key_type, natts, space, parts, default_size = row[:10]
        owned, parent = row[10:12]
        empty = default_size is not None and int(default_size) == 0
        records = {
            int(r[0]): Owned(
                int(r[0]),
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                _timestamp(r[6]),
                None if r[7] is None else (r[7], r[8], bool(r[9])),
                True,
            )
            for r in owned or ()
        }
        remembered = (
            None
            if parent is None
            else ParentState(parent[0], parent[1], _timestamp(parent[2]), parent[3])
        )
        if relkind != "p" or strat is None:
            return Snapshot(str(relkind), None, records, remembered, space, digest, empty)
        single = natts == 1 and column is not None
        kind = KINDS.get(key_type) if single else None
        strategy = STRATEGIES[strat]
        partitions = tuple(
            partition_from_row((*r, None, None), strategy, kind) for r in parts or ()
        )
        table = PartitionedTable(
            oid=int(oid),
            schema=schema,
            name=name,
            strategy=strategy,
            key=column if single else keydef,
            key_definition=keydef,
            key_type=key_type if single else None,
            key_kind=kind,
            partitions=partitions,
        )
        return Snapshot(str(relkind), table, records, remembered, space, digest, empty)

    def unchanged_sql(
        self, conn: psycopg.Connection[Any], snap: Snapshot, schema: str, name: str, flag: str
    ) -> tuple[sql.Composed, tuple[str, ...]]:
        """A statement that fails (division by zero) unless the setting ``flag`` is true
        and ``schema.name`` reads as ``snap`` did (its fingerprint); with its parameters.

        Sent in a transaction, it stops everything after it when another
        maintainer (or anyone) changed the table or its records meanwhile.
        """
        return (
            sql.SQL(
                "SELECT 1 / (current_setting({})::boolean"
                " AND (SELECT md5(s::text) FROM ({}) s) = %s)::int"
            ).format(sql.Literal(flag), self._snapshot_sql(conn, True)),
            (schema, name, snap.fingerprint or ""),
        )

    def _snapshot_sql(self, conn: psycopg.Connection[Any], state: bool) -> sql.Composed:
        pending = "i.inhdetachpending" if conn.info.server_version >= 140000 else "false"
        parent = "n.nspname || '.' || c.relname"
        owned: sql.Composable = sql.SQL("NULL::json")
        remembered: sql.Composable = sql.SQL("NULL::json")
        if state:
            owned = sql.SQL(
                "(SELECT json_agg(json_build_array(s.partition_oid::bigint, s.partition_schema,"
                " s.partition_name, s.origin, s.status, s.bound, s.detached_at,"
                " ln.nspname, lc.relname, lc.relispartition) ORDER BY s.partition_oid)"
                " FROM {} s LEFT JOIN pg_class lc ON lc.oid = s.partition_oid"
                " LEFT JOIN pg_namespace ln ON ln.oid = lc.relnamespace"
                " WHERE s.parent = {})"
            ).format(self.state, sql.SQL(parent))
            remembered = sql.SQL(
                "(SELECT json_build_array(r.naming, r.spec, r.last_maintenance_at,"
                " r.last_maintenance) FROM {} r WHERE r.parent = {})"
            ).format(self.parents, sql.SQL(parent))
        return sql.SQL(
            "SELECT c.oid, c.relkind, p.partstrat, pg_get_partkeydef(c.oid), a.attname,"
            " format_type(a.atttypid, NULL), p.partnatts, ts.spcname,"
            " (SELECT json_agg(json_build_array(k.oid::bigint, kn.nspname, k.relname,"
            " pg_get_expr(k.relpartbound, k.oid), {pending}, k.relkind = 'p', k.reloptions,"
            " kt.spcname) ORDER BY k.oid)"
            " FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid"
            " JOIN pg_namespace kn ON kn.oid = k.relnamespace"
            " LEFT JOIN pg_tablespace kt ON kt.oid = k.reltablespace"
            " WHERE i.inhparent = c.oid),"
            " (SELECT pg_relation_size(d.oid) FROM pg_class d"
            " WHERE d.oid = p.partdefid AND d.relkind = 'r'),"
            " {owned}, {remembered}"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace"
            " LEFT JOIN pg_partitioned_table p ON p.partrelid = c.oid"
            " LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0]"
            " WHERE n.nspname = %s AND c.relname = %s"
        ).format(pending=sql.SQL(pending), owned=owned, remembered=remembered)

    def _rows(
        self,
        conn: psycopg.Connection[Any],
        columns: str,
        table: sql.Identifier,
        key: str,
        value: str,
    ) -> list[tuple[Any, ...]]:
        """``SELECT columns FROM table WHERE key = value``; no rows before the tables exist."""
        if not self.exists(conn):
            return []
        query = sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(
            sql.SQL(columns), table, sql.Identifier(key)
        )
        return conn.execute(query, (value,)).fetchall()

    def conversion(self, conn: psycopg.Connection[Any], table: str) -> tuple[str, Any] | None:
        """``(status, detail)`` of the conversion of ``table``, or None."""
        rows = self._rows(conn, "status, detail", self.conversions, "table_name", table)
        return (str(rows[0][0]), rows[0][1]) if rows else None

    def save_conversion(
        self, conn: psycopg.Connection[Any], table: str, status: str, detail: dict[str, Any]
    ) -> None:
        """Record (or update) the conversion of ``table``."""
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (table_name, status, detail) VALUES (%s, %s, %s::jsonb)"
                " ON CONFLICT (table_name) DO UPDATE SET status = excluded.status,"
                " detail = excluded.detail,"
                " swapped_at = CASE WHEN excluded.status = 'swapped' THEN now() END"
            ).format(self.conversions),
            (table, status, json.dumps(detail, default=str)),
        )

    def drop_conversion(self, conn: psycopg.Connection[Any], table: str) -> None:
        """Forget the conversion of ``table``."""
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE table_name = %s").format(self.conversions), (table,)
        )

    def move_parent(self, conn: psycopg.Connection[Any], old: str, new: str, origin: str) -> None:
        """Re-home ownership records of ``old``'s partitions under the parent name ``new``."""
        conn.execute(
            sql.SQL("UPDATE {} SET parent = %s, origin = %s WHERE parent = %s").format(self.state),
            (new, origin, old),
        )

    def forget_parent(self, conn: psycopg.Connection[Any], parent: str) -> None:
        """Drop every ownership record (and the parent row) of ``parent``."""
        conn.execute(sql.SQL("DELETE FROM {} WHERE parent = %s").format(self.state), (parent,))
        conn.execute(sql.SQL("DELETE FROM {} WHERE parent = %s").format(self.parents), (parent,))

    def owned(self, conn: psycopg.Connection[Any], parent: str) -> dict[int, Owned]:
        """Partitions of ``parent`` (``schema.name``) dbopt owns, by OID."""
        columns = (
            "partition_oid, partition_schema, partition_name, origin, status, bound, detached_at"
        )
        rows = self._rows(conn, columns, self.state, "parent", parent)
        return {int(row[0]): Owned(int(row[0]), *row[1:]) for row in rows}

    def record(
        self,
        conn: psycopg.Connection[Any],
        parent: str,
        relation: sql.Composable,
        origin: str,
    ) -> None:
        """Own ``relation`` (an existing table) as a partition of ``parent``."""
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (partition_oid, parent, partition_schema, partition_name,"
                " origin, status, bound)"
                " SELECT c.oid, %s, n.nspname, c.relname, %s, 'attached',"
                " pg_get_expr(c.relpartbound, c.oid)"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.oid = {}::regclass"
                " ON CONFLICT (partition_oid) DO UPDATE SET parent = excluded.parent,"
                " partition_schema = excluded.partition_schema,"
                " partition_name = excluded.partition_name, status = 'attached',"
                " bound = excluded.bound, detached_at = NULL"
            ).format(self.state, sql.Literal(relation.as_string(conn))),
            (parent, origin),
        )

    def stage(
        self, conn: psycopg.Connection[Any], parent: str, relation: sql.Composable, bound: str
    ) -> None:
        """Own ``relation``, a table being filled before it is attached with ``bound``."""
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (partition_oid, parent, partition_schema, partition_name,"
                " origin, status, bound)"
                " SELECT c.oid, %s, n.nspname, c.relname, 'created', 'staging', %s"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.oid = {}::regclass"
            ).format(self.state, sql.Literal(relation.as_string(conn))),
            (parent, bound),
        )

    def set_status(self, conn: psycopg.Connection[Any], oid: int, status: str) -> None:
        """Mark a partition ``attached``, ``detaching`` or ``detached`` (stamps the time)."""
        conn.execute(
            sql.SQL(
                "UPDATE {} SET status = %s,"
                " detached_at = CASE WHEN %s = 'detached' THEN now() ELSE detached_at END"
                " WHERE partition_oid = %s"
            ).format(self.state),
            (status, status, oid),
        )

    def forget(self, conn: psycopg.Connection[Any], oid: int) -> None:
        """Drop the ownership record of ``oid``."""
        conn.execute(sql.SQL("DELETE FROM {} WHERE partition_oid = %s").format(self.state), (oid,))

    def parent(self, conn: psycopg.Connection[Any], parent: str) -> ParentState | None:
        """What is remembered about ``parent``, or None."""
        columns = "naming, spec, last_maintenance_at, last_maintenance"
        rows = self._rows(conn, columns, self.parents, "parent", parent)
        return ParentState(*rows[0]) if rows else None

    def save_parent(
        self,
        conn: psycopg.Connection[Any],
        parent: str,
        *,
        naming: str | None = None,
        spec: dict[str, Any] | None = None,
        maintenance: dict[str, Any] | None = None,
    ) -> None:
        """Upsert the parent row; only the fields given (not None) change."""
        conn.execute(
            sql.SQL(
                "INSERT INTO {} AS p (parent, naming, spec, last_maintenance_at, last_maintenance)"
                " VALUES (%s, %s, %s::jsonb, CASE WHEN %s::jsonb IS NULL THEN NULL ELSE now() END,"
                " %s::jsonb)"
                " ON CONFLICT (parent) DO UPDATE SET"
                " naming = coalesce(excluded.naming, p.naming),"
                " spec = coalesce(excluded.spec, p.spec),"
                " last_maintenance_at = coalesce(excluded.last_maintenance_at,"
                "  p.last_maintenance_at),"
                " last_maintenance = coalesce(excluded.last_maintenance, p.last_maintenance)"
            ).format(self.parents),
            (
                parent,
                naming,
                _dumps(spec),
                _dumps(maintenance),
                _dumps(maintenance),
            ),
        )


def _timestamp(value: Any) -> datetime | None:
    """A timestamptz as JSON has it (ISO 8601 text), or None."""
    return None if value is None else datetime.fromisoformat(value)


def _dumps(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, default=str)
