"""Convert a regular table into a partitioned one online, keeping the old table for rollback.

1. Build ``<table>__dbopt_new``: ``LIKE`` the table, ``PARTITION BY`` the
   spec, its partitions (from the smallest key to ``premake`` past the
   largest and now, plus the default), a primary key of the old key plus
   the partition key (PostgreSQL requires it), and the table's foreign keys.
2. Capture changes: statement-level triggers on the table record the key
   of every inserted, updated or deleted row in ``<table>__dbopt_changes``.
3. Copy in keyset batches in primary-key order, each its own transaction:
   ``batch_size`` rows, or (None) adaptive batches from 10,000 rows, doubled
   while a batch takes under 0.25 s and halved above 1 s (at most 1,000,000).
4. Recreate the other indexes (unique ones only when they include the
   partition key: PostgreSQL cannot enforce others across partitions).
5. Replay captured changes in batches until few are left.
6. Swap: make the revert capture's change table ``<table>__dbopt_revert``
   and its function, replay what is pending, then in one transaction under
   ``lock_timeout`` with retry: lock the table, replay the rest (two
   set-based statements: the change table cannot grow under the lock), drop
   the capture, rename the table to ``<table>__dbopt_old`` and the new one
   to ``<table>`` (indexes and constraints too), hand over sequences, and
   attach the revert capture's triggers to the new table so ``revert()`` can
   undo it. All of it after the lock goes in one pipeline.

A TRUNCATE of the table is captured too (a statement-level trigger) and
replayed: the copy is emptied and only rows written after it are copied
again (see ``capture``). What no trigger sees (``ALTER TABLE``, a rename,
``DROP``, a new index or constraint) is caught by comparing the table's shape
(name, columns and their types, defaults and NOT NULL, constraints, indexes)
with the one read at the start, between phases and, decisively, in the swap
transaction under its ACCESS EXCLUSIVE lock: any difference stops the
conversion with ConversionError, removes what was built and leaves the table
as it is.

Writers are held up only by the triggers' creation and the swap, each
bounded by ``lock_timeout``. Views and foreign keys that point at the
table (they follow its OID, not its name) make the conversion refuse to
start. ``finish_conversion`` stops the revert capture and may drop the old table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from dbopt.partitions import ddl
from dbopt.partitions.apply import Executor
from dbopt.partitions.capture import (
    Mirror,
    capture_setup_sql,
    capture_sql,
    capture_triggers_sql,
    drop_capture_sql,
)
from dbopt.partitions.catalog import read_table, relation_kind
from dbopt.partitions.conversion import (
    ConversionResult,
    Shape,
    SourceTable,
    aux_name,
    inspect_source,
    read_shape,
    shape_changes,
)
from dbopt.partitions.errors import ConversionError
from dbopt.partitions.locking import LockPolicy, with_retry
from dbopt.partitions.plan import Name
from dbopt.partitions.planner import build_plan
from dbopt.partitions.spec import PartitionSpec

if TYPE_CHECKING:
    from dbopt.partitions.state import StateStore

__all__ = ["PHASES", "PhaseHook", "abandon", "adapt_batch", "convert_table", "names_for"]

#: The points ``on_phase`` is called at: after each copied batch (``copy``), before
#: each catch-up replay batch (``replay``), before each swap attempt (``swap``, no
#: lock held) and in the swap transaction right after the table is locked (``locked``).
PHASES = ("copy", "replay", "swap", "locked")
PhaseHook = Callable[[str], None]

#: Adaptive copy batches (``batch_size=None``): the first one's rows, the bounds,
#: and the time a batch should take (a batch is one transaction: short enough
#: that a TRUNCATE or ALTER of the table waits little behind it).
FIRST_BATCH = 10_000
MAX_BATCH = 1_000_000
BATCH_SECONDS = 0.5


def adapt_batch(size: int, seconds: float) -> int:
    """The next adaptive batch size after one of ``size`` rows took ``seconds``."""
    if seconds < BATCH_SECONDS / 2:
        return min(MAX_BATCH, size * 2)
    if seconds > BATCH_SECONDS * 2:
        return max(FIRST_BATCH, size // 2)
    return size


def names_for(table: Name) -> dict[str, Name]:
    """The auxiliary relations of a conversion of ``table``."""
    return {
        key: Name(table.schema, aux_name(table.name, key))
        for key in ("new", "old", "changes", "capture", "revert", "revert_capture")
    }


def convert_table(
    conn: psycopg.Connection[Any],
    store: StateStore,
    policy: LockPolicy,
    spec: PartitionSpec,
    *,
    batch_size: int | None,
    catch_up: int,
    now: datetime | int | None,
    on_phase: PhaseHook | None = None,
) -> ConversionResult:
    """Run the whole conversion (see the module doc); ConversionError when it cannot.

    A failure before the swap removes what was built; the table is untouched.
    ``on_phase(name)`` is called at each of ``PHASES`` (a hook for tests and
    progress reports; an exception from it abandons the conversion).
    """
    table = Name(spec.schema_name, spec.table)
    if store.conversion(conn, str(table)) is not None:
        raise ConversionError(
            f"a conversion of {table} is in progress or kept for rollback:"
            " call finish_conversion() or revert() first"
        )
    info = inspect_source(conn, table, spec.key)
    shape = read_shape(conn, info.oid)
    if shape is None:
        raise ConversionError(f"{table} vanished while it was being inspected")
    store.save_conversion(conn, str(table), "copying", {"key": spec.key, "oid": info.oid})
    run = _Run(conn, table, info.oid, shape, on_phase or (lambda phase: None))
    try:
        return _convert(run, store, policy, spec, info, batch_size, catch_up, now)
    except BaseException as exc:
        found = None if conn.closed else store.conversion(conn, str(table))
        if found is not None and found[0] == "copying":
            abandon(conn, store, table, names_for(table), oid=info.oid, policy=policy)
        if isinstance(exc, psycopg.Error) and not conn.closed:
            changes = shape_changes(shape, read_shape(conn, info.oid))
            if changes:
                raise ConversionError(run.changed_message(changes)) from exc
        raise


@dataclass(frozen=True)
class _Run:
    """The connection, the table's OID and shape at the start, and the phase hook."""

    conn: psycopg.Connection[Any]
    table: Name
    oid: int
    shape: Shape
    hook: PhaseHook

    def changed_message(self, changes: list[str]) -> str:
        return (
            f"{self.table} changed during its conversion in a way the capture cannot follow"
            f" ({'; '.join(changes)}); the conversion was abandoned and the table left as it"
            " is: run convert() again"
        )

    def verify(self) -> None:
        """ConversionError when the table's shape is not the one read at the start."""
        changes = shape_changes(self.shape, read_shape(self.conn, self.oid))
        if changes:
            raise ConversionError(self.changed_message(changes))


