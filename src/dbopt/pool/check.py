"""``check()``: a fleet's pool configuration against what its server allows.

Codes: POOL001-003 connection budget, POOL010-011 poolers and prepared
statements, POOL020-022 stale and vanished connections, POOL030-031 missing
session timeouts. Reads server settings through one pooled connection and
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import exc as sa_exc

from dbopt.errors import ConfigurationError, DatabaseError, ServerUnavailableError
from dbopt.findings import Finding, FindingsReport, Severity
from dbopt.pool._introspect import PoolSettings, pool_settings
from dbopt.pool.budget import ConnectionBudget
from dbopt.suppress import Suppressions, SuppressionsLike

__all__ = ["PoolCheckReport", "Pooler", "check"]

#: The pooler between the application and the server, if any.
Pooler = Literal["pgbouncer-transaction", "pgbouncer-statement", "pgbouncer-session"]

#: Above this many seconds of tcp_keepalives_idle, vanished clients linger (POOL022).
_KEEPALIVE_MAX = 600

_PG_SETTINGS = (
    "max_connections",
    "superuser_reserved_connections",
    "reserved_connections",
    "idle_session_timeout",
    "idle_in_transaction_session_timeout",
    "statement_timeout",
    "tcp_keepalives_idle",
)


@dataclass(eq=False)
class PoolCheckReport(FindingsReport):
    """What :func:`check` found (worst first), the suppressed findings, and the fleet checked.

    A :class:`~dbopt.findings.FindingsReport`; it iterates, indexes and
    compares like the list of findings ``check`` used to return.
    ``errors`` stays empty: a server that cannot be read raises instead.
    """

    findings: list[Finding]
    suppressed: list[Finding] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    dialect: str = ""
    instances: int = 1
    processes: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the shared report keys plus the fleet checked."""
        return {
            **super().to_dict(),
            "dialect": self.dialect,
            "instances": self.instances,
            "processes": self.processes,
        }


def _read_server(engine: Any) -> dict[str, Any]:
    dialect = engine.dialect.name
    try:
        raw = engine.raw_connection()
    except (sa_exc.DBAPIError, engine.dialect.loaded_dbapi.Error) as exc:
        raise ServerUnavailableError(f"cannot connect to check the pool: {exc}") from exc
    try:
        cur = raw.cursor()
        info: dict[str, Any] = {"dialect": dialect}
        if dialect == "postgresql":
            marks = ", ".join(["%s"] * len(_PG_SETTINGS))
            cur.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN (" + marks + ")",
                _PG_SETTINGS,
            )
            info.update({name: int(value) for name, value in cur.fetchall()})
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            )
            info["current_connections"] = cur.fetchone()[0]
            cur.execute("SELECT inet_client_addr() IS NOT NULL")
            info["tcp"] = bool(cur.fetchone()[0])
        elif dialect in ("mysql", "mariadb"):
            cur.execute("SELECT @@max_connections, @@wait_timeout")
            max_connections, wait_timeout = cur.fetchone()
            info.update(max_connections=int(max_connections), wait_timeout=int(wait_timeout))
        info["prepare_threshold"] = getattr(raw.driver_connection, "prepare_threshold", None)
        info["driver"] = engine.dialect.driver
        cur.close()
        return info
    except Exception as exc:
        raise DatabaseError(f"cannot read the server settings: {exc}") from exc
    finally:
        raw.close()


