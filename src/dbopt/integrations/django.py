"""Django: an adapter over ``connection.execute_wrapper`` and a middleware.

The adapter turns every statement Django runs on a connection into a
:class:`dbopt.QueryEvent` for its sinks (and for :func:`dbopt.capture_queries`
blocks). Django installs execute wrappers per connection and per thread, so
they are installed for a block:

    with dbopt.integrations.django.instrument(QueryStats(), using="default"):
        ...

The middleware does that for each request, in a :func:`dbopt.scope` named
after the URL route (``"GET users/<int:pk>/"``; a ``re_path`` regex as
``"GET post/<pk>/"``, or its view name), with per-request counts and an
:class:`dbopt.NPlusOneDetector`. Put it first in ``MIDDLEWARE`` so the
statements of every other middleware are in the request's scope.

Statements of the ORM carry what it was doing (:mod:`._django_orm`): a lazy
foreign key, a related manager, a count per row; findings then name
``select_related``/``prefetch_related`` (or a ``Prefetch``, or
``annotate(Count(...))``) for the exact relation. Statements issued while a
template renders are located at the template file and the line of its tag. Settings, all optional::

    DBOPT = {
        "DETECTOR": True,        # or False, or an NPlusOneDetector of your own
        "HEADERS": False,        # X-DB-Query-Count / X-DB-Query-Time on responses
        "LOGGER": "dbopt.django",# where findings are logged (WARNING)
    }

The middleware is synchronous (Django adapts it under ASGI).
Needs the ``django`` extra: ``pip install 'dbopt[django]'``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from dbopt.core.callsite import capture_stack
from dbopt.core.pipeline import Pipeline, wall_clock
from dbopt.core.scope import scope as dbopt_scope
from dbopt.errors import MissingDependencyError
from dbopt.handle import Handle
from dbopt.integrations._django_orm import orm_context
from dbopt.integrations._requests import RequestSinks, make_detector
from dbopt.typing import Sink

try:
    # No stubs: ``unused-ignore`` keeps this clean once django-stubs are installed.
    from django.conf import settings  # type: ignore[import-untyped,unused-ignore]
    from django.db import connections  # type: ignore[import-untyped,unused-ignore]
    from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped,unused-ignore]
except ImportError as exc:  # pragma: no cover - exercised with django hidden
    raise MissingDependencyError("Django", "django") from exc

__all__ = [
    "COUNT_HEADER",
    "TIME_HEADER",
    "DboptMiddleware",
    "DjangoAdapter",
    "instrument",
    "route_name",
]

COUNT_HEADER = "X-DB-Query-Count"
TIME_HEADER = "X-DB-Query-Time"


class DjangoAdapter(Handle):
    """An execute wrapper feeding sinks; install it with :meth:`installed` or :func:`instrument`.

    One :class:`~dbopt.core.pipeline.Pipeline` per database vendor, so each
    event names its dialect (``postgresql``, ``sqlite``, ``mysql``, ...).
    """

    name = "django"

    def __init__(self, sinks: Iterable[Sink] = (), *, callsite_depth: int = 5) -> None:
        self.sinks = tuple(sinks)
        self.callsite_depth = callsite_depth
        self._pipelines: dict[str, Pipeline] = {}
        self.closed = False

    def _pipeline(self, vendor: str) -> Pipeline:
        pipeline = self._pipelines.get(vendor)
        if pipeline is None:
            pipeline = Pipeline(self.name, vendor, callsite_depth=self.callsite_depth)
            for sink in self.sinks:
                pipeline.add(sink)
            self._pipelines[vendor] = pipeline
        return pipeline

    def close(self) -> None:
        """Detach the sinks: statements pass through unrecorded, scope ends go unheard."""
        self.closed = True
        for pipeline in self._pipelines.values():
            pipeline.clear()
        self._pipelines.clear()

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        if self.closed:
            return execute(sql, params, many, context)
        connection = context.get("connection")
        pipeline = self._pipeline(getattr(connection, "vendor", "unknown"))
        if not pipeline.active:
            return execute(sql, params, many, context)
        stack = capture_stack(pipeline.stack_depth())
        orm = orm_context() if pipeline.wants_orm() else None
        started = time.perf_counter()
        try:
            result = execute(sql, params, many, context)
        except Exception as exc:
            pipeline.emit(
                sql,
                params,
                time.perf_counter() - started,
                wall_clock(started),
                None,
                many,
                exc,
                stack,
                orm,
            )
            raise
        duration = time.perf_counter() - started
        try:
            rowcount = context["cursor"].rowcount
        except Exception:  # noqa: BLE001 - some backends raise after close
            rowcount = None
        pipeline.emit(sql, params, duration, wall_clock(started), rowcount, many, None, stack, orm)
        return result

    @contextmanager
    def installed(self, using: str | Iterable[str] | None = None) -> Iterator[DjangoAdapter]:
        """Install on the connections ``using`` (default: all) of this thread for a block."""
        aliases = [using] if isinstance(using, str) else list(using or connections)
        with ExitStack() as stack:
            for alias in aliases:
                stack.enter_context(connections[alias].execute_wrapper(self))
            yield self


@contextmanager
def instrument(
    *sinks: Sink, using: str | Iterable[str] | None = None, callsite_depth: int = 5
) -> Iterator[DjangoAdapter]:
    """Feed ``sinks`` with the statements Django runs in this thread during the block.

    ``using`` is a database alias or several (default: every configured one).
    With no sinks, the statements still reach :func:`dbopt.capture_queries`.
    """
    adapter = DjangoAdapter(sinks, callsite_depth=callsite_depth)
    try:
        with adapter.installed(using):
            yield adapter
    finally:
        adapter.close()


class DboptMiddleware:
    """Django middleware: a dbopt scope, counts and N+1 findings per request."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        options: dict[str, Any] = dict(getattr(settings, "DBOPT", {}) or {})
        self.headers = bool(options.get("HEADERS", False))
        logger = options.get("LOGGER", "dbopt.django")
        log = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.sinks = RequestSinks(make_detector(options.get("DETECTOR", True), log))
        self.adapter = DjangoAdapter([self.sinks])

    def __call__(self, request: HttpRequest) -> HttpResponse:
        manager = dbopt_scope(
            f"{request.method} {request.path}", method=request.method, path=request.path
        )
        opened = manager.__enter__()
        stats = self.sinks.begin(opened)
        failure: BaseException | None = None
        try:
            with self.adapter.installed():
                response = self.get_response(request)
            if self.headers:
                response[COUNT_HEADER] = str(stats.queries)
                response[TIME_HEADER] = f"{stats.milliseconds:.3f}"
            return response
        except BaseException as exc:
            failure = exc
            raise
        finally:
            route = route_name(getattr(request, "resolver_match", None))
            if route:
                opened.name = f"{request.method} {route}"
            try:
                manager.end(failure)
            finally:
                self.sinks.end(opened)


