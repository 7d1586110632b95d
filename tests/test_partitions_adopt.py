"""Adopting hand-made partitions, list and hash strategies, ``partitions()`` and ``check()``."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from psycopg import sql

from dbopt.partitions import AdoptPartition, PartitionManager, PartitionSpec
from test_partitions_support import bounds, connect, routed

pytestmark = pytest.mark.postgres
UTC = timezone.utc
PAYMENT = (
    "id bigserial, user_id bigint NOT NULL, amount numeric(12, 2) NOT NULL,"
    " status text NOT NULL, paid_at timestamptz NOT NULL, PRIMARY KEY (id, paid_at)"
)


def hand_made(pg_url: str, schema: str, months: list[int], *, quarter: bool = False) -> None:
    """``payment`` with monthly partitions named the seed's way: ``payment_p2022_01`` ..."""
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} ({}) PARTITION BY RANGE (paid_at)").format(
                sql.Identifier(schema, "payment"), sql.SQL(PAYMENT)
            )
        )
        conn.execute(
            sql.SQL("CREATE INDEX ON {} (user_id)").format(sql.Identifier(schema, "payment"))
        )
        for month in months:
            conn.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(schema, f"payment_p2022_{month:02d}"),
                    sql.Identifier(schema, "payment"),
                    sql.Literal(f"2022-{month:02d}-01"),
                    sql.Literal(f"2022-{month + 1:02d}-01" if month < 12 else "2023-01-01"),
                )
            )
        if quarter:
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} PARTITION OF {}"
                    " FOR VALUES FROM ('2021-10-01') TO ('2022-01-01')"
                ).format(
                    sql.Identifier(schema, "payment_2021_q4"), sql.Identifier(schema, "payment")
                )
            )


def test_adopt_learns_the_hand_made_naming(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    hand_made(pg_url, schema, [1, 2, 3, 4, 5])
    spec = PartitionSpec(
        f"{schema}.payment",
        key="paid_at",
        interval="month",
        premake=2,
        retention="24 months",
        retention_mode="drop",
    )
    now = datetime(2022, 5, 20, tzinfo=UTC)
    result = manager.create(spec, now=now)
    adopted = [
        r.operation.partition.name
        for r in result.results
        if isinstance(r.operation, AdoptPartition)
    ]
    assert sorted(adopted) == [f"payment_p2022_{m:02d}" for m in range(1, 6)]
    assert [name for name, _ in bounds(pg_url, schema, "payment")] == [
        "payment_default",
        *[f"payment_p2022_{m:02d}" for m in range(1, 8)],
    ]
    assert manager.plan(spec, now=now).converged
    # Adopted partitions are owned: retention may drop them once expired (by bounds).
    later = manager.plan(spec, now=datetime(2024, 3, 15, tzinfo=UTC))
    dropped = [op.partition.name for op in later if op.kind == "detach_partition"]
    assert dropped == ["payment_p2022_01", "payment_p2022_02"]
    # New partitions carry the parent's indexes.
    with connect(pg_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_indexes"
            " WHERE schemaname = %s AND tablename = 'payment_p2022_07'",
            (schema,),
        ).fetchone()
    assert row is not None
    assert row[0] == 2
    report = manager.check(spec, now=now)
    assert report.ok, report.describe()
    assert report.unowned == ()
    assert report.future_partitions == 2
    assert report.default_rows == 0
    assert report.last_maintenance_at is not None
    assert report.to_dict()["ok"] is True


def test_check_reports_gaps_misalignment_and_default_rows(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    hand_made(pg_url, schema, [1, 3], quarter=True)
    spec = PartitionSpec(
        f"{schema}.payment", key="paid_at", interval="month", premake=1, start=datetime(2021, 10, 1)
    )
    now = datetime(2022, 3, 10, tzinfo=UTC)
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} DEFAULT").format(
                sql.Identifier(schema, "payment_default"), sql.Identifier(schema, "payment")
            )
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (user_id, amount, status, paid_at) VALUES"
                " (1, 5, 'ok', '2022-02-14'), (2, 7, 'ok', '2022-02-15')"
            ).format(sql.Identifier(schema, "payment"))
        )
    report = manager.check(spec, now=now)
    assert not report.ok
    assert report.gaps == (("2022-02-01 00:00:00+00:00", "2022-03-01 00:00:00+00:00"),)
    assert report.misaligned == (f"{schema}.payment_2021_q4",)
    assert report.default_rows == 2
    assert set(report.unowned) == {
        f"{schema}.payment_2021_q4",
        f"{schema}.payment_p2022_01",
        f"{schema}.payment_p2022_03",
        f"{schema}.payment_default",
    }
    assert "rows in default partition: 2" in report.describe()
    plan = manager.plan(spec, now=now)
    # February is a gap the default's rows fill: it is reported, not attempted.
    assert [n.kind for n in plan.notes if n.kind.startswith("default")] == [
        "default_conflict",
        "default_rows",
    ]
    assert [op.partition.name for op in plan] == ["payment_p202204"]


