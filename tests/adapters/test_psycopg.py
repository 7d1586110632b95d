"""The psycopg 3 adapter on a real PostgreSQL: connections, async, pools, threads."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import weakref
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, ConnectionPool, NullConnectionPool

import dbopt
from dbopt import QueryEvent
from dbopt.testing import libpq_url

pytestmark = pytest.mark.postgres

TABLE = "psy_adapter_items"


def next_line() -> int:
    """The line after the caller's: where the statement under test is."""
    return sys._getframe(1).f_lineno + 1


class Collect(list[QueryEvent]):
    """A sink that keeps every event, safe to call from many threads."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def __call__(self, event: QueryEvent) -> None:
        with self.lock:
            self.append(event)


@pytest.fixture(scope="module")
def dsn(pg_url: str) -> Iterator[str]:
    url = libpq_url(pg_url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, name text NOT NULL)")
    yield url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"TRUNCATE {TABLE}")
        yield connection


def test_conn_execute_event(conn: psycopg.Connection) -> None:
    with dbopt.capture_queries(conn) as q:
        line = next_line()
        rows = conn.execute("SELECT g FROM generate_series(1, %s) AS g", (4,)).fetchall()
    assert rows == [(1,), (2,), (3,), (4,)]
    (e,) = q
    assert e.sql == "SELECT g FROM generate_series(1, %s) AS g"
    assert e.parameters == (4,)
    assert e.rowcount == 4
    assert e.executemany is False
    assert e.error is None
    assert (e.adapter, e.dialect, e.kind) == ("psycopg", "postgresql", "select")
    assert e.duration > 0
    assert e.callsite is not None
    assert (e.callsite.file, e.callsite.line) == (__file__, line)
    assert e.callsite.function == "test_conn_execute_event"


def test_cursor_execute_fetch_and_rowcount(conn: psycopg.Connection) -> None:
    with dbopt.capture_queries(conn) as q, conn.cursor() as cur:
        assert isinstance(cur, psycopg.Cursor)
        cur.execute(f"INSERT INTO {TABLE} VALUES (%(id)s, %(name)s)", {"id": 1, "name": "a"})
        cur.execute(f"UPDATE {TABLE} SET name = 'b' WHERE id > 5")
        cur.execute(f"SELECT name FROM {TABLE} WHERE id = %s", [1])
        assert cur.fetchone() == ("a",)
    assert [e.rowcount for e in q] == [1, 0, 1]
    assert q[0].parameters == {"id": 1, "name": "a"}
    assert [e.kind for e in q] == ["insert", "update", "select"]


def test_executemany_with_a_generator(conn: psycopg.Connection) -> None:
    with dbopt.capture_queries(conn) as q, conn.cursor() as cur:
        line = next_line()
        cur.executemany(f"INSERT INTO {TABLE} VALUES (%s, %s)", ((i, f"n{i}") for i in range(5)))
    (e,) = q
    assert e.executemany is True
    assert e.parameters == [(i, f"n{i}") for i in range(5)]
    assert e.rowcount == 5
    assert e.callsite is not None
    assert e.callsite.line == line
    assert conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone() == (5,)


def test_server_side_cursor(conn: psycopg.Connection) -> None:
    with dbopt.capture_queries(conn) as q, conn.transaction(), conn.cursor("big") as cur:
        line = next_line()
        cur.execute("SELECT g FROM generate_series(1, %s) AS g", (50,))
        assert len(cur.fetchmany(10)) == 10
        assert len(cur.fetchall()) == 40
    (e,) = q
    assert e.sql == "SELECT g FROM generate_series(1, %s) AS g"
    assert e.parameters == (50,)
    assert e.callsite is not None
    assert e.callsite.line == line


def test_failing_statement_reaches_the_app_unchanged(conn: psycopg.Connection) -> None:
    with dbopt.capture_queries(conn) as q:
        line = next_line()
        with pytest.raises(psycopg.errors.UndefinedTable) as info:
            conn.execute("SELECT * FROM psy_no_such_table WHERE id = %s", (1,))
    (e,) = q
    assert e.error is info.value
    assert e.failed
    assert e.rowcount is None
    assert e.parameters == (1,)
    assert e.callsite is not None
    assert e.callsite.line == line + 1


def test_failing_executemany_is_recorded(conn: psycopg.Connection) -> None:
    with dbopt.capture_queries(conn) as q, pytest.raises(psycopg.errors.UniqueViolation):
        conn.cursor().executemany(f"INSERT INTO {TABLE} VALUES (%s, 'x')", [(1,), (1,)])
    (e,) = q
    assert e.executemany is True
    assert isinstance(e.error, psycopg.errors.UniqueViolation)


def test_composed_and_bytes_queries(conn: psycopg.Connection) -> None:
    query = sql.SQL("SELECT {} FROM {}").format(sql.Literal(7), sql.Identifier(TABLE))
    with dbopt.capture_queries(conn) as q:
        conn.execute(query)
        conn.execute(b"SELECT 'caf\xc3\xa9'")
    assert q.statements == [f'SELECT 7 FROM "{TABLE}"', "SELECT 'café'"]


def test_client_cursor_factory_is_kept(dsn: str) -> None:
    with psycopg.connect(dsn, cursor_factory=psycopg.ClientCursor) as c:
        with dbopt.capture_queries(c) as q:
            cur = c.execute("SELECT %s::text", ("x",))
            assert isinstance(cur, psycopg.ClientCursor)
            assert cur.fetchone() == ("x",)
        assert len(q) == 1
        assert c.cursor_factory is psycopg.ClientCursor


def test_stream_and_copy(conn: psycopg.Connection) -> None:
    with dbopt.capture_queries(conn) as q:
        cur = conn.cursor()
        line = next_line()
        streamed = [r[0] for r in cur.stream("SELECT generate_series(1, 6)")]
        with cur.copy(f"COPY {TABLE} (id, name) FROM STDIN") as copy:
            for i in range(3):
                copy.write_row((i, f"c{i}"))
        for _ in cur.stream("SELECT generate_series(1, 100)"):
            break
    assert streamed == [1, 2, 3, 4, 5, 6]
    stream, copy_event, partial = q
    assert stream.rowcount == 6
    assert stream.callsite is not None
    assert stream.callsite.line == line
    assert copy_event.sql.startswith("COPY")
    assert copy_event.rowcount == 3
    assert partial.rowcount == 1
    assert conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone() == (3,)


def test_pipeline_mode(conn: psycopg.Connection) -> None:
    with dbopt.capture_queries(conn) as q:
        with conn.pipeline():
            first = conn.execute("SELECT 1")
            second = conn.execute("SELECT 2")
        assert (first.fetchone(), second.fetchone()) == ((1,), (2,))
    assert q.statements == ["SELECT 1", "SELECT 2"]


def test_async_connection(dsn: str) -> None:
    async def run() -> tuple[list[QueryEvent], int, BaseException]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
            with dbopt.capture_queries(aconn) as q:
                line = next_line()
                await (await aconn.execute("SELECT %s::int", (3,))).fetchone()
                cur = aconn.cursor()
                await cur.executemany("SELECT %s", [(1,), (2,)])
                async with aconn.transaction(), aconn.cursor("named") as named:
                    await named.execute("SELECT generate_series(1, 5)")
                    assert len(await named.fetchall()) == 5
                async for _ in cur.stream("SELECT generate_series(1, 3)"):
                    pass
                async with cur.copy("COPY (SELECT 1) TO STDOUT") as copy:
                    async for _ in copy:
                        pass
                with pytest.raises(psycopg.errors.SyntaxError) as info:
                    await aconn.execute("SELEC 1")
            assert aconn.cursor_factory is psycopg.AsyncCursor
            assert aconn.server_cursor_factory is psycopg.AsyncServerCursor
            return list(q), line, info.value

    events, line, error = asyncio.run(run())
    assert [e.sql for e in events] == [
        "SELECT %s::int",
        "SELECT %s",
        "SELECT generate_series(1, 5)",
        "SELECT generate_series(1, 3)",
        "COPY (SELECT 1) TO STDOUT",
        "SELEC 1",
    ]
    assert [e.executemany for e in events] == [False, True, False, False, False, False]
    assert events[0].rowcount == 1
    assert events[3].rowcount == 3
    assert events[-1].error is error
    for e in events:
        assert e.callsite is not None
        assert (e.callsite.file, e.callsite.function) == (__file__, "run")
    assert events[0].callsite is not None
    assert events[0].callsite.line == line


def test_sync_pool(dsn: str) -> None:
    events = Collect()
    with ConnectionPool(dsn, min_size=2, max_size=4, open=True) as pool:
        pool.wait()
        original = pool.connection_class
        handle = dbopt.instrument(pool, events)
        assert pool.connection_class is not original
        assert issubclass(pool.connection_class, original)
        # Two connections were idle at attach time, two are created after.
        conns = [pool.getconn() for _ in range(4)]
        for c in conns:
            line = next_line()
            c.execute("SELECT 1")
        for c in conns:
            pool.putconn(c)
        with pool.connection() as c:
            c.execute("SELECT 2")
        assert len(events) == 5
        assert events[0].callsite is not None
        assert events[0].callsite.line == line
        handle.close()
        assert pool.connection_class is original
        for c in conns:
            assert c.cursor_factory is psycopg.Cursor
            assert "_dbopt_state" not in vars(c)
        with pool.connection() as c:
            c.execute("SELECT 3")
    assert len(events) == 5


def test_null_pool_keeps_the_configured_cursor_factory(dsn: str) -> None:
    events = Collect()
    kwargs = {"cursor_factory": psycopg.ClientCursor}
    with NullConnectionPool(dsn, max_size=2, kwargs=kwargs, open=True) as pool:
        with dbopt.instrument(pool, events), pool.connection() as c:
            cur = c.execute("SELECT %s::int", (5,))
            assert isinstance(cur, psycopg.ClientCursor)
            assert cur.fetchone() == (5,)
        with pool.connection() as c:
            assert c.cursor_factory is psycopg.ClientCursor
    assert [(e.sql, e.parameters) for e in events] == [("SELECT %s::int", (5,))]
    assert pool.kwargs is kwargs
    assert kwargs == {"cursor_factory": psycopg.ClientCursor}


def test_async_pool(dsn: str) -> None:
    events = Collect()

    async def run() -> None:
        async with AsyncConnectionPool(dsn, min_size=1, max_size=3, open=False) as pool:
            await pool.wait()
            original = pool.connection_class
            with dbopt.instrument(pool, events):
                conns = [await pool.getconn() for _ in range(3)]
                for c in conns:
                    await c.execute("SELECT 1")
                async with dbopt.scope("job"):
                    await asyncio.gather(*(c.execute("SELECT 2") for c in conns))
                for c in conns:
                    await pool.putconn(c)
            assert pool.connection_class is original
            async with pool.connection() as c:
                assert c.cursor_factory is psycopg.AsyncCursor
                await c.execute("SELECT 3")

    asyncio.run(run())
    assert [e.sql for e in events] == ["SELECT 1"] * 3 + ["SELECT 2"] * 3
    assert [e.scope_name for e in events] == [None] * 3 + ["job"] * 3
    for e in events:
        assert e.callsite is not None
        assert e.callsite.file == __file__


def test_detach_restores_exactly(conn: psycopg.Connection) -> None:
    before = (conn.cursor_factory, conn.server_cursor_factory, set(vars(conn)))
    events = Collect()
    handle = dbopt.instrument(conn, events)
    kept = conn.cursor()
    assert conn.cursor_factory is not before[0]
    conn.execute("SELECT 1")
    handle.close()
    assert (conn.cursor_factory, conn.server_cursor_factory, set(vars(conn))) == before
    with dbopt.capture_queries() as q:
        conn.execute("SELECT 2")
        kept.execute("SELECT 3")  # a cursor made while attached goes quiet too
    assert len(events) == 1
    assert len(q) == 0


def test_double_attach_counts_once(conn: psycopg.Connection) -> None:
    events = Collect()
    first = dbopt.instrument(conn, events)
    second = dbopt.instrument(conn, events)
    conn.execute("SELECT 1")
    assert len(events) == 1
    first.close()
    conn.execute("SELECT 2")
    assert len(events) == 2
    second.close()
    conn.execute("SELECT 3")
    assert [e.sql for e in events] == ["SELECT 1", "SELECT 2"]
    assert conn.cursor_factory is psycopg.Cursor


def test_scope_attribution(conn: psycopg.Connection) -> None:
    events = Collect()
    with dbopt.instrument(conn, events):
        conn.execute("SELECT 1")
        with dbopt.scope("outer", user=7) as outer:
            conn.execute("SELECT 2")
            with dbopt.scope("inner") as inner:
                conn.execute("SELECT 3")
    assert [e.scope for e in events] == [None, outer, inner]
    assert inner.parent is outer
    assert events[1].scope is not None
    assert events[1].scope.tags == {"user": 7}


def test_capture_queries_only_in_its_block_and_context(conn: psycopg.Connection) -> None:
    with dbopt.instrument(conn):
        conn.execute("SELECT 0")
        with dbopt.capture_queries() as q:
            conn.execute("SELECT 1")
            worker = threading.Thread(target=lambda: conn.execute("SELECT 2"))
            worker.start()
            worker.join()
        conn.execute("SELECT 3")
    assert q.statements == ["SELECT 1"]


def test_raising_sink_never_breaks_the_statement(
    conn: psycopg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: QueryEvent) -> None:
        raise RuntimeError("sink bug")

    events = Collect()
    with caplog.at_level(logging.ERROR, logger="dbopt"), dbopt.instrument(conn, broken, events):
        assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1 / 0")
    assert [e.failed for e in events] == [False, True]
    assert "sink bug" in caplog.text


def test_reported_error_never_hides_the_statement_error(conn: psycopg.Connection) -> None:
    def strict(event: QueryEvent) -> None:
        raise dbopt.ReportedError(f"strict: {event.sql}")

    with dbopt.instrument(conn, strict):
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1 / 0")
        with pytest.raises(dbopt.ReportedError, match="strict: SELECT 1"):
            conn.execute("SELECT 1")


def test_callsite_depth_zero_and_deeper_stack(dsn: str) -> None:
    def helper(c: psycopg.Connection) -> None:
        c.execute("SELECT 1")

    with psycopg.connect(dsn) as c:
        with dbopt.capture_queries(c) as q:
            helper(c)
        assert q[0].callsite is not None
        assert q[0].callsite.function == "helper"
        assert q[0].stack[1].function == "test_callsite_depth_zero_and_deeper_stack"
    with psycopg.connect(dsn) as c:
        events = Collect()
        with dbopt.instrument(c, events, callsite_depth=0):
            c.execute("SELECT 1")
        assert events[0].callsite is None
        assert events[0].stack == ()


def test_rejects_closed_connection_and_does_not_keep_it_alive(dsn: str) -> None:
    closed = psycopg.connect(dsn)
    closed.close()
    with pytest.raises(dbopt.InstrumentationError, match="closed"):
        dbopt.instrument(closed)
    c = psycopg.connect(dsn)
    handle = dbopt.instrument(c, Collect())
    ref = weakref.ref(c)
    c.close()
    del c
    gc.collect()
    assert ref() is None
    handle.close()


@pytest.mark.slow
def test_pool_shared_by_threads_counts_exactly(dsn: str) -> None:
    threads, per_thread = 32, 500

    class CountingSink:
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.total = 0
            self.by_scope: Counter[str | None] = Counter()

        def __call__(self, event: QueryEvent) -> None:
            with self.lock:
                self.total += 1
                self.by_scope[event.scope_name] += 1

    sink = CountingSink()
    with ConnectionPool(dsn, min_size=8, max_size=8, open=True) as pool:
        pool.wait()

        def work(i: int) -> None:
            with dbopt.scope(f"t{i}"):
                for n in range(per_thread):
                    with pool.connection() as c:
                        c.execute("SELECT %s::int", (n,))

        with dbopt.instrument(pool, sink), ThreadPoolExecutor(threads) as executor:
            for future in [executor.submit(work, i) for i in range(threads)]:
                future.result()
    assert sink.total == threads * per_thread
    assert sink.by_scope == {f"t{i}": per_thread for i in range(threads)}


def test_subclass_of_psycopg_connection_is_instrumented(pg_url: str) -> None:
    class AppConnection(psycopg.Connection[Any]):
        pass

    with AppConnection.connect(libpq_url(pg_url)) as conn:
        with dbopt.capture_queries(conn) as q:
            conn.execute("SELECT 1")
        assert [e.sql for e in q] == ["SELECT 1"]
