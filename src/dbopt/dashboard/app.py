"""``Dashboard``: the live pages over the sinks an application attached, framework-neutral."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from dbopt.dashboard.assets import CSS, SCRIPT
from dbopt.dashboard.http import (
    Authorize,
    DashboardRequest,
    DashboardResponse,
    Guard,
    security_headers,
)
from dbopt.dashboard.jobs import Job
from dbopt.dashboard.layout import PAGES, e, page
from dbopt.errors import ConfigurationError

if TYPE_CHECKING:
    from dbopt.core.stats import QueryStats
    from dbopt.dashboard.recorder import RequestRecorder
    from dbopt.partitions.spec import PartitionSpec
    from dbopt.pool.monitor import PoolMonitor

__all__ = ["Dashboard"]

log = logging.getLogger("dbopt.dashboard")
_REQUEST = re.compile(r"^/requests/(\d+)$")
#: psycopg placeholders (``%s``, ``%(name)s``), to give EXPLAIN stand-ins it never sends.
_PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]*)\))?[sbt]")
_HISTORY = 300


class Dashboard:
    """The live dashboard: one object, mounted by any of :meth:`wsgi`, :meth:`asgi`,
    :meth:`flask_blueprint`, :meth:`django_urls` or ``dbopt serve``.

    It reads what the application already attached: ``recorder`` (a
    :class:`~dbopt.dashboard.RequestRecorder`, the Requests page), ``stats``
    (a :class:`~dbopt.QueryStats`, the Queries page and the advisor's
    workload), ``monitors`` (:class:`~dbopt.pool.PoolMonitor` s, the Pool page)
    and ``partitions`` (:class:`~dbopt.partitions.PartitionSpec` s of managed
    tables). ``dsn`` (an Engine, URL or libpq string) is the PostgreSQL
    database the Queries, Indexes, Schema & health and Partitions pages
    read, each on a read-only connection of its own, under
    ``statement_timeout_ms``; EXPLAIN and the advisor have their own
    timeouts. Serving a page adds no work to the application's statements.

    Safe by default: ``authorize`` (``authorize(request) -> bool``) or
    ``token`` is required (see :class:`~dbopt.dashboard.http.Guard`); POSTs
    need the page's CSRF value; every response has a strict CSP (no inline
    script or style, nothing from another origin). SQL is shown with its
    literals masked and parameters are never shown unless
    ``show_values=True`` (and the recorder keeps them: ``params="keep"``).
    """

    def __init__(
        self,
        *,
        recorder: RequestRecorder | None = None,
        stats: QueryStats | None = None,
        dsn: Any = None,
        monitors: Iterable[PoolMonitor] = (),
        partitions: Iterable[PartitionSpec] = (),
        authorize: Authorize | None = None,
        token: str | None = None,
        show_values: bool = False,
        statement_timeout_ms: int = 5000,
        explain_timeout_ms: int = 2000,
        advisor_timeout_ms: int = 10_000,
        cache_s: float = 30.0,
        title: str = "dbopt",
    ) -> None:
        if min(statement_timeout_ms, explain_timeout_ms, advisor_timeout_ms) <= 0:
            raise ConfigurationError("the dashboard's timeouts must be positive")
        self.guard = Guard(authorize, token)
        self.recorder = recorder
        self.stats = stats
        self.dsn = dsn
        self.monitors: tuple[PoolMonitor, ...] = tuple(monitors)
        self.partitions: tuple[PartitionSpec, ...] = tuple(partitions)
        self.show_values = bool(show_values)
        self.statement_timeout_ms = statement_timeout_ms
        self.explain_timeout_ms = explain_timeout_ms
        self.advisor_timeout_ms = advisor_timeout_ms
        self.cache_s = cache_s
        self.title = title
        self.advisor = Job("advisor")
        self._explainer: Any = None
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Any]] = {}
        self._pool_marks: dict[str, Any] = {}
        self._pool_history: dict[str, deque[tuple[float, float]]] = {}

    @property
    def params(self) -> str:
        """The text policy of the pages: ``keep`` only when values are shown."""
        return "keep" if self.show_values else "redact"

    # Serving

    def handle(self, request: DashboardRequest) -> DashboardResponse:
        """Answer one request; never raises (a failing page is a 500 with one line)."""
        try:
            response = self._route(request)
        except Exception as exc:
            log.exception("dbopt dashboard: %s %s failed", request.method, request.path)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            response = DashboardResponse.html(
                f"<!DOCTYPE html><title>error</title><p>{e(type(exc).__name__)}: {e(first)}</p>",
                500,
            )
        return security_headers(response)

    def _route(self, request: DashboardRequest) -> DashboardResponse:
        path = request.path.rstrip("/") or "/"
        if path == "/static/app.css":
            return DashboardResponse(200, CSS.encode(), "text/css; charset=utf-8")
        if path == "/static/app.js":
            return DashboardResponse(200, SCRIPT.encode(), "text/javascript; charset=utf-8")
        refused = self.guard.check(request)
        if refused is not None:
            return refused
        if request.method == "POST":
            bad = self.guard.check_post(request)
            if bad is not None:
                return bad
            if path == "/explain":
                return self._explain(request)
            if path == "/indexes/run":
                return self._run_advisor()
            return DashboardResponse.text("not found", 404)
        if request.method not in ("GET", "HEAD"):
            return DashboardResponse.text("method not allowed", 405)
        if path == "/":
            return DashboardResponse.redirect(request.base + "/requests")
        if path == "/api/summary":
            return DashboardResponse.json(self.summary())
        if path == "/indexes/status":
            return DashboardResponse.json(self.advisor.to_dict())
        match = _REQUEST.match(path)
        if match:
            return self._request_page(request, int(match.group(1)))
        pages: dict[str, Callable[[DashboardRequest], str]] = {
            "/requests": self._requests,
            "/queries": self._queries,
            "/indexes": self._indexes,
            "/health": self._health,
            "/partitions": self._partitions,
            "/pool": self._pool,
        }
        render = pages.get(path)
        if render is None:
            return DashboardResponse.text("not found", 404)
        return self._page(request, path, dict(PAGES)[path], render(request))

    def _page(
        self, request: DashboardRequest, current: str, title: str, body: str
    ) -> DashboardResponse:
        csrf, cookie = self.guard.csrf_token(request)
        response = DashboardResponse.html(
            page(request.base, current, title, body, csrf=csrf, brand=self.title)
        )
        if cookie is not None:
            response.headers.append(("Set-Cookie", cookie))
        return response

    def summary(self) -> dict[str, Any]:
        """Counts for polling: recorded requests, their bytes, statements in the stats."""
        rec = self.recorder
        return {
            "requests": len(rec) if rec is not None else 0,
            "bytes": rec.nbytes if rec is not None else 0,
            "max_bytes": rec.max_bytes if rec is not None else 0,
            "statements": len(self.stats) if self.stats is not None else 0,
            "advisor": self.advisor.state,
        }

    def _cached(
        self, key: str, compute: Callable[[], Any], refresh: bool = False
    ) -> tuple[Any, float]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and not refresh and now - hit[0] < self.cache_s:
            return hit[1], now - hit[0]
        value = compute()
        with self._lock:
            self._cache[key] = (now, value)
        return value, 0.0

    def _need_dsn(self) -> str | None:
        if self.dsn is None:
            return '<p class="empty">No database: create the dashboard with <code>dsn=</code>.</p>'
        return None

    # Pages

    def _requests(self, request: DashboardRequest) -> str:
        from dbopt.dashboard.pages import requests_page

        try:
            page_no = int(request.query.get("page", "1"))
        except ValueError:
            page_no = 1
        return requests_page(self.recorder, request.base, page_no, self.params)

    def _request_page(self, request: DashboardRequest, request_id: int) -> DashboardResponse:
        from dbopt.dashboard.pages import request_page

        record = self.recorder.get(request_id) if self.recorder is not None else None
        if record is None:
            return self._page(
                request,
                "/requests",
                "Request not found",
                '<p class="empty">Not recorded, or evicted from the ring.</p>',
            )
        body = request_page(
            record,
            request.base,
            self.params,
            show_values=self.show_values,
            can_explain=self.dsn is not None,
        )
        return self._page(request, "/requests", f"Request {record.name or record.id}", body)

    def _queries(self, request: DashboardRequest) -> str:
        from dbopt.dashboard.pages import queries_page

        joined, error = None, None
        stats = self.stats
        if self.dsn is not None and stats is not None:
            from dbopt.health.statements import statements

            try:
                joined, _ = self._cached(
                    "statements",
                    lambda: statements(
                        self.dsn, stats, statement_timeout_ms=self.statement_timeout_ms
                    ),
                    refresh=request.query.get("refresh") == "1",
                )
            except Exception as exc:  # noqa: BLE001 - the app's side still shows
                error = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        return queries_page(
            self.stats,
            joined,
            self.recorder,
            request.query.get("sort", "total"),
            request.base,
            error,
        )

    def _indexes(self, request: DashboardRequest) -> str:
        from dbopt.dashboard.pages_db import indexes_page

        return self._need_dsn() or indexes_page(self.advisor, request.base, self.stats is not None)

    def _health(self, request: DashboardRequest) -> str:
        from dbopt.dashboard.pages_db import health_page

        missing = self._need_dsn()
        if missing:
            return missing

        def read() -> tuple[Any, Any, Any, dict[str, str]]:
            from dbopt.dashboard.data import space
            from dbopt.health import health
            from dbopt.lint import lint

            errors: dict[str, str] = {}
            results: list[Any] = []
            timeout = self.statement_timeout_ms
            for name, call in (
                ("lint", lambda: lint(self.dsn, statement_timeout_ms=timeout)),
                ("health", lambda: health(self.dsn, statement_timeout_ms=timeout)),
                ("space", lambda: space(self.dsn, statement_timeout_ms=timeout)),
            ):
                try:
                    results.append(call())
                except Exception as exc:  # noqa: BLE001 - the other parts still show
                    errors[name] = (
                        str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                    )
                    results.append(None)
            return results[0], results[1], results[2] or [], errors

        (lint_report, health_report, space_rows, errors), age = self._cached(
            "health", read, refresh=request.query.get("refresh") == "1"
        )
        return health_page(lint_report, health_report, space_rows, errors, age, request.base)

    def _partitions(self, request: DashboardRequest) -> str:
        from dbopt.dashboard.pages_db import partitions_section

        missing = self._need_dsn()
        if missing:
            return missing

        def read() -> str:
            from dbopt.health import health
            from dbopt.partitions import PartitionManager

            report = health(
                self.dsn, checks=["partitions"], statement_timeout_ms=self.statement_timeout_ms
            )
            details = report.checks[0].details if report.checks else []
            if not details:
                return '<p class="empty">No partitioned table in this database.</p>'
            manager = PartitionManager(self.dsn)
            specs = {_qualified(s): s for s in self.partitions}
            out = []
            for row in details[:20]:
                name = str(row["table"])
                spec = specs.get(name.replace('"', ""))
                parts = manager.partitions(name.replace('"', ""))
                check = manager.check(spec) if spec is not None else None
                out.append(partitions_section(name, parts, check, spec, row))
            return "".join(out)

        html, _ = self._cached("partitions", read, refresh=request.query.get("refresh") == "1")
        return str(html)

    def _pool(self, request: DashboardRequest) -> str:
        from dbopt.dashboard.pages_db import pool_page

        snaps = []
        now = time.time()
        for monitor in self.monitors:
            mark = monitor.mark()
            last = self._pool_marks.get(monitor.name)
            self._pool_marks[monitor.name] = mark
            if last is not None:
                recent = monitor.snapshot_between(last, mark)
                if recent.utilization is not None:
                    history = self._pool_history.setdefault(monitor.name, deque(maxlen=_HISTORY))
                    history.append((now, recent.utilization))
            snap = monitor.snapshot()
            snaps.append((snap, snap.findings(monitor.thresholds)))
        return pool_page(snaps, {k: list(v) for k, v in self._pool_history.items()})

    # Actions

    def _explain(self, request: DashboardRequest) -> DashboardResponse:
        if self.dsn is None or self.recorder is None:
            return DashboardResponse.json({"ok": False, "error": "no database to explain on"})
        form = request.form()
        try:
            record = self.recorder.get(int(form.get("request", "")))
            index = int(form.get("index", ""))
        except ValueError:
            return DashboardResponse.json({"ok": False, "error": "bad request"}, 400)
        if record is None or not 0 <= index < len(record.statements):
            return DashboardResponse.json({"ok": False, "error": "statement not recorded"}, 404)
        st = record.statements[index]
        if st.dialect != "postgresql":
            return DashboardResponse.json({"ok": False, "error": "EXPLAIN needs PostgreSQL"})
        from dbopt.report.html_plan import plan_text

        explainer = self._get_explainer()
        params = st.parameters if explainer.params == "keep" else _stand_ins(st.sql)
        why = explainer.why_not(st.sql, params)
        if why is not None:
            return DashboardResponse.json({"ok": False, "error": f"not explained: {why}"})
        try:
            plan = explainer.explain(st.sql, params)
        except Exception as exc:  # noqa: BLE001 - shown beside the statement
            return DashboardResponse.json({"ok": False, "error": str(exc).splitlines()[0]})
        if plan is None:
            return DashboardResponse.json({"ok": False, "error": "not explained"})
        return DashboardResponse.json({"ok": True, "plan": plan_text(plan)})

    def _get_explainer(self) -> Any:
        with self._lock:
            if self._explainer is None:
                from dbopt.postgres.explain import Explainer

                keep = self.show_values and getattr(self.recorder, "params", "") == "keep"
                self._explainer = Explainer(
                    self.dsn,
                    statement_timeout_ms=self.explain_timeout_ms,
                    params="keep" if keep else "redact",
                )
            return self._explainer

    def _run_advisor(self) -> DashboardResponse:
        if self.dsn is None:
            return DashboardResponse.json({"ok": False, "error": "no database"})
        from dbopt.advisor import IndexAdvisor

        workload: Any = self.stats if self.stats is not None else "pg_stat_statements"
        advisor = IndexAdvisor(self.dsn, statement_timeout_ms=self.advisor_timeout_ms)
        if not self.advisor.start(lambda: advisor.advise(workload)):
            return DashboardResponse.json({"ok": False, "error": "the advisor is already running"})
        return DashboardResponse.json({"ok": True, **self.advisor.to_dict()})

    def close(self) -> None:
        """Close the EXPLAIN connection (the dashboard serves on, reopening it when asked)."""
        with self._lock:
            explainer, self._explainer = self._explainer, None
        if explainer is not None:
            explainer.close()

    # Mounts

    def wsgi(self, base: str = "") -> Callable[..., Any]:
        """A WSGI application serving the dashboard (mount it at ``base``, or via SCRIPT_NAME)."""
        from dbopt.dashboard.wsgi import wsgi_app

        return wsgi_app(self, base)

    def asgi(self) -> Callable[..., Any]:
        """An ASGI application: ``fastapi_app.mount("/_dbopt", dashboard.asgi())``."""
        from dbopt.dashboard.asgi import asgi_app

        return asgi_app(self)

    def flask_blueprint(self, name: str = "dbopt_dashboard", url_prefix: str = "/_dbopt") -> Any:
        """A Flask blueprint: ``app.register_blueprint(dashboard.flask_blueprint())``."""
        from dbopt.dashboard.flask import blueprint

        return blueprint(self, name, url_prefix)

    def django_urls(self) -> Sequence[Any]:
        """Django URL patterns: ``path("_dbopt/", include(dashboard.django_urls()))``."""
        from dbopt.dashboard.django import urlpatterns

        return urlpatterns(self)


def _stand_ins(sql: str) -> Any:
    """None for each placeholder of ``sql``, shaped as psycopg wants (the values stay unsent).

    A private Explainer plans the text generically (``$n``, no value sent);
    it only needs to know which placeholders there are.
    """
    found = list(_PLACEHOLDER.finditer(sql.replace("%%", "")))
    if not found:
        return None
    names = [m.group("name") for m in found if m.group("name") is not None]
    if names:
        return dict.fromkeys(names)
    return [None] * len(found)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)


def _qualified(spec: PartitionSpec) -> str:
    table = spec.table
    if "." in table:
        return table
    return f"{spec.schema or 'public'}.{table}"
