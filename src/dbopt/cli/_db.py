"""The database a command talks to: the URL from ``--dsn`` or ``DATABASE_URL``, checked.

:func:`connect_check` opens one short connection before a command's real
work, so a wrong URL, a server that is down, a refused login, a missing
extension or a too-old server each end the command with one line and their
own exit code instead of a traceback from deep inside a tool. The connection
is :func:`dbopt.postgres.connect.connect`'s, so its errors are the typed ones
the CLI's exit-code table knows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dbopt.cli._errors import CliError, ExitCode
from dbopt.errors import MissingExtensionError

__all__ = [
    "Server",
    "connect_check",
    "database_url",
    "display_url",
    "optional_database_url",
    "sqlalchemy_url",
]


def optional_database_url(dsn: str | None) -> str | None:
    """``dsn``, else ``DATABASE_URL``, else None."""
    return dsn or os.environ.get("DATABASE_URL") or None


def database_url(dsn: str | None) -> str:
    """``dsn``, else ``DATABASE_URL``; a :class:`CliError` (INPUT) when neither is set."""
    url = optional_database_url(dsn)
    if not url:
        raise CliError(
            "no database given: pass --dsn postgresql://user@host/db or set DATABASE_URL",
            ExitCode.INPUT,
        )
    return url


def sqlalchemy_url(url: str) -> str:
    """``url`` as a ``postgresql+psycopg://`` SQLAlchemy URL; INPUT error if it is not one.

    Accepts ``postgres://``, ``postgresql://``, ``postgresql+<driver>://`` and
    libpq ``key=value`` strings.
    """
    from sqlalchemy.engine import URL, make_url

    if "://" not in url:
        if "=" not in url:
            raise CliError(f"not a database URL: {url!r}", ExitCode.INPUT)
        return _from_conninfo(url)
    scheme = url.split("://", 1)[0].lower()
    if scheme == "postgres":
        url = "postgresql" + url[len("postgres") :]
    elif not scheme.startswith("postgresql"):
        raise CliError(
            f"not a PostgreSQL URL (scheme {scheme!r}); use postgresql://user@host:port/db",
            ExitCode.INPUT,
        )
    try:
        parsed: URL = make_url(url)
        _ = parsed.port
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises ArgumentError or ValueError
        raise CliError(f"cannot parse the database URL: {exc}", ExitCode.INPUT) from None
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _from_conninfo(conninfo: str) -> str:
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy.engine import URL

    try:
        params = conninfo_to_dict(conninfo)
    except Exception as exc:  # noqa: BLE001 - psycopg raises ProgrammingError
        raise CliError(f"cannot parse the connection string: {exc}", ExitCode.INPUT) from None
    port = str(params.pop("port", "") or "")
    if port and not port.isdigit():
        raise CliError(f"not a port number in the connection string: {port!r}", ExitCode.INPUT)
    url = URL.create(
        "postgresql+psycopg",
        username=str(params.pop("user", "")) or None,
        password=str(params.pop("password", "")) or None,
        host=str(params.pop("host", "")) or None,
        port=int(port) if port else None,
        database=str(params.pop("dbname", "")) or None,
        query={k: str(v) for k, v in params.items()},
    )
    return url.render_as_string(hide_password=False)


def display_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).set(drivername="postgresql").render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only used for messages
        return "<database URL>"


@dataclass(frozen=True)
class Server:
    """What :func:`connect_check` learned: the URL to use and the server's facts."""

    url: str
    version_num: int
    database: str
    extensions: frozenset[str]

    @property
    def version(self) -> str:
        """``"15.4"``-style version text."""
        major, minor = divmod(self.version_num, 10000)
        return f"{major}.{minor}"


def connect_check(
    dsn: str | None,
    *,
    extensions: tuple[str, ...] = (),
    connect_timeout: int = 5,
) -> Server:
    """Connect once, check the server version (13+) and ``extensions``; return the facts.

    Raises :class:`CliError` (INPUT) for a bad URL, and the typed errors of
    :func:`dbopt.postgres.connect.connect` (:class:`~dbopt.AuthenticationError`,
    :class:`~dbopt.ServerUnavailableError`, ...), :class:`~dbopt.MissingExtensionError`
    and :class:`~dbopt.UnsupportedVersionError`, each with its own exit code.
    """
    from dbopt.postgres.connect import connect, map_driver_errors, require_server_version

    url = sqlalchemy_url(database_url(dsn))
    where = display_url(url)
    with (
        connect(
            url,
            "cli",
            statement_timeout_ms=None,
            lock_timeout_ms=None,
            connect_timeout_s=connect_timeout,
        ) as conn,
        map_driver_errors(f"cannot read the server facts of {where}"),
    ):
        version = int(conn.info.server_version)
        row = conn.execute(
            "SELECT current_database(), coalesce(array_agg(extname::text), '{}') FROM pg_extension"
        ).fetchone()
    require_server_version(version, where)
    database = str(row[0]) if row else ""
    installed = frozenset(row[1]) if row else frozenset()
    for name in extensions:
        if name not in installed:
            raise MissingExtensionError(
                f"the extension {name} is not installed in database {database!r} at {where}; "
                f"run CREATE EXTENSION {name}"
                + (
                    " (it also needs shared_preload_libraries = 'pg_stat_statements')"
                    if name == "pg_stat_statements"
                    else ""
                ),
                name,
            )
    return Server(url=url, version_num=version, database=database, extensions=installed)
