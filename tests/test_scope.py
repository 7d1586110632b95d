from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import Counter

import pytest

import dbopt
from dbopt import QueryEvent, Scope


class ScopeRecorder:
    def __init__(self) -> None:
        self.events: list[QueryEvent] = []
        self.ended: list[Scope] = []
        self.lock = threading.Lock()

    def __call__(self, event: QueryEvent) -> None:
        with self.lock:
            self.events.append(event)

    def scope_end(self, scope: Scope) -> None:
        self.ended.append(scope)


class Boom(dbopt.ReportedError):
    pass


class RaisingAtEnd:
    def __call__(self, event: QueryEvent) -> None:
        pass

    def scope_end(self, scope: Scope) -> None:
        raise Boom(f"scope {scope.name} had problems")


def test_scope_nesting_and_tags() -> None:
    assert dbopt.current_scope() is None
    with dbopt.scope("request", path="/users") as outer:
        assert dbopt.current_scope() is outer
        with dbopt.scope("inner") as inner:
            assert inner.parent is outer
            assert inner.path == "request/inner"
        assert dbopt.current_scope() is outer
    assert outer.tags == {"path": "/users"}
    assert outer.duration is not None
    assert outer.duration >= 0
    assert dbopt.current_scope() is None


def test_events_carry_scope_and_scope_end_is_called() -> None:
    rec = ScopeRecorder()
    conn = dbopt.wrap_dbapi(sqlite3.connect(":memory:"), rec)
    try:
        conn.execute("SELECT 1")
        with dbopt.scope("job") as job:
            conn.execute("SELECT 2")
        assert rec.events[0].scope is None
        assert rec.events[1].scope is job
        assert rec.ended == [job]
    finally:
        conn.detach()
        conn.close()


def test_decorator_sync_and_async() -> None:
    seen: list[str | None] = []

    @dbopt.scope("sync-job")
    def job() -> None:
        current = dbopt.current_scope()
        seen.append(current.name if current else None)

    @dbopt.scope()
    async def ajob() -> None:
        current = dbopt.current_scope()
        seen.append(current.name if current else None)

    job()
    asyncio.run(ajob())
    assert seen[0] == "sync-job"
    assert seen[1] is not None
    assert seen[1].endswith("ajob")


def test_async_with() -> None:
    async def main() -> str | None:
        async with dbopt.scope("a") as s:
            await asyncio.sleep(0)
            current = dbopt.current_scope()
            assert current is s
        return s.name

    assert asyncio.run(main()) == "a"


def test_reported_error_propagates_at_scope_end_only() -> None:
    sink = RaisingAtEnd()
    conn = dbopt.wrap_dbapi(sqlite3.connect(":memory:"), sink)
    try:
        with pytest.raises(Boom, match="scope s had problems"), dbopt.scope("s"):
            conn.execute("SELECT 1")  # the statement itself never raises
        # a scope already failing keeps its own error
        with pytest.raises(KeyError), dbopt.scope("s2"):
            raise KeyError("app error")
    finally:
        conn.detach()
        conn.close()


def test_end_leaves_a_scope_entered_without_with() -> None:
    sink = RaisingAtEnd()
    conn = dbopt.wrap_dbapi(sqlite3.connect(":memory:"), sink)
    try:
        ok = dbopt.scope("ok")
        entered = ok.__enter__()
        assert dbopt.current_scope() is entered
        with pytest.raises(Boom, match="scope ok had problems"):
            ok.end()
        assert dbopt.current_scope() is None
        assert entered.ended is not None
        # ended by a failure: the sink's error does not replace the application's
        failing = dbopt.scope("failing")
        failing.__enter__()
        failing.end(KeyError("app error"))
        assert dbopt.current_scope() is None
    finally:
        conn.detach()
        conn.close()


def test_threads_get_their_own_scopes() -> None:
    rec = ScopeRecorder()
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            conn = dbopt.wrap_dbapi(sqlite3.connect(":memory:"), rec)
            with dbopt.scope(f"t{i}"):
                for _ in range(50):
                    conn.execute("SELECT 1")
            conn.execute("SELECT 2")
            conn.detach()
            conn.close()
        except BaseException as exc:
            errors.append(exc)

    with dbopt.scope("main"):
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    counts = Counter(e.scope.name if e.scope else None for e in rec.events)
    assert counts == {**{f"t{i}": 50 for i in range(8)}, None: 8}


def test_asyncio_tasks_get_their_own_scopes() -> None:
    rec = ScopeRecorder()
    conn = dbopt.wrap_dbapi(sqlite3.connect(":memory:", check_same_thread=False), rec)

    async def task(i: int) -> None:
        async with dbopt.scope(f"task{i}"):
            for _ in range(5):
                conn.execute("SELECT ?", (i,))
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(task(i) for i in range(200)))

    try:
        asyncio.run(main())
    finally:
        conn.detach()
        conn.close()
    by_scope = Counter(e.scope.name for e in rec.events if e.scope)
    assert by_scope == {f"task{i}": 5 for i in range(200)}
    for event in rec.events:
        assert event.scope is not None
        assert event.parameters == (int(event.scope.name.removeprefix("task")),)
