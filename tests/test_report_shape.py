"""One report shape for every checker, one undo verb for every handle (issue 11).

Each checker runs for real (lint, health, drift and the pool check against
PostgreSQL; the migration checker on SQL text) and its report must pass the
same conformance test. Each handle must undo what it attached with
``close()``, with a ``with`` block, and with its old verb (which warns).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import flask
import httpx
import psycopg
import pytest
from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    create_engine,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

import dbopt
from dbopt import eager, pool
from dbopt.eager import LazyLoadError
from dbopt.findings import Finding, FindingsReport, Severity
from dbopt.handle import Handle
from dbopt.health import HealthThresholds, health
from dbopt.integrations.asgi import COUNT_HEADER as ASGI_COUNT
from dbopt.integrations.asgi import DboptMiddleware
from dbopt.integrations.django import DjangoAdapter
from dbopt.integrations.flask import COUNT_HEADER as FLASK_COUNT
from dbopt.integrations.flask import DboptFlask
from dbopt.lint import lint
from dbopt.migrations import check
from dbopt.schema import diff
from dbopt.testing import libpq_url

pytestmark = pytest.mark.postgres

DDL = """
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent, "Mixed" int);
CREATE INDEX child_mixed ON child ("Mixed");
CREATE INDEX child_mixed_twin ON child ("Mixed");
CREATE TABLE unmodelled (id int PRIMARY KEY);
"""

MIGRATION = (
    "CREATE INDEX users_email ON users (email);\n"
    "ALTER TABLE users ADD COLUMN nickname text;\n"
    "ALTER TABLE users DROP COLUMN legacy;\n"
)


@pytest.fixture(scope="module")
def schema(pg_url: str) -> Iterator[str]:
    name = f"shape_{secrets.token_hex(4)}"
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
        conn.execute(f'SET search_path = "{name}"')
        conn.execute(DDL)
        try:
            yield name
        finally:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def _models(schema: str) -> MetaData:
    meta = MetaData(schema=schema)
    Table("parent", meta, Column("id", Integer, primary_key=True))
    Table("planned", meta, Column("id", Integer, primary_key=True))  # not in the database
    return meta


Run = Callable[[str, str, Any], FindingsReport]


def _lint(pg_url: str, schema: str, suppress: Any) -> FindingsReport:
    return lint(pg_url, schemas=[schema], suppress=suppress)


def _health(pg_url: str, schema: str, suppress: Any) -> FindingsReport:
    limits = HealthThresholds(connections_warn=0.0001, wraparound_warn=1e-12)
    return health(
        pg_url, checks=["connections", "wraparound"], thresholds=limits, suppress=suppress
    )


def _migrations(pg_url: str, schema: str, suppress: Any) -> FindingsReport:
    return check(MIGRATION, suppress=suppress)


def _diff(pg_url: str, schema: str, suppress: Any) -> FindingsReport:
    return diff(_models(schema), pg_url, suppress=suppress)


def _pool(pg_url: str, schema: str, suppress: Any) -> FindingsReport:
    engine = create_engine(pg_url)  # no pre-ping, no recycle, no timeouts: POOL021/030/031
    try:
        return pool.check(engine, suppress=suppress)
    finally:
        engine.dispose()


CHECKERS: dict[str, Run] = {
    "lint": _lint,
    "health": _health,
    "migrations.check": _migrations,
    "schema.diff": _diff,
    "pool.check": _pool,
}


@pytest.mark.parametrize("name", list(CHECKERS))
def test_every_checker_returns_the_same_report_shape(name: str, pg_url: str, schema: str) -> None:
    run = CHECKERS[name]
    report = run(pg_url, schema, None)
    assert isinstance(report, FindingsReport)
    assert report.errors == {}, report.errors

    # the findings, as an attribute and as the report itself
    findings = report.findings
    assert not callable(getattr(type(report), "findings", None))
    assert findings, f"{name} found nothing to check the shape with"
    assert all(isinstance(f, Finding) for f in findings)
    assert list(report) == list(findings)
    assert len(report) == len(findings)
    assert bool(report) is True
    assert report[0] == findings[0]
    assert report == list(findings)
    assert report == tuple(findings)
    assert report != list(findings)[1:]

    # codes: one type everywhere
    codes = report.codes()
    assert type(codes) is frozenset
    assert codes == {f.code for f in findings}
    assert report.of(findings[0].code) == [f for f in findings if f.code == findings[0].code]

    # severities
    grouped = report.by_severity()
    assert list(grouped) == [Severity.ERROR, Severity.WARNING, Severity.INFO]
    for severity, group in grouped.items():
        assert all(f.severity is severity for f in group)
    assert sorted(str(f) for group in grouped.values() for f in group) == sorted(map(str, findings))
    assert report.worst == max((f.severity for f in findings), key=lambda s: s.rank)
    assert report.failed(Severity.INFO) is True
    assert report.failed("error") is bool(grouped[Severity.ERROR])
    assert report.failed() is any(f.severity >= report.default_fail_on for f in findings)
    assert report.ok is (not report.failed())

    # rendering
    data = report.to_dict()
    assert {"ok", "summary", "findings", "suppressed", "errors"} <= set(data)
    assert data["ok"] is report.ok
    assert data["summary"]["total"] == len(findings)
    assert data["summary"]["error"] == len(grouped[Severity.ERROR])
    assert [f["code"] for f in data["findings"]] == [f.code for f in findings]
    assert json.loads(report.to_json()) == json.loads(json.dumps(data, default=str))
    sarif = report.to_sarif()
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} == codes


@pytest.mark.parametrize("name", list(CHECKERS))
def test_every_checker_suppresses_into_the_same_place(name: str, pg_url: str, schema: str) -> None:
    run = CHECKERS[name]
    full = run(pg_url, schema, None)
    code = sorted(full.codes())[0]
    fewer = run(pg_url, schema, [code])
    assert code not in fewer.codes()
    assert fewer.suppressed
    assert {f.code for f in fewer.suppressed} == {code}
    assert fewer.codes() == full.codes() - {code}

    nothing = run(pg_url, schema, ["*"])
    assert len(nothing) == 0
    assert not nothing
    assert list(nothing) == []
    assert nothing == []
    assert nothing.codes() == frozenset()
    assert nothing.ok is True
    assert nothing.failed(Severity.INFO) is False
    assert nothing.worst is None
    assert nothing.to_dict()["summary"]["total"] == 0
    assert len(nothing.suppressed) == len(full)


# Handles


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "rs_authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    books: Mapped[list[Book]] = relationship()


class Book(Base):
    __tablename__ = "rs_books"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("rs_authors.id"))


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Author(id=i, books=[Book(), Book()]) for i in range(1, 4)])
        session.commit()
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


@dataclass
class Case:
    """How to make a handle, whether it still acts, and its deprecated verb."""

    make: Callable[[], Handle]
    active: Callable[[Handle], bool]
    old_verb: str | None


def _query(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _cases(engine: Engine, pg_url: str) -> dict[str, Case]:
    heard: list[Any] = []

    def instrument_active(handle: Handle) -> bool:
        before = len(heard)
        _query(engine)
        return len(heard) > before

    def strict_active(handle: Handle) -> bool:
        with Session(engine) as session:
            author = session.get(Author, 1)
            assert author is not None
            try:
                _ = author.books
            except LazyLoadError:
                return True
            return False

    def strict_make() -> Handle:
        return eager.strict(Session)

    def auto_active(handle: Handle) -> bool:
        assert isinstance(handle, eager.AutoEager)
        before = handle.batches
        with Session(engine) as session:
            authors = session.scalars(select(Author).order_by(Author.id)).all()
            _ = authors[0].books
        return handle.batches > before

    def monitor_active(handle: Handle) -> bool:
        assert isinstance(handle, pool.PoolMonitor)
        before = handle.snapshot().checkouts
        _query(engine)
        return handle.snapshot().checkouts > before

    monitors: list[pool.PoolMonitor] = []

    def log_make() -> Handle:
        monitor = pool.PoolMonitor(engine)
        monitors.append(monitor)
        return monitor.log_every(3600)

    def log_active(handle: Handle) -> bool:
        assert isinstance(handle, pool.PeriodicLog)
        return handle._thread.is_alive()

    apps: dict[int, flask.Flask] = {}  # the extension holds its apps weakly

    def flask_make() -> Handle:
        app = flask.Flask(f"shape_{secrets.token_hex(2)}")

        @app.get("/")
        def index() -> str:
            _query(engine)
            return "ok"

        ext = DboptFlask(app, targets=[engine], headers=True)
        apps[id(ext)] = app
        return ext

    def flask_active(handle: Handle) -> bool:
        assert isinstance(handle, DboptFlask)
        response = apps[id(handle)].test_client().get("/")
        return response.headers[FLASK_COUNT] == "1"

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        _query(engine)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def asgi_active(handle: Handle) -> bool:
        async def get() -> httpx.Response:
            transport = httpx.ASGITransport(app=handle)  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.get("/")

        return asyncio.run(get()).headers[ASGI_COUNT] == "1"

    def django_make() -> Handle:
        return DjangoAdapter([heard.append])

    def django_active(handle: Handle) -> bool:
        assert isinstance(handle, DjangoAdapter)
        before = len(heard)
        with psycopg.connect(libpq_url(pg_url)) as conn, conn.cursor() as cur:

            def execute(sql: str, params: Any, many: bool, context: Any) -> Any:
                return cur.execute(sql, params)

            context = {"connection": SimpleNamespace(vendor="postgresql"), "cursor": cur}
            handle(execute, "SELECT 1", None, False, context)
        return len(heard) > before

    return {
        "instrument": Case(
            lambda: dbopt.instrument(engine, heard.append), instrument_active, "detach"
        ),
        "eager.strict": Case(strict_make, strict_active, "undo"),
        "eager.auto": Case(lambda: eager.auto(Session), auto_active, "undo"),
        "PoolMonitor": Case(lambda: pool.PoolMonitor(engine), monitor_active, None),
        "PeriodicLog": Case(log_make, log_active, "stop"),
        "DboptFlask": Case(flask_make, flask_active, None),
        "DboptMiddleware": Case(
            lambda: DboptMiddleware(asgi_app, targets=[engine], headers=True),
            asgi_active,
            None,
        ),
        "DjangoAdapter": Case(django_make, django_active, None),
    }


HANDLES = [
    "instrument",
    "eager.strict",
    "eager.auto",
    "PoolMonitor",
    "PeriodicLog",
    "DboptFlask",
    "DboptMiddleware",
    "DjangoAdapter",
]


@pytest.mark.parametrize("name", HANDLES)
def test_every_handle_is_undone_by_close(name: str, engine: Engine, pg_url: str) -> None:
    case = _cases(engine, pg_url)[name]

    handle = case.make()
    assert isinstance(handle, Handle)
    assert case.active(handle)
    handle.close()
    assert not case.active(handle)
    handle.close()  # idempotent
    assert not case.active(handle)

    with case.make() as entered:
        assert isinstance(entered, Handle)
        assert case.active(entered)
    assert not case.active(entered)

    if case.old_verb is not None:
        old = case.make()
        with pytest.warns(DeprecationWarning, match=r"is now close\(\)") as record:
            getattr(old, case.old_verb)()
        assert record[0].filename == __file__  # the warning points at the caller
        assert not case.active(old)
