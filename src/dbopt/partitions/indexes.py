"""Build an index on a partitioned table without holding a long lock.

``CREATE INDEX ... ON ONLY parent`` makes an (invalid) index on the parent
alone, instantly; each partition then gets its index with ``CREATE INDEX
CONCURRENTLY`` (writes go on) and ``ALTER INDEX ... ATTACH PARTITION``; when
the last one is attached PostgreSQL marks the parent's index valid.
Sub-partitioned partitions are handled the same way, recursively. A
partition index left INVALID by an earlier failed build is dropped and
rebuilt. Partitions created later get the index from ``ATTACH PARTITION``;
index storage parameters given here are set on every partition's index.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from psycopg import sql

from dbopt._json import FieldsDict
from dbopt.partitions import ddl
from dbopt.partitions.errors import PartitionSpecError
from dbopt.partitions.locking import LockPolicy, with_retry
from dbopt.partitions.naming import MAX_NAME_BYTES
from dbopt.partitions.plan import Name

if TYPE_CHECKING:
    import psycopg

__all__ = ["IndexResult", "IndexShape", "create_partitioned_index"]


@dataclass(frozen=True)
class IndexShape:
    """What the index is: columns (names), method, uniqueness, INCLUDE, WHERE, options."""

    columns: tuple[str, ...]
    unique: bool = False
    method: str = "btree"
    include: tuple[str, ...] = ()
    where: str | None = None
    storage_parameters: tuple[tuple[str, Any], ...] = ()

    def body(self) -> sql.Composed:
        """``USING method (cols) [INCLUDE (...)] [WITH (...)] [WHERE ...]``."""
        parts: list[sql.Composable] = [
            sql.SQL(" USING {} ({})").format(
                sql.Identifier(self.method), sql.SQL(", ").join(map(sql.Identifier, self.columns))
            )
        ]
        if self.include:
            parts.append(
                sql.SQL(" INCLUDE ({})").format(
                    sql.SQL(", ").join(map(sql.Identifier, self.include))
                )
            )
        if self.storage_parameters:
            options = [
                sql.SQL("{} = {}").format(sql.SQL(k), sql.Literal(v))
                for k, v in self.storage_parameters
            ]
            parts.append(sql.SQL(" WITH ({})").format(sql.SQL(", ").join(options)))
        if self.where:
            parts.append(sql.SQL(" WHERE {}").format(sql.SQL(self.where)))
        return sql.Composed(parts)


@dataclass(frozen=True)
class IndexResult(FieldsDict):
    """What ``create_index`` did: partition indexes built, attached, already there."""

    _ROUND: ClassVar[dict[str, int]] = {"seconds": 6}

    index: str
    built: tuple[str, ...]
    attached: tuple[str, ...]
    present: tuple[str, ...]
    rebuilt_invalid: tuple[str, ...]
    valid: bool
    seconds: float

    def describe(self) -> str:
        """Readable text."""
        state = "valid" if self.valid else "NOT valid yet"
        return (
            f"{self.index}: {state}; built {len(self.built)}, attached {len(self.attached)},"
            f" already present {len(self.present)}, rebuilt after a failed build"
            f" {len(self.rebuilt_invalid)} ({self.seconds:.2f}s)"
        )


def _child_name(partition: str, index: str, parent: str) -> str:
    suffix = index[len(parent) :].lstrip("_") if index.startswith(parent) else index
    name = f"{partition}_{suffix}"
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]  # noqa: S324 (a name, not security)
    return f"{name.encode()[: MAX_NAME_BYTES - 9].decode(errors='ignore')}_{digest}"


class _Builder:
    def __init__(
        self, conn: psycopg.Connection[Any], policy: LockPolicy, shape: IndexShape
    ) -> None:
        self.conn, self.policy, self.shape = conn, policy, shape
        self.built: list[str] = []
        self.attached: list[str] = []
        self.present: list[str] = []
        self.rebuilt: list[str] = []

    def _index_state(self, index: Name) -> tuple[int, bool] | None:
        row = self.conn.execute(
            "SELECT c.oid, x.indisvalid FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_index x ON x.indexrelid = c.oid WHERE n.nspname = %s AND c.relname = %s",
            tuple(index),
        ).fetchone()
        return None if row is None else (int(row[0]), bool(row[1]))

    def on_only(self, table: Name, index: Name) -> int:
        unique = "UNIQUE " if self.shape.unique else ""

        def create() -> None:
            self.conn.execute(
                sql.SQL("CREATE {}INDEX IF NOT EXISTS {} ON ONLY {}{}").format(
                    sql.SQL(unique), sql.Identifier(index.name), ddl.ident(table), self.shape.body()
                )
            )

        with_retry(create, self.policy, f"create index {index} on only {table}")
        found = self._index_state(index)
        if found is None:
            raise PartitionSpecError(f"index {index} was not created")
        return found[0]

    def build(self, table: Name, index: Name, root_name: str) -> None:
        """Give every partition of ``table`` its index attached to ``index`` (already created)."""
        parent_oid = self.on_only(table, index)
        rows = self.conn.execute(
            "SELECT n.nspname, c.relname, c.relkind = 'p',"
            " (SELECT ic.relname FROM pg_inherits ii JOIN pg_index x ON x.indexrelid = ii.inhrelid"
            "  JOIN pg_class ic ON ic.oid = ii.inhrelid"
            "  WHERE ii.inhparent = %s AND x.indrelid = c.oid)"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            (parent_oid, ddl.ident(table).as_string(self.conn)),
        ).fetchall()
        for schema, name, sub, existing in rows:
            part = Name(schema, name)
            if existing is not None:
                self.present.append(f"{schema}.{existing}")
                continue
            child = Name(schema, _child_name(name, index.name, table.name))
            if sub:
                self.build(part, child, root_name)
            else:
                self._concurrently(part, child)
            self._attach(index, child)

    def _concurrently(self, part: Name, child: Name) -> None:
        found = self._index_state(child)
        if found is not None and found[1]:
            return  # a valid index of that name: attach it (PostgreSQL checks it matches)
        if found is not None:
            self.conn.execute(sql.SQL("DROP INDEX CONCURRENTLY {}").format(ddl.ident(child)))
            self.rebuilt.append(str(child))
        unique = "UNIQUE " if self.shape.unique else ""

        def create() -> None:
            try:
                self.conn.execute(
                    sql.SQL("CREATE {}INDEX CONCURRENTLY {} ON {}{}").format(
                        sql.SQL(unique),
                        sql.Identifier(child.name),
                        ddl.ident(part),
                        self.shape.body(),
                    )
                )
            except Exception:
                if self._index_state(child) is not None:  # CONCURRENTLY leaves an invalid index
                    self.conn.execute(
                        sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(ddl.ident(child))
                    )
                raise

        with_retry(create, self.policy, f"create index {child} concurrently")
        self.built.append(str(child))

    def _attach(self, index: Name, child: Name) -> None:
        def attach() -> None:
            self.conn.execute(
                sql.SQL("ALTER INDEX {} ATTACH PARTITION {}").format(
                    ddl.ident(index), ddl.ident(child)
                )
            )

        with_retry(attach, self.policy, f"attach index {child}")
        self.attached.append(str(child))


def create_partitioned_index(
    conn: psycopg.Connection[Any], policy: LockPolicy, table: Name, name: str, shape: IndexShape
) -> IndexResult:
    """Build index ``name`` of ``shape`` on partitioned ``table``; see the module doc.

    Idempotent.
    """
    if not shape.columns:
        raise PartitionSpecError("an index needs at least one column")
    began = time.perf_counter()
    builder = _Builder(conn, policy, shape)
    index = Name(table.schema, name)
    builder.build(table, index, name)
    row = conn.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass",
        (ddl.ident(index).as_string(conn),),
    ).fetchone()
    return IndexResult(
        str(index),
        tuple(builder.built),
        tuple(builder.attached),
        tuple(builder.present),
        tuple(builder.rebuilt),
        bool(row and row[0]),
        time.perf_counter() - began,
    )