def check(
    engine: Any,
    *,
    instances: int = 1,
    processes: int = 1,
    pooler: Pooler | None = None,
    pooler_prepared_statements: bool = False,
    headroom: int | None = None,
    suppress: SuppressionsLike = None,
) -> PoolCheckReport:
    """Findings about ``engine``'s pool when ``instances`` x ``processes`` copies of it run.

    ``pooler`` says what sits between the application and PostgreSQL;
    ``pooler_prepared_statements=True`` when PgBouncer >= 1.21 keeps
    prepared statements (``max_prepared_statements`` > 0). ``suppress``
    drops findings by code or object glob (see :mod:`dbopt.suppress`).
    Returns a :class:`PoolCheckReport` (worst first; it iterates like the
    list of findings). Raises :class:`ServerUnavailableError` when no
    connection can be had.
    """
    if instances < 1 or processes < 1:
        raise ConfigurationError("instances and processes must be >= 1")
    if hasattr(engine, "sync_engine"):
        raise ConfigurationError(
            "check() reads the server through a sync Engine; pass one created with the same "
            "pool settings and connect_args (e.g. create_engine(url, **config.sqlalchemy(url)))"
        )
    settings = pool_settings(engine.pool)
    server = _read_server(engine)
    found: list[Finding] = []
    fleet = {"instances": instances, "processes": processes, "pool": settings.kind}
    if server["dialect"] in ("postgresql", "mysql", "mariadb") and pooler is None:
        found += _budget(settings, server, instances * processes, fleet, headroom)
    if server["dialect"] == "postgresql":
        found += _pooler(engine, server, pooler, pooler_prepared_statements)
    found += _stale(settings, server)
    if server["dialect"] == "postgresql":
        found += _timeouts(server)
    kept, silenced = Suppressions.coerce(suppress).split(found)
    return PoolCheckReport(
        findings=sorted(kept, key=lambda f: (-f.severity.rank, f.code)),
        suppressed=silenced,
        dialect=str(server["dialect"]),
        instances=instances,
        processes=processes,
    )


