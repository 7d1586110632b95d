"""The Flask extension with Flask's test client, on PostgreSQL."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator

import flask
import pytest
from sqlalchemy import Engine, ForeignKey, create_engine, select
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
)

import dbopt
from dbopt.integrations.flask import COUNT_HEADER, TIME_HEADER, DboptFlask


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "if_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    posts: Mapped[list[Post]] = relationship()


class Post(Base):
    __tablename__ = "if_posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("if_users.id"))


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([User(id=i, posts=[Post() for _ in range(i)]) for i in range(1, 5)])
        session.commit()
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


def make_app(engine: Engine, name: str = "shop") -> flask.Flask:
    app = flask.Flask(name)
    app.config["TESTING"] = True

    @app.get("/users")
    def users() -> list[int]:
        with Session(engine) as session:
            return [len(u.posts) for u in session.scalars(select(User).order_by(User.id))]

    @app.get("/users/eager")
    def users_eager() -> list[int]:
        with Session(engine) as session:
            stmt = select(User).order_by(User.id).options(selectinload(User.posts))
            return [len(u.posts) for u in session.scalars(stmt)]

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> dict[str, int]:
        with Session(engine) as session:
            found = session.get(User, user_id)
            return {"posts": len(found.posts) if found else -1}

    @app.get("/boom")
    def boom() -> str:
        with Session(engine) as session:
            session.scalars(select(User)).all()
        raise RuntimeError("boom")

    return app


@pytest.fixture
def app(engine: Engine) -> Iterator[flask.Flask]:
    app = make_app(engine)
    ext = DboptFlask(app, targets=[engine])
    yield app
    ext.close()


def findings_in(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict[str, object]]:
    return [r.finding for r in caplog.records if r.name == logger and hasattr(r, "finding")]  # type: ignore[attr-defined]


def test_n_plus_one_goes_to_the_app_logger(
    app: flask.Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger=app.name):
        assert client.get("/users").json == [1, 2, 3, 4]
        assert client.get("/users/eager").json == [1, 2, 3, 4]
        assert client.get("/users/1").json == {"posts": 1}  # one request each:
        assert client.get("/users/2").json == {"posts": 2}  # not a loop
    (finding,) = findings_in(caplog, app.name)
    assert finding["relationship"] == "User.posts"
    assert finding["count"] == 4
    assert finding["scope"] == "GET /users"
    assert finding["loader_option"] == "selectinload(User.posts)"
    assert str(finding["callsite"]).endswith("in <listcomp>") or "in users" in str(
        finding["callsite"]
    )
    assert "test_integration_flask.py" in str(finding["callsite"])
    assert dbopt.current_scope() is None


def test_debug_headers(engine: Engine) -> None:
    app = make_app(engine)
    ext = DboptFlask(app, targets=[engine])
    try:
        client = app.test_client()
        response = client.get("/users")
        assert COUNT_HEADER not in response.headers  # off unless debug or asked for
        app.config["DBOPT_DEBUG_HEADERS"] = True
        with dbopt.capture_queries(engine) as queries:
            response = client.get("/users")
        assert response.headers[COUNT_HEADER] == str(len(queries)) == "5"
        assert float(response.headers[TIME_HEADER]) > 0
        assert client.get("/users/eager").headers[COUNT_HEADER] == "2"
    finally:
        ext.close()
    forced = make_app(engine, "forced")
    ext = DboptFlask(forced, targets=[engine], headers=True, detector=False)
    try:
        assert forced.test_client().get("/users/3").headers[COUNT_HEADER] == "2"
    finally:
        ext.close()


def test_failing_request_closes_its_scope(app: flask.Flask) -> None:
    client = app.test_client()
    with pytest.raises(RuntimeError, match="boom"):
        client.get("/boom")
    assert dbopt.current_scope() is None
    assert client.get("/users/1").status_code == 200


def test_raising_detector_fails_the_request_in_tests(engine: Engine) -> None:
    app = make_app(engine)
    detector = dbopt.NPlusOneDetector(action="raise")
    ext = DboptFlask(app, targets=[engine], detector=detector)
    try:
        client = app.test_client()
        with pytest.raises(dbopt.NPlusOneError, match=r"in scope GET /users"):
            client.get("/users")
        assert client.get("/users/eager").status_code == 200
    finally:
        ext.close()


def test_one_extension_two_apps(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    first, second = make_app(engine, "first"), make_app(engine, "second")
    ext = DboptFlask(targets=[engine])
    ext.init_app(first)
    ext.init_app(second)
    try:
        with caplog.at_level(logging.WARNING):
            second.test_client().get("/users")
            first.test_client().get("/users/eager")
        assert len(findings_in(caplog, "second")) == 1
        assert findings_in(caplog, "first") == []
        with first.test_request_context("/"):
            assert ext.stats() is None  # no request hook ran
    finally:
        ext.close()


def test_missing_flask_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flask", None)
    monkeypatch.delitem(sys.modules, "dbopt.integrations.flask")
    with pytest.raises(dbopt.MissingDependencyError, match=r"pip install 'dbopt\[flask\]'"):
        importlib.import_module("dbopt.integrations.flask")
    monkeypatch.undo()
    assert importlib.import_module("dbopt.integrations.flask").DboptFlask is DboptFlask
