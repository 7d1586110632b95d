"""The dashboard as a Flask blueprint: ``app.register_blueprint(dashboard.flask_blueprint())``.

The blueprint hands each request to the dashboard (its ``native`` is
``flask.request``, for an ``authorize`` callable that checks the app's
login). Needs the ``flask`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbopt.dashboard.http import MAX_BODY, DashboardRequest, headers_from
from dbopt.errors import MissingDependencyError

if TYPE_CHECKING:
    from dbopt.dashboard.app import Dashboard

__all__ = ["blueprint"]


def blueprint(dashboard: Dashboard, name: str, url_prefix: str) -> Any:
    """A blueprint serving ``dashboard`` at ``url_prefix``."""
    try:
        import flask
    except ImportError as exc:  # pragma: no cover - exercised with flask hidden
        raise MissingDependencyError("Flask", "flask") from exc

    bp = flask.Blueprint(name, __name__, url_prefix=url_prefix.rstrip("/"))

    def serve(path: str = "") -> flask.Response:
        req = flask.request
        base = req.script_root + url_prefix.rstrip("/")
        request = DashboardRequest(
            method=req.method,
            path="/" + path,
            base=base,
            query=dict(req.args.items()),
            headers=headers_from(list(req.headers.items())),
            body=req.get_data(cache=False)[:MAX_BODY] if req.method == "POST" else b"",
            client=req.remote_addr,
            native=req,
        )
        response = dashboard.handle(request)
        out = flask.Response(response.body, status=response.status)
        for key, value in response.header_list():
            if key == "Content-Type":
                out.headers["Content-Type"] = value
            elif key != "Content-Length":
                out.headers.add(key, value)
        return out

    methods = ["GET", "HEAD", "POST"]
    bp.add_url_rule("/", "index", serve, methods=methods)
    bp.add_url_rule("/<path:path>", "page", serve, methods=methods)
    return bp
