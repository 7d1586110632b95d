"""Move rows out of the default partition into proper partitions, in batches.

For each range (or list value set) the default partition holds rows for, a
table shaped like the parent is created, the rows are moved into it, and it
is attached. Up to ``batch_size`` rows this is one short transaction. Above
it, the table is first recorded as ``staging``, rows move in batches of
``batch_size`` (each its own transaction, ``FOR UPDATE SKIP LOCKED``), and a
last transaction moves what arrived meanwhile and attaches it. While a
range is staged its rows are not visible through the parent (they are in
the staging table); an interrupted drain is resumed by the next call, and
``plan()`` reports it. Inserts are held up only by the last transaction's
lock on the default partition, itself bounded by ``lock_timeout``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from psycopg import sql

from dbopt._json import FieldsDict
from dbopt.partitions import ddl
from dbopt.partitions import ranges as rng
from dbopt.partitions.catalog import (
    Columns,
    PartitionedTable,
    parse_bound,
    read_table,
    writable_columns,
)
from dbopt.partitions.errors import PartitionSpecError
from dbopt.partitions.locking import LockPolicy, with_retry
from dbopt.partitions.naming import format_name, unique_names
from dbopt.partitions.plan import (
    Bound,
    CreatePartition,
    ListBound,
    Name,
    Operation,
    RangeBound,
    literal_text,
)
from dbopt.partitions.rows import bound_predicate
from dbopt.partitions.spec import PartitionSpec

if TYPE_CHECKING:
    import psycopg

    from dbopt.partitions.state import StateStore

__all__ = ["DrainResult", "drain_default"]


@dataclass(frozen=True)
class DrainResult(FieldsDict):
    """What ``drain_default`` moved, where to, and what it had to leave."""

    _ROUND: ClassVar[dict[str, int]] = {"seconds": 6}

    parent: str
    moved: int
    partitions: tuple[str, ...]
    left: int
    notes: tuple[str, ...]
    seconds: float

    def describe(self) -> str:
        """Readable text."""
        lines = [
            f"{self.parent}: moved {self.moved} rows out of the default partition into"
            f" {len(self.partitions)} partition(s) in {self.seconds:.2f}s; {self.left} left"
        ]
        lines += [f"  {name}" for name in self.partitions]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


class _Drainer:
    def __init__(
        self,
        conn: psycopg.Connection[Any],
        store: StateStore,
        policy: LockPolicy,
        spec: PartitionSpec,
        table: PartitionedTable,
        batch_size: int,
    ) -> None:
        if table.default is None:
            raise PartitionSpecError(f"{table.qualified} has no default partition")
        self.conn, self.store, self.policy, self.spec = conn, store, policy, spec
        self.table = table
        self.parent = Name(table.schema, table.name)
        self.default = Name(table.default.schema, table.default.name)
        self.key = sql.Identifier(table.key)
        self.batch = batch_size
        self.columns: Columns = writable_columns(conn, table.schema, table.name)
        self.moved = 0
        self.made: list[str] = []

    def _copy(self, target: Name, where: sql.Composable, limit: int | None) -> int:
        cols = sql.SQL(", ").join(map(sql.Identifier, self.columns.names))
        pick = sql.SQL("{} WHERE {}").format(ddl.ident(self.default), where)
        if limit is not None:
            pick = sql.SQL(
                "{} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {} WHERE {} LIMIT {}"
                " FOR UPDATE SKIP LOCKED))"
            ).format(ddl.ident(self.default), ddl.ident(self.default), where, sql.Literal(limit))
        cur = self.conn.execute(
            sql.SQL(
                "WITH moved AS (DELETE FROM {} RETURNING {})"
                " INSERT INTO {} ({}){} SELECT {} FROM moved"
            ).format(
                pick,
                cols,
                ddl.ident(target),
                cols,
                sql.SQL(" OVERRIDING SYSTEM VALUE" if self.columns.identity_always else ""),
                cols,
            )
        )
        return max(cur.rowcount, 0)

    def _create_like(self, target: Name) -> None:
        """``target``, a standalone table shaped like the parent, in the spec's tablespace."""
        self.conn.execute(
            ddl.create_like(
                self.parent,
                target,
                server_version=self.conn.info.server_version,
                tablespace=self.spec.tablespace,
                storage=tuple((self.spec.storage_parameters or {}).items()),
            )
        )

    def _finish(self, target: Name, bound: Bound, create: bool) -> None:
        """Move what is left for ``bound`` and attach ``target``, in one transaction."""
        where = bound_predicate(self.key, bound, self.spec.timezone, self.table)

        def attempt() -> int:
            with self.conn.transaction():
                self.conn.execute(ddl.lock(self.parent, "SHARE UPDATE EXCLUSIVE"))
                self.conn.execute(ddl.lock(self.default, "ACCESS EXCLUSIVE"))
                if create:
                    self._create_like(target)
                moved = self._copy(target, where, None)
                self.conn.execute(ddl.attach(self.parent, target, bound, self.spec.timezone))
                self.store.record(self.conn, str(self.parent), ddl.ident(target), "created")
                return moved

        moved, _ = with_retry(attempt, self.policy, f"attach {target}")
        self.moved += moved
        self.made.append(str(target))

    def move(self, target: Name, bound: Bound) -> None:
        """Move the default partition's rows for ``bound`` into a new partition ``target``."""
        where = bound_predicate(self.key, bound, self.spec.timezone, self.table)
        row = self.conn.execute(
            sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} LIMIT {}) s").format(
                ddl.ident(self.default), where, sql.Literal(self.batch + 1)
            )
        ).fetchone()
        if not row or not row[0]:
            return
        if int(row[0]) <= self.batch or not isinstance(bound, RangeBound):
            self._finish(target, bound, create=True)
            return

        def stage() -> None:
            with self.conn.transaction():
                self._create_like(target)
                self.store.stage(
                    self.conn, str(self.parent), ddl.ident(target), bound.text(self.spec.timezone)
                )

        with_retry(stage, self.policy, f"stage {target}")
        self._fill(target, bound)

    def _fill(self, target: Name, bound: Bound) -> None:
        where = bound_predicate(self.key, bound, self.spec.timezone, self.table)
        while True:
            with self.conn.transaction():
                moved = self._copy(target, where, self.batch)
            self.moved += moved
            if moved < self.batch:
                break
        self._finish(target, bound, create=False)

    def resume(self) -> None:
        """Finish drains an earlier call left staged."""
        for rec in self.store.owned(self.conn, self.table.qualified).values():
            if rec.status != "staging" or rec.bound is None:
                continue
            parsed = parse_bound(rec.bound, self.table.key_kind)
            if parsed is None:
                continue
            self._fill(Name(rec.schema, rec.name), RangeBound(*parsed))

    def name_for(
        self, bound: Bound, fields: dict[str, object], kind: str, learned: str | None
    ) -> Name:
        name = format_name(self.spec.naming_for(kind, learned), self.table.name, fields)
        op: Operation = CreatePartition(self.parent, Name(self.table.schema, name), "drain", bound)
        return unique_names(self.conn, [op])[0].partition

    def null_rows(self) -> int:
        row = self.conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {} IS NULL").format(
                ddl.ident(self.default), self.key
            )
        ).fetchone()
        return int(row[0]) if row else 0


