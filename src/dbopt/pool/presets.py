"""Named pool presets: a :class:`PoolConfig` per kind of process, each value with its reason.

Every preset takes the shape of the fleet (``processes`` per instance,
``instances``) and a :class:`ConnectionBudget` (from
:func:`connection_budget`) to size the pool; without a budget, HikariCP's
``cores * 2 + spindles`` is shared over the fleet. Any other keyword
overrides a field: ``web(threads=8, statement_timeout_ms=10_000)``. The
reasons are in ``config.reasons`` and in docs/pool.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from typing_extensions import TypedDict, Unpack

from dbopt.pool.budget import ConnectionBudget, pool_size_for
from dbopt.pool.config import PoolConfig

__all__ = [
    "PRESETS",
    "PgBouncerOptions",
    "PoolOverrides",
    "PresetOptions",
    "ServerlessOptions",
    "analytics",
    "async_web",
    "pgbouncer",
    "serverless",
    "web",
    "worker",
]

_SIZE = (
    "the process's concurrency, capped by its share of the server's connection budget "
    "(or of HikariCP's cores*2+spindles when the budget is unknown)"
)
_COMMON = {
    "max_overflow": "overflow connections are opened and closed under load, exactly when "
    "the server can least afford new backends; a fixed pool is predictable",
    "pre_ping": "a round trip per checkout replaces connections killed by a failover, a "
    "restart or an idle timeout instead of failing the caller's first statement",
    "pool_recycle": "connections older than this are replaced: after a failover or DNS "
    "change every connection eventually points at the new primary, and long-lived backends "
    "give back the memory they cached",
    "max_idle": "psycopg_pool closes connections above min_size idle this long",
    "connect_timeout": "a server that does not answer fails the connect quickly instead of "
    "after the kernel's TCP timeout (minutes)",
    "lock_timeout_ms": "a statement queued behind a lock (a migration, a long transaction) "
    "fails instead of piling up every other request behind it",
    "idle_in_transaction_timeout_ms": "a session left idle inside a transaction holds its "
    "locks and the vacuum horizon; the server ends it",
}


def _app_name(name: str | None) -> str:
    if name:
        return name
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return script or "python"


#: Timeouts of a process serving requests behind a proxy (web, async_web, pgbouncer).
_REQUEST_TIMEOUTS = {
    "pool_timeout": 10.0,
    "statement_timeout_ms": 30_000,
    "lock_timeout_ms": 5_000,
    "idle_in_transaction_timeout_ms": 60_000,
}
_REQUEST_REASONS = {
    "pool_timeout": "fail the request rather than queue it past the proxy timeout",
    "statement_timeout_ms": "the common proxy/router timeout",
}


class PoolOverrides(TypedDict, total=False):
    """The :class:`PoolConfig` fields a preset's keywords may set (all but ``name``, ``reasons``).

    ``application_name`` defaults to the script's name; any other field given
    replaces the preset's value, and its reason becomes "set by the caller".
    """

    pool_size: int
    max_overflow: int
    pool_timeout: float
    pool_recycle: float | None
    pre_ping: bool
    max_idle: float | None
    connect_timeout: int
    statement_timeout_ms: int | None
    lock_timeout_ms: int | None
    idle_in_transaction_timeout_ms: int | None
    idle_session_timeout_ms: int | None
    read_only: bool
    application_name: str | None
    startup_options: bool
    prepared_statements: bool


class PresetOptions(PoolOverrides, total=False):
    """Keywords of :func:`web`, :func:`async_web`, :func:`worker` and :func:`analytics`.

    ``processes`` per instance and ``instances`` (default 1 each) are the
    fleet's shape; ``budget`` (a :class:`ConnectionBudget`) and ``db_cores``
    cap the pool as :func:`pool_size_for` says.
    """

    processes: int
    instances: int
    budget: ConnectionBudget | None
    db_cores: int | None


class ServerlessOptions(PoolOverrides, total=False):
    """Keywords of :func:`serverless`: the platform's ``instances`` limit and a ``budget``."""

    instances: int
    budget: ConnectionBudget | None


class PgBouncerOptions(PoolOverrides, total=False):
    """Keywords of :func:`pgbouncer`: the fleet's shape and PgBouncer's ``max_client_conn``."""

    processes: int
    instances: int
    max_client_conn: int | None


