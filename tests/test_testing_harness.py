"""dbopt.testing: throwaway databases on a given server or an embedded one."""

from __future__ import annotations

import os

import psycopg
import pytest
from sqlalchemy import create_engine, text

import dbopt
from dbopt.testing import embedded_postgres, libpq_url, postgres_url, sqlalchemy_url


def test_embedded_server_starts_and_is_removed() -> None:
    with embedded_postgres() as server, postgres_url(server) as url:
        engine = create_engine(url)
        with engine.connect() as c:
            assert c.execute(text("SELECT 1")).scalar() == 1
        engine.dispose()
        socket_dir = psycopg.conninfo.conninfo_to_dict(libpq_url(server)).get("host")
    assert socket_dir
    assert not os.path.exists(str(socket_dir))


def test_database_is_created_and_dropped(pg_url: str) -> None:
    with postgres_url(prefix="dbopt_harness") as url:
        name = url.rsplit("/", 1)[1].split("?")[0]
        assert name.startswith("dbopt_harness_")
        with psycopg.connect(libpq_url(url)) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
    with psycopg.connect(libpq_url(pg_url)) as conn:
        left = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert left is None


def test_unreachable_server_is_a_clear_error() -> None:
    with (
        pytest.raises(
            dbopt.ServerUnavailableError, match=r"cannot connect to postgres@127\.0\.0\.1:1/"
        ),
        postgres_url("postgresql://postgres@127.0.0.1:1/postgres"),
    ):
        pass


def test_url_helpers() -> None:
    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert libpq_url("postgresql+psycopg://u@h/db") == "postgresql://u@h/db"
    with pytest.raises(dbopt.ConfigurationError):
        sqlalchemy_url("sqlite:///x.db")