def drain_default(
    conn: psycopg.Connection[Any],
    store: StateStore,
    policy: LockPolicy,
    spec: PartitionSpec,
    table: PartitionedTable,
    *,
    batch_size: int,
    learned: str | None,
) -> DrainResult:
    """Drain ``table``'s default partition per ``spec`` (range and list); see the module doc."""
    began = time.perf_counter()
    drainer = _Drainer(conn, store, policy, spec, table, batch_size)
    drainer.resume()
    notes: list[str] = []
    if spec.strategy == "range":
        _drain_ranges(drainer, learned)
    elif spec.strategy == "list":
        for label, values in (spec.values or {}).items():
            current = read_table(conn, table.schema, table.name)
            wanted = {None if v is None else literal_text(v) for v in values}
            if current and any(set(p.values) == wanted for p in current.partitions):
                continue
            bound = ListBound(tuple(values))
            drainer.move(drainer.name_for(bound, {"label": label}, "list", learned), bound)
    left = drainer.null_rows()
    remaining = conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(ddl.ident(drainer.default))
    ).fetchone()
    left = int(remaining[0]) if remaining else left
    if left:
        notes.append(
            f"{left} rows stay in the default partition: no partition of the spec holds"
            " them (NULL keys, or values outside the spec)"
        )
    return DrainResult(
        table.qualified,
        drainer.moved,
        tuple(drainer.made),
        left,
        tuple(notes),
        time.perf_counter() - began,
    )


def _drain_ranges(drainer: _Drainer, learned: str | None) -> None:
    table, spec = drainer.table, drainer.spec
    if table.key_kind is None:
        raise PartitionSpecError(
            f"{table.qualified}: cannot drain a range on {table.key_definition}"
        )
    grid = spec.grid(table.key_kind)
    typ = sql.SQL(table.key_type or "text")
    cursor: Any = None
    while True:
        where = sql.SQL("{} IS NOT NULL").format(drainer.key)
        if cursor is not None:
            where = sql.SQL("{} >= {}::{}").format(
                drainer.key, sql.Literal(literal_text(cursor, spec.timezone)), typ
            )
        row = drainer.conn.execute(
            sql.SQL("SELECT min({}) FROM {} WHERE {}").format(
                drainer.key, ddl.ident(drainer.default), where
            )
        ).fetchone()
        if row is None or row[0] is None:
            return
        lower = grid.floor(grid.key_value(row[0]))
        upper = grid.shift(lower, 1)
        current = read_table(drainer.conn, table.schema, table.name)
        existing = current.ranges() if current else []
        for piece in rng.uncovered([(lower, upper)], existing):
            bound = RangeBound(piece.lower, piece.upper)
            fields = grid.name_fields(piece.lower, piece.upper)
            drainer.move(
                drainer.name_for(bound, fields, spec.interval or "integer", learned), bound
            )
        cursor = upper
