from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import pytest

import dbopt
from dbopt.adapters.dbapi import ConnectionProxy


@pytest.fixture
def conn_and_stats() -> Iterator[tuple[ConnectionProxy, dbopt.QueryStats]]:
    stats = dbopt.QueryStats()
    conn = dbopt.wrap_dbapi(sqlite3.connect(":memory:"), stats)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [(str(i),) for i in range(100)])
    yield conn, stats
    conn.detach()
    conn.close()


def _lookup(conn: ConnectionProxy, n: int) -> None:
    for i in range(n):
        conn.execute("SELECT v FROM t WHERE id = ?", (i,)).fetchall()


def test_aggregates_per_fingerprint(
    conn_and_stats: tuple[ConnectionProxy, dbopt.QueryStats],
) -> None:
    conn, stats = conn_and_stats
    _lookup(conn, 30)
    conn.execute("SELECT v FROM t WHERE id = 5")  # literal: same fingerprint
    fp = dbopt.fingerprint("SELECT v FROM t WHERE id = ?")
    entry = stats[fp]
    assert entry.calls == 31
    assert entry.kind == "select"
    assert entry.min_time <= entry.mean_time <= entry.max_time
    assert entry.min_time <= entry.p95_time <= entry.max_time
    assert entry.total_time == pytest.approx(sum(entry.samples))
    assert entry.example_sql == "SELECT v FROM t WHERE id = ?"
    assert entry.example_params == (0,)
    assert entry.callsites
    assert all(key.startswith(__file__) for key in entry.callsites)
    insert = stats[dbopt.fingerprint("INSERT INTO t (v) VALUES (?)")]
    assert insert.rows == 100
    assert insert.calls == 1


def test_errors_are_counted(conn_and_stats: tuple[ConnectionProxy, dbopt.QueryStats]) -> None:
    conn, stats = conn_and_stats
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("SELECT nope FROM t")
    assert stats[dbopt.fingerprint("SELECT nope FROM t")].errors == 1


def test_top_and_reset(conn_and_stats: tuple[ConnectionProxy, dbopt.QueryStats]) -> None:
    conn, stats = conn_and_stats
    _lookup(conn, 10)
    top = stats.top(1, by="calls")
    assert top[0].calls == 10
    assert len(stats.top(10)) == len(stats)
    with pytest.raises(dbopt.ConfigurationError):
        stats.top(1, by="nonsense")  # type: ignore[arg-type]
    stats.reset()
    assert len(stats) == 0


def test_round_trip_and_merge(conn_and_stats: tuple[ConnectionProxy, dbopt.QueryStats]) -> None:
    conn, stats = conn_and_stats
    _lookup(conn, 20)
    saved = json.loads(json.dumps(stats.to_dict()))
    copy = dbopt.QueryStats.from_dict(saved)
    fp = dbopt.fingerprint("SELECT v FROM t WHERE id = ?")
    assert copy[fp].calls == 20
    assert copy[fp].total_time == pytest.approx(stats[fp].total_time)
    merged = dbopt.QueryStats().merge(copy, saved)
    assert merged[fp].calls == 40
    assert merged[fp].max_time == pytest.approx(stats[fp].max_time)
    assert merged[fp].callsites == {k: 2 * v for k, v in stats[fp].callsites.items()}
    with pytest.raises(dbopt.ConfigurationError):
        dbopt.QueryStats.from_dict({"nope": 1})


def test_memory_is_bounded() -> None:
    stats = dbopt.QueryStats(max_statements=50, samples=8)
    conn = dbopt.wrap_dbapi(sqlite3.connect(":memory:"), stats)
    try:
        conn.execute("CREATE TABLE big (id INTEGER)")
        for i in range(200):
            conn.execute(f"SELECT id AS c{i} FROM big")  # 200 distinct fingerprints
        for _ in range(40):
            conn.execute("SELECT id FROM big WHERE id = 1")
    finally:
        conn.detach()
        conn.close()
    assert len(stats) <= 50
    assert stats.evicted >= 150
    hot = stats[dbopt.fingerprint("SELECT id FROM big WHERE id = 1")]
    assert hot.calls == 40
    assert len(hot.samples) == 8


def test_params_policy() -> None:
    stats = dbopt.QueryStats(params="redact")
    conn = dbopt.wrap_dbapi(sqlite3.connect(":memory:"), stats)
    try:
        conn.execute("SELECT ?, ?", ("secret", 3))
    finally:
        conn.detach()
        conn.close()
    (entry,) = stats.statements()
    assert entry.example_params == ["<str>", "<int>"]
    with pytest.raises(dbopt.ConfigurationError):
        dbopt.QueryStats(params="everything")


def _worker_stats(n: int) -> dict[str, object]:
    stats = dbopt.QueryStats()
    conn = dbopt.wrap_dbapi(sqlite3.connect(":memory:"), stats)
    for i in range(n):
        conn.execute("SELECT ?", (i,))
    conn.detach()
    conn.close()
    return stats.to_dict()


def test_merge_from_worker_processes() -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        parts = pool.map(_worker_stats, [30, 70])
    merged = dbopt.QueryStats().merge(*parts)
    entry = merged[dbopt.fingerprint("SELECT ?")]
    assert entry.calls == 100
    assert len(entry.samples) == 100
