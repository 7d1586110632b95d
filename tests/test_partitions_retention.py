"""Maintenance of range partitions: premake, retention modes, ownership, idempotency, locks."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from psycopg import sql

from dbopt.partitions import (
    CreatePartition,
    DetachPartition,
    DropPartition,
    LockTimeoutError,
    PartitionManager,
    PartitionSpec,
    PartitionSpecError,
)
from test_partitions_support import (
    EVENTS_COLUMNS,
    bounds,
    connect,
    exists,
    make_manager,
)

pytestmark = pytest.mark.postgres
UTC = timezone.utc


def names(pg_url: str, schema: str, table: str) -> list[str]:
    return [name for name, _ in bounds(pg_url, schema, table)]


def state(pg_url: str, schema: str) -> dict[str, tuple[str, str]]:
    with connect(pg_url) as conn:
        rows = conn.execute(
            sql.SQL("SELECT partition_name, origin, status FROM {}").format(
                sql.Identifier(schema, "dbopt_partition_state")
            )
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_monthly_lifecycle_converges_and_detaches(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    spec = PartitionSpec(
        f"{schema}.ev",
        key="created_at",
        interval="month",
        premake=2,
        retention="3 months",
    )
    jan = datetime(2024, 1, 15, tzinfo=UTC)
    manager.create(spec, columns=EVENTS_COLUMNS, now=jan)
    assert names(pg_url, schema, "ev") == ["ev_default", "ev_p202401", "ev_p202402", "ev_p202403"]
    assert manager.plan(spec, now=jan).converged
    assert manager.plan(spec, now=jan + timedelta(days=10)).converged

    may = datetime(2024, 5, 2, tzinfo=UTC)
    plan = manager.plan(spec, now=may)
    assert [(type(op).__name__, op.partition.name) for op in plan] == [
        ("CreatePartition", "ev_p202404"),
        ("CreatePartition", "ev_p202405"),
        ("CreatePartition", "ev_p202406"),
        ("CreatePartition", "ev_p202407"),
        ("DetachPartition", "ev_p202401"),
    ]
    assert "past retention" in plan.operations[-1].reason
    described = plan.describe()
    assert "ev_p202401" in described
    assert "5 operation(s)" in described
    assert plan.to_dict()["operations"][0]["kind"] == "create_partition"
    result = manager.apply(plan)
    assert result.ok
    assert len(result.done) == 5
    assert "ev_p202401" not in names(pg_url, schema, "ev")
    assert exists(pg_url, schema, "ev_p202401")  # detached, kept
    assert state(pg_url, schema)["ev_p202401"] == ("created", "detached")
    assert manager.plan(spec, now=may).converged
    # Applying the same (now stale) plan again changes nothing and fails nothing.
    again = manager.apply(plan)
    assert again.ok
    assert not again.done


def test_retention_by_count_and_drop_mode(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    spec = PartitionSpec(
        f"{schema}.ev",
        key="created_at",
        interval="day",
        premake=1,
        retention_count=3,
        retention_mode="drop",
        start=datetime(2024, 1, 1),
        default=False,
    )
    manager.create(spec, columns=EVENTS_COLUMNS, now=datetime(2024, 1, 3, 12, tzinfo=UTC))
    assert names(pg_url, schema, "ev") == [
        "ev_p20240101",
        "ev_p20240102",
        "ev_p20240103",
        "ev_p20240104",
    ]
    result = manager.maintain(spec, now=datetime(2024, 1, 6, 12, tzinfo=UTC))
    assert result.ok
    assert names(pg_url, schema, "ev") == [
        "ev_p20240104",
        "ev_p20240105",
        "ev_p20240106",
        "ev_p20240107",
    ]
    for gone in ("ev_p20240101", "ev_p20240102", "ev_p20240103"):
        assert not exists(pg_url, schema, gone)
    assert set(state(pg_url, schema)) == {
        "ev_p20240104",
        "ev_p20240105",
        "ev_p20240106",
        "ev_p20240107",
    }


def test_detach_then_drop_waits_for_the_grace_period(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    real = datetime.now(UTC)
    spec = PartitionSpec(
        f"{schema}.ev",
        key="created_at",
        interval="day",
        premake=0,
        retention="2 days",
        retention_mode="detach_then_drop",
        grace=timedelta(days=7),
        default=False,
        start=real - timedelta(days=5),
    )
    manager.create(spec, columns=EVENTS_COLUMNS, now=real - timedelta(days=4))
    before = set(names(pg_url, schema, "ev"))
    manager.maintain(spec, now=real)
    detached = before - set(names(pg_url, schema, "ev"))
    assert len(detached) >= 2
    assert all(exists(pg_url, schema, name) for name in detached)
    soon = manager.plan(spec, now=real + timedelta(days=6))
    assert not [op for op in soon if isinstance(op, DropPartition)]
    later = manager.plan(spec, now=real + timedelta(days=8))
    assert {op.partition.name for op in later if isinstance(op, DropPartition)} == detached
    manager.apply(later)
    assert not any(exists(pg_url, schema, name) for name in detached)


def test_retention_reads_bounds_not_names_and_spares_what_it_does_not_own(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    spec = PartitionSpec(
        f"{schema}.ev",
        key="created_at",
        interval="month",
        premake=0,
        retention="6 months",
        retention_mode="drop",
        default=False,
    )
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} ({}) PARTITION BY RANGE (created_at)").format(
                sql.Identifier(schema, "ev"), sql.SQL(EVENTS_COLUMNS)
            )
        )
        # Misleading names: the "2030" partition holds 2020, the "2010" one holds 2024-06.
        for name, lo, hi in (
            ("ev_p203001", "2020-01-01", "2020-02-01"),
            ("ev_p201001", "2024-06-01", "2024-07-01"),
        ):
            conn.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(schema, name),
                    sql.Identifier(schema, "ev"),
                    sql.Literal(lo),
                    sql.Literal(hi),
                )
            )
    now = datetime(2024, 6, 10, tzinfo=UTC)
    manager.create(spec, now=now)  # adopts both
    assert not exists(pg_url, schema, "ev_p203001")
    assert exists(pg_url, schema, "ev_p201001")

    # A partition made by hand after adoption is not dbopt's: never dropped.
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ('2021-01-01') TO ('2021-02-01')"
            ).format(sql.Identifier(schema, "ev_manual"), sql.Identifier(schema, "ev"))
        )
    plan = manager.plan(spec, now=now)
    assert plan.converged
    assert [n.kind for n in plan.notes] == ["not_owned"]
    manager.apply(plan)
    assert exists(pg_url, schema, "ev_manual")

    # Same name, new table: the OID differs, so it is not the partition dbopt made.
    with connect(pg_url) as conn:
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, "ev_p201001")))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ('2024-06-01') TO ('2024-07-01')"
            ).format(sql.Identifier(schema, "ev_p201001"), sql.Identifier(schema, "ev"))
        )
    result = manager.maintain(spec, now=datetime(2025, 3, 1, tzinfo=UTC))
    assert {r.operation.kind for r in result.results} >= {"forget_partition", "create_partition"}
    assert exists(pg_url, schema, "ev_p201001")
    assert not [r for r in result.results if isinstance(r.operation, DetachPartition)]


def test_integer_ranges_follow_the_maximum(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    spec = PartitionSpec(
        f"{schema}.orders",
        key="id",
        width=1000,
        premake=2,
        retention=3000,
        retention_mode="drop",
        default=False,
    )
    manager.create(spec, columns="id bigint PRIMARY KEY, total numeric")
    assert bounds(pg_url, schema, "orders") == [
        ("orders_p0", "FOR VALUES FROM ('0') TO ('1000')"),
        ("orders_p1000", "FOR VALUES FROM ('1000') TO ('2000')"),
        ("orders_p2000", "FOR VALUES FROM ('2000') TO ('3000')"),
    ]
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT g, g FROM generate_series(1, 2999) g").format(
                sql.Identifier(schema, "orders")
            )
        )
    plan = manager.plan(spec)
    assert [op.partition.name for op in plan if isinstance(op, CreatePartition)] == [
        "orders_p3000",
        "orders_p4000",
    ]
    manager.apply(plan)
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT g, g FROM generate_series(3000, 4500) g").format(
                sql.Identifier(schema, "orders")
            )
        )
    manager.maintain(spec)  # max 4500: keeps ranges ending after 1500, adds up to 7000
    assert names(pg_url, schema, "orders") == [
        "orders_p1000",
        "orders_p2000",
        "orders_p3000",
        "orders_p4000",
        "orders_p5000",
        "orders_p6000",
    ]
    assert manager.plan(spec).converged
    assert manager.plan(spec, now=-2500).converged is False  # a key value works as "now"


def test_naming_templates(pg_url: str, schema: str, manager: PartitionManager) -> None:
    spec = PartitionSpec(
        f"{schema}.ev",
        key="created_at",
        interval="month",
        premake=1,
        naming="{parent}_{start:%Y}_{mon}",
        default=False,
    )
    manager.create(spec, columns=EVENTS_COLUMNS, now=datetime(2024, 12, 5, tzinfo=UTC))
    assert names(pg_url, schema, "ev") == ["ev_2024_dec", "ev_2025_jan"]
    too_long = PartitionSpec(
        f"{schema}.ev", key="created_at", interval="month", naming="x" * 60 + "{start:%Y%m}"
    )
    with pytest.raises(PartitionSpecError, match="63 bytes"):
        manager.plan(too_long, now=datetime(2024, 12, 5, tzinfo=UTC))
    with pytest.raises(PartitionSpecError, match="does not fit"):
        manager.plan(
            PartitionSpec(
                f"{schema}.ev", key="created_at", interval="month", naming="{parent}_{nope}"
            ),
            now=datetime(2024, 12, 5, tzinfo=UTC),
        )


def test_spec_validation() -> None:
    with pytest.raises(PartitionSpecError):
        PartitionSpec("t", key="k")  # no interval or width
    with pytest.raises(PartitionSpecError):
        PartitionSpec("t", key="k", interval="fortnight")
    with pytest.raises(PartitionSpecError):
        PartitionSpec("t", key="k", interval="day", retention="1 year", retention_count=3)
    with pytest.raises(PartitionSpecError):
        PartitionSpec("t", key="k", strategy="hash", modulus=4, default=True)
    with pytest.raises(PartitionSpecError):
        PartitionSpec("t", key="k", interval="day", timezone="Mars/Olympus")
    with pytest.raises(PartitionSpecError):
        PartitionSpec("t", key="k", interval="day", retention=30)  # an int is for integer keys
    spec = PartitionSpec("app.t", key="k", interval="day", retention=timedelta(days=3))
    assert (spec.schema_name, spec.table, spec.qualified) == ("app", "t", "app.t")
    assert spec.to_dict()["retention"] == 3 * 86400
    dated = PartitionSpec(
        "app.t",
        key="k",
        interval="day",
        retention=timedelta(days=3),
        start=datetime(2024, 1, 1, tzinfo=UTC),
        grace=timedelta(hours=5),
        naming="{parent}_{start:%j}",
    )
    assert PartitionSpec.from_dict(json.loads(json.dumps(dated.to_dict()))) == dated
    listed = PartitionSpec("t", key="r", strategy="list", values={"eu": ["de", None]})
    assert PartitionSpec.from_dict(json.loads(json.dumps(listed.to_dict()))) == listed
    with pytest.raises(PartitionSpecError, match="unknown PartitionSpec fields: bogus"):
        PartitionSpec.from_dict({"table": "t", "key": "k", "interval": "day", "bogus": 1})


def test_wrong_table_shapes_are_refused(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} (id int, at timestamptz)").format(
                sql.Identifier(schema, "plain")
            )
        )
    with pytest.raises(PartitionSpecError, match="convert"):
        manager.plan(PartitionSpec(f"{schema}.plain", key="at", interval="day"))
    with pytest.raises(PartitionSpecError, match="does not exist"):
        manager.maintain(PartitionSpec(f"{schema}.missing", key="at", interval="day"))
    manager.create(
        PartitionSpec(f"{schema}.ev", key="created_at", interval="day"), columns=EVENTS_COLUMNS
    )
    with pytest.raises(PartitionSpecError, match="partitioned on"):
        manager.plan(PartitionSpec(f"{schema}.ev", key="id", width=10))


def test_lock_timeout_is_retried_with_backoff(pg_url: str, schema: str) -> None:
    manager = make_manager(
        pg_url, schema, lock_timeout=0.2, retries=8, backoff=0.1, max_backoff=0.3
    )
    spec = PartitionSpec(
        f"{schema}.ev", key="created_at", interval="month", premake=0, default=False
    )
    manager.create(spec, columns=EVENTS_COLUMNS, now=datetime(2024, 1, 5, tzinfo=UTC))
    holding = threading.Event()

    def hold(seconds: float) -> None:
        with connect(pg_url, autocommit=False) as conn:
            # SHARE conflicts with the SHARE UPDATE EXCLUSIVE that ATTACH needs.
            conn.execute(
                sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(schema, "ev"))
            )
            holding.set()
            time.sleep(seconds)
            conn.rollback()

    blocker = threading.Thread(target=hold, args=(1.0,))
    blocker.start()
    holding.wait(5)
    result = manager.maintain(spec, now=datetime(2024, 2, 5, tzinfo=UTC))
    blocker.join()
    assert result.ok
    assert result.done[0].attempts > 1

    holding.clear()
    stubborn = make_manager(pg_url, schema, lock_timeout=0.1, retries=1, backoff=0.05)
    blocker = threading.Thread(target=hold, args=(2.0,))
    blocker.start()
    holding.wait(5)
    with pytest.raises(LockTimeoutError) as caught:
        stubborn.maintain(spec, now=datetime(2024, 3, 5, tzinfo=UTC))
    blocker.join()
    assert caught.value.result is not None
    assert caught.value.result.failed[0].operation.partition.name == "ev_p202403"
    assert stubborn.maintain(spec, now=datetime(2024, 3, 5, tzinfo=UTC)).ok
