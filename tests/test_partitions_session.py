"""``PartitionManager.session()``: one connection for many calls, replaced when it breaks."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from psycopg import sql
from psycopg.pq import TransactionStatus

from dbopt.errors import DboptError
from dbopt.partitions import PartitionSpec
from dbopt.partitions.apply import Executor
from dbopt.partitions.locking import TRY_LOCK, lock_keys
from test_partitions_support import EVENTS_COLUMNS, connect, make_manager

pytestmark = pytest.mark.postgres


def test_calls_in_a_session_share_one_connection(pg_url: str, schema: str) -> None:
    spec = PartitionSpec(f"{schema}.ev", key="created_at", interval="day", premake=1)
    manager = make_manager(pg_url, schema)
    manager.create(spec, columns=EVENTS_COLUMNS)
    with manager.connect() as conn:
        outside = conn.info.backend_pid
    with manager.session():
        with manager.connect() as conn:
            first = conn.info.backend_pid
        assert manager.maintain(spec).ok
        assert len(manager.maintain(replace(spec, premake=2)).done) == 1
        with manager.session(), manager.connect() as conn:  # nested: the same one
            assert conn.info.backend_pid == first
            assert not conn.closed
        with manager.connect() as conn:
            assert conn.info.backend_pid == first
    assert first != outside
    assert conn.closed  # the session's end closed it
    assert manager.plan(replace(spec, premake=2)).converged


def test_a_broken_session_connection_is_replaced(pg_url: str, schema: str) -> None:
    spec = PartitionSpec(f"{schema}.ev", key="created_at", interval="day", premake=1)
    manager = make_manager(pg_url, schema)
    manager.create(spec, columns=EVENTS_COLUMNS)
    with manager.session():
        with manager.connect() as conn:
            pid = conn.info.backend_pid
        with connect(pg_url) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(DboptError):
            manager.maintain(spec)  # the call that finds it dead fails...
        assert manager.maintain(spec).ok  # ...the next one runs on a new connection
        with manager.connect() as conn:
            assert conn.info.backend_pid != pid


def test_maintain_in_a_session_records_and_releases_its_lock(pg_url: str, schema: str) -> None:
    """The maintenance record and the advisory unlock are sent together: both happen.

    In a session the connection outlives the call, so only the unlock frees
    the lock for another maintainer; a name already taken gets a suffix.
    """
    spec = PartitionSpec(f"{schema}.ev", key="created_at", interval="day", premake=1)
    manager = make_manager(pg_url, schema)
    manager.create(spec, columns=EVENTS_COLUMNS)
    more = replace(spec, premake=3)
    upcoming = [p for p in manager.plan(more).operations if p.kind == "create_partition"]
    assert len(upcoming) == 2
    taken = upcoming[0].partition
    with connect(pg_url) as other:
        other.execute(
            sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(taken.schema, taken.name))
        )
        with manager.session():
            result = manager.maintain(more)
            assert result.ok
            made = sorted(r.operation.partition.name for r in result.done)
            assert made == sorted([f"{taken.name}_1", upcoming[1].partition.name])
            with manager.connect() as conn:
                held = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s",
                    (conn.info.backend_pid,),
                ).fetchone()
            assert held == (0,)
            assert other.execute(TRY_LOCK, lock_keys(spec.qualified)).fetchone() == (True,)
            other.execute(
                "SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", lock_keys(spec.qualified)
            )
        record = other.execute(
            sql.SQL("SELECT last_maintenance FROM {} WHERE parent = %s").format(
                sql.Identifier(schema, "dbopt_partition_parent")
            ),
            (spec.qualified,),
        ).fetchone()
    assert record is not None
    assert record[0]["done"] == 2


def _snapshot_and_plan(manager: Any, conn: Any, spec: PartitionSpec) -> tuple[Any, Any]:
    snap = manager.store.snapshot(conn, spec.schema_name, spec.table)
    return snap, manager._plan_from(conn, spec, snap, None)


def test_a_create_and_a_detach_run_in_one_transaction(pg_url: str, schema: str) -> None:
    """With a default partition, creates and detaches commit together (one xid for all)."""
    spec = PartitionSpec(
        f"{schema}.ev",
        key="created_at",
        interval="day",
        premake=2,
        retention_count=3,
        start=datetime.now(timezone.utc) - timedelta(days=3),
    )
    manager = make_manager(pg_url, schema)
    manager.create(spec, columns=EVENTS_COLUMNS)
    more = replace(spec, premake=3, retention_count=2)
    with manager.session():
        result = manager.maintain(more)
        assert sorted(r.operation.kind for r in result.done) == [
            "create_partition",
            "detach_partition",
        ]
        with manager.connect() as conn:
            xids = conn.execute(
                sql.SQL(
                    "SELECT count(DISTINCT x) FROM (SELECT xmin::text x FROM {} WHERE"
                    " partition_name = ANY(%s) UNION ALL SELECT xmin::text FROM {}"
                    " WHERE parent = %s) s"
                ).format(
                    sql.Identifier(schema, "dbopt_partition_state"),
                    sql.Identifier(schema, "dbopt_partition_parent"),
                ),
                ([r.operation.partition.name for r in result.done], spec.qualified),
            ).fetchone()
            assert xids == (1,)  # the records of both operations and of the run: one commit
            record = conn.execute(
                sql.SQL("SELECT last_maintenance FROM {} WHERE parent = %s").format(
                    sql.Identifier(schema, "dbopt_partition_parent")
                ),
                (spec.qualified,),
            ).fetchone()
    assert record is not None
    assert record[0]["done"] == 2
    assert manager.plan(more).converged


def test_a_batch_that_fails_changes_nothing_and_maintain_falls_back(
    pg_url: str, schema: str
) -> None:
    """A statement failing in the one-transaction batch rolls all of it back; run one
    operation at a time (what maintain() does then), only the one that cannot be done
    is skipped."""
    spec = PartitionSpec(
        f"{schema}.ev",
        key="created_at",
        interval="day",
        premake=1,
        retention_count=3,
        start=datetime.now(timezone.utc) - timedelta(days=2),
    )
    manager = make_manager(pg_url, schema)
    manager.create(spec, columns=EVENTS_COLUMNS)
    more = replace(spec, premake=3, retention_count=2)
    with manager.session(), manager.connect() as conn:
        snap, plan = _snapshot_and_plan(manager, conn, more)
        creates = [op for op in plan.operations if op.kind == "create_partition"]
        assert len(creates) == 2
        assert any(op.kind == "detach_partition" for op in plan.operations)
        before = len(manager.partitions(spec.qualified))
        # Someone attaches a table to the second range between planning and applying.
        second = creates[1].partition
        conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM (%s) TO (%s)")
            .format(
                sql.Identifier(second.schema, second.name + "_x"),
                sql.Identifier(spec.schema_name, spec.table),
            )
            .as_string(conn)
            % (
                f"'{creates[1].bound.lower.isoformat()}'",
                f"'{creates[1].bound.upper.isoformat()}'",
            )
        )
        executor = Executor(conn, manager.store, manager.policy)
        recorded: list[object] = []
        assert executor.run_batch(plan, snap, recorded.append, lambda: None) is None
        assert conn.info.transaction_status == TransactionStatus.IDLE
        assert len(manager.partitions(spec.qualified)) == before + 1  # only the outsider's
        result = executor.run_fresh(plan, snap)
    assert [
        r.operation.partition for r in result.done if r.operation.kind == "create_partition"
    ] == [creates[0].partition]
    assert len(result.skipped) == 1
    assert "overlaps" in result.skipped[0].message
    assert any(r.operation.kind == "detach_partition" for r in result.done)


def test_maintain_replans_when_another_maintainer_acted_after_its_first_read(
    pg_url: str, schema: str
) -> None:
    """The one-round-trip apply checks the state still reads as planned; when another
    maintainer acted in between, nothing of the stale plan is applied, the state is read
    again under the lock and planned again (here: nothing left to do), and the lock is
    released."""
    spec = PartitionSpec(f"{schema}.ev", key="created_at", interval="day", premake=1)
    manager = make_manager(pg_url, schema)
    manager.create(spec, columns=EVENTS_COLUMNS)
    more = replace(spec, premake=3)
    other = make_manager(pg_url, schema)
    plans: list[Any] = []
    plan_from = manager._plan_from

    def plan_then_let_the_other_act(*args: Any, **options: Any) -> Any:
        plan = plan_from(*args, **options)
        if not plans:
            assert len(other.maintain(more).done) == 2
        plans.append(plan)
        return plan

    manager._plan_from = plan_then_let_the_other_act  # type: ignore[method-assign]
    with manager.session():
        result = manager.maintain(more)
        with manager.connect() as conn:
            held = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s",
                (conn.info.backend_pid,),
            ).fetchone()
    assert len(plans) == 2  # planned again after the state changed
    assert len(plans[0].operations) == 2
    assert result.done == []
    assert result.ok
    assert held == (0,)
    assert len(manager.partitions(spec.qualified)) == len(other.partitions(spec.qualified))
    assert manager.plan(more).converged


def test_a_default_with_rows_is_still_counted_and_checked(pg_url: str, schema: str) -> None:
    """Planning skips the default's queries only when its heap is empty (0 bytes)."""
    spec = PartitionSpec(f"{schema}.ev", key="created_at", interval="day", premake=1)
    manager = make_manager(pg_url, schema)
    manager.create(spec, columns=EVENTS_COLUMNS)
    ahead = datetime.now(timezone.utc) + timedelta(days=3)
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} (created_at) VALUES (%s)").format(sql.Identifier(schema, "ev")),
            (ahead,),
        )
    with manager.session():
        result = manager.maintain(replace(spec, premake=4))
    kinds = sorted(note.kind for note in result.notes)
    assert kinds == ["default_conflict", "default_rows"]
    assert len(result.done) == 2  # the two ranges the row does not belong to
    idle = manager.plan(replace(spec, premake=4))
    assert [note.kind for note in idle.notes] == ["default_conflict", "default_rows"]
