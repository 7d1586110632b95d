"""``serve``: the dashboard standalone, on a small threaded WSGI server (``dbopt serve``)."""

from __future__ import annotations

import ipaddress
import socket
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from dbopt.errors import ConfigurationError

if TYPE_CHECKING:
    from dbopt.dashboard.app import Dashboard

__all__ = ["is_loopback", "make_dashboard_server"]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) resolves only to loopback addresses."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def make_dashboard_server(
    dashboard: Dashboard, host: str = "127.0.0.1", port: int = 8700
) -> WSGIServer:
    """A threaded WSGI server for ``dashboard`` at ``host:port`` (``serve_forever()`` it).

    Refuses (:class:`~dbopt.ConfigurationError`) a host that is not loopback
    when the dashboard has no token: on another interface, anyone who can
    reach the port would see the database.
    """
    if not is_loopback(host) and not dashboard.guard.token:
        raise ConfigurationError(
            f"refusing to serve the dashboard on {host!r} without a token: it is not a "
            "loopback address (pass --token, or DBOPT_DASHBOARD_TOKEN)"
        )
    return make_server(
        host, port, dashboard.wsgi(), server_class=_ThreadingServer, handler_class=_QuietHandler
    )
