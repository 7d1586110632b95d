"""A FastAPI app on the learning-platform schema with dbopt wired in.

* ``DboptMiddleware``: a dbopt scope per request (named after the route
  template), an N+1 detector logging on ``dbopt.asgi``, and
  ``x-db-query-count`` / ``x-db-query-time`` response headers.
* ``QueryLogger`` (>= 100 ms, EXPLAIN on PostgreSQL) and ``QueryStats``.
* A pool preset for an async server's concurrency (``dbopt.pool.async_web``).
* ``/health`` from ``dbopt.ping``: 200 when the database answers, else 503.
* The live dashboard mounted at ``/_dbopt`` (``DBOPT_DASHBOARD_TOKEN``, else
  loopback clients only).

Sync endpoints and a sync engine keep the template short: FastAPI runs them
in its thread pool, and the middleware's scope follows them there. Run:
``DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/app uvicorn app:app``
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from models import Course, seed
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session, joinedload, selectinload

import dbopt
from dbopt import pool
from dbopt.dashboard import Dashboard, RequestRecorder
from dbopt.integrations.asgi import DboptMiddleware

CONCURRENCY = 40  # FastAPI's default thread pool runs at most 40 sync endpoints at once


def make_engine(url: str) -> Engine:
    """An engine with dbopt's preset for ``url`` (SQLite: plain)."""
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"check_same_thread": False})
    config = pool.async_web(concurrency=CONCURRENCY)
    return create_engine(url, **config.sqlalchemy(url))


def get_session(request: Request) -> Iterator[Session]:
    """One ORM session per request, on the app's engine."""
    with Session(request.app.state.engine) as session:
        yield session


DB = Annotated[Session, Depends(get_session)]


def create_app(url: str | None = None, *, seed_data: bool = False) -> FastAPI:
    """The application factory; ``url`` defaults to ``DATABASE_URL``."""
    url = url or os.environ.get("DATABASE_URL", "sqlite:///learning.db")
    engine = make_engine(url)
    if seed_data:
        seed(engine)
    stats = dbopt.QueryStats()
    explain = None
    if engine.dialect.name == "postgresql":
        from dbopt.postgres import Explainer

        explain = Explainer(engine)
    slow_log = dbopt.QueryLogger("dbopt.sql", slow_ms=100, explain=explain)
    recorder = RequestRecorder()
    handle = dbopt.instrument(engine, stats, slow_log, recorder)
    token = os.environ.get("DBOPT_DASHBOARD_TOKEN")
    dashboard = Dashboard(
        recorder=recorder,
        stats=stats,
        dsn=engine if engine.dialect.name == "postgresql" else None,
        token=token,
        authorize=None if token else (lambda request: request.client in ("127.0.0.1", "::1")),
    )

    def close() -> None:
        """Detach dbopt and close connections (call it from a lifespan's shutdown)."""
        handle.close()
        slow_log.close()
        dashboard.close()
        if explain is not None:
            explain.close()
        engine.dispose()

    app = FastAPI(title="learning platform")
    app.add_middleware(DboptMiddleware, targets=[engine], headers=True)
    app.state.engine = engine
    app.state.stats = stats
    app.state.close = close
    app.mount("/_dbopt", dashboard.asgi())

    @app.get("/courses")
    def courses(s: DB) -> list[dict[str, Any]]:
        """Published courses with instructor and modules: 3 queries, whatever the count."""
        stmt = (
            select(Course)
            .where(Course.status == "published")
            .options(joinedload(Course.instructor), selectinload(Course.modules))
            .order_by(Course.title)
        )
        return [_course(c) for c in s.scalars(stmt)]

    @app.get("/courses/naive")
    def courses_naive(s: DB) -> list[dict[str, Any]]:
        """The page as first written: one query per course for each relationship (N+1)."""
        stmt = select(Course).where(Course.status == "published").order_by(Course.title)
        return [_course(c) for c in s.scalars(stmt)]

    @app.get("/health")
    def health() -> JSONResponse:
        result = dbopt.ping(engine, timeout=2.0)
        return JSONResponse(result.to_dict(), status_code=200 if result.up else 503)

    @app.get("/debug/db-stats")
    def db_stats() -> list[dict[str, Any]]:
        return [s.to_dict() for s in stats.top(10)]

    return app


def _course(course: Course) -> dict[str, Any]:
    return {
        "id": str(course.id),
        "title": course.title,
        "instructor": course.instructor.full_name,
        "modules": [m.title for m in course.modules],
    }


if os.environ.get("DATABASE_URL"):
    app = create_app()
