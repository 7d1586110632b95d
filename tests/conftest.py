"""Fixtures: real databases only.

PostgreSQL: ``DBOPT_TEST_DSN`` when set, else an embedded server (pgserver);
either way the session gets its own database, dropped at the end.
MariaDB/MySQL: ``DBOPT_TEST_MYSQL_DSN``; tests that need it skip without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

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


@pytest.fixture(scope="session")
def mysql_db_url() -> Iterator[str]:
    if not os.environ.get("DBOPT_TEST_MYSQL_DSN"):
        pytest.skip("DBOPT_TEST_MYSQL_DSN is not set")
    with mysql_url() as url:
        yield url