def _build(
    name: str,
    fields: dict[str, Any],
    reasons: dict[str, str],
    overrides: PoolOverrides,
) -> PoolConfig:
    merged = {**_COMMON, **reasons}
    fields = {**fields, "application_name": _app_name(overrides.pop("application_name", None))}
    config = PoolConfig(name=name, **fields, reasons=merged)
    if overrides:
        changed = dict.fromkeys(overrides, "set by the caller")
        config = replace(config, **overrides, reasons={**merged, **changed})
    return config


def _sized(
    name: str,
    concurrency: int,
    options: PresetOptions,
    fields: dict[str, Any],
    reasons: dict[str, str],
) -> PoolConfig:
    """A preset sized ``concurrency``, capped by the fleet's share (:func:`pool_size_for`)."""
    size = pool_size_for(
        concurrency,
        budget=options.pop("budget", None),
        instances=options.pop("instances", 1),
        processes=options.pop("processes", 1),
        db_cores=options.pop("db_cores", None),
    )
    return _build(name, {"pool_size": size, **fields}, reasons, options)


def web(threads: int, **options: Unpack[PresetOptions]) -> PoolConfig:
    """A threaded web server (gunicorn/uWSGI workers x threads): one connection per thread."""
    return _sized(
        "web",
        threads,
        options,
        _REQUEST_TIMEOUTS,
        {
            "pool_size": f"{_SIZE}; a thread holds one connection at a time",
            "pool_timeout": "a request that waited this long for a connection is "
            "better failed (503) than queued past the proxy's timeout",
            "statement_timeout_ms": "the common proxy/router timeout: after it the "
            "client is gone, and the query would only burn the server",
        },
    )


def async_web(concurrency: int = 20, **options: Unpack[PresetOptions]) -> PoolConfig:
    """An asyncio web server: many tasks per process share a small pool.

    ``concurrency`` is how many requests one process runs against the
    database at once. Render with ``.sqlalchemy(url)`` for ``create_async_engine``
    or ``.psycopg_pool(async_=True)`` for ``AsyncConnectionPool``.
    """
    return _sized(
        "async_web",
        concurrency,
        options,
        _REQUEST_TIMEOUTS,
        {
            "pool_size": f"{_SIZE}; tasks wait for a connection instead of each opening one",
            **_REQUEST_REASONS,
        },
    )


def worker(concurrency: int, **options: Unpack[PresetOptions]) -> PoolConfig:
    """A background job worker (Celery, RQ, Dramatiq): longer queries, patient checkouts."""
    return _sized(
        "worker",
        concurrency,
        options,
        {
            "pool_timeout": 30.0,
            "statement_timeout_ms": 300_000,
            "lock_timeout_ms": 30_000,
            "idle_in_transaction_timeout_ms": 300_000,
        },
        {
            "pool_size": f"{_SIZE}; one connection per concurrent job",
            "pool_timeout": "a queued job can wait; failing it only retries it later",
            "statement_timeout_ms": "batch statements legitimately run long, runaway "
            "ones still end",
            "lock_timeout_ms": "bulk updates may queue behind others, but not forever",
            "idle_in_transaction_timeout_ms": "jobs may call out between statements "
            "inside a transaction; longer holds locks and the vacuum horizon",
        },
    )


