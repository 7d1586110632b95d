"""Health checks over sessions, against real sessions: connections, idle, long, blocked."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from dbopt.health import HealthStatus, HealthThresholds, health
from test_lint_support import connect, fresh_schema, wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def table(pg_url: str) -> Iterator[str]:
    with fresh_schema(
        pg_url, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);", prefix="health"
    ) as name:
        yield f'"{name}".t'


def _pids(check: Any) -> set[int]:
    return {d["pid"] for d in check.details}


def test_connections_against_max_connections(pg_url: str) -> None:
    report = health(pg_url, checks=["connections"])
    check = report["connections"]
    assert check.value is not None
    assert 0 < check.value < 1
    low = health(
        pg_url,
        checks=["HEALTH003"],
        thresholds=HealthThresholds(connections_warn=0.0001, connections_critical=0.9),
    )
    assert low["connections"].status is HealthStatus.WARN
    assert low.findings[0].code == "HEALTH003"
    crit = health(
        pg_url,
        checks=["HEALTH003"],
        thresholds=HealthThresholds(connections_warn=0.0001, connections_critical=0.0002),
    )
    assert crit.status is HealthStatus.CRITICAL
    assert crit.findings[0].severity == "error"


def test_idle_in_transaction(pg_url: str, table: str) -> None:
    idle = connect(pg_url)
    idle.autocommit = False
    try:
        idle.execute(f"SELECT * FROM {table}").fetchall()
        pid = idle.info.backend_pid
        time.sleep(0.6)
        report = health(
            pg_url,
            checks=["idle_in_transaction"],
            thresholds=HealthThresholds(
                idle_in_transaction_warn_s=0.5, idle_in_transaction_critical_s=3600
            ),
        )
        check = report["idle_in_transaction"]
        assert pid in _pids(check)
        assert check.status in (HealthStatus.WARN, HealthStatus.CRITICAL)
        mine = next(f for f in check.findings if f.metadata["pid"] == pid)
        assert (
            mine.fix == f"SELECT pg_terminate_backend({pid});  -- and set "
            "idle_in_transaction_session_timeout"
        )
        assert table in mine.metadata["query"]
    finally:
        idle.rollback()
        idle.close()
    after = health(
        pg_url,
        checks=["idle_in_transaction"],
        thresholds=HealthThresholds(idle_in_transaction_warn_s=0.5),
    )
    assert pid not in _pids(after["idle_in_transaction"])


def test_long_running_query(pg_url: str) -> None:
    conn = connect(pg_url)
    pid = conn.info.backend_pid
    cancelled: list[bool] = []

    def sleep() -> None:
        try:
            conn.execute("SELECT pg_sleep(5)")
        except psycopg.errors.QueryCanceled:
            cancelled.append(True)

    worker = threading.Thread(target=sleep)
    worker.start()
    try:
        time.sleep(0.8)
        report = health(
            pg_url,
            checks=["long_running_queries"],
            thresholds=HealthThresholds(long_query_warn_s=0.5, long_query_critical_s=0.6),
        )
        check = report["long_running_queries"]
        assert pid in _pids(check)
        mine = next(f for f in check.findings if f.metadata["pid"] == pid)
        assert mine.severity == "error"
        assert "pg_sleep" in mine.metadata["query"]
    finally:
        with connect(pg_url) as other:
            other.execute("SELECT pg_cancel_backend(%s)", (pid,))
        worker.join()
        conn.close()
    assert cancelled == [True]


def test_blocked_query_names_its_blocker(pg_url: str, table: str) -> None:
    holder = connect(pg_url)
    holder.autocommit = False
    waiter = connect(pg_url)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            waiter.execute(f"SELECT * FROM {table}").fetchall()
        except psycopg.Error as exc:  # cancelled below if the test fails early
            errors.append(exc)

    try:
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        worker = threading.Thread(target=wait)
        worker.start()
        thresholds = HealthThresholds(blocked_warn_s=0, blocked_critical_s=3600)
        assert wait_for(
            lambda: (
                waiter.info.backend_pid
                in _pids(
                    health(pg_url, checks=["blocked_queries"], thresholds=thresholds)[
                        "blocked_queries"
                    ]
                )
            )
        )
        report = health(pg_url, checks=["blocked_queries"], thresholds=thresholds)
        check = report["blocked_queries"]
        mine = next(d for d in check.details if d["pid"] == waiter.info.backend_pid)
        assert mine["blocked_by"] == [holder.info.backend_pid]
        assert mine["blocker_state"] == ["idle in transaction"]
        assert "LOCK TABLE" in mine["blocker_query"][0]
        assert check.status is HealthStatus.WARN
    finally:
        holder.rollback()
        worker.join(timeout=10)
        holder.close()
        waiter.close()
    assert errors == []