def test_list_partitions(pg_url: str, schema: str, manager: PartitionManager) -> None:
    spec = PartitionSpec(
        f"{schema}.orders",
        key="region",
        strategy="list",
        values={"eu": ["de", "fr"], "us": ["us"], "none": [None]},
    )
    manager.create(spec, columns="id bigint, region text, total numeric")
    assert bounds(pg_url, schema, "orders") == [
        ("orders_default", "DEFAULT"),
        ("orders_eu", "FOR VALUES IN ('de', 'fr')"),
        ("orders_none", "FOR VALUES IN (NULL)"),
        ("orders_us", "FOR VALUES IN ('us')"),
    ]
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} VALUES (1, 'de', 1), (2, 'us', 1), (3, NULL, 1), (4, 'jp', 1)"
            ).format(sql.Identifier(schema, "orders"))
        )
    assert routed(pg_url, schema, "orders") == {
        "orders_default": 1,
        "orders_eu": 1,
        "orders_none": 1,
        "orders_us": 1,
    }
    assert manager.plan(spec).converged
    grown = PartitionSpec(
        f"{schema}.orders",
        key="region",
        strategy="list",
        values={
            "eu": ["de", "fr"],
            "us": ["us"],
            "none": [None],
            "apac": ["jp", "kr"],
            "split": ["fr", "it"],
        },
    )
    plan = manager.plan(grown)
    assert [op.partition.name for op in plan] == []  # apac conflicts with a default row
    assert sorted(n.kind for n in plan.notes) == [
        "default_conflict",
        "default_rows",
        "list_conflict",
    ]
    drained = manager.drain_default(grown)
    assert drained.moved == 1
    assert drained.left == 0
    assert routed(pg_url, schema, "orders")["orders_apac"] == 1


def test_hash_partitions(pg_url: str, schema: str, manager: PartitionManager) -> None:
    spec = PartitionSpec(f"{schema}.sessions", key="user_id", strategy="hash", modulus=4)
    manager.create(spec, columns="user_id bigint NOT NULL, started_at timestamptz")
    assert bounds(pg_url, schema, "sessions") == [
        (f"sessions_p{r}", f"FOR VALUES WITH (modulus 4, remainder {r})") for r in range(4)
    ]
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT g, now() FROM generate_series(1, 400) g").format(
                sql.Identifier(schema, "sessions")
            )
        )
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, "sessions")))
    counts = routed(pg_url, schema, "sessions")
    assert sum(counts.values()) == 400
    assert len(counts) == 4
    assert manager.plan(spec).converged
    parts = manager.partitions(f"{schema}.sessions")
    assert {p.name: p.rows_estimate for p in parts} == counts
    assert all(p.size_bytes and p.size_bytes > 0 for p in parts)
    assert parts[0].to_dict()["kind"] == "hash"
    other = PartitionSpec(f"{schema}.sessions", key="user_id", strategy="hash", modulus=8)
    plan = manager.plan(other)
    assert plan.converged
    assert [n.kind for n in plan.notes] == ["hash_modulus"]


def test_partitions_lists_bounds_sizes_and_estimates(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    spec = PartitionSpec(f"{schema}.payment", key="paid_at", interval="month", premake=1)
    manager.create(spec, columns=PAYMENT, now=datetime(2024, 1, 10, tzinfo=UTC))
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (user_id, amount, status, paid_at)"
                " SELECT g, g, 'ok', '2024-01-01'::timestamptz + g * interval '1 minute'"
                " FROM generate_series(1, 1000) g"
            ).format(sql.Identifier(schema, "payment"))
        )
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, "payment")))
    parts = manager.partitions(f"{schema}.payment")
    assert [p.name for p in parts] == ["payment_p202401", "payment_p202402", "payment_default"]
    assert parts[0].lower == datetime(2024, 1, 1, tzinfo=UTC)
    assert parts[0].rows_estimate == 1000
    assert parts[1].rows_estimate == 0
    assert parts[0].size_bytes is not None
    assert parts[1].size_bytes is not None
    assert parts[0].size_bytes > parts[1].size_bytes