def serverless(
    *, function_timeout: float = 30.0, **options: Unpack[ServerlessOptions]
) -> PoolConfig:
    """A function (AWS Lambda, Cloud Run job) serving one request at a time per instance.

    ``instances`` is the platform's concurrency limit; with a budget, a fleet
    that could exceed it raises :class:`~dbopt.ConfigurationError` (put a
    pooler in front). ``idle_session_timeout`` needs PostgreSQL 14; on 13
    pass ``idle_session_timeout_ms=None``.
    """
    instances = options.pop("instances", 1)
    budget = options.pop("budget", None)
    if budget is not None:
        pool_size_for(1, budget=budget, instances=instances)
    statement_ms = max(1000, int(function_timeout * 800))
    return _build(
        "serverless",
        {
            "pool_size": 1,
            "pool_timeout": 5.0,
            "pool_recycle": 300.0,
            "max_idle": 60.0,
            "connect_timeout": 3,
            "statement_timeout_ms": statement_ms,
            "lock_timeout_ms": 3_000,
            "idle_in_transaction_timeout_ms": 30_000,
            "idle_session_timeout_ms": 300_000,
        },
        {
            "pool_size": "an instance serves one request at a time; the one connection "
            "is kept between warm invocations to skip connection setup",
            "pool_timeout": "nothing else in the instance competes for the connection",
            "pool_recycle": "instances are frozen and thawed; old connections are the "
            "ones most likely cut by NAT gateways and proxies",
            "connect_timeout": "cold starts must not spend the function's time budget "
            "waiting on an unreachable server",
            "statement_timeout_ms": "80 % of function_timeout: the query ends before the "
            "platform kills the function and leaves it running on the server",
            "idle_session_timeout_ms": "frozen instances keep their sessions open; the "
            "server closes them so they do not eat the connection budget",
        },
        options,
    )


def pgbouncer(concurrency: int, **options: Unpack[PgBouncerOptions]) -> PoolConfig:
    """Behind PgBouncer in transaction mode: no startup options, no prepared statements.

    The session settings are meant for :meth:`PoolConfig.alter_role_sql`
    (PgBouncer rejects the ``options`` startup parameter, and a ``SET`` would
    leak to other clients sharing the server connection). Pass
    ``prepared_statements=True`` only for PgBouncer >= 1.21 with
    ``max_prepared_statements`` > 0. ``max_client_conn`` (PgBouncer's limit on
    client connections) caps the fleet's share.
    """
    instances = options.pop("instances", 1)
    processes = options.pop("processes", 1)
    max_client_conn = options.pop("max_client_conn", None)
    size = concurrency
    if max_client_conn is not None:
        client_budget = ConnectionBudget(max_client_conn, superuser_reserved=0, headroom=0)
        size = pool_size_for(
            concurrency, budget=client_budget, instances=instances, processes=processes
        )
    return _build(
        "pgbouncer",
        {
            "pool_size": size,
            **_REQUEST_TIMEOUTS,
            "startup_options": False,
            "prepared_statements": options.pop("prepared_statements", False),
        },
        {
            "pool_size": "the process's concurrency: client connections to PgBouncer are "
            "cheap, PgBouncer's default_pool_size bounds the server connections",
            "startup_options": "PgBouncer rejects the options startup parameter; the "
            "timeouts go to the role with ALTER ROLE ... SET",
            "prepared_statements": "in transaction mode consecutive transactions run on "
            "different server connections, where a statement prepared on another one does "
            "not exist",
            "idle_in_transaction_timeout_ms": "an idle transaction pins a server "
            "connection that every other client is waiting for",
            **_REQUEST_REASONS,
        },
        options,
    )


def analytics(concurrency: int = 4, **options: Unpack[PresetOptions]) -> PoolConfig:
    """Reports, dashboards and exports, typically on a read replica: few long read-only queries."""
    return _sized(
        "analytics",
        concurrency,
        options,
        {
            "pool_timeout": 60.0,
            "pool_recycle": 3600.0,
            "statement_timeout_ms": 600_000,
            "lock_timeout_ms": 60_000,
            "idle_in_transaction_timeout_ms": 600_000,
            "read_only": True,
        },
        {
            "pool_size": f"{_SIZE}; heavy queries each use a core (or several with "
            "parallel workers), more connections only make them slower",
            "pool_timeout": "reports queue behind each other rather than fail",
            "statement_timeout_ms": "long reports finish, an accidental cross join "
            "does not run all night (and on a replica, hold back the primary's vacuum)",
            "lock_timeout_ms": "reads wait behind a migration's exclusive lock, not forever",
            "idle_in_transaction_timeout_ms": "notebooks and BI tools leave "
            "transactions open, holding back vacuum",
            "read_only": "a report cannot write by accident",
        },
    )


#: Preset name → preset function, for CLIs and benchmarks.
PRESETS: dict[str, Callable[..., PoolConfig]] = {
    "web": web,
    "async_web": async_web,
    "worker": worker,
    "serverless": serverless,
    "pgbouncer": pgbouncer,
    "analytics": analytics,
}