def _budget(
    settings: PoolSettings,
    server: dict[str, Any],
    copies: int,
    fleet: dict[str, Any],
    headroom: int | None,
) -> list[Finding]:
    if settings.kind == "QueuePool" and settings.capacity is None:
        return [
            Finding(
                "POOL003",
                Severity.WARNING,
                "pool",
                "the pool has no upper bound (max_overflow=-1)",
                "under load every waiting request opens a connection until the server "
                "refuses them, and then every process fails at once",
                "create_engine(..., max_overflow=0)  # or a dbopt.pool preset",
                dict(fleet),
            )
        ]
    capacity = settings.capacity
    if capacity is None:
        return []
    budget = ConnectionBudget(
        server["max_connections"],
        superuser_reserved=server.get("superuser_reserved_connections", 0),
        reserved=server.get("reserved_connections", 0),
        headroom=headroom,
    )
    total = capacity * copies
    data = {
        **fleet,
        **budget.to_dict(),
        "per_process": capacity,
        "fleet_total": total,
        "current_connections": server.get("current_connections"),
    }
    share = max(1, budget.available // copies)
    fix = (
        f"size each process's pool to at most {share} connection(s) "
        f"(dbopt.pool.web(threads=..., processes={fleet['processes']}, "
        f"instances={fleet['instances']}, budget=dbopt.pool.connection_budget(engine))), "
        "or put PgBouncer in transaction mode in front of the server (dbopt.pool.pgbouncer)"
    )
    if total > budget.server_available:
        return [
            Finding(
                "POOL001",
                Severity.ERROR,
                "pool",
                f"the fleet may open {total} connections; the server allows "
                f"{budget.server_available} ({budget.max_connections} max_connections minus "
                f"{budget.max_connections - budget.server_available} reserved)",
                "at peak, connections beyond the limit are refused ('too many clients') "
                "and requests fail; deploys that overlap old and new instances reach the "
                "peak first",
                fix,
                data,
            )
        ]
    if total > budget.available:
        return [
            Finding(
                "POOL002",
                Severity.WARNING,
                "pool",
                f"the fleet may open {total} connections, leaving fewer than the "
                f"{budget.headroom} kept free for administration (server allows "
                f"{budget.server_available})",
                "migrations, psql sessions, monitoring and a rolling deploy's extra "
                "instances need slots too",
                fix,
                data,
            )
        ]
    return []


def _pooler(
    engine: Any, server: dict[str, Any], pooler: Pooler | None, pooler_prepared: bool
) -> list[Finding]:
    port = engine.url.port
    if pooler is None:
        if port == 6432:
            return [
                Finding(
                    "POOL011",
                    Severity.INFO,
                    "pool",
                    "port 6432 is PgBouncer's; the pooler checks were skipped",
                    "in transaction mode prepared statements and session settings break",
                    "dbopt.pool.check(engine, pooler='pgbouncer-transaction')",
                    {"port": port},
                )
            ]
        return []
    prepares = server["driver"] == "psycopg" and server["prepare_threshold"] is not None
    if pooler == "pgbouncer-session" or pooler_prepared or not prepares:
        return []
    return [
        Finding(
            "POOL010",
            Severity.ERROR,
            "pool",
            f"psycopg prepares statements (prepare_threshold={server['prepare_threshold']}) "
            f"behind {pooler}",
            "a statement prepared on one server connection is executed later on another, "
            "where it does not exist: 'prepared statement \"_pg3_0\" does not exist'",
            "create_engine(url, connect_args={'prepare_threshold': None})  "
            "# or dbopt.pool.pgbouncer(...).sqlalchemy(url); or PgBouncer >= 1.21 with "
            "max_prepared_statements > 0",
            {"pooler": pooler, "prepare_threshold": server["prepare_threshold"]},
        )
    ]


def _stale(settings: PoolSettings, server: dict[str, Any]) -> list[Finding]:
    if settings.kind == "NullPool" or settings.pre_ping:
        return []
    name = "idle_session_timeout" if server["dialect"] == "postgresql" else "wait_timeout"
    raw = server.get(name) or 0
    idle_s = raw / 1000 if name == "idle_session_timeout" else raw
    recycle = settings.recycle
    data = {"pre_ping": settings.pre_ping, "pool_recycle": recycle, name: idle_s}
    if idle_s and (recycle is None or recycle >= idle_s):
        return [
            Finding(
                "POOL020",
                Severity.WARNING,
                "pool",
                f"the server closes sessions idle for {idle_s:g} s ({name}); the pool keeps "
                f"connections {'forever' if recycle is None else f'{recycle:g} s'} without "
                "pre-ping",
                "a connection that sat idle in the pool is dead when handed out, and the "
                "caller's first statement fails",
                f"create_engine(..., pool_pre_ping=True, pool_recycle={max(1, int(idle_s) - 60)})",
                data,
            )
        ]
    if recycle is None:
        return [
            Finding(
                "POOL021",
                Severity.WARNING,
                "pool",
                "no pre-ping and no pool_recycle: connections are never checked or renewed",
                "after a failover, a server restart, or a firewall/NAT dropping idle flows, "
                "pooled connections are dead and the first statement of each fails",
                "create_engine(..., pool_pre_ping=True, pool_recycle=1800)",
                data,
            )
        ]
    return []


def _timeouts(server: dict[str, Any]) -> list[Finding]:
    found = []
    keepalive = server.get("tcp_keepalives_idle") or 0
    if server.get("tcp") and (keepalive == 0 or keepalive > _KEEPALIVE_MAX):
        found.append(
            Finding(
                "POOL022",
                Severity.INFO,
                "server",
                f"the server probes idle client connections after {keepalive or 7200} s "
                "(tcp_keepalives_idle; 0 is the OS default, 2 h on Linux)",
                "clients that vanish (killed containers, dropped networks) keep their "
                "sessions, slots and locks for hours",
                "ALTER SYSTEM SET tcp_keepalives_idle = 60; ALTER SYSTEM SET "
                "tcp_keepalives_interval = 10; ALTER SYSTEM SET tcp_keepalives_count = 6; "
                "SELECT pg_reload_conf();",
                {"tcp_keepalives_idle": server.get("tcp_keepalives_idle")},
            )
        )
    for code, name, why, example in (
        (
            "POOL030",
            "statement_timeout",
            "a runaway query runs until someone kills it, holding a connection and its "
            "locks while callers have long given up",
            "30s",
        ),
        (
            "POOL031",
            "idle_in_transaction_session_timeout",
            "a session left idle in a transaction holds locks and the vacuum horizon indefinitely",
            "60s",
        ),
    ):
        if not server.get(name):
            found.append(
                Finding(
                    code,
                    Severity.WARNING,
                    "pool",
                    f"pooled connections run with no {name}",
                    why,
                    f"connect_args={{'options': '-c {name}={example}'}} (dbopt.pool presets), "
                    f"or ALTER ROLE \"app\" SET {name} = '{example}' behind PgBouncer",
                    {name: 0},
                )
            )
    return found
