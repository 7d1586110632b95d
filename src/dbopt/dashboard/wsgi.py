"""The dashboard as a WSGI application (also what ``dbopt serve`` and the Flask mount run)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from dbopt.dashboard.http import MAX_BODY, DashboardRequest, DashboardResponse

if TYPE_CHECKING:
    from dbopt.dashboard.app import Dashboard

__all__ = ["request_from_environ", "wsgi_app"]

_STATUS = {
    200: "OK",
    303: "See Other",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
}


def request_from_environ(environ: dict[str, Any], base: str, path: str) -> DashboardRequest:
    """A :class:`DashboardRequest` from a WSGI environ (the body read up to 16 KiB)."""
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    body = b""
    if environ.get("REQUEST_METHOD") == "POST":
        try:
            length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
        except ValueError:
            length = 0
        if length > 0:
            body = environ["wsgi.input"].read(length)
    query = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
    return DashboardRequest(
        method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
        path=path,
        base=base.rstrip("/"),
        query=query,
        headers=headers,
        body=body,
        client=environ.get("REMOTE_ADDR"),
        native=environ,
    )


def send(response: DashboardResponse, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Start the WSGI response and return its body."""
    status = f"{response.status} {_STATUS.get(response.status, 'Unknown')}"
    start_response(status, response.header_list())
    return [response.body]


def wsgi_app(dashboard: Dashboard, base: str = "") -> Callable[..., Iterable[bytes]]:
    """A WSGI callable; links use ``SCRIPT_NAME`` + ``base`` as the dashboard's root."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        root = str(environ.get("SCRIPT_NAME", "")).rstrip("/") + base.rstrip("/")
        path = str(environ.get("PATH_INFO", "")) or "/"
        if base and path.startswith(base):
            path = path[len(base.rstrip("/")) :] or "/"
        request = request_from_environ(environ, root, path)
        return send(dashboard.handle(request), start_response)

    return app
