"""The dashboard's framework-neutral HTTP: request, response, authorization and CSRF.

Every mount (WSGI, ASGI, Flask, Django, ``dbopt serve``) turns its request
into a :class:`DashboardRequest`, calls :meth:`Dashboard.handle`, and sends
the :class:`DashboardResponse` back. Nothing here imports a web framework.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

__all__ = [
    "CSP",
    "Authorize",
    "DashboardRequest",
    "DashboardResponse",
    "Guard",
    "parse_cookies",
]

#: Everything the pages load comes from the dashboard itself; no inline script or style.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_AUTH_COOKIE = "dbopt_dashboard"
_CSRF_COOKIE = "dbopt_csrf"
CSRF_HEADER = "x-dbopt-csrf"
#: Largest request body read (the dashboard's POSTs are a few form fields).
MAX_BODY = 16 * 1024


@dataclass
class DashboardRequest:
    """One HTTP request, as every mount gives it to the dashboard.

    ``base`` is where the dashboard is mounted (``"/_dbopt"``, no trailing
    slash), ``path`` the rest (``"/requests/12"``). ``headers`` have
    lower-case names. ``native`` is the framework's own request object (the
    WSGI environ, the ASGI scope, Flask's or Django's request) for an
    ``authorize`` callable that wants the application's session or user.
    """

    method: str
    path: str
    base: str = ""
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    client: str | None = None
    native: Any = None

    @property
    def cookies(self) -> dict[str, str]:
        """The request's cookies."""
        return parse_cookies(self.headers.get("cookie", ""))

    def form(self) -> dict[str, str]:
        """The urlencoded body's fields (first value of each)."""
        fields: dict[str, str] = {}
        for key, value in parse_qsl(self.body[:MAX_BODY].decode("utf-8", "replace")):
            fields.setdefault(key, value)
        return fields


@dataclass
class DashboardResponse:
    """Status, headers and body; the security headers are added by :class:`Guard`."""

    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def html(cls, text: str, status: int = 200) -> DashboardResponse:
        return cls(status, text.encode("utf-8"))

    @classmethod
    def json(cls, data: Any, status: int = 200) -> DashboardResponse:
        body = json.dumps(data, default=str, allow_nan=False).encode("utf-8")
        return cls(status, body, "application/json")

    @classmethod
    def text(cls, text: str, status: int) -> DashboardResponse:
        return cls(status, text.encode("utf-8"), "text/plain; charset=utf-8")

    @classmethod
    def redirect(cls, location: str) -> DashboardResponse:
        return cls(303, b"", "text/plain; charset=utf-8", [("Location", location)])

    def header_list(self) -> list[tuple[str, str]]:
        """Every header to send, Content-Type and Content-Length included."""
        return [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            *self.headers,
        ]


#: ``authorize(request) -> bool``: True lets the request in.
Authorize: TypeAlias = Callable[[DashboardRequest], bool]


def parse_cookies(header: str) -> dict[str, str]:
    """Cookie header -> name: value (malformed cookies are ignored)."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # noqa: BLE001 - a bad cookie header means no cookies
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def _cookie(name: str, value: str, path: str) -> str:
    return f"{name}={value}; Path={path or '/'}; HttpOnly; SameSite=Strict"


class Guard:
    """Who may see the dashboard, and which POSTs are the dashboard's own.

    * ``authorize`` (a callable given the :class:`DashboardRequest`) or
      ``token`` (a secret string) is required. A token is accepted as
      ``Authorization: Bearer <token>``, or once as ``?token=<token>``, which
      answers with a redirect setting an HttpOnly, SameSite=Strict cookie
      (an HMAC of the token, not the token) for the next pages. With both,
      either lets a request in.
    * No credential at all: 401; a credential that is refused: 403.
    * CSRF: every page sets a random ``dbopt_csrf`` cookie (SameSite=Strict)
      and carries the same value in a ``<meta>``; a POST must send it back in
      the ``X-Dbopt-Csrf`` header or a ``csrf`` form field, and when the
      browser sends ``Origin`` it must be this host.
    """

    def __init__(self, authorize: Authorize | None, token: str | None) -> None:
        if authorize is None and not token:
            from dbopt.errors import ConfigurationError

            raise ConfigurationError(
                "the dashboard needs authorize= (a callable given the request) or token=; "
                "it never serves without one"
            )
        self.authorize = authorize
        self.token = token
        self._key = secrets.token_bytes(32)
        self._token_cookie = (
            hmac.new(self._key, token.encode("utf-8"), hashlib.sha256).hexdigest()
            if token
            else None
        )

    def check(self, request: DashboardRequest) -> DashboardResponse | None:
        """None when ``request`` may go on; else the 401/403 (or cookie redirect) to send."""
        presented = False
        if self.token:
            auth = request.headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                presented = True
                if hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()):
                    return None
            cookie = request.cookies.get(_AUTH_COOKIE)
            if cookie is not None and self._token_cookie is not None:
                presented = True
                if hmac.compare_digest(cookie.encode(), self._token_cookie.encode()):
                    return None
            given = request.query.get("token")
            if given is not None:
                presented = True
                if hmac.compare_digest(given.encode(), self.token.encode()):
                    response = DashboardResponse.redirect(request.base + (request.path or "/"))
                    cookie_value = self._token_cookie or ""
                    response.headers.append(
                        ("Set-Cookie", _cookie(_AUTH_COOKIE, cookie_value, request.base))
                    )
                    return response
        if self.authorize is not None:
            try:
                if self.authorize(request):
                    return None
            except Exception:  # noqa: BLE001 - a failing check refuses, never lets in
                return _refused(403)
            return _refused(403)
        return _refused(403 if presented else 401)

    def csrf_token(self, request: DashboardRequest) -> tuple[str, str | None]:
        """The CSRF value for this browser, and a Set-Cookie header when it is new."""
        current = request.cookies.get(_CSRF_COOKIE)
        if current and len(current) == 43 and current.replace("-", "").replace("_", "").isalnum():
            return current, None
        value = secrets.token_urlsafe(32)
        return value, _cookie(_CSRF_COOKIE, value, request.base)

    def check_post(self, request: DashboardRequest) -> DashboardResponse | None:
        """None when a POST carries this browser's CSRF value from this origin."""
        cookie = request.cookies.get(_CSRF_COOKIE, "")
        sent = request.headers.get(CSRF_HEADER) or request.form().get("csrf", "")
        if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
            return DashboardResponse.text("CSRF check failed: reload the page and try again", 403)
        origin = request.headers.get("origin")
        host = request.headers.get("host")
        if origin and host and origin.split("://", 1)[-1] != host:
            return DashboardResponse.text("CSRF check failed: cross-origin POST", 403)
        return None


def _refused(status: int) -> DashboardResponse:
    response = DashboardResponse.text(
        "dbopt dashboard: authorization required" if status == 401 else "dbopt dashboard: refused",
        status,
    )
    if status == 401:
        response.headers.append(("WWW-Authenticate", 'Bearer realm="dbopt"'))
    return response


def security_headers(response: DashboardResponse) -> DashboardResponse:
    """Add the CSP and the other headers every dashboard response carries."""
    response.headers.extend(
        [
            ("Content-Security-Policy", CSP),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", "no-store"),
        ]
    )
    return response


def headers_from(pairs: Mapping[str, str] | list[tuple[str, str]]) -> dict[str, str]:
    """Header pairs -> lower-case names (later values of a repeated name are joined)."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        if key in out:
            out[key] = f"{out[key]}{'; ' if key == 'cookie' else ', '}{value}"
        else:
            out[key] = value
    return out
