"""Connection pools: reasoned presets, a monitor, a configuration check and a health probe.

* Presets (:func:`web`, :func:`async_web`, :func:`worker`, :func:`serverless`,
  :func:`pgbouncer`, :func:`analytics`) return a :class:`PoolConfig`, sized
  from a :class:`ConnectionBudget` (:func:`connection_budget` reads it from
  the server) and rendered with ``.sqlalchemy(url)``, ``.psycopg_pool()``,
  ``.session_settings()`` or ``.alter_role_sql(role)``.
* :class:`PoolMonitor` watches a pool: :class:`PoolSnapshot`, log lines,
  Prometheus and OpenTelemetry metrics.
* :func:`check` compares a fleet's pools with the server's limits and
  timeouts and returns a :class:`PoolCheckReport` of findings.
* :func:`ping` / :func:`ping_async` probe for ``/health`` and return a
  :class:`PingResult` (``health_check``/``health_check_async`` are their
  deprecated names).

The reasons for every value are in docs/pool.md.
"""

from __future__ import annotations

from dbopt.pool.budget import (
    ConnectionBudget,
    connection_budget,
    hikari_pool_size,
    pool_size_for,
)
from dbopt.pool.check import PoolCheckReport, Pooler, check
from dbopt.pool.config import PoolConfig
from dbopt.pool.health import PingResult, health_check, health_check_async, ping, ping_async
from dbopt.pool.monitor import PeriodicLog, PoolMonitor
from dbopt.pool.presets import (
    PRESETS,
    analytics,
    async_web,
    pgbouncer,
    serverless,
    web,
    worker,
)
from dbopt.pool.snapshot import PoolSnapshot, Thresholds

__all__ = [
    "PRESETS",
    "ConnectionBudget",
    "PeriodicLog",
    "PingResult",
    "PoolCheckReport",
    "PoolConfig",
    "PoolMonitor",
    "PoolSnapshot",
    "Pooler",
    "Thresholds",
    "analytics",
    "async_web",
    "check",
    "connection_budget",
    "health_check",
    "health_check_async",
    "hikari_pool_size",
    "pgbouncer",
    "ping",
    "ping_async",
    "pool_size_for",
    "serverless",
    "web",
    "worker",
]
