"""Throwaway databases and capture helpers for your tests (and dbopt's own).

``postgres_url()`` yields the SQLAlchemy URL of a fresh, empty PostgreSQL
database and drops it afterwards. The server is ``DBOPT_TEST_DSN`` (or the
``dsn`` argument) when set; otherwise an embedded server is started in a
temporary directory with pgserver (``pip install 'dbopt[embedded]'``) and
removed at the end, so it works on a machine with no PostgreSQL at all.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import URL, make_url

from dbopt.errors import (
    ConfigurationError,
    MissingDependencyError,
)
from dbopt.instrument import capture_queries

__all__ = [
    "capture_queries",
    "embedded_postgres",
    "libpq_url",
    "mysql_url",
    "postgres_server_url",
    "postgres_url",
    "sqlalchemy_url",
]


def sqlalchemy_url(url: str | URL, driver: str = "psycopg") -> str:
    """``url`` with the ``postgresql+<driver>`` scheme SQLAlchemy wants."""
    parsed = make_url(url) if isinstance(url, str) else url
    if not parsed.drivername.startswith("postgres"):
        raise ConfigurationError(f"not a PostgreSQL URL: {parsed!r}")
    return parsed.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


def libpq_url(url: str | URL) -> str:
    """``url`` as a libpq URI (``postgresql://...``) for ``psycopg.connect``."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def embedded_postgres(directory: str | None = None) -> Iterator[str]:
    """Start an embedded PostgreSQL (pgserver) and yield its server URL.

    The data directory is temporary unless ``directory`` is given; the server
    is stopped (and a temporary directory deleted) on exit, also on Ctrl-C.
    """
    try:
        import pgserver
    except ImportError as exc:
        raise MissingDependencyError("pgserver", "embedded") from exc
    with tempfile.TemporaryDirectory(prefix="dbopt-pg-") as tmp:
        server = pgserver.get_server(directory or tmp, cleanup_mode="stop")  # type: ignore[attr-defined]
        try:
            yield sqlalchemy_url(server.get_uri())
        finally:
            server.cleanup()


@contextmanager
def postgres_server_url(dsn: str | None = None) -> Iterator[str]:
    """Yield a server URL: ``dsn``, else ``DBOPT_TEST_DSN``, else an embedded server."""
    base = dsn or os.environ.get("DBOPT_TEST_DSN")
    if base:
        yield sqlalchemy_url(base)
        return
    with embedded_postgres() as url:
        yield url


def _admin(url: str, statements: list[Any]) -> None:
    from dbopt.postgres.connect import connect, map_driver_errors

    with (
        connect(
            url,
            "testing",
            read_only=False,
            statement_timeout_ms=None,
            lock_timeout_ms=None,
            connect_timeout_s=10,
        ) as conn,
        map_driver_errors("the test database harness"),
    ):
        for statement in statements:
            conn.execute(statement)


@contextmanager
def postgres_url(dsn: str | None = None, *, prefix: str = "dbopt_test") -> Iterator[str]:
    """Yield the SQLAlchemy URL of a new, empty database; drop it afterwards."""
    from psycopg import sql

    with postgres_server_url(dsn) as server:
        name = f"{prefix}_{secrets.token_hex(4)}"
        ident = sql.Identifier(name)
        _admin(server, [sql.SQL("CREATE DATABASE {}").format(ident)])
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            _admin(server, [sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident)])


@contextmanager
def mysql_url(dsn: str | None = None, *, prefix: str = "dbopt_test") -> Iterator[str]:
    """Yield a SQLAlchemy URL of a new MySQL/MariaDB database; drop it afterwards.

    The server is ``dsn`` or ``DBOPT_TEST_MYSQL_DSN`` (e.g.
    ``mysql+pymysql://root@127.0.0.1:3306/test``); needs PyMySQL.
    """
    from sqlalchemy import create_engine, text

    base = dsn or os.environ.get("DBOPT_TEST_MYSQL_DSN")
    if not base:
        raise ConfigurationError("no MySQL server: set DBOPT_TEST_MYSQL_DSN")
    parsed = make_url(base)
    if parsed.drivername in ("mysql", "mariadb"):
        parsed = parsed.set(drivername=f"{parsed.drivername}+pymysql")
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(parsed)
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}`"))
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        finally:
            admin.dispose()
