"""Flask extension: a :func:`dbopt.scope` per request, N+1 findings to the app's logger.

::

    db_ext = DboptFlask(app, targets=[engine])      # or DboptFlask(); ext.init_app(app)

The scope is opened at the WSGI boundary (``init_app`` wraps
``app.wsgi_app``), so it holds every statement of the request: the
``before_request``/``before_app_request`` hooks registered before the
extension, the view, template rendering, ``after_request`` and
``teardown_request``/``teardown_appcontext`` handlers. It is named
``"GET /users/<int:id>"`` (the URL rule, so one name per view; the raw path
when no rule matched) with tags ``endpoint`` and ``path``. Statements of
``targets`` run inside it are counted and checked by an
:class:`dbopt.NPlusOneDetector`; its findings are logged at WARNING on
``app.logger`` when the request ends. With ``headers=True`` (default: the
``DBOPT_DEBUG_HEADERS`` config key, else ``app.debug``) responses carry
``X-DB-Query-Count`` and ``X-DB-Query-Time`` (milliseconds), added once the
request, teardown included, has run (statements of a streamed body run
later and are not in them).

Needs the ``flask`` extra: ``pip install 'dbopt[flask]'``.
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.scope import Scope, scope
from dbopt.errors import MissingDependencyError
from dbopt.handle import Handle
from dbopt.integrations._requests import RequestSinks, RequestStats, instrument_all, make_detector

try:
    import flask
except ImportError as exc:  # pragma: no cover - exercised with flask hidden
    raise MissingDependencyError("Flask", "flask") from exc

__all__ = ["COUNT_HEADER", "TIME_HEADER", "DboptFlask"]

COUNT_HEADER = "X-DB-Query-Count"
TIME_HEADER = "X-DB-Query-Time"

#: (extension, app, scope) of the request this thread or task is serving.
_current: contextvars.ContextVar[tuple[DboptFlask, flask.Flask, Scope] | None] = (
    contextvars.ContextVar("dbopt_flask_request", default=None)
)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DboptFlask(Handle):
    """The extension; one instance may serve several apps (``init_app`` each).

    ``detector``: ``True`` (default) for an :class:`NPlusOneDetector` logging
    to the app's logger, an ``NPlusOneDetector`` of your own (not attached
    elsewhere), or ``False`` for none. ``close()`` detaches from the targets
    (for app factories in tests).
    """

    def __init__(
        self,
        app: flask.Flask | None = None,
        *,
        targets: Iterable[Any] = (),
        detector: NPlusOneDetector | bool = True,
        headers: bool | None = None,
    ) -> None:
        self.targets = tuple(targets)
        self.detector = detector
        self.headers = headers
        self._handles: list[Any] = []
        self._sinks: weakref.WeakKeyDictionary[flask.Flask, RequestSinks] = (
            weakref.WeakKeyDictionary()
        )
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        """Wrap ``app.wsgi_app`` in a request scope and attach its sink to the targets."""
        if app in self._sinks:
            return  # init_app twice: one scope per request is enough
        sinks = RequestSinks(make_detector(self.detector, app.logger))
        self._sinks[app] = sinks
        self._handles.extend(instrument_all(self.targets, sinks))
        app.extensions["dbopt"] = self
        app.wsgi_app = self._wrap(app, app.wsgi_app)  # type: ignore[method-assign,assignment]
        app.url_value_preprocessor(self._name_scope)  # runs before every before_request

    def sinks_for(self, app: flask.Flask) -> RequestSinks:
        """The request sink of ``app`` (its detector is ``.detector``)."""
        unwrap = getattr(app, "_get_current_object", None)  # flask.current_app is a proxy
        return self._sinks[unwrap() if unwrap is not None else app]

    def stats(self) -> RequestStats | None:
        """What the current request ran so far, or None outside a request."""
        current = _current.get()
        if current is None or current[0] is not self:
            return None
        return self._sinks[current[1]].stats(current[2])

    def close(self) -> None:
        """Detach from the targets (the apps' wrappers stay, and only count nothing more)."""
        for handle in self._handles:
            handle.close()
        self._handles.clear()

    # The WSGI boundary

    def _wrap(self, app: flask.Flask, inner: WSGIApp) -> WSGIApp:
        def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            if _current.get() is not None:
                return inner(environ, start_response)  # another DboptFlask scopes it already
            return self._serve(app, inner, environ, start_response)

        wsgi_app.__wrapped__ = inner  # type: ignore[attr-defined]
        return wsgi_app

    def _serve(
        self,
        app: flask.Flask,
        inner: WSGIApp,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
    ) -> Any:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO", "") or "/")
        sinks = self._sinks[app]
        manager = scope(f"{method} {path}", endpoint=None, path=path)
        opened = manager.__enter__()
        sinks.begin(opened)
        token = _current.set((self, app, opened))
        started: list[tuple[str, list[tuple[str, str]], Any]] = []

        def deferred(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [(status, headers, exc_info)]
            return _late_write(start_response, started, self._header_values(app, sinks, opened))

        failure: BaseException | None = None
        try:
            body = inner(environ, deferred)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            _current.reset(token)
            try:
                if failure is None:
                    manager.__exit__(None, None, None)
                else:
                    manager.__exit__(type(failure), failure, failure.__traceback__)
            finally:
                final = sinks.end(opened)
        if started:
            status, headers, exc_info = started[0]
            extra = self._header_values(app, sinks, opened, final)
            start_response(status, [*headers, *extra], exc_info)
        return body

    def _header_values(
        self,
        app: flask.Flask,
        sinks: RequestSinks,
        opened: Scope,
        final: RequestStats | None = None,
    ) -> list[tuple[str, str]]:
        enabled = self.headers
        if enabled is None:
            enabled = bool(app.config.get("DBOPT_DEBUG_HEADERS", app.debug))
        stats = final if final is not None else sinks.stats(opened)
        if not enabled or stats is None:
            return []
        return [(COUNT_HEADER, str(stats.queries)), (TIME_HEADER, f"{stats.milliseconds:.3f}")]

    # Hooks

    def _name_scope(self, endpoint: str | None, values: dict[str, Any] | None) -> None:
        current = _current.get()
        if current is None or current[0] is not self:
            return
        request = flask.request
        opened = current[2]
        if request.url_rule is not None:
            opened.name = f"{request.method} {request.url_rule.rule}"
        opened.tags["endpoint"] = endpoint


def _late_write(
    start_response: Callable[..., Any],
    started: list[tuple[str, list[tuple[str, str]], Any]],
    extra: list[tuple[str, str]],
) -> Callable[[bytes], Any]:
    """PEP 3333's ``write`` callable, for the rare app that uses it: headers go out first."""
    sent: list[Callable[[bytes], Any]] = []

    def write(data: bytes) -> Any:
        if not sent:
            status, headers, exc_info = started.pop()
            sent.append(start_response(status, [*headers, *extra], exc_info))
        return sent[0](data)

    return write
