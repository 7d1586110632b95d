"""The connection budget: how many connections a fleet may open, and the pool size it implies.

PostgreSQL serves at most ``max_connections`` sessions; some slots are kept
for superusers (``superuser_reserved_connections``) and, from version 16, for
roles with ``pg_use_reserved_connections`` (``reserved_connections``). What is
left, minus a headroom for people, migrations and monitoring, is shared by
every process of every instance of the application.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from dbopt._json import FieldsDict
from dbopt.errors import ConfigurationError, DatabaseError, ServerUnavailableError

__all__ = ["ConnectionBudget", "connection_budget", "hikari_pool_size", "pool_size_for"]


@dataclass(frozen=True)
class ConnectionBudget(FieldsDict):
    """Connection slots of one server, and how many the application may use.

    ``headroom`` defaults to 10 % of ``max_connections`` (at least 3): slots
    left free for psql sessions, migrations, cron jobs and monitoring agents.
    """

    max_connections: int
    superuser_reserved: int = 3
    reserved: int = 0
    headroom: int | None = None

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ConfigurationError("max_connections must be >= 1")
        if self.headroom is None:
            object.__setattr__(self, "headroom", max(3, math.ceil(self.max_connections / 10)))

    @property
    def server_available(self) -> int:
        """Slots ordinary roles can use: max_connections minus the reserved slots."""
        return max(0, self.max_connections - self.superuser_reserved - self.reserved)

    @property
    def available(self) -> int:
        """Slots for the application: :attr:`server_available` minus the headroom."""
        return max(0, self.server_available - (self.headroom or 0))

    def per_process(self, instances: int = 1, processes: int = 1) -> int:
        """The application's slots divided over ``instances`` x ``processes`` (floor)."""
        _check_fleet(instances, processes)
        return self.available // (instances * processes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the numbers and the derived slot counts."""
        return {
            **super().to_dict(),
            "server_available": self.server_available,
            "available": self.available,
        }


def _check_fleet(instances: int, processes: int) -> None:
    if instances < 1 or processes < 1:
        raise ConfigurationError("instances and processes must be >= 1")


def _setting(conn: Any, name: str) -> int | None:
    """``SHOW name`` as an int on a DB-API connection, None when the server lacks it."""
    cur = conn.cursor()
    try:
        cur.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,))
        row = cur.fetchone()
    finally:
        cur.close()
    return int(row[0]) if row is not None else None


def connection_budget(target: Any, *, headroom: int | None = None) -> ConnectionBudget:
    """Read the budget from a live PostgreSQL server.

    ``target`` is a SQLAlchemy ``Engine``, a psycopg connection or a libpq
    connection string. Raises :class:`ServerUnavailableError` when the server
    cannot be reached, :class:`DatabaseError` when the query fails.
    """
    from dbopt.postgres.connect import connect, map_driver_errors, translate

    if hasattr(target, "sync_engine"):
        raise ConfigurationError("pass a sync Engine, a psycopg connection or a libpq string")
    what = "cannot read the connection budget"
    if isinstance(target, str):
        with connect(target, "pool", connect_timeout_s=10) as conn, map_driver_errors(what):
            return _read_budget(conn, headroom)
    if hasattr(target, "raw_connection"):
        dbapi_error = target.dialect.loaded_dbapi.Error
        try:
            raw = target.raw_connection()
        except dbapi_error as exc:
            raise ServerUnavailableError(f"{what}: {exc}") from exc
        try:
            return _read_budget(raw.driver_connection, headroom)
        except dbapi_error as exc:
            raise translate(exc, what) from exc
        finally:
            raw.close()
    with map_driver_errors(what):
        return _read_budget(target, headroom)


def _read_budget(conn: Any, headroom: int | None) -> ConnectionBudget:
    max_connections = _setting(conn, "max_connections")
    if max_connections is None:
        raise DatabaseError("the server reports no max_connections; is it PostgreSQL?")
    return ConnectionBudget(
        max_connections=max_connections,
        superuser_reserved=_setting(conn, "superuser_reserved_connections") or 0,
        reserved=_setting(conn, "reserved_connections") or 0,
        headroom=headroom,
    )


def hikari_pool_size(db_cores: int | None = None, spindles: int = 1) -> int:
    """HikariCP's total pool size for one database: ``cores * 2 + effective spindles``.

    ``db_cores`` are the database server's cores; when None, this machine's
    CPU count stands in (a guess: say it when you know it). ``spindles`` is 1
    for an SSD or a cached working set.
    """
    cores = db_cores if db_cores is not None else (os.cpu_count() or 1)
    if cores < 1 or spindles < 0:
        raise ConfigurationError("db_cores must be >= 1 and spindles >= 0")
    return cores * 2 + spindles


def pool_size_for(
    concurrency: int,
    *,
    budget: ConnectionBudget | None = None,
    instances: int = 1,
    processes: int = 1,
    db_cores: int | None = None,
    spindles: int = 1,
) -> int:
    """Connections one process should hold: its concurrency, capped by its share.

    The share is the budget's :meth:`~ConnectionBudget.per_process` when a
    budget is given; otherwise (and also when ``db_cores`` is given) HikariCP's
    total (:func:`hikari_pool_size`) divided over the fleet, at least 1. Raises
    :class:`ConfigurationError` when the budget cannot give every process one
    connection (the fleet needs a pooler such as PgBouncer).
    """
    if concurrency < 1:
        raise ConfigurationError("concurrency must be >= 1")
    _check_fleet(instances, processes)
    caps: list[int] = []
    if budget is not None:
        share = budget.per_process(instances, processes)
        if share < 1:
            raise ConfigurationError(
                f"{instances} instance(s) x {processes} process(es) exceed the "
                f"{budget.available} connections available on the server: put PgBouncer "
                "in transaction mode in front of it (dbopt.pool.pgbouncer) or raise "
                "max_connections"
            )
        caps.append(share)
    if budget is None or db_cores is not None:
        caps.append(max(1, hikari_pool_size(db_cores, spindles) // (instances * processes)))
    return min(concurrency, *caps)
