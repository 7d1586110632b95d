"""Rows in the default partition never make maintenance fail; ``drain_default`` moves them."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from psycopg import sql

from dbopt.partitions import PartitionManager, PartitionSpec
from test_partitions_support import (
    EVENTS_COLUMNS,
    bounds,
    connect,
    exists,
    routed,
)

pytestmark = pytest.mark.postgres
UTC = timezone.utc


def rows(pg_url: str, schema: str) -> list[tuple[object, ...]]:
    with connect(pg_url) as conn:
        return conn.execute(
            sql.SQL("SELECT id, created_at, payload FROM {} ORDER BY id").format(
                sql.Identifier(schema, "ev")
            )
        ).fetchall()


def add(pg_url: str, schema: str, stamp: str, n: int) -> None:
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (created_at, payload)"
                " SELECT %s::timestamptz + g * interval '1 second', 'row ' || g"
                " FROM generate_series(1, %s) g"
            ).format(sql.Identifier(schema, "ev")),
            (stamp, n),
        )


def test_maintenance_skips_only_the_conflicting_range(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    spec = PartitionSpec(f"{schema}.ev", key="created_at", interval="month", premake=1)
    manager.create(spec, columns=EVENTS_COLUMNS, now=datetime(2024, 1, 10, tzinfo=UTC))
    add(pg_url, schema, "2024-04-03", 5)  # no April partition yet: they land in the default
    assert routed(pg_url, schema, "ev") == {"ev_default": 5}
    result = manager.maintain(spec, now=datetime(2024, 3, 20, tzinfo=UTC))
    assert result.ok
    assert [r.operation.partition.name for r in result.done] == ["ev_p202403"]
    kinds = [n.kind for n in result.notes]
    assert kinds == ["default_conflict", "default_rows"]
    assert result.notes[0].rows == 5
    assert "drain_default" in result.notes[0].message
    assert manager.check(spec, now=datetime(2024, 3, 20, tzinfo=UTC)).default_rows == 5

    before = rows(pg_url, schema)
    drained = manager.drain_default(spec, batch_size=100)
    assert drained.moved == 5
    assert drained.left == 0
    assert drained.partitions == (f"{schema}.ev_p202404",)
    assert rows(pg_url, schema) == before
    assert routed(pg_url, schema, "ev") == {"ev_p202404": 5}
    assert manager.plan(spec, now=datetime(2024, 3, 20, tzinfo=UTC)).converged


def test_a_row_arriving_between_plan_and_apply_is_skipped_not_fatal(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    spec = PartitionSpec(f"{schema}.ev", key="created_at", interval="month", premake=1)
    manager.create(spec, columns=EVENTS_COLUMNS, now=datetime(2024, 1, 10, tzinfo=UTC))
    plan = manager.plan(spec, now=datetime(2024, 2, 10, tzinfo=UTC))
    assert [op.partition.name for op in plan] == ["ev_p202403"]
    add(pg_url, schema, "2024-03-05", 1)
    result = manager.apply(plan)
    assert result.ok
    assert not result.done
    assert "default partition" in result.skipped[0].message
    assert not exists(pg_url, schema, "ev_p202403")  # the whole transaction rolled back


def test_large_drain_goes_through_staging_in_batches(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    spec = PartitionSpec(f"{schema}.ev", key="created_at", interval="day", premake=0)
    manager.create(spec, columns=EVENTS_COLUMNS, now=datetime(2024, 5, 1, 12, tzinfo=UTC))
    add(pg_url, schema, "2024-05-02 00:00", 2500)  # 2500 seconds into May 2
    add(pg_url, schema, "2024-05-04 23:59:45", 30)  # straddles into May 5
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} (created_at, payload) VALUES ('2024-04-30', 'old')").format(
                sql.Identifier(schema, "ev")
            )
        )
    before = rows(pg_url, schema)
    drained = manager.drain_default(spec, batch_size=1000)
    assert drained.moved == 2531
    assert [p.split(".")[1] for p in drained.partitions] == [
        "ev_p20240430",
        "ev_p20240502",
        "ev_p20240504",
        "ev_p20240505",
    ]
    assert rows(pg_url, schema) == before
    counts = routed(pg_url, schema, "ev")
    assert counts["ev_p20240502"] == 2500
    assert (counts["ev_p20240504"], counts["ev_p20240505"]) == (14, 16)
    assert counts["ev_p20240430"] == 1
    assert "ev_default" not in counts
    with connect(pg_url) as conn:
        status = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE status = 'staging'").format(
                sql.Identifier(schema, "dbopt_partition_state")
            )
        ).fetchone()
    assert status is not None
    assert status[0] == 0
    assert [n for n, _ in bounds(pg_url, schema, "ev")][:2] == ["ev_default", "ev_p20240430"]


def test_interrupted_drain_is_reported_and_resumed(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    spec = PartitionSpec(f"{schema}.ev", key="created_at", interval="month", premake=0)
    manager.create(spec, columns=EVENTS_COLUMNS, now=datetime(2024, 1, 10, tzinfo=UTC))
    add(pg_url, schema, "2024-03-01", 10)
    before = rows(pg_url, schema)
    # Simulate a drain that staged March and moved a few rows, then died.
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
                sql.Identifier(schema, "ev_p202403"), sql.Identifier(schema, "ev")
            )
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (partition_oid, parent, partition_schema, partition_name,"
                " origin, status, bound)"
                " VALUES (%s::regclass, %s, %s, 'ev_p202403', 'created', 'staging',"
                " 'FOR VALUES FROM (''2024-03-01 00:00:00+00'') TO (''2024-04-01 00:00:00+00'')')"
            ).format(sql.Identifier(schema, "dbopt_partition_state")),
            (f'"{schema}"."ev_p202403"', f"{schema}.ev", schema),
        )
        conn.execute(
            sql.SQL(
                "WITH m AS (DELETE FROM {} WHERE ctid IN (SELECT ctid FROM {} LIMIT 4) RETURNING *)"
                " INSERT INTO {} OVERRIDING SYSTEM VALUE SELECT * FROM m"
            ).format(
                sql.Identifier(schema, "ev_default"),
                sql.Identifier(schema, "ev_default"),
                sql.Identifier(schema, "ev_p202403"),
            )
        )
    plan = manager.plan(spec, now=datetime(2024, 1, 10, tzinfo=UTC))
    assert "drain_interrupted" in [n.kind for n in plan.notes]
    assert plan.converged  # the staged table is neither forgotten nor dropped
    drained = manager.drain_default(spec)
    assert drained.moved == 6
    assert rows(pg_url, schema) == before
    assert routed(pg_url, schema, "ev") == {"ev_p202403": 10}
