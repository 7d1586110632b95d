"""Fixtures: real databases only.

PostgreSQL: ``DBOPT_TEST_DSN`` when set, else an embedded server (pgserver);
either way the session gets its own database, dropped at the end.
MariaDB/MySQL: ``DBOPT_TEST_MYSQL_DSN``; tests that need it skip without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from dbopt.testing import mysql_url, postgres_url


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """SQLAlchemy URL (postgresql+psycopg) of this run's own database."""
    with postgres_url() as url:
        yield url


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url, pool_size=5, max_overflow=40)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    yield engine
    engine.dispose()


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    """A fresh schema in the run's database, dropped with its contents afterwards."""
    from test_partitions_support import fresh_schema

    with fresh_schema(pg_url) as name:
        yield name


@pytest.fixture
def manager(pg_url: str, schema: str) -> Any:
    """A PartitionManager whose state table lives in ``schema``."""
    from test_partitions_support import make_manager

    return make_manager(pg_url, schema)


@pytest.fixture(scope="session")
def mysql_db_url() -> Iterator[str]:
    if not os.environ.get("DBOPT_TEST_MYSQL_DSN"):
        pytest.skip("DBOPT_TEST_MYSQL_DSN is not set")
    with mysql_url() as url:
        yield url


_available: dict[str, set[str]] = {}


def available_extensions(url: str | None) -> set[str]:
    """Extensions the test server can create (cached).

    ``url`` is ``DBOPT_TEST_DSN``; with None (the embedded pgserver), the
    control files shipped in pgserver's own installation are the answer.
    pg_stat_statements counts only when preloaded, else it would collect nothing.
    """
    key = url or "<embedded>"
    if key not in _available:
        if url is None:
            from pathlib import Path

            import pgserver

            share = Path(pgserver.__file__).parent / "pginstall/share/postgresql/extension"
            names = {p.stem for p in share.glob("*.control")}
            names.discard("pg_stat_statements")
        else:
            import psycopg

            from dbopt.testing import libpq_url, sqlalchemy_url

            with psycopg.connect(libpq_url(sqlalchemy_url(url))) as conn:
                rows = conn.execute("SELECT name FROM pg_available_extensions").fetchall()
                preload = conn.execute("SHOW shared_preload_libraries").fetchone()
            names = {r[0] for r in rows}
            if "pg_stat_statements" not in str(preload[0] if preload else ""):
                names.discard("pg_stat_statements")
        _available[key] = names
    return _available[key]


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip tests marked ``@pytest.mark.extensions(...)`` the server cannot provide.

    Runs before any fixture of the test (module fixtures that create the
    extension included). The embedded server (pgserver) ships no hypopg or
    pg_trgm and does not preload pg_stat_statements; .ci/run installs them on
    the machine's server.
    """
    marker = item.get_closest_marker("extensions")
    if marker is None:
        return
    missing = sorted(set(marker.args) - available_extensions(os.environ.get("DBOPT_TEST_DSN")))
    if missing:
        pytest.skip(
            f"needs PostgreSQL extension(s) {', '.join(missing)}, which the test server lacks "
            "(install e.g. postgresql-15-hypopg, or preload pg_stat_statements)"
        )


# Entries of databases that no longer exist (earlier runs' databases, dropped at their
# end): pg_stat_statements keeps them until it needs room, then evicts its least-used
# entries, which can be the ones a test has just made.
_DEAD_DATABASES_SQL = """
SELECT pg_stat_statements_reset(0, s.dbid, 0)
FROM (SELECT DISTINCT dbid FROM pg_stat_statements) s
WHERE s.dbid NOT IN (SELECT oid FROM pg_database)
   OR s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


@pytest.fixture
def pgss_room(pg_url: str) -> None:
    """pg_stat_statements with room: the entries of dropped databases and of this run's
    own database (what earlier tests ran here) removed; other live databases' kept."""
    import psycopg

    from dbopt.testing import libpq_url

    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute(_DEAD_DATABASES_SQL)
