"""The set-ups of docs/integrations.md, run as written: Flask-SQLAlchemy, FastAPI, SQLModel, Django.

Each test executes the docs' own code block (tests/docs_snippets.py), drives
the app on PostgreSQL, and checks what the page says it does: the N+1 is
found at the block's line with the fix named, the fix applied removes it,
and the count header equals the statements the database received (counted
by a plain SQLAlchemy event listener, not by dbopt).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from dbopt.testing import postgres_url
from docs_snippets import line_in_snippet, run_snippet


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_url(prefix="dbopt_docs") as url:
        yield url


class Statements:
    """Counts the statements engines send to the database (a cursor listener)."""

    def __init__(self, *engines: Any) -> None:
        self.count = 0
        for engine in engines:
            sync = getattr(engine, "sync_engine", engine)
            event.listen(sync, "before_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        self.count += 1


def serve(app: Any, counter: Statements, *urls: str) -> list[tuple[Any, int]]:
    """GET each url in turn through httpx's ASGI transport; each response and its statements."""
    import asyncio

    import httpx

    async def main() -> list[tuple[Any, int]]:
        out = []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as client:
            for url in urls:
                before = counter.count
                response = await client.get(url)
                out.append((response, counter.count - before))
        return out

    return asyncio.run(main())


def findings(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict[str, Any]]:
    return [r.finding for r in caplog.records if r.name == logger and hasattr(r, "finding")]


def test_flask_sqlalchemy_setup(database: str, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("flask_sqlalchemy")
    from dbopt.eager import LazyLoadError

    docs = run_snippet("flask-sqlalchemy")
    app = docs["create_app"](database)
    db, author_cls, book_cls = docs["db"], docs["Author"], docs["Book"]
    with app.app_context():
        db.create_all()
        authors = [author_cls(name=f"author {i}") for i in range(3)]
        db.session.add_all(authors)
        db.session.add_all(book_cls(title=f"book {i}", author=authors[i % 3]) for i in range(6))
        db.session.commit()
        counter = Statements(db.engine)
    with caplog.at_level(logging.WARNING, logger=app.logger.name):
        response = app.test_client().get("/books")
    assert response.status_code == 200
    assert [b["author"] for b in response.get_json()] == [f"author {i % 3}" for i in range(6)]
    assert response.headers["X-DB-Query-Count"] == str(counter.count) == "4"  # books + 3 authors
    (finding,) = findings(caplog, app.logger.name)
    line = line_in_snippet("flask-sqlalchemy", '"author": b.author.name}')
    assert f"docs/integrations.md:{line} in " in finding["callsite"]
    assert finding["relationship"] == "Book.author"
    assert finding["loader_option"] == "joinedload(Book.author)"

    strict_app = docs["create_app"](database, testing=True)
    try:
        with pytest.raises(LazyLoadError, match=r"joinedload\(Book.author\)"):
            strict_app.test_client().get("/books")
    finally:
        strict_app.extensions["dbopt_strict"].close()
    with app.app_context():
        db.drop_all()
        db.engine.dispose()


def test_fastapi_setup_sync_and_async(database: str, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    pytest.importorskip("greenlet")
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session, joinedload

    docs = run_snippet("fastapi")
    base, author_cls, book_cls = docs["Base"], docs["Author"], docs["Book"]
    setup = create_engine(database)
    base.metadata.create_all(setup)
    with Session(setup) as session:
        authors = [author_cls(name=f"author {i}") for i in range(4)]
        session.add_all(book_cls(title=f"book {i}", author=authors[i % 4]) for i in range(8))
        session.commit()
    app = docs["create_app"](database)
    counter = Statements(*app.user_middleware[0].kwargs["targets"])
    with caplog.at_level(logging.WARNING, logger="dbopt.asgi"):
        (sync, sync_count), (asynchronous, async_count) = serve(
            app, counter, "/books", "/async/books"
        )
    assert sync.status_code == asynchronous.status_code == 200, (sync.text, asynchronous.text)
    assert [b["author"] for b in sync.json()] == asynchronous.json()
    assert sync.headers["x-db-query-count"] == str(sync_count) == "5"  # books + 4 authors
    assert asynchronous.headers["x-db-query-count"] == str(async_count) == "5"
    found = findings(caplog, "dbopt.asgi")
    assert [f["scope"] for f in found] == ["GET /books", "GET /async/books"]
    lines = [
        line_in_snippet("fastapi", '"author": b.author.name}'),
        line_in_snippet("fastapi", "await b.awaitable_attrs.author"),
    ]
    for finding, line in zip(found, lines, strict=True):
        assert finding["relationship"] == "Book.author"
        assert finding["loader_option"] == "joinedload(Book.author)"
        assert f"docs/integrations.md:{line} in " in finding["callsite"]
    # the fix named, applied to the endpoint's query: one statement, same rows
    with Session(setup) as session:
        fixed = session.scalars(select(book_cls).options(joinedload(book_cls.author)))
        assert [b.author.name for b in fixed] == asynchronous.json()
    base.metadata.drop_all(setup)
    setup.dispose()


def test_sqlmodel_setup(database: str, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("sqlmodel")
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from sqlalchemy.orm import selectinload
    from sqlmodel import Session, SQLModel, create_engine, select

    docs = run_snippet("sqlmodel")
    team_cls, hero_cls = docs["Team"], docs["Hero"]
    setup = create_engine(database)
    tables = [team_cls.__table__, hero_cls.__table__]
    SQLModel.metadata.create_all(setup, tables=tables)
    try:
        with Session(setup) as session:
            teams = [team_cls(name=f"team {i}") for i in range(3)]
            session.add_all(hero_cls(name=f"hero {i}", team=teams[i % 3]) for i in range(7))
            session.commit()
        app = docs["create_app"](database)
        counter = Statements(*app.user_middleware[0].kwargs["targets"])
        with caplog.at_level(logging.WARNING, logger="dbopt.asgi"):
            ((response, ran),) = serve(app, counter, "/teams")
        assert response.status_code == 200
        assert sum(len(heroes) for heroes in response.json().values()) == 7
        assert response.headers["x-db-query-count"] == str(ran) == "4"
        (finding,) = findings(caplog, "dbopt.asgi")
        line = line_in_snippet("sqlmodel", "h.name for h in t.heroes")
        # the endpoint's line, not sqlmodel/orm/session.py
        assert f"docs/integrations.md:{line} in " in finding["callsite"]
        assert all("sqlmodel" not in frame for frame in finding["stack"])
        assert finding["loader_option"] == "selectinload(Team.heroes)"
        with Session(setup) as session:
            fixed = session.exec(select(team_cls).options(selectinload(team_cls.heroes)))
            assert {t.name: [h.name for h in t.heroes] for t in fixed} == response.json()
    finally:
        SQLModel.metadata.drop_all(setup, tables=tables)
        setup.dispose()


def test_django_instrument_block(pg_url: str) -> None:
    pytest.importorskip("django")
    from django_blog import configure

    if not configure(pg_url):
        pytest.skip("Django settings were configured elsewhere in this process")
    from django.contrib.auth.models import User

    docs = run_snippet("django-instrument", User=User)
    stats = docs["stats"]
    assert len(docs["users"]) == User.objects.count() > 0
    (entry,) = stats.statements()
    assert entry.calls == 1
    assert "auth_user" in entry.normalized
    assert entry.rows == len(docs["users"])
