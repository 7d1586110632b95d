"""Replica routing against a real streaming replica started for this module (tests/fix_replica.py).

Where a statement ran is read from the server itself (``inet_server_port()``
and ``pg_is_in_recovery()``), never from the router's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dbopt.pool import ConnectionBudget, connection_budget
from dbopt.replicas import ReplicaRouter, replica_pools
from dbopt.testing import sqlalchemy_url
from fix_replica import ReplicaPair, replica_pair

WHERE = text("SELECT inet_server_port()")


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(50))


events = Table("events", MetaData(), Column("id", Integer), Column("what", String(20)))


@pytest.fixture(scope="module")
def pair() -> Iterator[ReplicaPair]:
    with replica_pair() as started:
        started.primary.execute("CREATE TABLE notes (id serial PRIMARY KEY, body varchar(50))")
        started.primary.execute("CREATE TABLE events (id int, what varchar(20))")
        started.wait_caught_up()
        yield started


def _engine(url: str, **kw: Any) -> Any:
    return create_engine(
        sqlalchemy_url(url), pool_pre_ping=True, connect_args={"connect_timeout": 2}, **kw
    )


@pytest.fixture
def engines(pair: ReplicaPair) -> Iterator[tuple[Any, Any]]:
    primary, replica = _engine(pair.primary.url), _engine(pair.replica.url)
    yield primary, replica
    primary.dispose()
    replica.dispose()


def test_reads_to_the_replica_writes_and_read_your_writes_to_the_primary(
    pair: ReplicaPair, engines: tuple[Any, Any]
) -> None:
    router = ReplicaRouter(*engines[:1], engines[1:], read_your_writes_s=0.5)
    Session = router.sessionmaker()
    with Session() as session:
        assert session.scalar(WHERE) == pair.replica.port
        assert session.scalars(select(Note)).all() == []
        session.add(Note(body="hello"))
        session.flush()  # the ORM's INSERT: primary
        # the session wrote: its reads now go where its write is
        assert session.scalar(WHERE) == pair.primary.port
        assert [n.body for n in session.scalars(select(Note))] == ["hello"]
        session.commit()
    with Session() as session:  # within read_your_writes_s of the commit
        assert session.scalar(WHERE) == pair.primary.port
    time.sleep(0.6)
    pair.wait_caught_up()
    with Session() as session:
        assert session.scalar(WHERE) == pair.replica.port
        assert session.scalar(text("SELECT pg_is_in_recovery()")) is True
        # Core DML and text writes: primary, and the session stays there
        session.execute(insert(events).values(id=1, what="core"))
        assert session.scalar(WHERE) == pair.primary.port
        session.rollback()
        assert session.scalar(WHERE) == pair.replica.port
        session.execute(text("UPDATE notes SET body = 'x' WHERE false"))
        assert session.scalar(WHERE) == pair.primary.port
        session.rollback()
        assert session.scalar(select(Note.id).with_for_update().limit(1)) is not None
        assert session.scalar(WHERE) == pair.primary.port  # FOR UPDATE locks: primary
        session.rollback()
        forced = session.execute(WHERE, bind_arguments={"dbopt_primary": True}).scalar()
        assert forced == pair.primary.port
    assert router.counts["replica"] >= 4
    assert router.counts["write"] >= 4
    assert router.counts["read_your_writes"] == 1


def test_read_your_writes_window_is_per_writer(pair: ReplicaPair, engines: tuple[Any, Any]) -> None:
    who = threading.local()
    router = ReplicaRouter(
        engines[0], [engines[1]], read_your_writes_s=30, writer_key=lambda: who.__dict__.get("id")
    )
    Session = router.sessionmaker()
    who.id = "alice"
    with Session() as session:
        session.add(Note(body="alice's"))
        session.commit()
    with Session() as session:
        assert session.scalar(WHERE) == pair.primary.port
    who.id = "bob"
    with Session() as session:
        assert session.scalar(WHERE) == pair.replica.port


def test_a_lagging_replica_loses_its_reads_until_it_catches_up(
    pair: ReplicaPair, engines: tuple[Any, Any]
) -> None:
    router = ReplicaRouter(
        engines[0], [engines[1]], max_lag_s=0.5, check_interval_s=0.2, read_your_writes_s=0
    )
    Session = router.sessionmaker()
    with Session() as session:
        assert session.scalar(WHERE) == pair.replica.port
    pair.replica.execute("SELECT pg_wal_replay_pause()")
    try:
        pair.primary.execute("INSERT INTO events VALUES (2, 'while paused')")
        time.sleep(0.8)  # past max_lag_s and check_interval_s
        with Session() as session:
            assert session.scalar(WHERE) == pair.primary.port
            # the row the replica has not replayed is there: the read went where it is
            assert session.scalar(text("SELECT count(*) FROM events WHERE id = 2")) == 1
        [status] = router.status()
        assert status.available
        assert status.lag_s is not None
        assert status.lag_s > 0.5
    finally:
        pair.replica.execute("SELECT pg_wal_replay_resume()")
    pair.wait_caught_up()
    time.sleep(0.3)
    with Session() as session:
        assert session.scalar(WHERE) == pair.replica.port
    assert router.counts["fallback"] >= 1


def test_async_sessions_route_too(pair: ReplicaPair) -> None:
    async def run() -> tuple[int, int, int]:
        primary = create_async_engine(sqlalchemy_url(pair.primary.url))
        replica = create_async_engine(sqlalchemy_url(pair.replica.url))
        router = ReplicaRouter(primary, [replica], read_your_writes_s=0)
        try:
            async with router.async_sessionmaker()() as session:
                read = await session.scalar(WHERE)
                await session.execute(insert(events).values(id=3, what="async"))
                after_write = await session.scalar(WHERE)
                await session.commit()
                again = await session.scalar(WHERE)
                return read, after_write, again
        finally:
            await primary.dispose()
            await replica.dispose()

    read, after_write, again = asyncio.run(run())
    assert (read, after_write, again) == (pair.replica.port, pair.primary.port, pair.replica.port)


def test_pools_sized_from_each_servers_budget(pair: ReplicaPair) -> None:
    primary_budget = connection_budget(pair.primary.url)
    replica_budget = connection_budget(pair.replica.url)
    assert primary_budget.max_connections == 40
    pools = replica_pools(
        "web", 16, processes=4, primary_budget=primary_budget, replica_budget=replica_budget
    )
    assert pools.primary.pool_size == primary_budget.per_process(processes=4)
    assert pools.replica.pool_size == replica_budget.per_process(processes=4)
    assert pools.replica.read_only
    assert not pools.primary.read_only
    assert pools.replica.application_name.endswith("-replica")
    small = replica_pools(
        "web",
        16,
        processes=4,
        primary_budget=ConnectionBudget(400),
        replica_budget=ConnectionBudget(40, headroom=4),
    )
    assert (small.primary.pool_size, small.replica.pool_size) == (16, (40 - 3 - 4) // 4)


def test_a_stopped_replica_fails_no_request(pair: ReplicaPair, engines: tuple[Any, Any]) -> None:
    """Readers run throughout; the replica stops under them, then comes back."""
    router = ReplicaRouter(engines[0], [engines[1]], check_interval_s=0.3, read_your_writes_s=0)
    Session = router.sessionmaker()
    where: Counter[int] = Counter()
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                with Session() as session:
                    where[session.scalar(WHERE)] += 1
                    session.scalars(select(Note)).all()
                    if where.total() % 2:
                        session.commit()
            except BaseException as error:
                failures.append(error)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        assert where[pair.replica.port] > 0
        pair.replica.stop("immediate")
        time.sleep(0.3 + 2 + 0.5)  # check_interval_s + connect timeout + margin
        before = Counter(where)
        time.sleep(0.5)
        since = Counter(where)
        since.subtract(before)
        assert since[pair.replica.port] == 0
        assert since[pair.primary.port] > 0
        [status] = router.status()
        assert not status.available
        assert status.error
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        if not pair.replica.running():
            pair.replica.start()
    assert failures == [], "".join(traceback.format_exception(failures[0]) if failures else [])
    pair.wait_caught_up()
    time.sleep(0.4)
    with Session() as session:
        assert session.scalar(WHERE) == pair.replica.port
