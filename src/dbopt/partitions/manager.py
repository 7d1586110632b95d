"""``PartitionManager``: plan, apply and maintain partitioned tables from Python."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from dbopt.partitions import ddl
from dbopt.partitions.apply import ApplyResult, Executor
from dbopt.partitions.catalog import Partition, PartitionedTable, read_table, relation_kind
from dbopt.partitions.check import CheckReport, build_report
from dbopt.partitions.conversion import ConversionResult
from dbopt.partitions.convert import convert_table
from dbopt.partitions.drain import DrainResult, drain_default
from dbopt.partitions.errors import PartitionSpecError
from dbopt.partitions.indexes import IndexResult, IndexShape, create_partitioned_index
from dbopt.partitions.locking import (
    HELD_FLAG,
    HOLDS_LOCK,
    TRY_LOCK_NOTED,
    UNLOCK,
    Hold,
    LockPolicy,
    configure,
    lock_keys,
    parent_lock,
)
from dbopt.partitions.naming import learn_template
from dbopt.partitions.ownership import is_owned
from dbopt.partitions.plan import AdoptPartition, Name, Plan
from dbopt.partitions.planner import build_plan
from dbopt.partitions.revert import finish_table, revert_table
from dbopt.partitions.spec import PartitionSpec
from dbopt.partitions.state import Snapshot, StateStore
from dbopt.postgres.connect import connect as open_connection
from dbopt.postgres.connect import conninfo, map_driver_errors

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import URL, Engine

__all__ = ["PartitionManager"]


class PartitionManager:
    """Keeps partitioned tables to their :class:`PartitionSpec`; any PostgreSQL >= 13.

    ``target`` is a SQLAlchemy Engine or URL, or a libpq connection string;
    the manager opens a psycopg connection of its own per call (never the
    application's). ``state_schema`` holds the ownership tables (see
    ``dbopt.partitions.state``). ``lock_timeout`` (seconds) bounds
    every lock wait of every DDL statement, retried ``retries`` times with
    backoff; ``lock_wait`` bounds the wait for another maintainer of the same
    parent. Read-only calls (``plan``, ``partitions``, ``check``) issue no DDL.
    """

    def __init__(
        self,
        target: Engine | URL | str,
        *,
        state_schema: str = "public",
        lock_timeout: float = 2.0,
        retries: int = 5,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        lock_wait: float = 60.0,
        statement_timeout: float | None = None,
        connect_timeout: int = 10,
    ) -> None:
        self.conninfo = conninfo(target, "PartitionManager")
        self.store = StateStore(state_schema)
        self.policy = LockPolicy(
            lock_timeout=lock_timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            lock_wait=lock_wait,
            statement_timeout=statement_timeout,
        )
        self.connect_timeout = connect_timeout
        self._local = threading.local()

    def _open(self) -> psycopg.Connection[Any]:
        conn = open_connection(
            self.conninfo,
            "partitions",
            read_only=False,
            statement_timeout_ms=None,  # configure() sets the policy's timeouts
            lock_timeout_ms=None,
            connect_timeout_s=self.connect_timeout,
        )
        try:
            with map_driver_errors("partition maintenance failed"):
                configure(conn, self.policy)
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def session(self) -> Iterator[PartitionManager]:
        """Every call inside (on this thread) reuses one connection, closed on exit.

        Without a session each call opens and closes a connection of its own,
        which costs more than an idle ``maintain()`` itself; a job that
        maintains several tables, or a loop, should hold one::

            with manager.session():
                for spec in specs:
                    manager.maintain(spec)

        A connection that broke is replaced on the next call. Sessions nest
        (the outer one's connection is used). Not for sharing across threads:
        each thread gets its own connection.
        """
        if getattr(self._local, "conn", None) is not None:
            yield self
            return
        self._local.conn = self._open()
        try:
            yield self
        finally:
            conn, self._local.conn = self._local.conn, None
            conn.close()

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[Any]]:
        """A configured autocommit connection of the manager's own, closed on exit.

        Inside ``session()`` it is the session's connection, kept open.
        """
        held: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if held is not None:
            if held.closed or held.broken:
                held = self._local.conn = self._open()
            with map_driver_errors("partition maintenance failed"):
                yield held
            return
        conn = self._open()
        try:
            with map_driver_errors("partition maintenance failed"):
                yield conn
        finally:
            conn.close()

    # -- reading -----------------------------------------------------------------

    def _table(self, conn: psycopg.Connection[Any], spec: PartitionSpec) -> PartitionedTable:
        table = read_table(conn, spec.schema_name, spec.table)
        if table is None:
            kind = relation_kind(conn, spec.schema_name, spec.table)
            if kind is None:
                raise PartitionSpecError(f"{spec.qualified} does not exist; create() makes it")
            raise PartitionSpecError(
                f"{spec.qualified} is not partitioned; convert() makes it partitioned online"
            )
        return table

    def _plan(
        self, conn: psycopg.Connection[Any], spec: PartitionSpec, now: datetime | int | None
    ) -> Plan:
        return self._plan_from(conn, spec, self._snapshot(conn, spec), now)

    def _snapshot(
        self, conn: psycopg.Connection[Any], spec: PartitionSpec, *, fingerprint: bool = False
    ) -> Snapshot:
        """The table and its ownership state in one query; PartitionSpecError if not partitioned."""
        snap = self.store.snapshot(conn, spec.schema_name, spec.table, fingerprint=fingerprint)
        if snap.table is None:
            if snap.kind is None:
                raise PartitionSpecError(f"{spec.qualified} does not exist; create() makes it")
            raise PartitionSpecError(
                f"{spec.qualified} is not partitioned; convert() makes it partitioned online"
            )
        return snap

    def _plan_from(
        self,
        conn: psycopg.Connection[Any],
        spec: PartitionSpec,
        snap: Snapshot,
        now: datetime | int | None,
        *,
        names_free: bool = False,
    ) -> Plan:
        assert snap.table is not None  # noqa: S101 (_snapshot guarantees it)
        parent = snap.parent
        plan = build_plan(
            conn,
            spec,
            snap.table,
            snap.owned,
            learned=parent.naming if parent else None,
            now=now,
            default_empty=snap.default_empty,
            names_free=names_free,
        )
        return Plan(plan.parent, plan.summary, plan.now, plan.operations, plan.notes, spec)

    def plan(self, spec: PartitionSpec, now: datetime | int | None = None) -> Plan:
        """What ``maintain`` would do at ``now`` (default: the current time). Issues no DDL.

        ``now`` is a datetime for time keys (naive: in the spec's time zone) or
        a key value for integer keys (default: the column's current maximum).
        """
        with self.connect() as conn:
            return self._plan(conn, spec, now)

    def partitions(self, table: str, schema: str | None = None) -> list[Partition]:
        """The partitions of ``table`` (``"name"`` or ``"schema.name"``) with bounds, row
        estimates (from the last ANALYZE) and total sizes, ordered by bound."""
        spec_schema, name = (schema, table) if schema else _split(table)
        with self.connect() as conn:
            found = read_table(conn, spec_schema, name, sizes=True)
        if found is None:
            raise PartitionSpecError(f"{spec_schema}.{name} is not a partitioned table")
        ranges = found.ranges()
        rest = [p for p in found.partitions if p not in ranges]
        return [*ranges, *sorted(rest, key=lambda p: (p.kind == "default", p.name))]

    def check(self, spec: PartitionSpec, now: datetime | int | None = None) -> CheckReport:
        """Health of a managed table: default rows, partitions ahead, gaps, last maintenance."""
        with self.connect() as conn:
            snap = self._snapshot(conn, spec)
            plan = self._plan_from(conn, spec, snap, now)
            assert snap.table is not None  # noqa: S101 (_snapshot guarantees it)
            return build_report(conn, spec, snap.table, snap.owned, snap.parent, plan, now)

    # -- changing ----------------------------------------------------------------

    def apply(self, plan: Plan) -> ApplyResult:
        """Carry out ``plan`` under the parent's advisory lock; see ``ApplyResult``.

        Operations that became unnecessary since planning are skipped, as are
        ranges the default partition's rows conflict with. Raises
        ``LockTimeoutError`` (with ``.result``) when locks never come.
        """
        with self.connect() as conn:
            self.store.ensure(conn)
            with parent_lock(conn, plan.parent, self.policy.lock_wait):
                return self._apply(conn, plan)

    def _apply(
        self,
        conn: psycopg.Connection[Any],
        plan: Plan,
        snap: Snapshot | None = None,
        hold: Hold | None = None,
    ) -> ApplyResult:
        """Apply ``plan`` and record it; with ``hold``, release it with the record.

        The record and the unlock are pipelined (one round trip); if the
        record fails, the unlock is left to ``parent_lock``'s exit.
        """
        executor = Executor(conn, self.store, self.policy)
        if snap is not None:
            # Usually the whole run: operations, record, commit and unlock in one round trip.
            batched = self._batch(executor, plan, snap, hold.keys if hold else None)
            if batched is not None:
                if hold is not None:
                    hold.released = True
                return batched
            result = executor.run_fresh(plan, snap)
        else:
            result = executor.run(plan)
        with conn.pipeline():
            self._record(conn, plan, result)
            if hold is not None:
                conn.execute(UNLOCK, hold.keys)
        if hold is not None:
            hold.released = True
        return result

    def _batch(
        self,
        executor: Executor,
        plan: Plan,
        snap: Snapshot,
        keys: tuple[str, str] | None,
        before: Callable[[], None] | None = None,
    ) -> ApplyResult | None:
        """``Executor.run_batch`` with the record inside and the unlock (``keys``) after."""
        conn = executor.conn

        def unlock() -> None:
            if keys is not None:
                conn.execute(UNLOCK, keys)

        return executor.run_batch(
            plan, snap, lambda result: self._record(conn, plan, result), unlock, before
        )

    def _record(self, conn: psycopg.Connection[Any], plan: Plan, result: ApplyResult) -> None:
        """Save the parent's spec and what this run did (sent, not fetched)."""
        self.store.save_parent(
            conn,
            str(plan.parent),
            spec=plan.spec.to_dict() if isinstance(plan.spec, PartitionSpec) else None,
            maintenance={
                "done": len(result.done),
                "skipped": len(result.skipped),
                "failed": len(result.failed),
                "notes": [n.message for n in result.notes],
            },
        )

    def maintain(self, spec: PartitionSpec, now: datetime | int | None = None) -> ApplyResult:
        """Plan and apply under one hold of the parent's advisory lock (what cron runs).

        The table and its ownership records are read in one query and planned
        in memory; when there is nothing to do that is all: no lock is taken
        and nothing is written (the parent's last-maintenance record is
        updated only by runs that do something). Otherwise one pipelined
        transaction tries the parent's advisory lock, checks that the table
        and its records still read as planned (another maintainer may have
        just acted), applies the plan, records it, commits and unlocks: one
        round trip. When the default partition is empty (0 bytes), planning
        itself sends no query: no row can conflict with a new range, and new
        names are taken as free (a taken one fails that transaction). When it
        cannot be (the lock is busy, the state changed, a name was taken, an
        operation failed), it is rolled back; the lock is waited for, the
        state read again under it and the plan made again in full.
        """
        parent = Name(spec.schema_name, spec.table)
        with self.connect() as conn:
            first = self._snapshot(conn, spec, fingerprint=True)
            # New names are taken as free: a taken one fails the batch below, and the
            # plan is then made again in full.
            plan = self._plan_from(conn, spec, first, now, names_free=True)
            if not plan.operations:
                return ApplyResult(parent, (), plan.notes)
            self.store.ensure(conn)
            keys = lock_keys(parent)
            held = False
            if first.fingerprint is not None:

                def lock_if_unchanged() -> None:
                    conn.execute(TRY_LOCK_NOTED, keys)
                    conn.execute(*self.store.unchanged_sql(conn, first, *parent, HELD_FLAG))

                executor = Executor(conn, self.store, self.policy)
                done = self._batch(executor, plan, first, keys, lock_if_unchanged)
                if done is not None:
                    return done
                row = conn.execute(HOLDS_LOCK, keys).fetchone()
                held = bool(row and row[0])
            with parent_lock(conn, parent, self.policy.lock_wait, held=held) as hold:
                snap = self._snapshot(conn, spec)
                plan = self._plan_from(conn, spec, snap, now)
                return self._apply(conn, plan, snap, hold)

    def drain_default(self, spec: PartitionSpec, *, batch_size: int = 10_000) -> DrainResult:
        """Move the default partition's rows into proper partitions, creating them.

        Range and list specs. Each range's rows move in one transaction when
        there are at most ``batch_size`` of them, else in batches through a
        staging table (see ``dbopt.partitions.drain``); rows no
        partition of the spec can hold (NULL keys, values outside the spec)
        stay and are counted in ``DrainResult.left``.
        """
        if batch_size < 1:
            raise PartitionSpecError("batch_size must be at least 1")
        with self.connect() as conn:
            self.store.ensure(conn)
            with parent_lock(conn, Name(spec.schema_name, spec.table), self.policy.lock_wait):
                table = self._table(conn, spec)
                parent = self.store.parent(conn, table.qualified)
                return drain_default(
                    conn,
                    self.store,
                    self.policy,
                    spec,
                    table,
                    batch_size=batch_size,
                    learned=parent.naming if parent else None,
                )

    def create_index(
        self,
        table: str,
        name: str,
        columns: Sequence[str],
        *,
        unique: bool = False,
        method: str = "btree",
        include: Sequence[str] = (),
        where: str | None = None,
        storage_parameters: Mapping[str, Any] | None = None,
    ) -> IndexResult:
        """Build index ``name`` on partitioned ``table`` without a long lock.

        ``ON ONLY`` the parent, each partition ``CONCURRENTLY``, then ``ATTACH``
        (see ``dbopt.partitions.indexes``). ``columns`` and
        ``include`` are column names; ``where`` is SQL text of a partial
        index's predicate. Idempotent: a rerun finishes what a failed run left.
        """
        schema, bare = _split(table)
        with self.connect() as conn, parent_lock(conn, Name(schema, bare), self.policy.lock_wait):
            if read_table(conn, schema, bare) is None:
                raise PartitionSpecError(f"{schema}.{bare} is not a partitioned table")
            shape = IndexShape(
                tuple(columns),
                unique,
                method,
                tuple(include),
                where,
                tuple((storage_parameters or {}).items()),
            )
            return create_partitioned_index(conn, self.policy, Name(schema, bare), name, shape)

    def convert(
        self,
        table: str,
        spec: PartitionSpec,
        *,
        batch_size: int | None = None,
        catch_up: int = 100,
        now: datetime | int | None = None,
        on_phase: Callable[[str], None] | None = None,
    ) -> ConversionResult:
        """Convert the regular ``table`` into a partitioned one per ``spec``, online.

        Copies in primary-key batches of ``batch_size`` rows (None: adaptive,
        from 10,000 rows, sized so a batch takes about half a second) while triggers capture
        concurrent INSERT/UPDATE/DELETE, replays them until at most
        ``catch_up`` are left, then swaps names in one short transaction
        under ``lock_timeout`` with retry. The old table is kept (renamed
        ``<table>__dbopt_old``) and kept in step for ``revert()`` until
        ``finish_conversion()``. A concurrent TRUNCATE is captured and
        replayed; a change the capture cannot follow (``ALTER TABLE``, a
        rename) stops it with ConversionError, the table left as it was.
        ``on_phase(name)`` is called at each point of ``convert.PHASES``
        (``copy``, ``replay``, ``swap``, ``locked``), e.g. for tests or progress.
        See ``dbopt.partitions.convert``.
        """
        if _split(table) != (spec.schema_name, spec.table):
            raise PartitionSpecError(f"convert({table!r}) got a spec for {spec.qualified}")
        if batch_size is not None and batch_size < 1:
            raise PartitionSpecError("batch_size must be at least 1 (or None: adaptive)")
        with self.connect() as conn:
            self.store.ensure(conn)
            with parent_lock(conn, Name(spec.schema_name, spec.table), self.policy.lock_wait):
                return convert_table(
                    conn,
                    self.store,
                    self.policy,
                    spec,
                    batch_size=batch_size,
                    catch_up=catch_up,
                    now=now,
                    on_phase=on_phase,
                )

    def revert(
        self, table: str, *, batch_size: int = 10_000, catch_up: int = 100
    ) -> ConversionResult:
        """Undo ``convert(table, ...)``: the old table, with every write made since, is back.

        Before the swap (an interrupted conversion) it removes what was built.
        """
        name = Name(*_split(table))
        with self.connect() as conn:
            self.store.ensure(conn)
            with parent_lock(conn, name, self.policy.lock_wait):
                return revert_table(
                    conn, self.store, self.policy, name, batch_size=batch_size, catch_up=catch_up
                )

    def finish_conversion(self, table: str, *, drop_old: bool = False) -> None:
        """Keep the conversion of ``table``: stop the revert capture; maybe drop the old table."""
        name = Name(*_split(table))
        with self.connect() as conn:
            self.store.ensure(conn)
            with parent_lock(conn, name, self.policy.lock_wait):
                finish_table(conn, self.store, name, drop_old=drop_old)

    def create(
        self,
        spec: PartitionSpec,
        *,
        columns: str | Table | None = None,
        now: datetime | int | None = None,
    ) -> ApplyResult:
        """Create the partitioned parent and its partitions, or adopt an existing one.

        A missing table is created from ``columns`` (column definitions as SQL
        text, or a SQLAlchemy ``Table``). An existing partitioned table is
        adopted: every partition already there becomes owned (retention may
        then act on it) and the naming of hand-made partitions is learned, so
        new ones follow it. A regular table is refused: use ``convert()``.
        """
        parent = Name(spec.schema_name, spec.table)
        with self.connect() as conn:
            self.store.ensure(conn)
            with parent_lock(conn, parent, self.policy.lock_wait):
                kind = relation_kind(conn, *parent)
                if kind is None:
                    self._create_parent(conn, spec, columns)
                elif kind != "p":
                    raise PartitionSpecError(
                        f"{parent} is a regular table; convert() makes it partitioned online"
                    )
                adopted = self._adopt(conn, spec)
                result = self._apply(conn, self._plan(conn, spec, now))
        return ApplyResult(result.parent, adopted.results + result.results, result.notes)

    def _create_parent(
        self, conn: psycopg.Connection[Any], spec: PartitionSpec, columns: str | Table | None
    ) -> None:
        if columns is None:
            raise PartitionSpecError(f"{spec.qualified} does not exist; pass columns= to create it")
        if isinstance(columns, str):
            conn.execute(
                ddl.create_parent(
                    Name(spec.schema_name, spec.table),
                    sql.SQL(columns),
                    spec.strategy,
                    spec.key,
                )
            )
            return
        from dbopt.partitions.sqlalchemy import create_table_sql

        conn.execute(create_table_sql(columns, spec))

    def _adopt(self, conn: psycopg.Connection[Any], spec: PartitionSpec) -> ApplyResult:
        table = self._table(conn, spec)
        parent = Name(table.schema, table.name)
        owned = self.store.owned(conn, table.qualified)
        ops = tuple(
            AdoptPartition(
                parent, Name(p.schema, p.name), "existed when the table was adopted", bound=p.bound
            )
            for p in table.partitions
            if not is_owned(p, owned)
        )
        if spec.strategy == "range" and table.key_kind is not None and not spec.naming:
            learned = learn_template(table.name, table.ranges(), spec.grid(table.key_kind))
            if learned:
                self.store.save_parent(conn, table.qualified, naming=learned)
        return Executor(conn, self.store, self.policy).run(
            Plan(parent, "adopt existing partitions", "", ops)
        )


def _split(table: str) -> tuple[str, str]:
    """``"schema.name"`` or ``"name"`` (schema ``public``) as a pair."""
    if "." in table:
        schema, name = table.split(".", 1)
        return schema, name
    return "public", table
