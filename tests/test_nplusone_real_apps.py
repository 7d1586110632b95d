"""N+1 on real application shapes (issue 19), on PostgreSQL.

Each suggested loader option is applied to the parent query and run, the
way a user would paste it; per-row aggregates get a grouped fix; the web
integrations scope every statement of a request; ``eager.auto``/``strict``
take every kind of session Flask-SQLAlchemy and async apps hand out.

Runs on the installed SQLAlchemy; to check 2.0.x too, put a 2.0 release
first on ``PYTHONPATH`` (the GROUP BY test then also shows the failure of
the option dbopt no longer suggests).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Iterator
from typing import Any

import flask
import pytest
import sqlalchemy
import sqlalchemy.orm
from sqlalchemy import (
    Engine,
    ForeignKey,
    Select,
    String,
    create_engine,
    func,
    select,
    union,
    update,
)
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import (
    AsyncSession,
    async_scoped_session,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    WriteOnlyMapped,
    aliased,
    joinedload,
    mapped_column,
    relationship,
    scoped_session,
    sessionmaker,
)

import dbopt
from dbopt import eager
from dbopt.integrations.flask import COUNT_HEADER, DboptFlask

SA_20 = sqlalchemy.__version__.startswith("2.0.")


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "ra_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    last_seen: Mapped[dt.datetime | None]
    posts: WriteOnlyMapped[Article] = relationship(back_populates="author")

    def to_dict(self, session: Session) -> dict[str, Any]:
        # the shape of microblog's User.to_dict: one COUNT per user
        count = session.scalar(select(func.count()).select_from(self.posts.select().subquery()))
        return {"id": self.id, "posts": count}


class Article(Base):
    __tablename__ = "ra_posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ra_users.id"), index=True)
    body: Mapped[str] = mapped_column(String(80))
    author: Mapped[Author] = relationship(back_populates="posts")
    notes: Mapped[list[Note]] = relationship(order_by="Note.id")


class Note(Base):
    __tablename__ = "ra_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("ra_posts.id"), index=True)


MODELS = {"Author": Author, "Article": Article, "Note": Note}
USERS, POSTS = 12, 60


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(Author(id=i, name=f"user{i}") for i in range(1, USERS + 1))
        session.flush()
        session.add_all(
            Article(id=i, user_id=1 + i % USERS, body=f"post {i}") for i in range(1, POSTS + 1)
        )
        session.flush()
        session.add_all(Note(post_id=1 + (i * 7) % POSTS) for i in range(200))
        session.commit()
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


def apply_option(stmt: Select[Any], text: str) -> Select[Any]:
    """Apply a suggested ``selectinload(Article.author)``-style option, as a user would."""
    match = re.fullmatch(r"(\w+)\((\w+)\.(\w+)\)", text)
    assert match, text
    loader = getattr(sqlalchemy.orm, match.group(1))
    return stmt.options(loader(getattr(MODELS[match.group(2)], match.group(3))))


def n_plus_ones(engine: Engine, stmt: Select[Any], read: str) -> list[dbopt.NPlusOneFinding]:
    """Run ``stmt`` and read ``read`` on every object in one scope; the N+1 findings."""
    detector = dbopt.NPlusOneDetector(action=lambda f: None)
    with dbopt.instrument(engine, detector), Session(engine) as session, dbopt.scope("page"):
        for obj in session.scalars(stmt).unique():
            value = getattr(obj, read)
            _ = len(value) if isinstance(value, list) else value.name
    return [f for f in detector.findings if f.kind == "n_plus_one"]


def statements(engine: Engine, stmt: Select[Any], read: str) -> int:
    with dbopt.capture_queries(engine) as queries, Session(engine) as session:
        for obj in session.scalars(stmt).unique():
            value = getattr(obj, read)
            _ = len(value) if isinstance(value, list) else value.name
    return sum(1 for q in queries if q.kind == "select")


def feed() -> Select[Any]:
    """The feed of the issue: posts ranked by their notes, GROUP BY post over a join."""
    return (
        select(Article)
        .join(Article.notes)
        .group_by(Article.id)
        .order_by(func.count(Note.id).desc(), Article.id)
        .limit(20)
    )


def check_fix_runs(engine: Engine, stmt: Select[Any], read: str, option: str) -> None:
    """The N+1 is there, the suggested option is ``option``, and applied it runs and removes it."""
    (finding,) = n_plus_ones(engine, stmt, read)
    assert finding.loader_option == option, finding.suggestion
    assert "why:" in finding.suggestion
    fixed = apply_option(stmt, option)
    assert n_plus_ones(engine, fixed, read) == []
    assert statements(engine, fixed, read) == (2 if option.startswith("selectin") else 1)


def test_group_by_feed_gets_selectinload_that_runs(engine: Engine) -> None:
    check_fix_runs(engine, feed(), "author", "selectinload(Article.author)")
    (finding,) = n_plus_ones(engine, feed(), "author")
    assert "GROUP BY" in finding.suggestion
    fit = eager.fit_loader(feed(), Article.author)
    assert fit.loader == "selectin"
    assert "GROUP BY" in fit.reason
    if SA_20:  # the option dbopt suggested before: PostgreSQL refuses it on 2.0.x
        with Session(engine) as session, pytest.raises(ProgrammingError, match="GROUP BY"):
            session.scalars(feed().options(joinedload(Article.author))).all()


def test_plain_parent_keeps_joinedload_that_runs(engine: Engine) -> None:
    stmt = select(Article).where(Article.id <= 30).order_by(Article.id)
    check_fix_runs(engine, stmt, "author", "joinedload(Article.author)")
    assert eager.fit_loader(stmt, Article.author).loader == "joined"


def test_distinct_parent_gets_selectinload(engine: Engine) -> None:
    stmt = select(Article).join(Article.notes).distinct().order_by(Article.id).limit(25)
    check_fix_runs(engine, stmt, "author", "selectinload(Article.author)")
    assert "DISTINCT" in eager.fit_loader(stmt, Article.author).reason


def test_set_operation_parent_gets_selectinload(engine: Engine) -> None:
    both = union(
        select(Article).where(Article.id <= 10), select(Article).where(Article.id > POSTS - 10)
    ).subquery()
    alias = aliased(Article, both)
    stmt = select(alias).order_by(both.c.id)
    fit = eager.fit_loader(stmt, Article.author)
    assert fit.loader == "selectin"
    assert "UNION" in fit.reason
    option = getattr(sqlalchemy.orm, f"{fit.loader}load")(alias.author)
    with dbopt.capture_queries(engine) as queries, Session(engine) as session:
        rows = session.scalars(stmt.options(option)).all()
        assert len(rows) == 20
        assert all(r.author.name for r in rows)
    assert len(queries) == 2


def test_collection_under_limit_gets_selectinload(engine: Engine) -> None:
    stmt = select(Article).order_by(Article.id).limit(15)
    check_fix_runs(engine, stmt, "notes", "selectinload(Article.notes)")
    assert "LIMIT" in eager.fit_loader(stmt, Article.notes).reason


def test_eager_load_fits_the_statement(engine: Engine) -> None:
    loaded = eager.load(feed(), "author", "notes")
    with dbopt.capture_queries(engine) as queries, Session(engine) as session:
        posts = session.scalars(loaded).all()
        assert all(p.author.name and p.notes for p in posts)
    assert len([q for q in queries if q.kind == "select"]) == 3  # feed + authors + notes
    plain = eager.load(select(Article).order_by(Article.id).limit(5), "author")
    assert "JOIN ra_users" in str(plain)  # a plain SELECT still gets the join


def test_per_row_count_gets_an_aggregate_fix(engine: Engine) -> None:
    detector = dbopt.NPlusOneDetector(action=lambda f: None)
    with dbopt.instrument(engine, detector), Session(engine) as session, dbopt.scope("api"):
        users = session.scalars(select(Author).order_by(Author.id)).all()
        page = [u.to_dict(session) for u in users]
    (finding,) = detector.findings
    assert finding.kind == "n_plus_one"
    assert finding.count == USERS
    assert finding.loader_option is None
    assert "group_by(ra_posts.user_id)" in finding.suggestion
    assert "column_property" in finding.suggestion
    assert "with_expression" in finding.suggestion
    assert "look them up in a dict" not in finding.suggestion
    # the fix, as the suggestion writes it, gives the same page in one query
    with dbopt.capture_queries(engine) as queries, Session(engine) as session:
        keys = [u["id"] for u in page]
        grouped = dict(
            session.execute(
                select(Article.user_id, func.count())
                .where(Article.user_id.in_(keys))
                .group_by(Article.user_id)
            ).all()
        )
    assert [{"id": k, "posts": grouped.get(k, 0)} for k in keys] == page
    assert len(queries) == 1


def test_eager_load_refuses_write_only_when_building(engine: Engine) -> None:
    with pytest.raises(dbopt.ConfigurationError, match=r"Author.posts .*'write_only'"):
        eager.load(select(Author), "posts")
    with pytest.raises(dbopt.ConfigurationError, match="write_only"):
        eager.loader_options(Article, "author.posts")


# Every session kind


def lazy_reads(session: Session) -> list[str]:
    return [p.author.name for p in session.scalars(select(Article).order_by(Article.id))]


def test_scoped_session_and_sessionmaker(engine: Engine) -> None:
    class AppSession(Session):
        pass

    factory = sessionmaker(engine, class_=AppSession)
    db_session = scoped_session(factory)  # what Flask-SQLAlchemy's db.session is
    try:
        with eager.strict(db_session), pytest.raises(eager.LazyLoadError):
            lazy_reads(db_session())
        db_session.remove()
        with eager.auto(db_session) as handle, dbopt.capture_queries(engine) as queries:
            names = lazy_reads(db_session())
        assert len(names) == POSTS
        assert handle.batches == 1
        assert len([q for q in queries if q.kind == "select"]) == 2
        with eager.strict(factory), factory() as own, pytest.raises(eager.LazyLoadError):
            lazy_reads(own)
        with Session(engine) as other, eager.strict(factory):  # another class: left alone
            assert len(lazy_reads(other)) == POSTS
    finally:
        db_session.remove()


def test_async_session_kinds(engine: Engine, pg_url: str) -> None:
    class AppSession(Session):
        pass

    async def main() -> tuple[int, int]:
        async_engine = create_async_engine(pg_url)
        try:
            maker = async_sessionmaker(async_engine, sync_session_class=AppSession)
            scoped = async_scoped_session(maker, scopefunc=asyncio.current_task)
            with eager.strict(scoped), pytest.raises(eager.LazyLoadError):
                await scoped().run_sync(lazy_reads)
            await scoped.remove()
            with eager.auto(scoped) as handle:
                names = await scoped().run_sync(lazy_reads)
            await scoped.remove()
            async with AsyncSession(async_engine) as plain, plain.begin():
                with eager.strict(plain), pytest.raises(eager.LazyLoadError):
                    await plain.run_sync(lazy_reads)
            with pytest.raises(dbopt.ConfigurationError, match="sync_session_class"):
                eager.auto(async_sessionmaker(async_engine))
            return len(names), handle.batches
        finally:
            await async_engine.dispose()

    assert asyncio.run(main()) == (POSTS, 1)


# Every statement of a request


def make_flask_app(engine: Engine) -> tuple[flask.Flask, list[str]]:
    app = flask.Flask("realapp")
    app.config["TESTING"] = True
    db_session = scoped_session(sessionmaker(engine))
    ran: list[str] = []
    auth = flask.Blueprint("auth", __name__)

    @auth.before_app_request
    def before_request() -> None:  # microblog's: load the user, write last_seen
        user = db_session.get(Author, 1)
        assert user is not None
        db_session.execute(update(Author).where(Author.id == user.id).values(last_seen=func.now()))
        db_session.commit()
        ran.append("before")

    app.register_blueprint(auth)

    @app.get("/index")
    def index() -> str:
        posts = db_session.scalars(select(Article).order_by(Article.id).limit(10)).all()
        return flask.render_template_string(
            "{% for p in posts %}{{ p.author.name }} {% endfor %}", posts=posts
        )

    @app.teardown_request
    def teardown(exc: BaseException | None) -> None:
        db_session.execute(select(func.count()).select_from(Author))
        db_session.remove()
        ran.append("teardown")

    return app, ran


def test_flask_scope_holds_earlier_hooks_templates_and_teardown(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    app, ran = make_flask_app(engine)  # hooks registered before the extension
    ext = DboptFlask(app, targets=[engine], headers=True)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="realapp"),
            dbopt.capture_queries(engine) as queries,
        ):
            response = app.test_client().get("/index")
        assert response.status_code == 200
        assert ran == ["before", "teardown"]
        executed = [q for q in queries if q.kind != "transaction"]
        # get + update + page + 10 authors (one per distinct user) + teardown count
        assert len(executed) == 1 + 1 + 1 + 10 + 1
        assert response.headers[COUNT_HEADER] == str(len(executed))
        assert all(q.scope is not None and q.scope.name == "GET /index" for q in queries)
        found = [r.finding for r in caplog.records if hasattr(r, "finding")]  # type: ignore[attr-defined]
        assert [f["relationship"] for f in found] == ["Article.author"]
        assert found[0]["scope"] == "GET /index"
        assert dbopt.current_scope() is None
    finally:
        ext.close()


def test_flask_headers_and_scope_after_a_failing_request(engine: Engine) -> None:
    app, _ = make_flask_app(engine)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    app.config["TESTING"] = False  # Flask answers 500 and still tears down
    ext = DboptFlask(app, targets=[engine], headers=True)
    try:
        with dbopt.capture_queries(engine) as queries:
            response = app.test_client().get("/boom")
        assert response.status_code == 500
        executed = [q for q in queries if q.kind != "transaction"]
        assert response.headers[COUNT_HEADER] == str(len(executed)) == "3"
        assert {q.scope.name for q in queries if q.scope} == {"GET /boom"}
        assert dbopt.current_scope() is None
    finally:
        ext.close()


def test_asgi_scope_holds_middleware_dependencies_and_templates(engine: Engine) -> None:
    """FastAPI: a user middleware, a dependency that writes, the endpoint, a template."""
    import httpx
    from fastapi import Depends, FastAPI, Request
    from fastapi.responses import HTMLResponse

    from dbopt.integrations.asgi import COUNT_HEADER as ASGI_COUNT
    from dbopt.integrations.asgi import DboptMiddleware

    app = FastAPI()
    template = jinja2_env().from_string("{% for p in posts %}{{ p.author.name }}{% endfor %}")

    @app.middleware("http")  # registered before dbopt's: it runs inside dbopt's scope
    async def load_site(request: Request, call_next: Any) -> Any:
        with Session(engine) as session:
            session.scalar(select(func.count()).select_from(Article))
        return await call_next(request)

    def current_user() -> Iterator[int]:
        with Session(engine) as session:
            session.execute(update(Author).where(Author.id == 2).values(last_seen=func.now()))
            session.commit()
        yield 2

    @app.get("/feed", response_class=HTMLResponse)
    def page(user: int = Depends(current_user)) -> str:
        with Session(engine) as session:
            posts = session.scalars(select(Article).order_by(Article.id).limit(8)).all()
            return template.render(posts=posts)

    app.add_middleware(DboptMiddleware, targets=[engine], headers=True, detector=False)

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/feed")

    with dbopt.capture_queries(engine) as queries:
        response = asyncio.run(main())
    assert response.status_code == 200
    executed = [q for q in queries if q.kind != "transaction"]
    assert len(executed) == 1 + 1 + 1 + 8  # middleware, dependency, page, 8 authors
    assert response.headers[ASGI_COUNT] == str(len(executed))
    assert {q.scope.name for q in queries if q.scope} == {"GET /feed"}


def jinja2_env() -> Any:
    import jinja2

    return jinja2.Environment(autoescape=True)
