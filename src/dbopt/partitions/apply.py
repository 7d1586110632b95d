"""Carry out a plan, one operation at a time, each under ``lock_timeout`` with retry.

Every operation takes its locks in one order: the parent, then the default
partition, then the partition itself. Creating a partition is ``CREATE
TABLE ... (LIKE parent)`` + ``ATTACH PARTITION`` (SHARE UPDATE EXCLUSIVE on
the parent) and records ownership in the same transaction. Detaching is
``CONCURRENTLY`` when the server has it (14+) and there is no default
partition (PostgreSQL forbids it then); otherwise a short ACCESS EXCLUSIVE
transaction. A range that the default partition's rows would conflict with
is skipped and reported, never an error.

``maintain()`` first tries the whole plan as one transaction sent in one
round trip (``Executor.run_batch``: creates, detaches without CONCURRENTLY,
the maintenance record, one commit); if any statement fails, that
transaction is rolled back and the plan runs one operation at a time as
above.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import psycopg
from psycopg import errors, sql
from psycopg.pq import TransactionStatus

from dbopt._json import FieldsDict
from dbopt.partitions import ddl
from dbopt.partitions.catalog import PartitionedTable, read_table
from dbopt.partitions.errors import LockTimeoutError
from dbopt.partitions.locking import LockPolicy, with_retry
from dbopt.partitions.plan import (
    AdoptPartition,
    CreatePartition,
    DefaultBound,
    DetachPartition,
    DropPartition,
    FinalizeDetach,
    ForgetPartition,
    MarkDetached,
    Name,
    Note,
    Operation,
    OwnedOperation,
    Plan,
)
from dbopt.postgres.connect import translate

if TYPE_CHECKING:
    from dbopt.partitions.state import Snapshot, StateStore

__all__ = ["ApplyResult", "Executor", "OperationResult"]

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class OperationResult(FieldsDict):
    """What happened to one operation."""

    _ROUND: ClassVar[dict[str, int]] = {"seconds": 6}

    operation: Operation
    status: Status
    message: str = ""
    seconds: float = 0.0
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: the operation's, then what happened to it."""
        data = super().to_dict()
        return {**data.pop("operation"), **data}


