"""The dashboard as Django URL patterns: ``path("_dbopt/", include(dashboard.django_urls()))``.

Each request goes to the dashboard with ``native`` set to Django's
``HttpRequest`` (so ``authorize=lambda r: r.native.user.is_staff`` works
behind the auth middleware). The views are CSRF-exempt for Django's own
middleware: the dashboard checks its own CSRF value on every POST.
Needs the ``django`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dbopt.dashboard.http import MAX_BODY, DashboardRequest, headers_from
from dbopt.errors import MissingDependencyError

if TYPE_CHECKING:
    from dbopt.dashboard.app import Dashboard

__all__ = ["urlpatterns"]


def urlpatterns(dashboard: Dashboard) -> Sequence[Any]:
    """URL patterns serving ``dashboard`` wherever they are included."""
    try:
        from django.http import HttpResponse  # type: ignore[import-untyped,unused-ignore]
        from django.urls import re_path  # type: ignore[import-untyped,unused-ignore]
        from django.views.decorators.csrf import (  # type: ignore[import-untyped,unused-ignore]
            csrf_exempt,
        )
    except ImportError as exc:  # pragma: no cover - exercised with django hidden
        raise MissingDependencyError("Django", "django") from exc

    @csrf_exempt  # type: ignore[untyped-decorator,unused-ignore]
    def serve(request: Any, rest: str = "") -> Any:
        full = request.path
        tail = "/" + rest
        base = full[: len(full) - len(rest)].rstrip("/") if rest else full.rstrip("/")
        dash_request = DashboardRequest(
            method=request.method,
            path=tail,
            base=base,
            query={k: request.GET.get(k) for k in request.GET},
            headers=headers_from(list(request.headers.items())),
            body=request.body[:MAX_BODY] if request.method == "POST" else b"",
            client=request.META.get("REMOTE_ADDR"),
            native=request,
        )
        response = dashboard.handle(dash_request)
        out = HttpResponse(response.body, status=response.status)
        for key, value in response.header_list():
            if key.lower() == "set-cookie":
                name, _, rest_value = value.partition("=")
                cookie_value = rest_value.split(";", 1)[0]
                out.set_cookie(
                    name, cookie_value, path=base or "/", httponly=True, samesite="Strict"
                )
            elif key != "Content-Length":
                out[key] = value
        return out

    return [re_path(r"^(?P<rest>.*)$", serve, name="dbopt-dashboard")]