def _convert(
    run: _Run,
    store: StateStore,
    policy: LockPolicy,
    spec: PartitionSpec,
    info: SourceTable,
    batch_size: int | None,
    catch_up: int,
    now: datetime | int | None,
) -> ConversionResult:
    began = time.perf_counter()
    conn = run.conn
    table = info.name
    aux = names_for(table)
    notes: list[str] = []
    detail: dict[str, Any] = {
        "key": spec.key,
        "oid": info.oid,
        "renames": [],
        "sequences": [list(s) for s in info.sequences],
    }
    with conn.transaction():
        conn.execute(ddl.lock(table, "ACCESS SHARE"))
        run.verify()  # what inspect_source read is what LIKE copies
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
                " INCLUDING GENERATED INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMMENTS)"
                " PARTITION BY {} ({})"
            ).format(
                ddl.ident(aux["new"]),
                ddl.ident(table),
                sql.SQL(spec.strategy.upper()),
                sql.Identifier(spec.key),
            )
        )
    partitions = _make_partitions(conn, store, policy, spec, table, aux["new"], now)
    pk = info.rows.key if spec.key in info.rows.key else (*info.rows.key, spec.key)
    if pk != info.rows.key:
        notes.append(
            f"primary key ({', '.join(info.rows.key)}) became ({', '.join(pk)}): a partitioned"
            " table's unique keys must include the partition key"
        )
    pk_index = next((i for i in info.indexes if i.primary), None)
    tmp_pk = aux_name(pk_index.name if pk_index else f"{table.name}_pkey", "tmp")
    conn.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
            ddl.ident(aux["new"]),
            sql.Identifier(tmp_pk),
            sql.SQL(", ").join(map(sql.Identifier, pk)),
        )
    )
    if pk_index is not None:
        detail["renames"].append([pk_index.name, tmp_pk])
    for name, definition in info.foreign_keys:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                ddl.ident(aux["new"]), sql.Identifier(name), sql.SQL(definition)
            )
        )
    forward = Mirror(table, aux["new"], aux["changes"], info.rows)

    def install() -> None:
        with conn.transaction():
            conn.execute(ddl.lock(table, "SHARE ROW EXCLUSIVE"))
            run.verify()
            for statement in capture_sql(conn, forward, aux["capture"]):
                conn.execute(statement)

    with_retry(install, policy, f"capture changes of {table}")
    copy_began = time.perf_counter()
    copied, after = 0, None
    size = batch_size or FIRST_BATCH
    while True:
        batch_began = time.perf_counter()
        (moved, last), _ = with_retry(
            partial(forward.copy_batch, conn, after, size), policy, f"copy {table}"
        )
        copied += moved
        run.hook("copy")
        if last is None:
            break
        after = last
        if batch_size is None:
            size = adapt_batch(size, time.perf_counter() - batch_began)
    copy_seconds = time.perf_counter() - copy_began
    run.verify()  # fail early; the check that counts is the one under the swap's lock
    for index in info.indexes:
        if index.primary:
            continue
        if index.unique and not index.has_key:
            notes.append(
                f"unique index {index.name} does not include {spec.key}; PostgreSQL cannot"
                " enforce it across partitions, so the new table does not have it"
            )
            continue
        tmp = aux_name(index.name, "tmp")
        conn.execute(
            sql.SQL("CREATE {}INDEX {} ON {}{}").format(
                sql.SQL("UNIQUE " if index.unique else ""),
                sql.Identifier(tmp),
                ddl.ident(aux["new"]),
                sql.SQL(index.tail),
            )
        )
        detail["renames"].append([index.name, tmp])
    replayed = 0
    for _ in range(1000):
        run.hook("replay")
        if forward.backlog(conn) <= catch_up and not forward.truncate_pending(conn):
            break  # (a TRUNCATE is replayed here, so that the swap does not empty the copy)
        replayed += with_retry(
            lambda: forward.replay(conn, batch_size or FIRST_BATCH),
            policy,
            f"replay changes of {table}",
        )[0]
    swap_seconds, final = _swap(run, store, policy, spec, aux, info, forward, detail)
    replayed += final
    return ConversionResult(
        table=str(table),
        status="swapped",
        copied=copied,
        replayed=replayed,
        partitions=partitions,
        notes=tuple(notes),
        seconds=time.perf_counter() - began,
        copy_seconds=copy_seconds,
        swap_seconds=swap_seconds,
    )


