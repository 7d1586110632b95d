"""The application's QueryStats joined to the server's pg_stat_statements, on a real server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, text

import dbopt
from dbopt.health.statements import ServerStatement, join_statements, statements
from dbopt.postgres.connect import conninfo


@pytest.fixture
def table(pg_url: str) -> Iterator[str]:
    name = f"stmt_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(conninfo(pg_url), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, owner int, note text)")
        conn.execute(f"INSERT INTO {name} SELECT g, g % 7, 'n' || g FROM generate_series(1, 500) g")
    yield name
    with psycopg.connect(conninfo(pg_url), autocommit=True) as conn:
        conn.execute(f"DROP TABLE {name}")


@pytest.mark.extensions("pg_stat_statements")
@pytest.mark.usefixtures("pgss_room")
def test_app_rows_meet_their_server_rows(pg_url: str, table: str) -> None:
    with psycopg.connect(conninfo(pg_url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    stats = dbopt.QueryStats()
    engine = create_engine(pg_url)
    try:
        with dbopt.instrument(engine, stats), engine.connect() as conn:
            for owner in range(6):
                conn.execute(
                    text(f"SELECT id, note FROM {table} WHERE owner = :o"), {"o": owner}
                ).all()
            conn.execute(text(f"SELECT count(*) FROM {table} WHERE note = 'n42'")).scalar()
    finally:
        engine.dispose()

    joined = statements(pg_url, stats)

    assert joined.available, joined.note
    by_text = {r.fingerprint: r for r in joined.rows if table in r.text}
    select = next(r for r in by_text.values() if "owner = ?" in r.text)
    assert select.matched == "fingerprint"
    assert select.app is not None
    assert select.server is not None
    assert select.app.calls == 6
    assert select.server.calls >= 6  # the server may count a run of another test too
    assert select.server.shared_blks_hit + select.server.shared_blks_read > 0
    assert select.server.hit_ratio is not None
    assert [calls for _, calls in select.callsites] == [6]
    assert "test_health_statements.py:" in select.callsites[0][0]
    # the literal the application inlined is masked on both sides
    literal = next(r for r in by_text.values() if "count" in r.text)
    assert literal.matched == "fingerprint"
    assert "n42" not in literal.text
    assert "n42" not in literal.server.query
    assert joined.to_dict()["matched"] >= 2


def test_server_only_and_app_only_rows_are_kept() -> None:
    stats = dbopt.QueryStats()
    server = [
        ServerStatement("f00", ("1",), "SELECT ?", 3, 9.0, 3, 0.0, 5, 5),
    ]
    rows = join_statements(stats, server)
    assert [r.matched for r in rows] == ["server_only"]
    assert rows[0].server is not None
    assert rows[0].server.mean_ms == 3.0
    assert rows[0].server.hit_ratio == 0.5


def test_a_database_without_the_extension_says_why(pg_url: str) -> None:
    name = f"nostat_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo(pg_url), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        url = pg_url.rsplit("/", 1)[0] + "/" + name
        joined = statements(url, dbopt.QueryStats())
        assert not joined.available
        assert joined.note is not None
        assert "not installed" in joined.note
    finally:
        with psycopg.connect(conninfo(pg_url), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