_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>")
_REGEX_SYNTAX = re.compile(r"[\\^$()\[\]{}*+?|]")


def _readable_regex(pattern: str) -> str | None:
    """``^post/(?P<pk>[0-9]+)/$`` as ``post/<pk>/``; None when it stays a regex."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        match = _NAMED_GROUP.match(pattern, index)
        if match is None:
            out.append(pattern[index])
            index += 1
            continue
        depth, index = 1, match.end()
        while index < len(pattern) and depth:  # skip the group's body
            char = pattern[index]
            if char == "\\":
                index += 1
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            index += 1
        out.append(f"<{match.group(1)}>")
    text = "".join(out).replace("^", "").replace("$", "").replace("\\.", ".")
    text = text.replace("\\-", "-").replace("\\/", "/")
    return None if _REGEX_SYNTAX.search(text) else text


def route_name(match: Any) -> str | None:
    """A readable name for the route of a request's ``resolver_match``.

    A ``path()`` route as written (``users/<int:pk>/``); a ``re_path()`` regex
    with its named groups as ``<name>`` (``post/<pk>/``), or, when it is no
    plain path, the URL pattern's view name (``blog:post_detail``).
    """
    if match is None:
        return None
    route = getattr(match, "route", None)
    if not isinstance(route, str) or not route:
        return None  # the root: the request's path says it
    if not _REGEX_SYNTAX.search(route):
        return route
    readable = _readable_regex(route)
    if readable is not None:
        return readable or None
    name = getattr(match, "view_name", None)
    return name if isinstance(name, str) and name else route