def _make_partitions(
    conn: psycopg.Connection[Any],
    store: StateStore,
    policy: LockPolicy,
    spec: PartitionSpec,
    table: Name,
    new: Name,
    now: datetime | int | None,
) -> tuple[str, ...]:
    """Partitions for every existing row, ``premake`` ahead, and the default."""
    target = replace(spec, table=new.name, schema=new.schema, retention=None, retention_count=None)
    if spec.strategy == "range":
        row = conn.execute(
            sql.SQL("SELECT min({k}), max({k}) FROM {}").format(
                ddl.ident(table), k=sql.Identifier(spec.key)
            )
        ).fetchone()
        low, high = (row[0], row[1]) if row else (None, None)
        if low is not None:
            target = replace(target, start=low)
        if spec.width is not None:
            now = high if high is not None else now
        elif high is not None:
            wall = now if isinstance(now, datetime) else datetime.now(timezone.utc)
            if not isinstance(high, datetime):
                high = datetime(high.year, high.month, high.day)
            now = max(wall, high if high.tzinfo else high.replace(tzinfo=spec.zone))
    shape = read_table(conn, new.schema, new.name)
    if shape is None:
        raise ConversionError(f"{new} vanished while it was being built")
    plan = build_plan(conn, target, shape, {}, learned=None, now=now, name_as=spec.table)
    result = Executor(conn, store, policy).run(plan)
    if not result.ok:
        raise ConversionError(f"cannot create the partitions of {new}: {result.describe()}")
    return tuple(str(r.operation.partition) for r in result.done)


