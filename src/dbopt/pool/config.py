"""``PoolConfig``: one typed pool configuration, rendered for SQLAlchemy, psycopg_pool or SQL.

A config says how many connections a process keeps, how long a caller waits
for one, how old and how idle they may get, and which server session
settings every connection runs with. Presets (:mod:`dbopt.pool.presets`)
build configs with a reason for each value; ``dataclasses.replace`` or a
preset's keyword overrides change any field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.engine import URL, make_url

from dbopt.errors import ConfigurationError
from dbopt.postgres import render

__all__ = ["PoolConfig", "quote_ident", "quote_literal"]

_LIBPQ_DRIVERS = ("psycopg", "psycopg2", "psycopg2cffi")
_MYSQL_DRIVERS = ("pymysql", "mysqldb", "mysqlconnector", "aiomysql", "asyncmy")
_SQLITE_DRIVERS = ("pysqlite", "aiosqlite")


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier in double quotes (:func:`dbopt.postgres.render.ident`)."""
    return render.ident(name, force=True)


def quote_literal(value: str) -> str:
    """A PostgreSQL string literal (:func:`dbopt.postgres.render.literal`)."""
    return render.literal(value)


@dataclass(frozen=True)
class PoolConfig:
    """How one process pools its connections, and the session settings they carry.

    Times are in seconds except the ``*_ms`` session timeouts (milliseconds,
    ``None`` or 0: not set). ``pool_recycle`` and ``max_idle`` may be None
    (never). ``startup_options=False`` means the settings cannot travel in the
    connection's startup packet (PgBouncer rejects ``options``): apply them
    with :meth:`alter_role_sql` instead. ``prepared_statements=False`` turns
    off the driver's server-side prepared statements (psycopg
    ``prepare_threshold=None``, asyncpg's statement caches).
    """

    name: str
    pool_size: int
    max_overflow: int = 0
    pool_timeout: float = 10.0
    pool_recycle: float | None = 1800.0
    pre_ping: bool = True
    max_idle: float | None = 600.0
    connect_timeout: int = 5
    statement_timeout_ms: int | None = 30_000
    lock_timeout_ms: int | None = 5_000
    idle_in_transaction_timeout_ms: int | None = 60_000
    idle_session_timeout_ms: int | None = None
    read_only: bool = False
    application_name: str | None = None
    startup_options: bool = True
    prepared_statements: bool = True
    reasons: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.pool_size < 1:
            raise ConfigurationError(f"pool_size must be >= 1, got {self.pool_size}")
        if self.max_overflow < 0:
            raise ConfigurationError("max_overflow must be >= 0 (an unbounded pool has no budget)")
        if self.pool_timeout <= 0 or self.connect_timeout < 1:
            raise ConfigurationError("pool_timeout must be > 0 and connect_timeout >= 1")
        for name in ("statement_timeout_ms", "lock_timeout_ms", "idle_in_transaction_timeout_ms"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigurationError(f"{name} must be >= 0 or None")

    @property
    def max_connections(self) -> int:
        """Most connections one process may open: ``pool_size + max_overflow``."""
        return self.pool_size + self.max_overflow

    def session_settings(self) -> dict[str, str]:
        """Server settings every connection should run with (name → value with unit)."""
        settings: dict[str, str] = {}
        for name, value in (
            ("statement_timeout", self.statement_timeout_ms),
            ("lock_timeout", self.lock_timeout_ms),
            ("idle_in_transaction_session_timeout", self.idle_in_transaction_timeout_ms),
            ("idle_session_timeout", self.idle_session_timeout_ms),
        ):
            if value:
                settings[name] = f"{value}ms"
        if self.read_only:
            settings["default_transaction_read_only"] = "on"
        if self.application_name:
            settings["application_name"] = self.application_name
        return settings

    def startup_options_string(self) -> str | None:
        """The libpq ``options`` value (``-c name=value ...``), or None when not used."""
        if not self.startup_options:
            return None
        parts = [
            f"-c {name}={value}"
            for name, value in self.session_settings().items()
            if name != "application_name"
        ]
        return " ".join(parts) or None

    def alter_role_sql(self, role: str, database: str | None = None) -> list[str]:
        """``ALTER ROLE ... SET`` statements that give ``role`` these settings server-side.

        Use them where a pooler rejects startup options. They apply to every
        new session of the role (in ``database`` only, when given), so give the
        application its own role. ``application_name`` is left out: it is per
        client and PgBouncer passes it through.
        """
        target = quote_ident(role)
        if database is not None:
            target += f" IN DATABASE {quote_ident(database)}"
        return [
            f"ALTER ROLE {target} SET {name} = {quote_literal(value)}"
            for name, value in self.session_settings().items()
            if name != "application_name"
        ]

    def libpq_kwargs(self, *, psycopg3: bool = True) -> dict[str, Any]:
        """Connection keyword arguments for psycopg (3) / psycopg2 ``connect()``."""
        kwargs: dict[str, Any] = {"connect_timeout": self.connect_timeout}
        if self.application_name:
            kwargs["application_name"] = self.application_name
        options = self.startup_options_string()
        if options:
            kwargs["options"] = options
        if psycopg3 and not self.prepared_statements:
            kwargs["prepare_threshold"] = None
        return kwargs

    def _connect_args(self, driver: str) -> dict[str, Any]:
        if driver in _LIBPQ_DRIVERS:
            return self.libpq_kwargs(psycopg3=driver == "psycopg")
        if driver == "asyncpg":
            server_settings = dict(self.session_settings())
            if not self.startup_options:
                server_settings = {
                    k: v for k, v in server_settings.items() if k == "application_name"
                }
            args: dict[str, Any] = {"timeout": self.connect_timeout}
            if server_settings:
                args["server_settings"] = server_settings
            if not self.prepared_statements:
                args["statement_cache_size"] = 0
                args["prepared_statement_cache_size"] = 0
            return args
        if driver in _MYSQL_DRIVERS:
            mysql: dict[str, Any] = {"connect_timeout": self.connect_timeout}
            if self.lock_timeout_ms:
                seconds = max(1, -(-self.lock_timeout_ms // 1000))
                mysql["init_command"] = f"SET SESSION innodb_lock_wait_timeout = {seconds}"
            return mysql
        raise ConfigurationError(
            f"dbopt has no connect arguments for the driver {driver!r}; supported: "
            + ", ".join((*_LIBPQ_DRIVERS, "asyncpg", *_MYSQL_DRIVERS, *_SQLITE_DRIVERS))
        )

    def sqlalchemy(self, url: str | URL | None = None) -> dict[str, Any]:
        """Keyword arguments for ``create_engine(url, **...)`` / ``create_async_engine``.

        The driver is read from ``url`` (``postgresql+psycopg`` when None), since
        each driver spells its connect arguments differently. For SQLite only
        the busy timeout (``lock_timeout_ms``) applies; MySQL and MariaDB get
        the connect and lock wait timeouts only (their statement timeout and
        read-only variables are named differently on each server).
        """
        driver = make_url(url).get_driver_name() if url is not None else "psycopg"
        if driver in _SQLITE_DRIVERS:
            timeout = (self.lock_timeout_ms or 5000) / 1000
            return {"connect_args": {"timeout": timeout}}
        return {
            "pool_size": self.pool_size,
            "max_overflow": self.max_overflow,
            "pool_timeout": self.pool_timeout,
            "pool_recycle": -1 if self.pool_recycle is None else self.pool_recycle,
            "pool_pre_ping": self.pre_ping,
            "connect_args": self._connect_args(driver),
        }

    def psycopg_pool(self, *, async_: bool = False) -> dict[str, Any]:
        """Keyword arguments for psycopg_pool's ``ConnectionPool(conninfo, **...)``.

        With ``async_=True`` the ``check`` callback is the one of
        ``AsyncConnectionPool``. ``open`` is left to you (use the pool as a
        context manager).
        """
        from psycopg_pool import AsyncConnectionPool, ConnectionPool

        kwargs: dict[str, Any] = {
            "min_size": self.pool_size,
            "max_size": self.max_connections,
            "timeout": self.pool_timeout,
            "max_lifetime": self.pool_recycle if self.pool_recycle is not None else 10.0**9,
            "max_idle": self.max_idle if self.max_idle is not None else 10.0**9,
            "kwargs": self.libpq_kwargs(),
        }
        if self.pre_ping:
            pool_class = AsyncConnectionPool if async_ else ConnectionPool
            kwargs["check"] = pool_class.check_connection
        return kwargs

    def explain(self) -> list[str]:
        """One line per field that has a reason: ``name = value: reason``."""
        return [
            f"{name} = {getattr(self, name)!r}: {reason}" for name, reason in self.reasons.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field, reasons included."""
        data = asdict(self)
        data["reasons"] = dict(self.reasons)
        return data
