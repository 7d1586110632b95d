"""Concurrency on a real server: two maintainers at once, maintenance while inserts run."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql

from dbopt.partitions import ApplyResult, PartitionLockedError, PartitionSpec
from dbopt.partitions.locking import lock_keys
from test_partitions_support import (
    EVENTS_COLUMNS,
    bounds,
    connect,
    make_manager,
    routed,
)

pytestmark = pytest.mark.postgres
UTC = timezone.utc


def test_two_maintainers_at_once_never_race(pg_url: str, schema: str) -> None:
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} ({}) PARTITION BY RANGE (created_at)").format(
                sql.Identifier(schema, "ev"), sql.SQL(EVENTS_COLUMNS)
            )
        )
    spec = PartitionSpec(
        f"{schema}.ev", key="created_at", interval="day", premake=10, start=datetime(2024, 1, 1)
    )
    now = datetime(2024, 1, 20, tzinfo=UTC)
    managers = [make_manager(pg_url, schema), make_manager(pg_url, schema)]
    managers[0].create(
        PartitionSpec(f"{schema}.ev", key="created_at", interval="day", premake=0, default=False),
        now=datetime(2024, 1, 1, tzinfo=UTC),
    )
    barrier = threading.Barrier(2)
    results: list[ApplyResult] = []
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(5)
            results.append(managers[index].maintain(spec, now=now))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert all(r.ok for r in results)
    # Jan 2 .. Jan 30 and the default: 30 operations, done once between the two.
    assert sorted(len(r.done) for r in results) == [0, 30]
    assert len(bounds(pg_url, schema, "ev")) == 31
    assert managers[1].plan(spec, now=now).converged


def test_a_held_lock_makes_the_second_maintainer_wait_then_give_up(
    pg_url: str, schema: str
) -> None:
    spec = PartitionSpec(f"{schema}.ev", key="created_at", interval="day", premake=1)
    make_manager(pg_url, schema).create(spec, columns=EVENTS_COLUMNS)
    more = replace(spec, premake=3)  # two partitions to make: this run needs the lock
    impatient = make_manager(pg_url, schema, lock_wait=0.3)
    with connect(pg_url) as holder:
        holder.execute(
            "SELECT pg_advisory_lock(hashtext(%s), hashtext(%s))", lock_keys(spec.qualified)
        )
        began = time.monotonic()
        with pytest.raises(PartitionLockedError):
            impatient.maintain(more)
        assert time.monotonic() - began >= 0.3
    result = impatient.maintain(more)  # the holder's session ended: the lock is free
    assert result.ok
    assert len(result.done) == 2


def test_nothing_to_do_takes_no_lock_and_writes_nothing(pg_url: str, schema: str) -> None:
    spec = PartitionSpec(f"{schema}.ev", key="created_at", interval="day", premake=1)
    make_manager(pg_url, schema).create(spec, columns=EVENTS_COLUMNS)
    impatient = make_manager(pg_url, schema, lock_wait=0.3)
    with connect(pg_url) as holder:
        before = holder.execute(
            sql.SQL("SELECT last_maintenance_at FROM {} WHERE parent = %s").format(
                sql.Identifier(schema, "dbopt_partition_parent")
            ),
            (spec.qualified,),
        ).fetchone()
        holder.execute(
            "SELECT pg_advisory_lock(hashtext(%s), hashtext(%s))", lock_keys(spec.qualified)
        )
        result = impatient.maintain(spec)  # converged: the held lock is not even asked for
        assert result.ok
        assert result.results == ()
        after = holder.execute(
            sql.SQL("SELECT last_maintenance_at FROM {} WHERE parent = %s").format(
                sql.Identifier(schema, "dbopt_partition_parent")
            ),
            (spec.qualified,),
        ).fetchone()
        assert before is not None
        assert after == before


@pytest.mark.parametrize("default", [True, False], ids=["with-default", "detach-concurrently"])
def test_maintenance_while_inserts_run(pg_url: str, schema: str, default: bool) -> None:
    real = datetime.now(UTC).replace(microsecond=0)
    spec = PartitionSpec(
        f"{schema}.ev",
        key="created_at",
        interval="day",
        premake=2,
        retention="3 days",
        default=default,
        start=real - timedelta(days=6),
    )
    manager = make_manager(
        pg_url, schema, lock_timeout=0.3, retries=20, backoff=0.05, max_backoff=0.2
    )
    manager.create(spec, columns=EVENTS_COLUMNS, now=real - timedelta(days=1))
    stop = threading.Event()
    inserted = [0]
    slowest = [0.0]
    failures: list[BaseException] = []

    def writer() -> None:
        with psycopg.connect(connect_url(pg_url), autocommit=True) as conn:
            insert = sql.SQL("INSERT INTO {} (created_at, payload) VALUES (now(), 'w')").format(
                sql.Identifier(schema, "ev")
            )
            while not stop.is_set():
                began = time.perf_counter()
                try:
                    conn.execute(insert)
                except psycopg.Error as exc:
                    failures.append(exc)
                    return
                slowest[0] = max(slowest[0], time.perf_counter() - began)
                inserted[0] += 1

    writers = [threading.Thread(target=writer) for _ in range(3)]
    for w in writers:
        w.start()
    time.sleep(0.3)
    result = manager.maintain(spec, now=real)
    time.sleep(0.3)
    stop.set()
    for w in writers:
        w.join(10)
    assert failures == []
    assert result.ok, result.describe()
    kinds = {r.operation.kind for r in result.done}
    assert kinds == {"create_partition", "detach_partition"}
    counts = routed(pg_url, schema, "ev")
    assert sum(counts.values()) == inserted[0] > 0
    assert not any(name.endswith("_default") for name in counts)
    assert slowest[0] < 5.0
    assert manager.plan(spec, now=real).converged


def connect_url(pg_url: str) -> str:
    from dbopt.testing import libpq_url

    return libpq_url(pg_url)
