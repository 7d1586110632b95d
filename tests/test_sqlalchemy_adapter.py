"""The SQLAlchemy adapter on real PostgreSQL, SQLite and MariaDB."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, ForeignKey, create_engine, select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
)

import dbopt
from dbopt import QueryEvent


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "sa_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    posts: Mapped[list[Post]] = relationship(back_populates="author")


class Post(Base):
    __tablename__ = "sa_posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("sa_users.id"))
    author: Mapped[User] = relationship(back_populates="posts")


@pytest.fixture(scope="module")
def orm_engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all(
            [
                User(id=i, name=f"u{i}", posts=[Post(id=i * 10 + j) for j in range(2)])
                for i in range(5)
            ]
        )
        s.commit()
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


class ThreadSafeCounter:
    def __init__(self) -> None:
        self.events: list[QueryEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: QueryEvent) -> None:
        with self.lock:
            self.events.append(event)


def test_event_fields_on_postgres(pg_engine: Engine) -> None:
    with dbopt.capture_queries(pg_engine) as q, pg_engine.connect() as c:
        c.execute(text("SELECT g FROM generate_series(1, :n) AS g"), {"n": 7}).all()
    (e,) = q
    assert e.dialect == "postgresql"
    assert e.adapter == "sqlalchemy"
    assert e.rowcount == 7
    assert e.parameters == {"n": 7}
    assert e.kind == "select"
    assert e.duration > 0
    assert e.timestamp > 1_700_000_000
    assert e.callsite is not None
    assert e.callsite.file == __file__
    assert e.callsite.function == "test_event_fields_on_postgres"
    assert not e.executemany
    assert e.error is None


def test_executemany_and_errors(pg_engine: Engine) -> None:
    with pg_engine.begin() as c:
        c.execute(text("CREATE TEMP TABLE em (a int)"))
        with dbopt.capture_queries(pg_engine) as q:
            c.execute(text("INSERT INTO em (a) VALUES (:a)"), [{"a": i} for i in range(10)])
            with pytest.raises(ProgrammingError):
                c.execute(text("SELECT no_such_column FROM em"))
    inserts = [e for e in q if e.kind == "insert"]
    assert inserts
    assert all(e.executemany or "VALUES" in e.sql for e in inserts)
    failed = [e for e in q if e.error is not None]
    assert len(failed) == 1
    assert "no_such_column" in failed[0].sql
    assert failed[0].callsite is not None
    assert failed[0].callsite.file == __file__


def test_orm_lazy_load_context(orm_engine: Engine) -> None:
    with dbopt.capture_queries(orm_engine) as q, Session(orm_engine) as s:
        users = s.scalars(select(User).order_by(User.id)).all()
        for user in users:
            _ = user.posts
        post = s.get(Post, 10)
        assert post is not None
        s.expunge_all()
        s.scalars(select(Post).where(Post.id == 10)).one().author  # noqa: B018
    kinds = [e.orm.describe() if e.orm else None for e in q]
    assert kinds[0] == "query of User"
    assert kinds[1:6] == ["lazy load of User.posts"] * 5
    assert "lazy load of Post.author" in kinds
    lazy = [e for e in q if e.orm and e.orm.kind == "lazy_load"]
    assert all(e.callsite is not None and e.callsite.file == __file__ for e in lazy)
    assert lazy[0].orm is not None
    assert lazy[0].orm.uselist is True


def test_orm_eager_load_context(orm_engine: Engine) -> None:
    with dbopt.capture_queries(orm_engine) as q, Session(orm_engine) as s:
        s.scalars(select(User).options(selectinload(User.posts))).all()
    assert [e.orm.kind if e.orm else None for e in q] == ["query", "eager_load"]
    assert q[1].orm is not None
    assert q[1].orm.relationship == "User.posts"


def test_async_engine_callsite_and_scope(pg_url: str) -> None:
    async def main() -> list[QueryEvent]:
        engine = create_async_engine(pg_url)
        try:
            with dbopt.capture_queries(engine) as q:
                async with dbopt.scope("async-job"), engine.connect() as c:
                    await c.execute(text("SELECT 1"))
            return list(q)
        finally:
            await engine.dispose()

    events = asyncio.run(main())
    selects = [e for e in events if e.sql == "SELECT 1"]
    assert len(selects) == 1
    assert selects[0].scope_name == "async-job"
    assert selects[0].callsite is not None
    assert selects[0].callsite.file == __file__
    assert selects[0].callsite.function == "main"


def test_sqlite_and_mysql_dialects(sqlite_engine: Engine, mysql_db_url: str) -> None:
    mysql = create_engine(mysql_db_url)
    try:
        for engine, dialect in ((sqlite_engine, "sqlite"), (mysql, "mysql")):
            with dbopt.capture_queries(engine) as q, engine.connect() as c:
                c.execute(text("SELECT :x"), {"x": 1})
            assert q[-1].dialect in (dialect, "mariadb")
            assert q[-1].fingerprint == dbopt.fingerprint("SELECT ?")
    finally:
        mysql.dispose()


def test_threads_exact_counts_and_scopes(pg_engine: Engine) -> None:
    sink = ThreadSafeCounter()
    threads_n, per_thread = 32, 500
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            with dbopt.scope(f"t{i}"), pg_engine.connect() as c:
                for j in range(per_thread):
                    c.execute(text("SELECT :i + :j"), {"i": i, "j": j})
        except BaseException as exc:
            errors.append(exc)

    with dbopt.instrument(pg_engine, sink):
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    assert len(sink.events) == threads_n * per_thread
    by_scope = Counter(e.scope.name if e.scope else None for e in sink.events)
    assert by_scope == {f"t{i}": per_thread for i in range(threads_n)}
    for e in sink.events:
        assert e.scope is not None
        assert isinstance(e.parameters, dict)
        assert f"t{e.parameters['i']}" == e.scope.name


def test_asyncio_200_tasks_exact(pg_url: str) -> None:
    sink = ThreadSafeCounter()

    async def main() -> None:
        engine = create_async_engine(pg_url, pool_size=10, max_overflow=10)
        try:
            with dbopt.instrument(engine, sink):

                async def task(i: int) -> None:
                    async with dbopt.scope(f"task{i}"), engine.connect() as c:
                        for j in range(5):
                            await c.execute(text("SELECT :i + :j"), {"i": i, "j": j})

                await asyncio.gather(*(task(i) for i in range(200)))
        finally:
            await engine.dispose()

    asyncio.run(main())
    selects = [e for e in sink.events if e.sql.startswith("SELECT")]
    assert len(selects) == 1000
    by_scope = Counter(e.scope.name if e.scope else None for e in selects)
    assert by_scope == {f"task{i}": 5 for i in range(200)}
    for e in selects:
        assert isinstance(e.parameters, dict)
        assert e.scope is not None
        assert e.scope.name == f"task{e.parameters['i']}"


def test_orm_context_can_be_turned_off(orm_engine: Engine) -> None:
    from sqlalchemy import event

    from dbopt.adapters import sqlalchemy as adapter

    before = adapter._orm_users[0]  # other tests may keep engines instrumented
    with dbopt.instrument(orm_engine, orm_context=False):
        assert adapter._orm_users[0] == before
    with dbopt.instrument(orm_engine), Session(orm_engine) as s:
        assert adapter._orm_users[0] == before + 1
        assert event.contains(Session, "do_orm_execute", adapter._on_orm_execute)
        with dbopt.capture_queries() as q:
            s.scalars(select(User)).all()
        assert q[-1].orm is not None
    assert adapter._orm_users[0] == before
