"""Declare partitioning on a SQLAlchemy ``Table`` (or mapped class); ``create_all`` makes it.

``partitioned(table, spec)`` sets ``postgresql_partition_by`` and listens
for ``after_create``: in the same transaction as ``CREATE TABLE``, the
initial partitions of the spec (current range, ``premake`` ahead, ``start``
backfill, the default partition) are created and recorded as owned, so the
first ``PartitionManager.maintain`` finds nothing to do. Needs the psycopg
(3) driver: ``postgresql+psycopg://``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection, MetaData, Table, event
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from dbopt.errors import ConfigurationError
from dbopt.partitions.apply import ApplyResult, Executor
from dbopt.partitions.catalog import read_table
from dbopt.partitions.locking import LockPolicy, lock_keys
from dbopt.partitions.plan import CreatePartition
from dbopt.partitions.planner import build_plan
from dbopt.partitions.spec import PartitionSpec
from dbopt.partitions.state import StateStore
from dbopt.postgres import render

__all__ = ["create_partitions_on", "create_table_sql", "partition_by_clause", "partitioned"]

SPEC_KEY = "dbopt_partition_spec"


def partition_by_clause(spec: PartitionSpec) -> str:
    """``RANGE ("created_at")``: the text for ``postgresql_partition_by``."""
    return f"{spec.strategy.upper()} ({render.ident(spec.key, force=True)})"


def partitioned(
    target: Any,
    spec: PartitionSpec,
    *,
    now: datetime | int | None = None,
    state_schema: str = "public",
) -> Table:
    """Mark ``target`` (a Table or mapped class) as partitioned by ``spec``; returns the Table.

    ``metadata.create_all`` then creates the partitioned parent and its
    initial partitions (computed at ``now``, default the current time).
    The spec is kept in ``table.info["dbopt_partition_spec"]``.
    """
    table = target if isinstance(target, Table) else getattr(target, "__table__", None)
    if not isinstance(table, Table):
        raise ConfigurationError(f"partitioned() needs a Table or a mapped class, got {target!r}")
    if table.name != spec.table or (table.schema or "public") != spec.schema_name:
        raise ConfigurationError(f"the spec is for {spec.qualified}, the table is {table.fullname}")
    table.dialect_kwargs["postgresql_partition_by"] = partition_by_clause(spec)
    table.info[SPEC_KEY] = spec

    def after_create(target: Table, connection: Connection, **kw: Any) -> None:
        create_partitions_on(connection, spec, now=now, state_schema=state_schema)

    event.listen(table, "after_create", after_create)
    return table


def create_table_sql(table: Table, spec: PartitionSpec) -> sql.SQL:
    """``CREATE TABLE ... PARTITION BY ...`` for ``table`` under the spec's name."""
    copy = table.to_metadata(MetaData(), schema=spec.schema_name, name=spec.table)
    copy.dialect_kwargs["postgresql_partition_by"] = partition_by_clause(spec)
    text = str(CreateTable(copy).compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    return sql.SQL(text)


def create_partitions_on(
    connection: Connection,
    spec: PartitionSpec,
    *,
    now: datetime | int | None = None,
    state_schema: str = "public",
) -> ApplyResult:
    """Create the spec's missing partitions on a SQLAlchemy connection, in its transaction.

    Only creates: retention (detach, drop) is maintenance's job, not a migration's.

    For migrations and ``after_create``: no lock timeout or retries are set
    (the caller's transaction decides), the parent's advisory lock is taken
    for the transaction, and session settings changed for reading the
    catalog are restored before returning.
    """
    raw = connection.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise ConfigurationError(
            "dbopt partitions need the psycopg driver (postgresql+psycopg://),"
            f" got {type(raw).__module__}"
        )
    store = StateStore(state_schema)
    saved = raw.execute(
        "SELECT current_setting('DateStyle'), current_setting('TimeZone')"
    ).fetchone()
    raw.execute("SELECT set_config('DateStyle', 'ISO, YMD', true)")
    raw.execute("SELECT set_config('TimeZone', 'UTC', true)")
    try:
        raw.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", lock_keys(spec.qualified)
        )
        store.ensure(raw)
        table = read_table(raw, spec.schema_name, spec.table)
        if table is None:
            raise ConfigurationError(f"{spec.qualified} is not a partitioned table")
        owned = store.owned(raw, table.qualified)
        plan = build_plan(raw, spec, table, owned, learned=None, now=now)
        creates = tuple(op for op in plan.operations if isinstance(op, CreatePartition))
        result = Executor(raw, store, LockPolicy(retries=0)).run(replace(plan, operations=creates))
        store.save_parent(raw, table.qualified, spec=spec.to_dict())
    finally:
        if saved is not None:
            raw.execute("SELECT set_config('DateStyle', %s, true)", (saved[0],))
            raw.execute("SELECT set_config('TimeZone', %s, true)", (saved[1],))
    return result
