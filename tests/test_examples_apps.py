"""The example apps and scripts run against PostgreSQL, as a user would run them."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
from sqlalchemy import create_engine, text

import dbopt
from dbopt.testing import libpq_url, postgres_url

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(directory: str, filename: str) -> ModuleType:
    """Import ``examples/<directory>/<filename>`` the way ``python app.py`` would see it."""
    folder = EXAMPLES / directory
    sys.modules.pop("models", None)  # each app has its own models.py
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(
            f"example_{directory}_{Path(filename).stem}", folder / filename
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("models", None)
    return module


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_url(prefix="dbopt_example") as url:
        yield url


def test_flask_app(database: str, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("flask")
    app = load("flask_app", "app.py").create_app(database, seed_data=True)
    client = app.test_client()
    try:
        with caplog.at_level(logging.WARNING):
            naive = client.get("/courses/naive")
        assert naive.status_code == 200
        published = len(naive.get_json())
        assert published == 9
        # one query for the courses, then one per course for instructor and for modules
        assert int(naive.headers["X-DB-Query-Count"]) == 1 + 2 * published
        messages = [r.getMessage() for r in caplog.records]
        assert any("Course.instructor" in m and "joinedload" in m for m in messages)
        assert any("Course.modules" in m and "selectinload" in m for m in messages)
        assert any("GET /courses/naive" in m for m in messages)

        caplog.clear()
        with caplog.at_level(logging.WARNING):
            fixed = client.get("/courses")
        assert fixed.get_json() == naive.get_json()
        assert int(fixed.headers["X-DB-Query-Count"]) == 2
        assert not [r for r in caplog.records if "N+1" in r.getMessage()]

        health = client.get("/health")
        assert health.status_code == 200
        assert health.get_json()["status"] == "up"
        stats = client.get("/debug/db-stats").get_json()
        assert sum(s["calls"] for s in stats) >= 1 + 2 * published + 2
    finally:
        app.extensions["db"]["close"]()


def test_fastapi_app(database: str, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("fastapi")
    import asyncio

    import httpx

    app = load("fastapi_app", "app.py").create_app(database, seed_data=True)

    async def requests() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            with caplog.at_level(logging.WARNING, logger="dbopt.asgi"):
                naive = await client.get("/courses/naive")
            return [naive, await client.get("/courses"), await client.get("/health")]

    try:
        naive, fixed, health = asyncio.run(requests())
    finally:
        app.state.close()
    assert naive.status_code == 200
    published = len(naive.json())
    assert published == 9
    assert int(naive.headers["x-db-query-count"]) == 1 + 2 * published
    messages = [r.getMessage() for r in caplog.records]
    assert any("Course.modules" in m for m in messages)
    assert any("GET /courses/naive" in m for m in messages)
    assert fixed.json() == naive.json()
    assert int(fixed.headers["x-db-query-count"]) == 2
    assert health.status_code == 200
    assert health.json()["status"] == "up"


SCHEMA = """
CREATE TABLE posts (id bigserial PRIMARY KEY, author_id int NOT NULL, status text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO posts (author_id, status, created_at)
SELECT n % 500, (ARRAY['draft', 'published'])[1 + n % 2], now() - make_interval(mins => n)
FROM generate_series(1, 50000) AS n;
ANALYZE posts;
CREATE TABLE user_interactions (id bigint NOT NULL, created_at timestamptz NOT NULL,
                                kind text) PARTITION BY RANGE (created_at);
"""


def test_advise_to_alembic_script(database: str, tmp_path: Path) -> None:
    from dbopt.demo.data import reset_statistics

    with psycopg.connect(libpq_url(database), autocommit=True) as conn:
        conn.execute(SCHEMA)
        reset_statistics(conn)
    stats = dbopt.QueryStats()
    engine = create_engine(database)
    try:
        with dbopt.instrument(engine, stats), engine.connect() as conn:
            for author in (7, 8, 9):
                conn.execute(
                    text("SELECT id FROM posts WHERE author_id = :a ORDER BY created_at DESC"),
                    {"a": author},
                ).all()
    finally:
        engine.dispose()
    stats_file = tmp_path / "stats.json"
    stats_file.write_text(json.dumps(stats.to_dict()))
    versions = tmp_path / "versions"
    script = load("scripts", "advise_to_alembic.py")
    assert script.main([database, str(stats_file), str(versions), "--down-revision", "base1"]) == 0
    (migration,) = versions.glob("*_add_recommended_indexes.py")
    source = migration.read_text()
    compile(source, str(migration), "exec")
    assert "op.create_index" in source
    assert "postgresql_concurrently=True" in source
    assert "author_id" in source
    assert "base1" in source


def test_partition_maintenance_script(database: str, tmp_path: Path) -> None:
    with psycopg.connect(libpq_url(database), autocommit=True) as conn:
        conn.execute(SCHEMA)
    specs = tmp_path / "partitions.json"
    specs.write_text(
        json.dumps(
            [
                {
                    "table": "user_interactions",
                    "key": "created_at",
                    "interval": "month",
                    "premake": 2,
                    "retention": "12 months",
                }
            ]
        )
    )
    script = load("scripts", "partition_maintenance.py")
    assert script.main([database, str(specs)]) == 0
    with psycopg.connect(libpq_url(database)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'user_interactions'::regclass"
        ).fetchone()
    assert row == (4,)  # this month, two ahead, the default
    assert script.main([database, str(specs)]) == 0  # converged: nothing to do, still ok
    assert script.main([database]) == 2


def test_check_migrations_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = load("scripts", "check_migrations.py")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "0001.sql").write_text("ALTER TABLE posts ADD FOREIGN KEY (author_id) REFERENCES a(id);")
    sarif = tmp_path / "out.sarif"
    assert script.main([str(bad), "--sarif", str(sarif)]) == 1
    assert "MIG004" in capsys.readouterr().out
    assert json.loads(sarif.read_text())["runs"][0]["results"][0]["ruleId"] == "MIG004"
    good = tmp_path / "good"
    good.mkdir()
    (good / "0002.sql").write_text(
        "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY posts_status_idx ON posts (status);\n"
    )
    assert script.main([str(good)]) == 0
