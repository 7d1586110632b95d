"""Flask extension: a :func:`dbopt.scope` per request, N+1 findings to the app's logger.

::

    db_ext = DboptFlask(app, targets=[engine])      # or DboptFlask(); ext.init_app(app)

Each request runs in a scope named ``"GET /users/<int:id>"`` (the URL rule,
so one name per view) with tags ``endpoint`` and ``path``. Statements of
``targets`` run inside it are counted and checked by an
:class:`dbopt.NPlusOneDetector`; its findings are logged at WARNING on
``app.logger`` when the request ends. With ``headers=True`` (default: the
``DBOPT_DEBUG_HEADERS`` config key, else ``app.debug``) responses carry
``X-DB-Query-Count`` and ``X-DB-Query-Time`` (milliseconds).

Needs the ``flask`` extra: ``pip install 'dbopt[flask]'``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
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
_G_SCOPE = "_dbopt_scope"


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
        """Register the request hooks on ``app`` and attach its sink to the targets."""
        sinks = RequestSinks(make_detector(self.detector, app.logger))
        self._sinks[app] = sinks
        self._handles.extend(instrument_all(self.targets, sinks))
        app.extensions["dbopt"] = self
        app.before_request(self._open)
        app.after_request(self._add_headers)
        app.teardown_request(self._close)

    def sinks_for(self, app: flask.Flask) -> RequestSinks:
        """The request sink of ``app`` (its detector is ``.detector``)."""
        unwrap = getattr(app, "_get_current_object", None)  # flask.current_app is a proxy
        return self._sinks[unwrap() if unwrap is not None else app]

    def stats(self) -> RequestStats | None:
        """What the current request ran so far, or None outside a request."""
        current: tuple[DboptFlask, Any, Scope] | None = flask.g.get(_G_SCOPE)
        if current is None or current[0] is not self:
            return None
        return self.sinks_for(flask.current_app).stats(current[2])

    def close(self) -> None:
        """Detach from the targets (the apps' hooks stay, and do nothing more)."""
        for handle in self._handles:
            handle.close()
        self._handles.clear()

    # Hooks

    def _open(self) -> None:
        if _G_SCOPE in flask.g:
            return  # opened already (init_app twice, or another DboptFlask on this app)
        request = flask.request
        rule = request.url_rule.rule if request.url_rule is not None else request.path
        manager = scope(f"{request.method} {rule}", endpoint=request.endpoint, path=request.path)
        opened: Scope = manager.__enter__()
        self.sinks_for(flask.current_app).begin(opened)
        setattr(flask.g, _G_SCOPE, (self, manager, opened))

    def _add_headers(self, response: flask.Response) -> flask.Response:
        app = flask.current_app
        enabled = self.headers
        if enabled is None:
            enabled = bool(app.config.get("DBOPT_DEBUG_HEADERS", app.debug))
        if enabled:
            stats = self.stats()
            if stats is not None:
                response.headers[COUNT_HEADER] = str(stats.queries)
                response.headers[TIME_HEADER] = f"{stats.milliseconds:.3f}"
        return response

    def _close(self, exc: BaseException | None) -> None:
        current = flask.g.get(_G_SCOPE)
        if current is None or current[0] is not self:
            return
        flask.g.pop(_G_SCOPE)
        _, manager, opened = current
        try:
            if exc is None:
                manager.__exit__(None, None, None)
            else:
                manager.__exit__(type(exc), exc, exc.__traceback__)
        finally:
            self.sinks_for(flask.current_app).end(opened)
