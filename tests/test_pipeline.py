"""Sinks: attach, detach, dedupe, and failures that never reach the application."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy import Engine, event, text

import dbopt
from dbopt import QueryEvent


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, event: QueryEvent) -> None:
        self.n += 1


class Broken:
    def __call__(self, event: QueryEvent) -> None:
        raise RuntimeError("sink bug")


def test_same_sink_twice_counts_once(sqlite_engine: Engine) -> None:
    sink = Counter()
    first = dbopt.instrument(sqlite_engine, sink)
    second = dbopt.instrument(sqlite_engine, sink)
    with sqlite_engine.connect() as c:
        c.execute(text("SELECT 1"))
    assert sink.n == 1
    first.close()
    with sqlite_engine.connect() as c:
        c.execute(text("SELECT 1"))
    assert sink.n == 2  # still attached through the second handle
    second.close()
    second.close()  # idempotent
    with sqlite_engine.connect() as c:
        c.execute(text("SELECT 1"))
    assert sink.n == 2


def test_detach_removes_listeners(sqlite_engine: Engine) -> None:
    from dbopt.adapters.sqlalchemy import SQLAlchemyAdapter

    dialect = sqlite_engine.dialect
    before = dict(vars(dialect))
    with dbopt.instrument(sqlite_engine, Counter()) as handle:
        adapter = handle.adapter
        assert isinstance(adapter, SQLAlchemyAdapter)
        assert adapter.wraps_dialect
        assert "do_execute" in vars(dialect)
        assert not event.contains(sqlite_engine, "handle_error", adapter._error)
    assert not event.contains(sqlite_engine, "handle_error", adapter._error)
    assert not event.contains(sqlite_engine, "after_cursor_execute", adapter._after)
    after = dict(vars(dialect))
    after.pop("dispatch", None)  # SQLAlchemy's per-instance listener registry, emptied
    before.pop("dispatch", None)
    assert after == before
    assert not handle.attached


def test_broken_sink_never_breaks_the_statement(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    good = Counter()
    broken = Broken()
    with dbopt.instrument(sqlite_engine, broken, good), sqlite_engine.connect() as c:
        for _ in range(5):
            assert c.execute(text("SELECT 41 + 1")).scalar() == 42
    assert good.n == 5  # sinks after the broken one still run
    errors = [r for r in caplog.records if r.name == "dbopt" and r.levelno == logging.ERROR]
    assert len(errors) == 1  # rate-limited: once per sink per minute
    assert "sink bug" in str(errors[0].exc_info)


def test_non_callable_sink_is_rejected(sqlite_engine: Engine) -> None:
    with pytest.raises(dbopt.InstrumentationError):
        dbopt.instrument(sqlite_engine, "not a sink")  # type: ignore[arg-type]


def test_unknown_target_gives_clear_error() -> None:
    with pytest.raises(dbopt.InstrumentationError, match="wrap_dbapi"):
        dbopt.instrument(sqlite3.connect(":memory:"))


def test_capture_queries_with_target(sqlite_engine: Engine) -> None:
    with dbopt.capture_queries(sqlite_engine) as captured, sqlite_engine.connect() as c:
        c.execute(text("SELECT 1"))
        c.execute(text("SELECT 2"))
    assert captured.statements == ["SELECT 1", "SELECT 2"]
    assert len(captured.by_fingerprint()) == 1
    assert captured.count() == 2
    # detached afterwards: nothing more is captured
    with sqlite_engine.connect() as c:
        c.execute(text("SELECT 3"))
    assert len(captured) == 2


def test_nested_capture_blocks(sqlite_engine: Engine) -> None:
    with dbopt.capture_queries(sqlite_engine) as outer, sqlite_engine.connect() as c:
        c.execute(text("SELECT 1"))
        with dbopt.capture_queries() as inner:
            c.execute(text("SELECT 2"))
    assert len(outer) == 2
    assert len(inner) == 1


def test_event_to_dict(sqlite_engine: Engine) -> None:
    with dbopt.capture_queries(sqlite_engine) as q, sqlite_engine.connect() as c:
        c.execute(text("SELECT :a"), {"a": "secret"})
    data = q[0].to_dict()
    # SQLAlchemy compiles :a to sqlite's qmark style: a positional tuple, redacted
    assert data["parameters"] == ["<str>"]
    assert data["dialect"] == "sqlite"
    assert data["adapter"] == "sqlalchemy"
    assert data["kind"] == "select"
    assert str(data["callsite"]).startswith(__file__)


def test_a_detached_sinks_mute_is_not_inherited_by_a_new_sink_with_its_id(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from dbopt.core import sinks

    def broken(event: QueryEvent) -> None:
        raise RuntimeError("first sink bug")

    with caplog.at_level(logging.ERROR, logger="dbopt"):
        with dbopt.instrument(sqlite_engine, broken), sqlite_engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert "first sink bug" in caplog.text
        assert id(broken) not in sinks._last_error  # forgotten with its last attachment
