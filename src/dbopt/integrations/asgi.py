"""ASGI middleware (Starlette, FastAPI, any ASGI app): a :func:`dbopt.scope` per request.

::

    app.add_middleware(DboptMiddleware, targets=[engine])      # Starlette / FastAPI
    app = DboptMiddleware(app, targets=[engine])                # any ASGI app

Each HTTP or WebSocket connection runs in its own scope, held in a context
variable of the task that serves it, so concurrent requests on one event
loop (and the threads Starlette runs sync endpoints in, which copy the
context) never share one. The scope is named ``"GET /users/{id}"`` once the
router has matched a route (the route's path template), else after the raw
path; its tags are ``path`` and ``method``. Statements of ``targets`` run
inside are counted and checked by an :class:`dbopt.NPlusOneDetector` whose
findings are logged at WARNING on ``logger`` (default ``"dbopt.asgi"``)
when the request ends. With ``headers=True`` the response carries
``x-db-query-count`` and ``x-db-query-time`` (milliseconds; statements run
after the response started, by a streaming body, are not in them).

The middleware speaks plain ASGI and imports no framework; the ``asgi``
extra installs Starlette for those who want it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.scope import scope as dbopt_scope
from dbopt.handle import Handle
from dbopt.integrations._requests import RequestSinks, RequestStats, instrument_all, make_detector

__all__ = ["COUNT_HEADER", "TIME_HEADER", "DboptMiddleware"]

COUNT_HEADER = "x-db-query-count"
TIME_HEADER = "x-db-query-time"

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class DboptMiddleware(Handle):
    """Wrap an ASGI app so each request is a dbopt scope with its own stats and findings.

    ``detector``: ``True`` (default) for an :class:`NPlusOneDetector` that
    logs, your own ``NPlusOneDetector`` (not attached elsewhere), or
    ``False``. ``close()`` detaches from the targets.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        targets: Iterable[Any] = (),
        detector: NPlusOneDetector | bool = True,
        headers: bool = False,
        logger: str | logging.Logger = "dbopt.asgi",
    ) -> None:
        self.app = app
        self.headers = headers
        log = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.sinks = RequestSinks(make_detector(detector, log))
        self._handles = instrument_all(tuple(targets), self.sinks)

    @property
    def detector(self) -> NPlusOneDetector | None:
        """The detector fed with this app's requests."""
        return self.sinks.detector

    def close(self) -> None:
        """Detach from the targets."""
        for handle in self._handles:
            handle.close()
        self._handles.clear()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "WS" if kind == "websocket" else "GET"))
        path = str(scope.get("path", ""))
        manager = dbopt_scope(f"{method} {path}", method=method, path=path)
        opened = manager.__enter__()
        stats = self.sinks.begin(opened)
        target = _with_headers(send, stats) if self.headers and kind == "http" else send
        failure: BaseException | None = None
        try:
            await self.app(scope, receive, target)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            template = _route_template(scope)
            if template:
                opened.name = f"{method} {template}"
            try:
                if failure is None:
                    manager.__exit__(None, None, None)
                else:
                    manager.__exit__(type(failure), failure, failure.__traceback__)
            finally:
                self.sinks.end(opened)


def _route_template(scope: MutableMapping[str, Any]) -> str | None:
    """The matched route's full path template (``/api/articles/{slug}``), if any.

    FastAPI ≥ 0.16x leaves the route of an included router as declared in
    ``scope["route"]`` (``path=""`` under ``prefix="/api/articles"``) and keeps
    the full one in ``scope["fastapi"]["effective_route_context"]``; a
    Starlette ``Mount`` adds its prefix to ``root_path``.
    """
    extra = scope.get("fastapi")
    if isinstance(extra, dict):
        path = getattr(extra.get("effective_route_context"), "path", None)
        if isinstance(path, str) and path:
            return path
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        return None
    root = scope.get("root_path")
    base = scope.get("app_root_path")
    if isinstance(root, str) and isinstance(base, str) and root.startswith(base):
        path = root[len(base) :] + path  # under a Mount
    return path or None


def _with_headers(send: Send, stats: RequestStats) -> Send:
    async def sender(message: Message) -> None:
        if message.get("type") == "http.response.start":
            headers = list(message.get("headers", ()))
            headers.append((COUNT_HEADER.encode(), str(stats.queries).encode()))
            headers.append((TIME_HEADER.encode(), f"{stats.milliseconds:.3f}".encode()))
            message = {**message, "headers": headers}
        await send(message)

    return sender
