"""The live dashboard: recent requests and their N+1s beside the database's own view.

::

    recorder = RequestRecorder()
    dbopt.instrument(engine, recorder, stats)
    dashboard = Dashboard(recorder=recorder, stats=stats, dsn=engine, token=SECRET)
    app.register_blueprint(dashboard.flask_blueprint())       # Flask
    fastapi_app.mount("/_dbopt", dashboard.asgi())             # FastAPI / Starlette
    path("_dbopt/", include(dashboard.django_urls()))          # Django
    dbopt serve --dsn postgresql://...                         # standalone

Pages: Requests (a bounded ring of recent requests, their statements, N+1
findings with fixes, EXPLAIN on demand), Queries (QueryStats beside
pg_stat_statements), Indexes (the advisor on demand), Schema & health,
Partitions, Pool. See docs/dashboard.md for the memory bounds and the
security model.
"""

from __future__ import annotations

from dbopt.dashboard.app import Dashboard
from dbopt.dashboard.http import DashboardRequest, DashboardResponse
from dbopt.dashboard.recorder import RecordedRequest, RecordedStatement, RequestRecorder

__all__ = [
    "Dashboard",
    "DashboardRequest",
    "DashboardResponse",
    "RecordedRequest",
    "RecordedStatement",
    "RequestRecorder",
]
