"""Alembic: operations that create partitioned tables, and an autogenerate filter.

In ``env.py``::

    from dbopt.partitions.alembic import PartitionFilter, register_operations

    register_operations()  # adds op.create_partitioned_table and op.create_partitions
    ...
    with connectable.connect() as connection:
        hide = PartitionFilter(connection)
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_name=hide.include_name,
            include_object=hide.include_object,
        )

``PartitionFilter`` keeps autogenerate from reporting partitions (and
dbopt's own state and conversion tables) as tables to drop (Alembic issue
539). In a migration::

    op.create_partitioned_table("events", sa.Column(...), ..., spec=spec)
    op.create_partitions(spec)   # a later migration: what the spec lacks now

Online, partitions are created through the manager's planner on the
migration's connection and recorded as owned. Offline (``--sql``) the
statements are rendered for an empty table at ``now``; ownership cannot be
recorded there, so run ``PartitionManager.create(spec)`` once afterwards to
adopt them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alembic.operations import MigrateOperation, Operations
from sqlalchemy import Column, Connection, Date, DateTime, Integer, text

from dbopt.errors import ConfigurationError
from dbopt.partitions import ddl
from dbopt.partitions.catalog import PartitionedTable
from dbopt.partitions.grid import KeyKind
from dbopt.partitions.plan import CreatePartition
from dbopt.partitions.planner import build_plan
from dbopt.partitions.spec import PartitionSpec
from dbopt.partitions.sqlalchemy import create_partitions_on, partition_by_clause
from dbopt.partitions.state import CONVERSION_TABLE, PARENT_TABLE, STATE_TABLE

__all__ = [
    "CreatePartitionedTableOp",
    "CreatePartitionsOp",
    "PartitionFilter",
    "key_kind_of",
    "offline_statements",
    "register_operations",
]


class PartitionFilter:
    """Autogenerate hooks hiding partitions and dbopt's own tables from the comparison.

    Reads the catalog once, on ``connection``; pass its ``include_name``
    (skips reflecting them at all) and ``include_object`` to
    ``context.configure``.
    """

    def __init__(self, connection: Connection, *, state_schema: str = "public") -> None:
        rows = connection.execute(
            text(
                "SELECT n.nspname, c.relname FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind IN ('r', 'p') AND (c.relispartition"
                " OR c.relname LIKE '%\\_\\_dbopt\\_%'"
                " OR (n.nspname = :schema AND c.relname IN (:a, :b, :c)))"
            ),
            {"schema": state_schema, "a": STATE_TABLE, "b": PARENT_TABLE, "c": CONVERSION_TABLE},
        ).fetchall()
        self.hidden = frozenset((r[0], r[1]) for r in rows)
        self.default_schema = connection.dialect.default_schema_name or "public"

    def _hidden(self, schema: str | None, name: str | None) -> bool:
        return (schema or self.default_schema, name or "") in self.hidden

    def include_name(self, name: str | None, type_: str, parent_names: Any) -> bool:
        """Alembic ``include_name`` hook: False for a partition or a dbopt table."""
        if type_ != "table":
            return True
        return not self._hidden(parent_names.get("schema_name"), name)

    def include_object(
        self, obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        """Alembic ``include_object`` hook: False for a reflected partition or dbopt table."""
        if type_ != "table" or not reflected:
            return True
        return not self._hidden(getattr(obj, "schema", None), name)


def key_kind_of(column: Column[Any]) -> KeyKind:
    """The key kind of a SQLAlchemy column type (timestamptz, timestamp, date, integer)."""
    kind = column.type
    if isinstance(kind, DateTime):
        return "timestamptz" if kind.timezone else "timestamp"
    if isinstance(kind, Date):
        return "date"
    if isinstance(kind, Integer):
        return "integer"
    raise ConfigurationError(f"cannot partition by range on {column.name} of type {kind}")


def offline_statements(
    spec: PartitionSpec, key_kind: KeyKind | None, now: datetime | int | None
) -> list[str]:
    """``CREATE TABLE ... PARTITION OF`` statements for a new, empty parent (no database)."""
    empty = PartitionedTable(
        oid=0,
        schema=spec.schema_name,
        name=spec.table,
        strategy=spec.strategy,
        key=spec.key,
        key_definition=spec.key,
        key_type=None,
        key_kind=key_kind,
        partitions=(),
    )
    plan = build_plan(None, spec, empty, {}, learned=None, now=now)
    return [
        ddl.partition_of(
            op.parent,
            op.partition,
            op.bound,
            op.zone,
            tablespace=op.tablespace,
            storage=op.storage_parameters,
        ).as_string(None)
        for op in plan.operations
        if isinstance(op, CreatePartition)
    ]


class CreatePartitionsOp(MigrateOperation):
    """``op.create_partitions(spec, now=None, key_kind=None)``: the partitions the spec lacks."""

    def __init__(
        self,
        spec: PartitionSpec,
        now: datetime | int | None = None,
        key_kind: KeyKind | None = None,
    ) -> None:
        self.spec = spec
        self.now = now
        self.key_kind = key_kind

    @classmethod
    def create_partitions(
        cls,
        operations: Operations,
        spec: PartitionSpec,
        now: datetime | int | None = None,
        key_kind: KeyKind | None = None,
    ) -> Any:
        """Create the partitions ``spec`` wants at ``now`` (offline: give ``key_kind``)."""
        return operations.invoke(cls(spec, now, key_kind))


class CreatePartitionedTableOp(MigrateOperation):
    """``op.create_partitioned_table(name, *columns, spec=..., now=None, **kw)``."""

    def __init__(
        self,
        table_name: str,
        columns: tuple[Any, ...],
        spec: PartitionSpec,
        now: datetime | int | None,
        kw: dict[str, Any],
    ) -> None:
        self.table_name = table_name
        self.columns = columns
        self.spec = spec
        self.now = now
        self.kw = kw

    @classmethod
    def create_partitioned_table(
        cls,
        operations: Operations,
        table_name: str,
        *columns: Any,
        spec: PartitionSpec,
        now: datetime | int | None = None,
        **kw: Any,
    ) -> Any:
        """``op.create_table`` with ``PARTITION BY`` from ``spec``, then its partitions."""
        return operations.invoke(cls(table_name, columns, spec, now, kw))


def _create_partitions(operations: Operations, op: CreatePartitionsOp) -> None:
    if operations.migration_context.as_sql:
        for statement in offline_statements(op.spec, op.key_kind, op.now):
            operations.execute(statement)
        return
    create_partitions_on(operations.get_bind(), op.spec, now=op.now)


def _create_partitioned_table(operations: Operations, op: CreatePartitionedTableOp) -> None:
    if op.table_name != op.spec.table:
        raise ConfigurationError(f"the spec is for {op.spec.table}, the table is {op.table_name}")
    operations.create_table(
        op.table_name,
        *op.columns,
        schema=op.spec.schema,
        postgresql_partition_by=partition_by_clause(op.spec),
        **op.kw,
    )
    key = next((c for c in op.columns if isinstance(c, Column) and c.name == op.spec.key), None)
    kind = key_kind_of(key) if key is not None and op.spec.strategy == "range" else None
    _create_partitions(operations, CreatePartitionsOp(op.spec, op.now, kind))


_registered = False


def register_operations() -> None:
    """Add ``op.create_partitioned_table`` and ``op.create_partitions`` (idempotent)."""
    global _registered  # noqa: PLW0603 (registration happens once per process)
    if _registered:
        return
    Operations.register_operation("create_partitions")(CreatePartitionsOp)
    Operations.implementation_for(CreatePartitionsOp)(_create_partitions)
    Operations.register_operation("create_partitioned_table")(CreatePartitionedTableOp)
    Operations.implementation_for(CreatePartitionedTableOp)(_create_partitioned_table)
    _registered = True
