"""Pool presets: sizing from the connection budget, and settings that really reach the server."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool
from sqlalchemy import Engine, create_engine, exc, text
from sqlalchemy.ext.asyncio import create_async_engine

from dbopt import ConfigurationError, ServerUnavailableError, pool
from dbopt.pool.config import quote_ident, quote_literal
from dbopt.testing import libpq_url


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.dispose()


def _engine(made: list[Engine], url: str, config: pool.PoolConfig) -> Engine:
    engine = create_engine(url, **config.sqlalchemy(url))
    made.append(engine)
    return engine


def _server_settings(conn: Any, names: list[str]) -> dict[str, str]:
    rows = conn.execute(
        text("SELECT name, setting FROM pg_settings WHERE name = ANY(:n)"), {"n": names}
    ).all()
    return {str(name): str(value) for name, value in rows}


def _expected(config: pool.PoolConfig) -> dict[str, str]:
    """session_settings() as pg_settings reports them (ms values without the unit)."""
    return {k: v.removesuffix("ms") for k, v in config.session_settings().items()}


# ---- the budget and the sizes it implies -------------------------------------------------


def test_budget_reads_the_live_server(pg_url: str, pg_engine: Engine) -> None:
    with psycopg.connect(libpq_url(pg_url)) as conn:
        max_conn = int(conn.execute("SHOW max_connections").fetchone()[0])  # type: ignore[index]
        reserved = int(conn.execute("SHOW superuser_reserved_connections").fetchone()[0])  # type: ignore[index]
    from_url = pool.connection_budget(libpq_url(pg_url))
    from_engine = pool.connection_budget(pg_engine)
    assert from_url == from_engine
    assert from_url.max_connections == max_conn
    assert from_url.superuser_reserved == reserved
    assert from_url.server_available == max_conn - reserved - from_url.reserved
    assert from_url.available == from_url.server_available - (from_url.headroom or 0)


def test_budget_of_an_unreachable_server_raises_dbopt_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServerUnavailableError):
        pool.connection_budget(f"postgresql://postgres@127.0.0.1:{port}/x?connect_timeout=2")


def test_pool_size_is_the_share_of_the_budget() -> None:
    budget = pool.ConnectionBudget(max_connections=100, superuser_reserved=3)
    assert budget.headroom == 10
    assert budget.available == 87
    # 87 slots over 4 instances x 4 processes: 5 each, even with 8 threads
    assert pool.pool_size_for(8, budget=budget, instances=4, processes=4) == 87 // 16
    # a small fleet is limited by its threads, not the budget
    assert pool.pool_size_for(8, budget=budget, instances=1, processes=2) == 8
    with pytest.raises(ConfigurationError, match="PgBouncer"):
        pool.pool_size_for(8, budget=budget, instances=20, processes=8)


def test_without_budget_hikari_formula_is_shared_over_the_fleet() -> None:
    assert pool.hikari_pool_size(db_cores=8, spindles=1) == 17
    assert pool.pool_size_for(64, db_cores=8, processes=2) == 17 // 2
    assert pool.pool_size_for(64, db_cores=8, processes=40) == 1
    assert pool.pool_size_for(4, db_cores=8) == 4


def test_presets_raise_when_the_fleet_exceeds_the_budget() -> None:
    budget = pool.ConnectionBudget(max_connections=20, superuser_reserved=3)
    with pytest.raises(ConfigurationError):
        pool.web(threads=4, processes=8, instances=4, budget=budget)
    with pytest.raises(ConfigurationError):
        pool.serverless(instances=500, budget=budget)
    assert pool.serverless(instances=5, budget=budget).pool_size == 1


def test_overrides_replace_fields_and_say_so() -> None:
    config = pool.web(threads=4, statement_timeout_ms=1234, db_cores=4)
    assert config.statement_timeout_ms == 1234
    assert config.reasons["statement_timeout_ms"] == "set by the caller"
    assert all(line.split(" = ")[0] in config.reasons for line in config.explain())
    with pytest.raises(ConfigurationError):
        pool.web(threads=4, max_overflow=-1)


def test_every_preset_gives_a_reason_for_every_value_it_sets() -> None:
    for name, preset in pool.PRESETS.items():
        config = preset(4) if name in ("web", "worker", "pgbouncer") else preset()
        for field in ("pool_size", "max_overflow", "pool_timeout", "pre_ping", "pool_recycle"):
            assert config.reasons.get(field), (name, field)
        for field in ("statement_timeout_ms", "lock_timeout_ms", "idle_in_transaction_timeout_ms"):
            assert config.reasons.get(field), (name, field)
        assert config.to_dict()["name"] == name


# ---- rendering --------------------------------------------------------------------------


def test_identifiers_and_literals_are_quoted(pg_url: str) -> None:
    role = 'dbopt "odd" role'
    config = pool.pgbouncer(4, statement_timeout_ms=1500)
    statements = config.alter_role_sql(role, database="x'y")
    assert all(s.startswith(f"ALTER ROLE {quote_ident(role)} IN DATABASE ") for s in statements)
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {quote_ident(role)}")
        try:
            for statement in config.alter_role_sql(role):
                conn.execute(statement)
            row = conn.execute(
                "SELECT setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole"
                " WHERE r.rolname = %s",
                (role,),
            ).fetchone()
        finally:
            conn.execute(f"DROP ROLE {quote_ident(role)}")
    assert row is not None
    assert "statement_timeout=1500ms" in row[0]
    assert quote_literal("it's") == "'it''s'"
    with pytest.raises(ConfigurationError):
        quote_ident("")


@pytest.mark.parametrize("name", ["web", "async_web", "worker", "serverless", "analytics"])
def test_preset_settings_reach_the_server(name: str, pg_url: str, engines: list[Engine]) -> None:
    preset = pool.PRESETS[name]
    config = preset(3) if name in ("web", "worker") else preset()
    engine = _engine(engines, pg_url, config)
    expected = _expected(config)
    with engine.connect() as conn:
        assert _server_settings(conn, list(expected)) == expected
    pool_kwargs = engine.pool
    assert pool_kwargs.size() == config.pool_size  # type: ignore[attr-defined]
    assert pool_kwargs.timeout() == config.pool_timeout  # type: ignore[attr-defined]


def test_psycopg_pool_rendering_reaches_the_server(pg_url: str) -> None:
    config = pool.worker(2, application_name="dbopt-worker-test")
    with ConnectionPool(libpq_url(pg_url), **config.psycopg_pool(), open=True) as p:
        assert (p.min_size, p.max_size) == (2, 2)
        with p.connection() as conn:
            rows = conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                (list(_expected(config)),),
            ).fetchall()
    assert dict(rows) == _expected(config)


def test_statement_timeout_cancels_pg_sleep(pg_url: str, engines: list[Engine]) -> None:
    engine = _engine(engines, pg_url, pool.web(threads=2, statement_timeout_ms=300))
    started = time.perf_counter()
    with engine.connect() as conn, pytest.raises(exc.OperationalError) as info:
        conn.execute(text("SELECT pg_sleep(5)"))
    assert isinstance(info.value.orig, pg_errors.QueryCanceled)
    assert time.perf_counter() - started < 2.0


def test_statement_timeout_cancels_pg_sleep_in_psycopg_pool(pg_url: str) -> None:
    config = pool.worker(1, statement_timeout_ms=300)
    with ConnectionPool(libpq_url(pg_url), **config.psycopg_pool(), open=True) as p:
        started = time.perf_counter()
        with p.connection() as conn, pytest.raises(pg_errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(5)")
    assert time.perf_counter() - started < 2.0


def test_statement_timeout_cancels_pg_sleep_with_an_async_engine(pg_url: str) -> None:
    config = pool.async_web(4, statement_timeout_ms=300)

    async def run() -> float:
        engine = create_async_engine(pg_url, **config.sqlalchemy(pg_url))
        try:
            started = time.perf_counter()
            async with engine.connect() as conn:
                with pytest.raises(exc.OperationalError):
                    await conn.execute(text("SELECT pg_sleep(5)"))
            return time.perf_counter() - started
        finally:
            await engine.dispose()

    assert asyncio.run(run()) < 2.0


def test_lock_timeout_and_idle_in_transaction_timeout_act(
    pg_url: str, pg_engine: Engine, engines: list[Engine]
) -> None:
    config = pool.web(threads=2, lock_timeout_ms=200, idle_in_transaction_timeout_ms=300)
    engine = _engine(engines, pg_url, config)
    with pg_engine.begin() as setup:
        setup.execute(text("CREATE TABLE IF NOT EXISTS preset_locks (id int)"))
    with pg_engine.connect() as holder:
        holder.execute(text("LOCK TABLE preset_locks IN ACCESS EXCLUSIVE MODE"))
        with engine.connect() as conn, pytest.raises(exc.OperationalError) as info:
            conn.execute(text("SELECT * FROM preset_locks"))
        assert isinstance(info.value.orig, pg_errors.LockNotAvailable)
        holder.rollback()
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        time.sleep(0.8)
        with pytest.raises(exc.DBAPIError) as ended:
            conn.execute(text("SELECT 1"))
        assert isinstance(ended.value.orig, pg_errors.IdleInTransactionSessionTimeout)


def test_analytics_preset_is_read_only(pg_url: str, engines: list[Engine]) -> None:
    engine = _engine(engines, pg_url, pool.analytics())
    with engine.connect() as conn, pytest.raises(exc.InternalError) as info:
        conn.execute(text("CREATE TABLE analytics_write (id int)"))
    assert isinstance(info.value.orig, pg_errors.ReadOnlySqlTransaction)


def test_pgbouncer_preset_renders_no_startup_options_and_no_prepares() -> None:
    config = pool.pgbouncer(8, max_client_conn=100, processes=4, instances=2)
    assert config.pool_size == 8
    assert pool.pgbouncer(32, max_client_conn=100, processes=4, instances=2).pool_size == 12
    args = config.sqlalchemy("postgresql+psycopg://u@h/db")["connect_args"]
    assert "options" not in args
    assert args["prepare_threshold"] is None
    asyncpg_args = config.sqlalchemy("postgresql+asyncpg://u@h/db")["connect_args"]
    assert asyncpg_args["statement_cache_size"] == 0
    assert asyncpg_args["server_settings"] == {"application_name": config.application_name}
    told = pool.pgbouncer(8, prepared_statements=True)
    assert "prepare_threshold" not in told.sqlalchemy()["connect_args"]
    assert config.startup_options_string() is None
    assert len(config.alter_role_sql("app")) == 3


def test_unknown_driver_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="oracledb"):
        pool.web(threads=2).sqlalchemy("oracle+oracledb://u@h/db")


def test_sqlite_busy_timeout_comes_from_lock_timeout(tmp_path: Any, engines: list[Engine]) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    config = pool.web(threads=2, lock_timeout_ms=300)
    engine = _engine(engines, url, config)
    holder = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    try:
        holder.execute("CREATE TABLE t (id int)")
        holder.execute("BEGIN IMMEDIATE")
        started = time.perf_counter()
        with engine.connect() as conn, pytest.raises(exc.OperationalError, match="locked"):
            conn.execute(text("INSERT INTO t VALUES (1)"))
        waited = time.perf_counter() - started
    finally:
        holder.close()
    assert 0.25 < waited < 2.0


@pytest.mark.mysql
def test_mysql_lock_wait_timeout_comes_from_the_preset(
    mysql_db_url: str, engines: list[Engine]
) -> None:
    config = pool.web(threads=2, lock_timeout_ms=2500)
    engine = _engine(engines, mysql_db_url, config)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT @@innodb_lock_wait_timeout")).scalar() == 3
