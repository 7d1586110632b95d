"""The per-statement path does only the work the attached sinks need (issue 16).

Stack depth follows the sinks: a sink that reads only the call site gets
one frame, unknown sinks and ``capture_queries()`` blocks get the full
depth, no sink gets no walk; with no sink the before-listener stores
nothing. Events built by the fast constructor equal the dataclass's own.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import dbopt
from dbopt import QueryEvent
from dbopt.core.events import make_event


class Base(DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "things"
    id: Mapped[int] = mapped_column(primary_key=True)


class Keep:
    """A sink that keeps its events; optionally declares the frames it reads."""

    def __init__(self, depth: int | None = None) -> None:
        self.events: list[QueryEvent] = []
        if depth is not None:
            self.dbopt_stack_depth = depth

    def __call__(self, event: QueryEvent) -> None:
        self.events.append(event)


def _level_three(engine: Engine) -> None:
    with engine.connect() as c:
        c.execute(text("SELECT 1")).all()


def _level_two(engine: Engine) -> None:
    _level_three(engine)


def _level_one(engine: Engine) -> None:
    _level_two(engine)


def test_sink_without_declaration_gets_full_depth(sqlite_engine: Engine) -> None:
    sink = Keep()
    with dbopt.instrument(sqlite_engine, sink, callsite_depth=3):
        _level_one(sqlite_engine)
    stack = sink.events[-1].stack
    assert [f.function for f in stack] == ["_level_three", "_level_two", "_level_one"]


def test_declared_depth_limits_the_walk(sqlite_engine: Engine) -> None:
    shallow = Keep(depth=1)
    with dbopt.instrument(sqlite_engine, shallow, callsite_depth=3):
        _level_one(sqlite_engine)
    event = shallow.events[-1]
    assert [f.function for f in event.stack] == ["_level_three"]
    assert event.callsite is not None
    assert event.callsite.function == "_level_three"


def test_deepest_sink_wins_and_detaching_it_shrinks_the_walk(sqlite_engine: Engine) -> None:
    shallow, deep = Keep(depth=1), Keep(depth=2)
    with dbopt.instrument(sqlite_engine, shallow, callsite_depth=5):
        handle = dbopt.instrument(sqlite_engine, deep)
        _level_one(sqlite_engine)
        assert len(shallow.events[-1].stack) == 2
        handle.close()
        _level_one(sqlite_engine)
        assert len(shallow.events[-1].stack) == 1


def test_sinks_wanting_no_frames_skip_the_walk(sqlite_engine: Engine) -> None:
    sink = Keep(depth=0)
    with dbopt.instrument(sqlite_engine, sink):
        _level_one(sqlite_engine)
    assert sink.events[-1].stack == ()
    assert sink.events[-1].callsite is None


def test_capture_queries_gets_full_depth_beside_a_shallow_sink(sqlite_engine: Engine) -> None:
    stats = dbopt.QueryStats()
    with (
        dbopt.instrument(sqlite_engine, stats, callsite_depth=3),
        dbopt.capture_queries() as captured,
    ):
        _level_one(sqlite_engine)
    assert [f.function for f in captured[-1].stack] == ["_level_three", "_level_two", "_level_one"]
    (entry,) = [s for s in stats.statements() if s.example_sql == "SELECT 1"]
    assert any("test_hook_cost.py" in key for key in entry.callsites)


def test_stats_and_logger_read_one_frame() -> None:
    assert dbopt.QueryStats.dbopt_stack_depth == 1
    assert dbopt.QueryLogger.dbopt_stack_depth == 1
    assert dbopt.QueryStats.dbopt_reads_orm is False
    assert dbopt.QueryLogger.dbopt_reads_orm is False


def test_orm_context_wanted_only_by_sinks_that_read_it() -> None:
    from dbopt.core.pipeline import Pipeline

    pipeline = Pipeline("test", "sqlite")
    stats = dbopt.QueryStats()
    pipeline.add(stats)
    assert not pipeline.wants_orm()
    with dbopt.capture_queries():
        assert pipeline.wants_orm()
    other = Keep()
    pipeline.add(other)
    assert pipeline.wants_orm()
    pipeline.remove(other)
    assert not pipeline.wants_orm()
    pipeline.clear()


def test_no_sink_stores_nothing_on_the_context(sqlite_engine: Engine) -> None:
    seen: list[Any] = []

    def after(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
        seen.append(getattr(ctx, "_dbopt_started", None))

    event.listen(sqlite_engine, "after_cursor_execute", after)
    try:
        with dbopt.instrument(sqlite_engine):
            _level_one(sqlite_engine)
        sink = Keep()
        with dbopt.instrument(sqlite_engine, sink):
            _level_one(sqlite_engine)
    finally:
        event.remove(sqlite_engine, "after_cursor_execute", after)
    # the dialect's driver calls are timed in place: nothing is stored either way
    assert seen[0] is None
    assert seen[-1] is None
    assert sink.events[-1].duration >= 0
    assert abs(sink.events[-1].timestamp - __import__("time").time()) < 60


def test_fast_constructor_builds_the_same_event() -> None:
    args = ("SELECT 1", {"a": 1}, "f" * 16, 0.5, 1, False, None, None, (), None, "x", "sqlite")
    rest = (12.0, None, "select")
    made = make_event(*args, *rest)
    assert made == QueryEvent(*args, *rest)
    assert type(made) is QueryEvent
    assert made.kind == "select"


# The dialect wrapper (statements are timed around the driver call)


def test_wrapper_records_executemany_no_params_and_errors(sqlite_engine: Engine) -> None:
    sink = Keep()
    with dbopt.instrument(sqlite_engine, sink), sqlite_engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (a int)")
        c.execute(text("INSERT INTO t (a) VALUES (:a)"), [{"a": i} for i in range(3)])
        c.execute(text("SELECT a FROM t WHERE a = :a"), {"a": 1}).all()
        with pytest.raises(OperationalError):
            c.execute(text("SELECT nope FROM t"))
    create, insert, select, failed = sink.events
    assert create.sql == "CREATE TABLE t (a int)"
    assert not create.executemany
    assert insert.executemany
    assert insert.parameters == [(0,), (1,), (2,)]
    assert select.parameters == (1,)
    assert failed.error is not None
    assert "nope" in failed.sql
    assert failed.duration > 0  # timed by the wrapper, like a success
    for e in sink.events:
        assert e.callsite is not None
        assert e.callsite.function == "test_wrapper_records_executemany_no_params_and_errors"


def test_option_engine_listens_instead_and_leaves_its_parent_alone(sqlite_engine: Engine) -> None:
    option_engine = sqlite_engine.execution_options(isolation_level="AUTOCOMMIT")
    sink = Keep()
    with dbopt.instrument(option_engine, sink) as handle:
        assert not handle.adapter.wraps_dialect  # type: ignore[attr-defined]
        assert "do_execute" not in vars(sqlite_engine.dialect)
        with option_engine.connect() as c:
            c.execute(text("SELECT 1")).all()
        with sqlite_engine.connect() as c:
            c.execute(text("SELECT 2")).all()
    assert [e.sql for e in sink.events] == ["SELECT 1"]


def test_option_engine_failures_come_from_handle_error(sqlite_engine: Engine) -> None:
    option_engine = sqlite_engine.execution_options(isolation_level="AUTOCOMMIT")
    sink = Keep()
    with (
        dbopt.instrument(option_engine, sink),
        option_engine.connect() as c,
        pytest.raises(OperationalError),
    ):
        c.execute(text("SELECT nope"))
    (failed,) = sink.events
    assert failed.error is not None
    assert failed.duration > 0


def test_query_budget_error_still_stops_the_statement(sqlite_engine: Engine) -> None:
    from dbopt.integrations._guards import QueryBudgetError

    class Strict:
        def __call__(self, event: QueryEvent) -> None:
            raise QueryBudgetError(0, [event])

    with dbopt.instrument(sqlite_engine, Strict()), pytest.raises(QueryBudgetError):
        _level_one(sqlite_engine)


def test_two_handles_share_one_wrapper(sqlite_engine: Engine) -> None:
    first, second = Keep(), Keep()
    dialect = sqlite_engine.dialect
    h1 = dbopt.instrument(sqlite_engine, first)
    wrapper = vars(dialect)["do_execute"]
    h2 = dbopt.instrument(sqlite_engine, second)
    assert vars(dialect)["do_execute"] is wrapper
    _level_one(sqlite_engine)
    h1.close()
    assert vars(dialect)["do_execute"] is wrapper
    _level_one(sqlite_engine)
    h2.close()
    assert "do_execute" not in vars(dialect)
    _level_one(sqlite_engine)
    assert (len(first.events), len(second.events)) == (1, 2)


def test_detached_wrapper_under_another_passes_through(sqlite_engine: Engine) -> None:
    dialect = sqlite_engine.dialect
    handle = dbopt.instrument(sqlite_engine, Keep())
    ours = dialect.do_execute
    calls: list[str] = []

    def theirs(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        calls.append(statement)
        ours(cursor, statement, parameters, context)

    dialect.do_execute = theirs  # type: ignore[method-assign]
    handle.close()
    assert vars(dialect)["do_execute"] is theirs  # not ours to remove
    with dbopt.capture_queries() as captured:
        _level_one(sqlite_engine)
    assert calls == ["SELECT 1"]
    assert list(captured) == []  # detached: ours records nothing, even for capture blocks
    del dialect.do_execute


def test_first_connect_checks_are_not_recorded(pg_url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(pg_url)  # not connected yet: the dialect checks the server first
    try:
        with dbopt.capture_queries(engine) as captured:
            _level_one(engine)
        assert [e.sql for e in captured] == ["SELECT 1"]
    finally:
        engine.dispose()


def test_orm_listener_only_while_a_sink_or_capture_block_reads_it(sqlite_engine: Engine) -> None:
    from dbopt.adapters import sqlalchemy as adapter

    Base.metadata.create_all(sqlite_engine)
    before = adapter._orm_users[0]  # other tests may keep engines instrumented
    stats, keep = dbopt.QueryStats(), Keep()
    with dbopt.instrument(sqlite_engine, stats, dbopt.QueryLogger()), Session(sqlite_engine) as s:
        assert adapter._orm_users[0] == before  # neither sink reads event.orm
        with dbopt.capture_queries() as captured:
            assert adapter._orm_users[0] == before + 1
            s.get(Thing, 1)
        assert captured[-1].orm is not None
        assert captured[-1].orm.entity == "Thing"
        assert adapter._orm_users[0] == before
        with dbopt.instrument(sqlite_engine, keep):
            assert adapter._orm_users[0] == before + 1
            s.get(Thing, 2)
        assert keep.events[-1].orm is not None
        assert adapter._orm_users[0] == before
    assert adapter._orm_users[0] == before
