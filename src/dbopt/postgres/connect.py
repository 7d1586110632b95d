"""The one place dbopt opens a PostgreSQL connection, and the one driver-error mapping.

- :func:`conninfo` turns what the tools accept (an ``Engine``, a URL, a libpq
  string) into a libpq conninfo;
- :func:`connect` opens a connection of dbopt's own: ``application_name``
  ``dbopt-<tool>``, no server-side prepared statements, and the session's
  timeouts (and read-only mode) set with ``set_config``;
- :func:`translate` and :func:`map_driver_errors` turn a driver error into the
  :class:`~dbopt.DboptError` subclass its SQLSTATE class names::

      08xxx, 57P01-57P03, 57P05, 53300  ServerUnavailableError
      28xxx                             AuthenticationError
      3D000, 57P04                      DatabaseNotFoundError
      42501                             PermissionDeniedError
      57014, 55P03                      QueryCanceledError (statement/lock timeout, cancel)
      42P01, 42883, 58P01, 0A000, 55000 MissingExtensionError, only where the caller
                                        names the extension the statement needs
      anything else                     DatabaseError

A failure *while connecting* carries no SQLSTATE (libpq keeps only the
message), so :func:`connect` classifies those itself, where it knows it was
connecting: an unknown role, a refused password, a missing database, a
refused ``CONNECT`` privilege, a conninfo the driver rejects; anything else
at connect time means the server could not be reached.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dbopt.errors import (
    AuthenticationError,
    ConfigurationError,
    DatabaseError,
    DatabaseNotFoundError,
    DboptError,
    MissingExtensionError,
    PermissionDeniedError,
    QueryCanceledError,
    ServerUnavailableError,
    UnsupportedVersionError,
)

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "MIN_SERVER_VERSION",
    "Target",
    "connect",
    "conninfo",
    "map_driver_errors",
    "read_only_connection",
    "require_server_version",
    "translate",
]

#: What the PostgreSQL tools accept as a database: an (Async)Engine, a URL, or a libpq string.
Target = Any

#: Oldest PostgreSQL dbopt supports (``server_version_num``).
MIN_SERVER_VERSION = 130000


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


# -- connecting ------------------------------------------------------------------------


def connect(
    target: Target,
    tool: str,
    *,
    read_only: bool = True,
    autocommit: bool = True,
    statement_timeout_ms: int | None = 5000,
    lock_timeout_ms: int | None = 1000,
    idle_in_transaction_timeout_ms: int | None = None,
    connect_timeout_s: int = 5,
    row_factory: Any = None,
    settings: Mapping[str, str] | None = None,
) -> psycopg.Connection[Any]:
    """A new connection of dbopt's own to ``target``, for the tool named ``tool``.

    The session's ``application_name`` is ``dbopt-<tool>`` and server-side
    prepared statements are off (``prepare_threshold=None``, safe behind
    PgBouncer). ``statement_timeout_ms``, ``lock_timeout_ms`` and
    ``idle_in_transaction_timeout_ms`` are set for the session when not None
    (None keeps the server's setting, 0 means no limit); ``read_only`` sets
    ``default_transaction_read_only``; ``settings`` are further session
    settings (``set_config`` names and values). The caller closes the
    connection (it is a context manager).

    Raises :class:`ConfigurationError` for a target or conninfo the driver
    rejects, :class:`AuthenticationError`, :class:`DatabaseNotFoundError`,
    :class:`PermissionDeniedError` (no ``CONNECT`` privilege) or
    :class:`ServerUnavailableError`; every message names ``tool`` and the
    server (never the password).
    """
    import psycopg

    for name, value in (
        ("statement_timeout_ms", statement_timeout_ms),
        ("lock_timeout_ms", lock_timeout_ms),
        ("idle_in_transaction_timeout_ms", idle_in_transaction_timeout_ms),
    ):
        if value is not None and value < 0:
            raise ConfigurationError(f"{tool}: {name} must be >= 0 (0: no limit), got {value}")
    info = conninfo(target, tool)
    options: dict[str, Any] = {}
    if row_factory is not None:
        options["row_factory"] = row_factory
    try:
        conn = psycopg.connect(
            info,
            autocommit=autocommit,
            connect_timeout=connect_timeout_s,
            application_name=f"dbopt-{tool}",
            prepare_threshold=None,
            **options,
        )
    except psycopg.Error as exc:
        raise _connect_error(exc, tool, info) from exc
    session = {
        "statement_timeout": statement_timeout_ms,
        "lock_timeout": lock_timeout_ms,
        "idle_in_transaction_session_timeout": idle_in_transaction_timeout_ms,
    }
    values = {name: str(int(v)) for name, v in session.items() if v is not None}
    if read_only:
        values["default_transaction_read_only"] = "on"
    values.update(settings or {})
    if values:
        calls = ", ".join("set_config(%s, %s, false)" for _ in values)
        params = [part for item in values.items() for part in item]
        try:
            with map_driver_errors(tool):
                conn.execute(f"SELECT {calls}", params)
        except BaseException:
            conn.close()
            raise
    return conn


@contextmanager
def read_only_connection(
    target: Target,
    *,
    tool: str,
    statement_timeout_ms: int = 5000,
    lock_timeout_ms: int = 1000,
    connect_timeout_s: int = 5,
) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """:func:`connect` read-only, autocommit, rows as dicts, both timeouts; closed on exit.

    Shared by the linter, the health report and the schema tools: nothing they
    run through it can write, ``lock_timeout`` bounds any wait on a lock
    another session holds, and an idle transaction ends after a minute.
    """
    from psycopg.rows import dict_row

    if statement_timeout_ms <= 0 or lock_timeout_ms <= 0:
        raise ConfigurationError("statement_timeout_ms and lock_timeout_ms must be positive")
    with connect(
        target,
        tool,
        read_only=True,
        statement_timeout_ms=statement_timeout_ms,
        lock_timeout_ms=lock_timeout_ms,
        idle_in_transaction_timeout_ms=60_000,
        connect_timeout_s=connect_timeout_s,
        row_factory=dict_row,
    ) as conn:
        yield conn


def require_server_version(version_num: int, where: str) -> None:
    """Raise :class:`UnsupportedVersionError` for a server older than PostgreSQL 13."""
    if version_num < MIN_SERVER_VERSION:
        if version_num >= 100000:
            major = str(version_num // 10000)
        else:
            major = f"{version_num // 10000}.{version_num // 100 % 100}"
        raise UnsupportedVersionError(
            f"{where} runs PostgreSQL {major}; dbopt needs PostgreSQL 13 or newer"
        )


def _where(info: str) -> str:
    """``user@host:port/dbname`` of a conninfo (no password), for messages."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(info)
    except Exception:  # noqa: BLE001 - only used for a message
        return "the database"
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or "5432")
    user = str(params.get("user") or "")
    db = str(params.get("dbname") or "")
    return f"{user + '@' if user else ''}{host}:{port}{'/' + db if db else ''}"


