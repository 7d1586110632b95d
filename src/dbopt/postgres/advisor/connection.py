"""Turn an Engine, URL or connection string into a libpq conninfo."""

from __future__ import annotations

from typing import Any

from dbopt.errors import ConfigurationError

__all__ = ["conninfo"]


def conninfo(target: Any) -> str:
    """libpq conninfo for a SQLAlchemy ``Engine``/``URL``, a URL string or a key=value string."""
    from sqlalchemy.engine import URL, Engine, make_url

    if isinstance(target, Engine):
        url = target.url
    elif isinstance(target, URL):
        url = target
    elif isinstance(target, str):
        if "://" not in target:
            return target
        url = make_url(target)
    else:
        raise ConfigurationError(f"IndexAdvisor needs an Engine, URL or conninfo, got {target!r}")
    if not url.drivername.startswith("postgres"):
        raise ConfigurationError(f"IndexAdvisor needs PostgreSQL, got {url.drivername}")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
