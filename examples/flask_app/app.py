"""A Flask app on the learning-platform schema with dbopt wired in.

* ``DboptFlask``: a dbopt scope per request (named after the URL rule), an
  N+1 detector whose findings go to ``app.logger``, and ``X-DB-Query-Count`` /
  ``X-DB-Query-Time`` response headers.
* ``QueryLogger``: statements over 100 ms logged on ``dbopt.sql`` (EXPLAIN on
  PostgreSQL); ``QueryStats``: per-statement totals at ``/debug/db-stats``.
* A pool preset (``dbopt.pool.web``) sized for the server's threads.
* ``/health`` from ``dbopt.ping``: 200 when the database answers, else 503.
* The live dashboard at ``/_dbopt`` (``DBOPT_DASHBOARD_TOKEN``, else loopback only).

Run: ``DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/app flask --app app run``
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify
from models import Course, seed
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, joinedload, selectinload

import dbopt
from dbopt import pool
from dbopt.dashboard import Dashboard, RequestRecorder
from dbopt.integrations.flask import DboptFlask

THREADS = 8  # the WSGI server's threads per process (gunicorn --threads 8)


def dashboard_access() -> dict[str, Any]:
    """The dashboard's guard: ``DBOPT_DASHBOARD_TOKEN`` if set, else loopback clients only."""
    token = os.environ.get("DBOPT_DASHBOARD_TOKEN")
    if token:
        return {"token": token}
    return {"authorize": lambda request: request.client in ("127.0.0.1", "::1")}


def make_engine(url: str) -> Any:
    """An engine with dbopt's web preset (pool size, timeouts, pre-ping) for ``url``."""
    if url.startswith("sqlite"):
        return create_engine(url)
    config = pool.web(threads=THREADS)
    return create_engine(url, **config.sqlalchemy(url))


def create_app(url: str | None = None, *, seed_data: bool = False) -> Flask:
    """The application factory; ``url`` defaults to ``DATABASE_URL``."""
    url = url or os.environ.get("DATABASE_URL", "sqlite:///learning.db")
    app = Flask(__name__)
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
    dbopt_ext = DboptFlask(app, targets=[engine], headers=True)
    dashboard = Dashboard(
        recorder=recorder,
        stats=stats,
        dsn=engine if engine.dialect.name == "postgresql" else None,
        monitors=[pool.PoolMonitor(engine)],
        **dashboard_access(),
    )
    app.register_blueprint(dashboard.flask_blueprint(url_prefix="/_dbopt"))

    def close() -> None:
        """Detach dbopt and close connections (tests, app reloads)."""
        dbopt_ext.close()
        handle.close()
        slow_log.close()
        dashboard.close()
        if explain is not None:
            explain.close()
        engine.dispose()

    app.extensions["db"] = {"engine": engine, "stats": stats, "close": close}

    @app.get("/courses")
    def courses() -> Any:
        """Published courses with instructor and modules: 3 queries, whatever the count."""
        stmt = (
            select(Course)
            .where(Course.status == "published")
            .options(joinedload(Course.instructor), selectinload(Course.modules))
            .order_by(Course.title)
        )
        with Session(engine) as session:
            return jsonify([_course(c) for c in session.scalars(stmt)])

    @app.get("/courses/naive")
    def courses_naive() -> Any:
        """The same page as first written: one query per course for each relationship (N+1)."""
        stmt = select(Course).where(Course.status == "published").order_by(Course.title)
        with Session(engine) as session:
            return jsonify([_course(c) for c in session.scalars(stmt)])

    @app.get("/health")
    def health() -> Any:
        result = dbopt.ping(engine, timeout=2.0)
        return jsonify(result.to_dict()), 200 if result.up else 503

    @app.get("/debug/db-stats")
    def db_stats() -> Any:
        return jsonify([s.to_dict() for s in stats.top(10)])

    return app


def _course(course: Course) -> dict[str, Any]:
    return {
        "id": str(course.id),
        "title": course.title,
        "instructor": course.instructor.full_name,
        "modules": [m.title for m in course.modules],
    }


if __name__ == "__main__":
    create_app(seed_data=True).run(debug=True)