def _swap(
    run: _Run,
    store: StateStore,
    policy: LockPolicy,
    spec: PartitionSpec,
    aux: dict[str, Name],
    info: SourceTable,
    forward: Mirror,
    detail: dict[str, Any],
) -> tuple[float, int]:
    """The one short transaction that puts the partitioned table in place.

    Under its ACCESS EXCLUSIVE lock the table's shape is checked against the
    one read at the start: a change no trigger saw stops here, before the swap.
    """
    conn, table = run.conn, run.table
    renames: list[list[str]] = detail["renames"]
    backward = Mirror(table, aux["old"], aux["revert"], info.rows)

    # Everything the swap runs is composed before the lock is taken (the identity
    # sequences looked up now: they keep their names through the rename), so that
    # under the lock it is sent in one pipeline, not one round trip per statement.
    statements: list[tuple[sql.Composed, tuple[Any, ...]]] = [
        (statement, ()) for statement in drop_capture_sql(table, aux["changes"], aux["capture"])
    ]
    statements += [
        (rename_index_sql(Name(table.schema, original), aux_name(original, "old")), ())
        for original, _ in renames
    ]
    statements += [
        (
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                ddl.ident(table), sql.Identifier(aux["old"].name)
            ),
            (),
        ),
        (
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                ddl.ident(aux["new"]), sql.Identifier(table.name)
            ),
            (),
        ),
    ]
    statements += [
        (rename_index_sql(Name(table.schema, tmp), original), ()) for original, tmp in renames
    ]
    statements += sequence_handover_sql(conn, info.sequences, table, table)
    statements += [
        (statement, ()) for statement in capture_triggers_sql(backward, aux["revert_capture"])
    ]
    # The revert capture's change table and function need no lock on the table:
    # they are made now, and only its triggers are attached under the swap's lock.
    # (abandon() drops them if the swap never happens.)
    with conn.transaction():
        for statement in capture_setup_sql(conn, backward, aux["revert_capture"]):
            conn.execute(statement)
    final = forward.replay_all_sql(conn)

    def attempt() -> tuple[float, int]:
        # What arrived since the catch-up is replayed outside the lock, so that
        # the replay under it is only what writers did in the last moment.
        if not forward.truncate_pending(conn):
            forward.replay(conn, None)
        run.hook("swap")
        with conn.transaction():
            conn.execute(ddl.lock(table, "ACCESS EXCLUSIVE"))
            locked = time.perf_counter()
            run.hook("locked")
            run.verify()
            # Under the lock the change table cannot grow: the rest is replayed with
            # set-based statements in the same pipeline as the swap's DDL.
            with conn.pipeline():
                counted = [conn.execute(statement) for statement in final]
                for statement, params in statements:
                    conn.execute(statement, params)
                store.move_parent(conn, str(aux["new"]), str(table), "converted")
                store.save_parent(conn, str(table), spec=spec.to_dict())
                store.save_conversion(conn, str(table), "swapped", detail)
            count = counted[0].fetchone()
            replayed = int(count[0]) if count else 0
        return time.perf_counter() - locked, replayed  # the lock is held until the commit

    result, _ = with_retry(attempt, policy, f"swap {table} for its partitioned copy")
    return result