# libpq reports a failed connection attempt without a SQLSTATE; these are the
# server's (and libpq's) messages for each kind, tried in order.
_CONNECT_KINDS: tuple[tuple[type[DboptError], re.Pattern[str]], ...] = (
    (DatabaseNotFoundError, re.compile(r'database "[^"]*" does not exist', re.IGNORECASE)),
    (
        AuthenticationError,
        re.compile(
            r'role "[^"]*" does not exist|authentication failed|no pg_hba\.conf entry|'
            r"not permitted to log in|no password supplied|password is required|"
            r"fe_sendauth|SCRAM",
            re.IGNORECASE,
        ),
    ),
    (PermissionDeniedError, re.compile(r"permission denied", re.IGNORECASE)),
    (
        ConfigurationError,
        re.compile(
            r"invalid (\S+ )?(value|number)|invalid connection option|invalid URI|"
            r"missing \"=\"|unterminated quoted string|unrecognized configuration parameter",
            re.IGNORECASE,
        ),
    ),
)


def _connect_error(exc: Exception, tool: str, info: str) -> DboptError:
    import psycopg

    text = _one_line(exc).removeprefix("connection failed: ").removeprefix("connection is bad: ")
    message = f"dbopt-{tool} cannot connect to {_where(info)}: {text}"
    if getattr(exc, "sqlstate", None):  # not seen from libpq today, but exact when present
        kind: type[DboptError] = type(translate(exc, tool))
        if kind is DatabaseError:
            kind = ServerUnavailableError
        return kind(message)
    if isinstance(exc, psycopg.ProgrammingError):  # the driver rejected the conninfo
        return ConfigurationError(message)
    for kind, pattern in _CONNECT_KINDS:
        if pattern.search(text):
            return kind(message)
    return ServerUnavailableError(message)