@dataclass(frozen=True)
class ApplyResult:
    """The outcome of applying a plan: one result per operation, plus the plan's notes."""

    parent: Name
    results: tuple[OperationResult, ...]
    notes: tuple[Note, ...] = ()

    def _with(self, status: Status) -> list[OperationResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[OperationResult]:
        """Operations carried out."""
        return self._with("done")

    @property
    def skipped(self) -> list[OperationResult]:
        """Operations found unnecessary or unsafe at apply time (the message says why)."""
        return self._with("skipped")

    @property
    def failed(self) -> list[OperationResult]:
        """Operations that raised a database error (the message has it)."""
        return self._with("failed")

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed

    def describe(self) -> str:
        """Readable text: one line per operation, then the notes."""
        lines = [
            f"{self.parent}: {len(self.done)} done, {len(self.skipped)} skipped,"
            f" {len(self.failed)} failed"
        ]
        for r in self.results:
            extra = f": {r.message}" if r.message else ""
            lines.append(f"  [{r.status}] {r.operation.describe()}{extra}")
        lines += [f"  note: {note.message}" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {
            "parent": str(self.parent),
            "results": [r.to_dict() for r in self.results],
            "notes": [n.to_dict() for n in self.notes],
        }


class _Skip(Exception):  # noqa: N818 (a signal, not an error)
    """An operation turned out unnecessary or unsafe; the message says why."""


class Executor:
    """Applies operations on one autocommit connection that holds the parent's advisory lock."""

    def __init__(
        self, conn: psycopg.Connection[Any], store: StateStore, policy: LockPolicy
    ) -> None:
        self.conn = conn
        self.store = store
        self.policy = policy
        self.version = conn.info.server_version
        self._table: PartitionedTable | None = None
        self._tablespaces: dict[Name, str | None] = {}
        self._fresh = False  # self._table is current: the plan was made from it under the lock

    def run(self, plan: Plan) -> ApplyResult:
        """Apply ``plan``; LockTimeoutError (carrying the partial result) when locks never come."""
        self._table = read_table(self.conn, plan.parent.schema, plan.parent.name)
        return self._run(plan)

    def run_fresh(self, plan: Plan, snap: Snapshot) -> ApplyResult:
        """``run(plan)`` for a plan just made from ``snap`` under the parent's lock.

        The catalog is not read again: ``snap`` is current (it was read under
        the advisory lock this connection holds).
        """
        self._table = snap.table
        self._tablespaces[plan.parent] = snap.tablespace
        self._fresh = True
        try:
            return self._run(plan)
        finally:
            self._fresh = False

    def run_batch(
        self,
        plan: Plan,
        snap: Snapshot,
        inside: Callable[[ApplyResult], None],
        after: Callable[[], None],
        before: Callable[[], None] | None = None,
    ) -> ApplyResult | None:
        """Apply a plan just made from ``snap`` in ONE transaction and one round trip.

        For plans of partitions to create and to detach without CONCURRENTLY
        (plus record fixes): every lock is taken first in the usual order (the
        parent in the strongest mode any operation needs, then the default),
        the operations follow, then ``inside(result)`` (e.g. the maintenance
        record) and COMMIT, then ``after()`` (e.g. the advisory unlock), all
        pipelined: one commit instead of one per operation. ``before()`` sends
        statements right after BEGIN (e.g. a guard that fails when the state
        changed since ``snap``). Returns None,
        with nothing changed, when the plan has other operations or any
        statement fails (a lock timeout, a conflict found at apply time):
        the caller then runs the plan one operation at a time with its retries
        and skips.
        """
        self._table = snap.table
        self._tablespaces[plan.parent] = snap.tablespace
        if not plan.operations or not all(self._batchable(op) for op in plan.operations):
            return None
        conn, default = self.conn, self._default
        result = ApplyResult(
            plan.parent, tuple(OperationResult(op, "done") for op in plan.operations), plan.notes
        )
        detaching = any(isinstance(op, DetachPartition) for op in plan.operations)
        creating = any(isinstance(op, CreatePartition) for op in plan.operations)
        began = time.perf_counter()
        committed: psycopg.Cursor[Any] | None = None
        try:
            with conn.pipeline():
                conn.execute("BEGIN")
                if before is not None:
                    before()
                if detaching or creating:
                    mode = "ACCESS EXCLUSIVE" if detaching else "SHARE UPDATE EXCLUSIVE"
                    conn.execute(ddl.lock(plan.parent, mode))
                    if default is not None:
                        conn.execute(ddl.lock(default, "ACCESS EXCLUSIVE"))
                for op in plan.operations:
                    self._send(op)
                inside(result)
                committed = conn.execute("COMMIT")
                after()
        except psycopg.Error as exc:
            if conn.closed or conn.broken:
                raise translate(exc, f"apply the plan of {plan.parent}") from exc
            if conn.info.transaction_status != TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            elif committed is not None and committed.statusmessage == "COMMIT":
                raise  # committed; only what came after failed
            return None
        seconds = (time.perf_counter() - began) / len(plan.operations)
        return ApplyResult(
            plan.parent,
            tuple(OperationResult(r.operation, "done", "", seconds) for r in result.results),
            plan.notes,
        )

    def _batchable(self, op: Operation) -> bool:
        if isinstance(op, CreatePartition):
            return not isinstance(op.bound, DefaultBound)
        if isinstance(op, DetachPartition):
            concurrently = self.version >= 140000 and self._default is None
            return not op.then_drop and not concurrently and self._known(op.oid) is True
        return isinstance(op, (ForgetPartition, MarkDetached))

    def _send(self, op: Operation) -> None:
        """Send ``op``'s statements (no locks on the parent or default: ``run_batch``'s)."""
        conn = self.conn
        if isinstance(op, CreatePartition):
            tablespace = op.tablespace
            self._send_create(op, tablespace or self._tablespaces.get(op.parent))
        elif isinstance(op, DetachPartition):
            self._send_detach(op)
        elif isinstance(op, ForgetPartition):
            self.store.forget(conn, op.oid)
        elif isinstance(op, MarkDetached):
            self.store.set_status(conn, op.oid, "detached")

    def _send_create(self, op: CreatePartition, tablespace: str | None) -> None:
        """The partition's table, its attachment and its ownership record (no locks)."""
        conn = self.conn
        conn.execute(
            ddl.create_like(
                op.parent,
                op.partition,
                server_version=self.version,
                tablespace=tablespace,
                storage=op.storage_parameters,
            )
        )
        conn.execute(ddl.attach(op.parent, op.partition, op.bound, op.zone))
        self.store.record(conn, str(op.parent), ddl.ident(op.partition), "created")

    def _send_detach(self, op: DetachPartition) -> None:
        """A plain DETACH of a partition and its record (the parent and default locked)."""
        self.conn.execute(ddl.lock(op.partition, "ACCESS EXCLUSIVE"))
        self.conn.execute(ddl.detach(op.parent, op.partition, concurrently=False))
        self.store.set_status(self.conn, op.oid, "detached")

    def _run(self, plan: Plan) -> ApplyResult:
        results: list[OperationResult] = []
        for op in plan.operations:
            try:
                results.append(self.run_one(op))
            except LockTimeoutError as exc:
                results.append(OperationResult(op, "failed", str(exc)))
                exc.result = ApplyResult(plan.parent, tuple(results), plan.notes)
                raise
        return ApplyResult(plan.parent, tuple(results), plan.notes)

    def run_one(self, op: Operation) -> OperationResult:
        """Apply one operation, retrying lock timeouts; database errors become ``failed``."""
        handlers: dict[type[Operation], Callable[[Any], None]] = {
            CreatePartition: self._create,
            DetachPartition: self._detach,
            DropPartition: self._drop,
            FinalizeDetach: self._finalize,
            AdoptPartition: self._adopt,
            ForgetPartition: self._forget,
            MarkDetached: self._mark_detached,
        }
        handler = handlers[type(op)]
        began = time.perf_counter()
        try:
            _, attempts = with_retry(lambda: handler(op), self.policy, op.describe())
        except _Skip as skip:
            return OperationResult(op, "skipped", str(skip), time.perf_counter() - began)
        except LockTimeoutError:
            raise
        except psycopg.OperationalError as exc:
            raise translate(exc, op.describe()) from exc
        except psycopg.Error as exc:
            return OperationResult(op, "failed", str(exc).strip(), time.perf_counter() - began)
        return OperationResult(op, "done", "", time.perf_counter() - began, attempts)

    @property
    def _default(self) -> Name | None:
        default = self._table.default if self._table else None
        return None if default is None else Name(default.schema, default.name)

    def _create(self, op: CreatePartition) -> None:
        conn, default = self.conn, self._default
        if isinstance(op.bound, DefaultBound) and default is not None:
            raise _Skip(f"a default partition exists already: {default}")
        tablespace = op.tablespace
        if tablespace is None:
            if op.parent not in self._tablespaces:
                self._tablespaces[op.parent] = _tablespace(conn, op.parent)
            tablespace = self._tablespaces[op.parent]
        try:
            # One round trip: the statements are pipelined, an error in any rolls back all.
            with conn.pipeline(), conn.transaction():
                conn.execute(ddl.lock(op.parent, "SHARE UPDATE EXCLUSIVE"))
                if default is not None:
                    conn.execute(ddl.lock(default, "ACCESS EXCLUSIVE"))
                self._send_create(op, tablespace)
        except errors.CheckViolation as exc:
            raise _Skip(f"rows in the default partition belong to this range: {exc}") from exc
        except errors.DuplicateTable as exc:
            raise _Skip(f"a table of that name exists already: {exc}") from exc
        except errors.InvalidObjectDefinition as exc:
            raise _Skip(f"overlaps an existing partition: {exc}") from exc
        if isinstance(op.bound, DefaultBound) and self._table is not None:
            self._table = read_table(conn, op.parent.schema, op.parent.name)

    def _known(self, oid: int) -> bool | None:
        """``_attached`` as the fresh snapshot has it (no query)."""
        part = (
            next((p for p in self._table.partitions if p.oid == oid), None) if self._table else None
        )
        if part is None:
            return False
        return None if part.detach_pending else True

    def _attached(self, op: Operation, oid: int) -> bool | None:
        """True if attached, None if pending detach, False if not a partition of the parent."""
        pending = "i.inhdetachpending" if self.version >= 140000 else "false"
        row = self.conn.execute(
            f"SELECT {pending} FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE i.inhrelid = %s AND i.inhparent = %s::regclass"
            " AND n.nspname = %s AND c.relname = %s",
            (oid, ddl.ident(op.parent).as_string(self.conn), *op.partition),
        ).fetchone()
        if row is None:
            return False
        return None if row[0] else True

    def _detach(self, op: DetachPartition) -> None:
        conn, default = self.conn, self._default
        state = self._attached(op, op.oid) if not self._fresh else self._known(op.oid)
        if state is None:
            self._finalize(op)
        elif state:
            if self.version >= 140000 and default is None:
                self.store.set_status(conn, op.oid, "detaching")
                conn.execute(ddl.detach(op.parent, op.partition, concurrently=True))
                self.store.set_status(conn, op.oid, "detached")
            else:
                with conn.pipeline(), conn.transaction():
                    conn.execute(ddl.lock(op.parent, "ACCESS EXCLUSIVE"))
                    if default is not None:
                        conn.execute(ddl.lock(default, "ACCESS EXCLUSIVE"))
                    self._send_detach(op)
        elif not op.then_drop:
            raise _Skip("not attached any more")
        if op.then_drop:
            self._drop_table(op.partition, op.oid)

    def _finalize(self, op: OwnedOperation) -> None:
        oid = op.oid
        if self._attached(op, oid) is not None:
            raise _Skip("no detach is pending")
        self.conn.execute(ddl.finalize_detach(op.parent, op.partition))
        self.store.set_status(self.conn, oid, "detached")

    def _drop(self, op: DropPartition) -> None:
        self._drop_table(op.partition, op.oid)

    def _drop_table(self, name: Name, oid: int) -> None:
        conn = self.conn
        with conn.transaction():
            row = conn.execute(
                sql.SQL(
                    "SELECT c.relispartition, s.status FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " JOIN {} s ON s.partition_oid = c.oid"
                    " AND s.partition_schema = n.nspname AND s.partition_name = c.relname"
                    " WHERE c.oid = %s AND n.nspname = %s AND c.relname = %s"
                ).format(self.store.state),
                (oid, *name),
            ).fetchone()
            if row is None:
                raise _Skip("not a table dbopt owns under this name (left alone)")
            if row[0]:
                raise _Skip("still attached as a partition (left alone)")
            conn.execute(ddl.lock(name, "ACCESS EXCLUSIVE"))
            conn.execute(ddl.drop(name))
            self.store.forget(conn, oid)

    def _adopt(self, op: Operation) -> None:
        with self.conn.transaction():
            self.store.record(self.conn, str(op.parent), ddl.ident(op.partition), "adopted")

    def _forget(self, op: OwnedOperation) -> None:
        self.store.forget(self.conn, op.oid)

    def _mark_detached(self, op: OwnedOperation) -> None:
        self.store.set_status(self.conn, op.oid, "detached")


def _tablespace(conn: psycopg.Connection[Any], parent: Name) -> str | None:
    """The parent's tablespace (partitions made with LIKE would not inherit it)."""
    row = conn.execute(
        "SELECT t.spcname FROM pg_class c LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace"
        " WHERE c.oid = %s::regclass",
        (ddl.ident(parent).as_string(conn),),
    ).fetchone()
    return None if row is None else row[0]
