"""pool.check against a real server, and the shared Finding type."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, exc, text
from sqlalchemy.ext.asyncio import create_async_engine

from dbopt import ConfigurationError, pool
from dbopt.findings import Finding, Severity
from dbopt.testing import libpq_url


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.dispose()


def _make(made: list[Engine], url: str, **kwargs: Any) -> Engine:
    engine = create_engine(url, **kwargs)
    made.append(engine)
    return engine


def _codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


# ---- Finding ----------------------------------------------------------------------------


def test_severity_orders_and_parses() -> None:
    assert Severity.INFO < Severity.WARNING < Severity.ERROR
    assert Severity.ERROR >= "warning"
    assert not Severity.INFO > "info"
    assert sorted([Severity.ERROR, Severity.INFO, Severity.WARNING]) == [
        Severity.INFO,
        Severity.WARNING,
        Severity.ERROR,
    ]
    assert Severity.parse("WARNING") is Severity.WARNING
    with pytest.raises(ConfigurationError):
        Severity.parse("fatal")


def test_finding_is_frozen_data() -> None:
    finding = Finding("X001", "warning", "public.t", "msg", "why", metadata={"n": 3, "t": (1, 2)})  # type: ignore[arg-type]
    assert finding.severity is Severity.WARNING
    assert str(finding) == "X001 warning public.t: msg"
    assert finding.to_dict() == {
        "code": "X001",
        "severity": "warning",
        "object": "public.t",
        "message": "msg",
        "why": "why",
        "fix": None,
        "metadata": {"n": 3, "t": [1, 2]},
    }
    assert hash(finding) == hash(Finding("X001", Severity.WARNING, "public.t", "msg", "why"))
    with pytest.raises(AttributeError):
        finding.code = "Y"  # type: ignore[misc]


# ---- the connection budget --------------------------------------------------------------


def test_fleet_over_the_server_limit_is_an_error(pg_url: str, engines: list[Engine]) -> None:
    engine = _make(engines, pg_url, pool_size=5, max_overflow=5, pool_pre_ping=True)
    budget = pool.connection_budget(engine)
    over = budget.server_available // 10 + 1
    findings = pool.check(engine, instances=over)
    [error] = [f for f in findings if f.code == "POOL001"]
    assert error.severity is Severity.ERROR
    assert error.metadata["fleet_total"] == over * 10
    assert error.metadata["max_connections"] == budget.max_connections
    assert findings[0] is error  # most severe first
    assert "POOL001" not in _codes(pool.check(engine, instances=1))


def test_fleet_eating_the_headroom_is_a_warning(pg_url: str, engines: list[Engine]) -> None:
    engine = _make(engines, pg_url, pool_size=1, max_overflow=0, pool_pre_ping=True)
    budget = pool.connection_budget(engine)
    instances = budget.available + 1
    assert instances <= budget.server_available
    codes = _codes(pool.check(engine, instances=instances))
    assert "POOL002" in codes
    assert "POOL001" not in codes


def test_unbounded_overflow_is_a_warning(pg_url: str, engines: list[Engine]) -> None:
    engine = _make(engines, pg_url, pool_size=5, max_overflow=-1)
    assert "POOL003" in _codes(pool.check(engine))


def test_fleet_arguments_are_checked(pg_engine: Engine, pg_url: str) -> None:
    with pytest.raises(ConfigurationError):
        pool.check(pg_engine, processes=0)
    with pytest.raises(ConfigurationError, match="sync Engine"):
        pool.check(create_async_engine(pg_url))


# ---- poolers ----------------------------------------------------------------------------


def test_prepared_statements_behind_transaction_pooling(pg_url: str, engines: list[Engine]) -> None:
    default = _make(engines, pg_url, pool_pre_ping=True)
    found = pool.check(default, pooler="pgbouncer-transaction")
    assert "POOL010" in _codes(found)
    assert "POOL001" not in _codes(found)  # PgBouncer's own limits apply instead
    assert "POOL010" not in _codes(pool.check(default, pooler="pgbouncer-session"))
    assert "POOL010" not in _codes(
        pool.check(default, pooler="pgbouncer-transaction", pooler_prepared_statements=True)
    )
    preset = pool.pgbouncer(4)
    fixed = _make(engines, pg_url, **preset.sqlalchemy(pg_url))
    assert "POOL010" not in _codes(pool.check(fixed, pooler="pgbouncer-transaction"))


def test_port_6432_suggests_the_pooler_checks(pg_url: str, engines: list[Engine]) -> None:
    real = libpq_url(pg_url)
    engine = _make(
        engines,
        "postgresql+psycopg://app@127.0.0.1:6432/app",
        creator=lambda: psycopg.connect(real),
        pool_pre_ping=True,
    )
    assert "POOL011" in _codes(pool.check(engine))


# ---- stale connections ------------------------------------------------------------------


def test_idle_session_timeout_without_pre_ping(pg_url: str, engines: list[Engine]) -> None:
    kill_idle = {"options": "-c idle_session_timeout=1000"}
    bare = _make(engines, pg_url, pool_size=1, connect_args=kill_idle)
    [finding] = [f for f in pool.check(bare) if f.code == "POOL020"]
    assert finding.metadata["idle_session_timeout"] == 1.0
    # what the finding predicts: the pooled connection is dead after sitting idle
    with bare.connect() as conn:
        conn.execute(text("SELECT 1"))
    time.sleep(1.5)
    with pytest.raises(exc.DBAPIError), bare.connect() as conn:
        conn.execute(text("SELECT 1"))
    # and the fix it proposes works
    pinged = _make(engines, pg_url, pool_size=1, pool_pre_ping=True, connect_args=kill_idle)
    assert "POOL020" not in _codes(pool.check(pinged))
    with pinged.connect() as conn:
        conn.execute(text("SELECT 1"))
    time.sleep(1.5)
    with pinged.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_no_pre_ping_and_no_recycle(pg_url: str, engines: list[Engine]) -> None:
    bare = _make(engines, pg_url)
    assert "POOL021" in _codes(pool.check(bare))
    recycled = _make(engines, pg_url, pool_recycle=600)
    assert "POOL021" not in _codes(pool.check(recycled))


# ---- session timeouts -------------------------------------------------------------------


def test_missing_timeouts_and_the_preset_that_sets_them(pg_url: str, engines: list[Engine]) -> None:
    bare = _make(engines, pg_url, pool_pre_ping=True)
    assert {"POOL030", "POOL031"} <= _codes(pool.check(bare))
    config = pool.web(threads=2)
    preset = _make(engines, pg_url, **config.sqlalchemy(pg_url))
    found = pool.check(preset)
    assert not {"POOL020", "POOL021", "POOL030", "POOL031"} & _codes(found)
    assert all(f.severity <= Severity.INFO for f in found), found


def test_unreachable_server(free_port: int) -> None:
    from dbopt import ServerUnavailableError

    engine = create_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port}/x",
        connect_args={"connect_timeout": 2},
    )
    with pytest.raises(ServerUnavailableError):
        pool.check(engine)
    engine.dispose()


@pytest.fixture
def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.mysql
def test_mysql_wait_timeout_without_pre_ping(mysql_db_url: str, engines: list[Engine]) -> None:
    short = {"init_command": "SET SESSION wait_timeout = 1"}
    bare = _make(engines, mysql_db_url, connect_args=short)
    assert "POOL020" in _codes(pool.check(bare))
    pinged = _make(engines, mysql_db_url, connect_args=short, pool_pre_ping=True)
    assert "POOL020" not in _codes(pool.check(pinged))