# -- driver errors -----------------------------------------------------------------------

#: SQLSTATE (exact, then its two-character class) -> the DboptError type it means.
_BY_SQLSTATE: dict[str, type[DatabaseError]] = {
    "08": ServerUnavailableError,  # connection exception
    "28": AuthenticationError,  # invalid authorization specification
    "3D000": DatabaseNotFoundError,  # invalid_catalog_name
    "42501": PermissionDeniedError,  # insufficient_privilege
    "53300": ServerUnavailableError,  # too_many_connections
    "55P03": QueryCanceledError,  # lock_not_available (lock_timeout, NOWAIT)
    "57014": QueryCanceledError,  # query_canceled (statement_timeout, a cancel)
    "57P01": ServerUnavailableError,  # admin_shutdown
    "57P02": ServerUnavailableError,  # crash_shutdown
    "57P03": ServerUnavailableError,  # cannot_connect_now
    "57P04": DatabaseNotFoundError,  # database_dropped
    "57P05": ServerUnavailableError,  # idle_session_timeout
}

#: What a server without the extension a statement needs raises: no such relation
#: or function, no control file / "is not available" on CREATE EXTENSION, and
#: "must be loaded via shared_preload_libraries" (pg_stat_statements).
_MISSING_EXTENSION = frozenset({"42P01", "42883", "58P01", "0A000", "55000"})


def translate(exc: BaseException, tool: str, *, extension: str | None = None) -> DboptError:
    """The :class:`~dbopt.DboptError` for a driver error ``exc`` raised inside ``tool``.

    ``tool`` starts the message: the tool's name, or what it was doing
    (``"lint could not read the catalog"``).

    Chooses the type by SQLSTATE (see the module docstring); an
    ``OperationalError`` without one (a lost connection) is
    :class:`ServerUnavailableError`. ``extension`` names the extension the
    failed statement needs, so that an undefined relation or function means
    :class:`MissingExtensionError`. A SQLAlchemy ``DBAPIError`` is judged by
    the driver error it wraps (psycopg 3 or psycopg2); a ``DboptError`` is returned unchanged. The
    caller raises the result ``from exc``.
    """
    if isinstance(exc, DboptError):
        return exc
    driver = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    text = f"{tool}: {_one_line(driver)}"
    # psycopg 3 names it sqlstate, psycopg2 pgcode
    state = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)
    if isinstance(state, str) and state:
        if extension is not None and state in _MISSING_EXTENSION:
            return MissingExtensionError(
                f"{text} (the {extension} extension is missing: CREATE EXTENSION {extension})",
                extension,
            )
        kind = _BY_SQLSTATE.get(state) or _BY_SQLSTATE.get(state[:2]) or DatabaseError
        return kind(text)
    # PEP 249's OperationalError without a SQLSTATE: the connection failed or was lost
    if any(cls.__name__ == "OperationalError" for cls in type(driver).__mro__):
        return ServerUnavailableError(text)
    return DatabaseError(text)


@contextmanager
def map_driver_errors(tool: str, *, extension: str | None = None) -> Iterator[None]:
    """Re-raise any psycopg error inside the block as :func:`translate` maps it (``from`` it)."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc, tool, extension=extension) from exc


def _one_line(exc: BaseException) -> str:
    """The first lines of an error's text joined into one (libpq adds hints below)."""
    lines = [" ".join(line.split()) for line in str(exc).strip().splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__
