"""One way to turn what the PostgreSQL tools accept into a libpq conninfo."""

from __future__ import annotations

from typing import Any

from dbopt.errors import ConfigurationError

__all__ = ["Target", "conninfo"]

#: What the PostgreSQL tools accept as a database: an (Async)Engine, a URL, or a libpq string.
Target = Any


def conninfo(target: Target, tool: str = "dbopt") -> str:
    """libpq conninfo for a SQLAlchemy (Async)``Engine``/``URL``, a URL or key=value string.

    Raises :class:`ConfigurationError` (naming ``tool``) for anything else and
    for databases other than PostgreSQL.
    """
    from sqlalchemy.engine import URL, Engine, make_url

    target = getattr(target, "sync_engine", target)  # an AsyncEngine
    if isinstance(target, Engine):
        url = target.url
    elif isinstance(target, URL):
        url = target
    elif isinstance(target, str):
        if "://" not in target:
            return target  # a libpq key=value string
        url = make_url(target)
    else:
        raise ConfigurationError(f"{tool} needs an Engine, URL or conninfo, got {target!r}")
    if not url.drivername.startswith("postgres"):
        raise ConfigurationError(f"{tool} needs PostgreSQL, got {url.drivername}")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
