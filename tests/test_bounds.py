"""Bounded by default: the hook's work and every sink's state stay bounded whatever the input."""

from __future__ import annotations

import logging
import sqlite3
import time
import tracemalloc
from typing import Any

import pytest

import dbopt
from dbopt.core.events import CallSite, QueryEvent
from dbopt.core.fingerprint import MAX_CHARS, fingerprint, fingerprint_info, normalize
from dbopt.core.scope import Scope

SITE = CallSite("app.py", 10, "view")


def event(
    sql: str, duration: float = 0.001, scope: Scope | None = None, params: Any = None
) -> QueryEvent:
    info = fingerprint_info(sql)
    return QueryEvent(
        sql=sql,
        parameters=params,
        fingerprint=info.fingerprint,
        duration=duration,
        rowcount=1,
        executemany=False,
        error=None,
        callsite=SITE,
        stack=(SITE,),
        scope=scope,
        adapter="test",
        dialect="postgresql",
        timestamp=time.time(),
        kind=info.kind,
    )


def _in_list(n: int, step: int = 1) -> str:
    return "SELECT * FROM t WHERE id IN (" + ",".join(str(i * step) for i in range(n)) + ")"


def _timed(sql: str) -> float:
    started = time.perf_counter()
    fingerprint_info(sql)
    return time.perf_counter() - started


@pytest.mark.parametrize("unit", ["%(", "(", "1,", "'a", "$a$", "x in ("])
def test_huge_text_costs_about_what_the_limit_does(unit: str) -> None:
    huge = unit * (6_000_000 // len(unit))
    at_limit = unit * (MAX_CHARS // len(unit))
    base = min(_timed(at_limit + f" -- {k}") for k in range(3))  # other texts: not cached
    took = _timed(huge)
    # 6 MB is ~90x the limit; bounded work is a hash and a prefix, not 90x the time.
    assert took < 10 * base + 0.2, (took, base)
    assert len(fingerprint_info(huge).normalized) < 5 * MAX_CHARS


def test_long_lists_and_batches_share_the_short_fingerprint() -> None:
    short = fingerprint(_in_list(3))
    assert fingerprint(_in_list(1_000_000)) == short
    assert fingerprint(_in_list(1_500_000, step=7)) == short
    tail = " AND status = 'x' RETURNING id"
    assert fingerprint(_in_list(1_000_000) + tail) == fingerprint(_in_list(2) + tail)
    assert fingerprint(_in_list(1_000_000) + tail) != short
    row = "({i}, 'a word {i}', now())"
    batch = "INSERT INTO w (id, t, at) VALUES " + ", ".join(row.format(i=i) for i in range(200_000))
    assert fingerprint(batch) == fingerprint("INSERT INTO w (id, t, at) VALUES (1, 'x', now())")
    assert normalize(batch)[1] == "insert"


def test_querystats_is_bounded_in_bytes() -> None:
    stats = dbopt.QueryStats(max_bytes=2_000_000, max_text=10_000)
    # 150 distinct 100 kB statements: 15 MB of text, made before memory is traced.
    events = [event(f"SELECT c{i} FROM t WHERE x = '" + "v" * 100_000 + "'") for i in range(150)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for e in events:
            stats(e)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert stats.nbytes <= stats.max_bytes
    assert stats.evicted > 0
    assert all(len(s.example_sql) <= 10_000 for s in stats.statements())
    assert held < 2 * stats.max_bytes, held  # the estimate tracks real memory
    assert stats.nbytes == sum(s.nbytes for s in stats.statements())


def test_querystats_keeps_large_parameters_as_types() -> None:
    stats = dbopt.QueryStats(max_param_bytes=1000)
    stats(event("SELECT big WHERE a = %(a)s", params={"a": "x" * 5000}))
    stats(event("SELECT small WHERE a = %(a)s", params={"a": "small"}))
    by_sql = {s.example_sql: s.example_params for s in stats.statements()}
    assert by_sql["SELECT big WHERE a = %(a)s"] == {"a": "<str>"}
    assert by_sql["SELECT small WHERE a = %(a)s"] == {"a": "small"}


def test_querylogger_plans_and_rate_limit_are_bounded() -> None:
    log = logging.getLogger("dbopt.test.bounds")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    plan = [{"Plan": {"Node Type": "Seq Scan", "Filter": "(a = 1)"}}]
    logger = dbopt.QueryLogger(log, slow_ms=0, explain=lambda e: plan, max_plans=50)
    try:
        for i in range(3000):
            logger(event(f"SELECT c{i} FROM t"))
            if i % 50 == 0:
                logger.flush()
        logger.flush()
    finally:
        logger.close()
    assert 0 < len(logger.plans) <= 50
    assert len(logger._explained_at) <= 50
    assert logger.plans_nbytes <= logger.max_plan_bytes


def test_querylogger_does_not_explain_huge_statements() -> None:
    calls: list[str] = []
    logger = dbopt.QueryLogger(
        logging.getLogger("dbopt.test.bounds2"),
        slow_ms=0,
        explain=lambda e: calls.append(e.sql) or [],
        explain_max_chars=1000,
    )
    try:
        logger(event("SELECT 1 FROM t WHERE a IN (" + "1," * 1000 + "1)"))
        logger(event("SELECT 2 FROM t"))
        logger.flush()
    finally:
        logger.close()
    assert calls == ["SELECT 2 FROM t"]


def test_nplusone_holds_a_bounded_text_per_group() -> None:
    det = dbopt.NPlusOneDetector(action=lambda f: None)
    with dbopt.scope("s") as scope:
        for i in range(3):
            det(event(_in_list(100_000, step=i + 1), scope=scope))
        state = det._states[scope]
        assert all(len(g.event.sql) <= 4096 for g in state.groups.values())
        found = det.pending(scope)
    assert found
    assert found[0].kind == "n_plus_one"
    assert len(found[0].sql) <= 4096


def test_nplusone_tracks_at_most_max_scopes() -> None:
    det = dbopt.NPlusOneDetector(action=lambda f: None, max_scopes=5)
    conn = sqlite3.connect(":memory:")
    db = dbopt.wrap_dbapi(conn, det)
    scopes = [dbopt.scope(f"s{i}") for i in range(8)]
    try:
        for s in scopes:
            with s:
                db.execute("SELECT 1")
                assert len(det._states) <= 5
    finally:
        conn.close()


def test_parent_statement_shape_is_kept_bounded() -> None:
    """The N+1 detector keeps a long parent query as a bounded stand-in of the same shape."""
    from dbopt.core.nplusone_fixes import shape_text, sql_shape

    long_select = "SELECT posts.id, " + ", ".join(f"posts.c{i}" for i in range(50_000))
    in_list = " FROM posts WHERE posts.id IN (" + "1, " * 100_000 + "2)"
    grouped = long_select + in_list + " GROUP BY posts.id"
    kept = shape_text(grouped, 4096)
    assert len(kept) <= 4097
    assert sql_shape(kept).group_by
    assert sql_shape(grouped).group_by
    plain = long_select + in_list
    assert not sql_shape(shape_text(plain, 4096)).group_by
    assert shape_text("SELECT 1", 4096) == "SELECT 1"