def rename_index(conn: psycopg.Connection[Any], index: Name, to: str) -> None:
    """``ALTER INDEX index RENAME TO to`` (renames a constraint's index with it)."""
    conn.execute(rename_index_sql(index, to))


def rename_index_sql(index: Name, to: str) -> sql.Composed:
    """The statement of ``rename_index``."""
    return sql.SQL("ALTER INDEX {} RENAME TO {}").format(ddl.ident(index), sql.Identifier(to))


def sequence_handover_sql(
    conn: psycopg.Connection[Any], sequences: Any, source: Name, target: Name
) -> list[tuple[sql.Composed, tuple[Any, ...]]]:
    """``hand_over_sequences`` as statements, with the identity sequences looked up now.

    ``source`` is where the identity sequences are found now (they keep their
    names when their table is renamed); ``target`` names the table that takes
    them over, as it will be named when the statements run.
    """
    out: list[tuple[sql.Composed, tuple[Any, ...]]] = []
    for sequence, column, kind in sequences:
        if kind == "a":
            out.append(
                (
                    sql.SQL("ALTER SEQUENCE {} OWNED BY {}").format(
                        sql.SQL(sequence), sql.Identifier(target.schema, target.name, column)
                    ),
                    (),
                )
            )
            continue
        out.append(
            (
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence(%s, %s), s.last_value, s.is_called)"
                    " FROM (SELECT last_value, is_called FROM {}) s"
                ).format(sql.SQL(_identity_sequence(conn, source, column))),
                (ddl.ident(target).as_string(conn), column),
            )
        )
    return out


def hand_over_sequences(
    conn: psycopg.Connection[Any],
    sequences: Any,
    source: Name,
    target: Name,
) -> None:
    """Serial sequences change owner; identity sequences of ``target`` continue ``source``'s."""
    for statement, params in sequence_handover_sql(conn, sequences, source, target):
        conn.execute(statement, params)


def _identity_sequence(conn: psycopg.Connection[Any], table: Name, column: str) -> str:
    row = conn.execute(
        "SELECT pg_get_serial_sequence(%s, %s)", (ddl.ident(table).as_string(conn), column)
    ).fetchone()
    if row is None or row[0] is None:
        raise ConversionError(f"no identity sequence on {table}.{column}")
    return str(row[0])


def abandon(
    conn: psycopg.Connection[Any],
    store: StateStore,
    table: Name,
    aux: dict[str, Name],
    *,
    oid: int | None = None,
    policy: LockPolicy | None = None,
) -> None:
    """Remove what an interrupted conversion built before its swap.

    With ``oid`` the capture triggers are dropped from that table under whatever
    name it has now (it may have been renamed during the conversion). With
    ``policy`` a lock timeout is retried as the policy says.
    """
    if policy is not None:
        with_retry(lambda: abandon(conn, store, table, aux, oid=oid), policy, f"clean up {table}")
        return
    with conn.transaction():
        source: Name | None = table if relation_kind(conn, *table) is not None else None
        if oid is not None:
            row = conn.execute(
                "SELECT n.nspname, c.relname FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s",
                (oid,),
            ).fetchone()
            source = None if row is None else Name(str(row[0]), str(row[1]))
        if source is not None:
            for statement in drop_capture_sql(source, aux["changes"], aux["capture"]):
                conn.execute(statement)
        else:
            for statement in drop_capture_sql(table, aux["changes"], aux["capture"])[-2:]:
                conn.execute(statement)
        # The revert capture's function and change table, made just before the swap.
        for statement in drop_capture_sql(table, aux["revert"], aux["revert_capture"])[-2:]:
            conn.execute(statement)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ddl.ident(aux["new"])))
        store.forget_parent(conn, str(aux["new"]))
        store.drop_conversion(conn, str(table))
