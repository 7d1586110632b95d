"""dbopt: see what your application's database access costs, and fix it.

Attach sinks to an engine or connection with :func:`instrument`; every
statement becomes a :class:`QueryEvent` that :class:`QueryLogger`,
:class:`QueryStats` and :func:`capture_queries` read. Mark units of work with
:func:`scope`.

``import dbopt`` is cheap and imports no database driver or ORM: the names
below and the feature packages (``dbopt.postgres``, ``dbopt.advisor``,
``dbopt.partitions``, ``dbopt.lint``, ``dbopt.health``, ``dbopt.migrations``,
``dbopt.schema``, ``dbopt.eager``, ``dbopt.pool``, ``dbopt.dashboard``, ...) load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dbopt.errors import (
    AuthenticationError,
    ConfigurationError,
    DatabaseError,
    DatabaseNotFoundError,
    DboptError,
    InstrumentationError,
    MissingDependencyError,
    MissingExtensionError,
    PermissionDeniedError,
    QueryCanceledError,
    ReportedError,
    ServerUnavailableError,
    UnsupportedVersionError,
)
from dbopt.findings import Finding, FindingsReport, Severity
from dbopt.handle import Handle

# Bound eagerly: ``dbopt.instrument`` is also a submodule, and once anything
# imports it Python sets the attribute to the module; the function must win.
from dbopt.instrument import Instrumentation, capture_queries, instrument, wrap_dbapi

if TYPE_CHECKING:
    from dbopt import advisor as advisor
    from dbopt import dashboard as dashboard
    from dbopt import eager, pool
    from dbopt import health as health
    from dbopt import lint as lint
    from dbopt import migrations as migrations
    from dbopt import partitions as partitions
    from dbopt import postgres as postgres
    from dbopt import report as report
    from dbopt import schema as schema
    from dbopt.core.callsite import ignore_packages
    from dbopt.core.capture import CapturedQueries
    from dbopt.core.events import CallSite, OrmContext, QueryEvent
    from dbopt.core.fingerprint import fingerprint, normalize
    from dbopt.core.logger import QueryLogger
    from dbopt.core.nplusone import NPlusOneDetector
    from dbopt.core.nplusone_allow import NPlusOneAllow
    from dbopt.core.nplusone_findings import NPlusOneError, NPlusOneFinding, NPlusOneWarning
    from dbopt.core.scope import Scope, current_scope, scope
    from dbopt.core.stats import QueryStats, StatementStats
    from dbopt.pool.health import PingResult, health_check, health_check_async, ping, ping_async
    from dbopt.typing import ScopeAwareSink, Sink

__version__ = "0.1.0"

#: Public name -> the module that defines it, imported on first access.
_LAZY = {
    "ignore_packages": "dbopt.core.callsite",
    "CapturedQueries": "dbopt.core.capture",
    "CallSite": "dbopt.core.events",
    "OrmContext": "dbopt.core.events",
    "QueryEvent": "dbopt.core.events",
    "fingerprint": "dbopt.core.fingerprint",
    "normalize": "dbopt.core.fingerprint",
    "QueryLogger": "dbopt.core.logger",
    "NPlusOneDetector": "dbopt.core.nplusone",
    "NPlusOneAllow": "dbopt.core.nplusone_allow",
    "NPlusOneError": "dbopt.core.nplusone_findings",
    "NPlusOneFinding": "dbopt.core.nplusone_findings",
    "NPlusOneWarning": "dbopt.core.nplusone_findings",
    "Scope": "dbopt.core.scope",
    "current_scope": "dbopt.core.scope",
    "scope": "dbopt.core.scope",
    "QueryStats": "dbopt.core.stats",
    "StatementStats": "dbopt.core.stats",
    "health_check": "dbopt.pool.health",
    "health_check_async": "dbopt.pool.health",
    "PingResult": "dbopt.pool.health",
    "ping": "dbopt.pool.health",
    "ping_async": "dbopt.pool.health",
    "ScopeAwareSink": "dbopt.typing",
    "Sink": "dbopt.typing",
}

#: Sub-packages reachable as ``dbopt.<name>`` right after ``import dbopt``.
_PACKAGES = (
    "adapters",
    "advisor",
    "cli",
    "core",
    "dashboard",
    "demo",
    "eager",
    "health",
    "integrations",
    "lint",
    "migrations",
    "partitions",
    "pool",
    "postgres",
    "report",
    "schema",
)

__all__ = [
    "AuthenticationError",
    "CallSite",
    "CapturedQueries",
    "ConfigurationError",
    "DatabaseError",
    "DatabaseNotFoundError",
    "DboptError",
    "Finding",
    "FindingsReport",
    "Handle",
    "Instrumentation",
    "InstrumentationError",
    "MissingDependencyError",
    "MissingExtensionError",
    "NPlusOneAllow",
    "NPlusOneDetector",
    "NPlusOneError",
    "NPlusOneFinding",
    "NPlusOneWarning",
    "OrmContext",
    "PermissionDeniedError",
    "PingResult",
    "QueryCanceledError",
    "QueryEvent",
    "QueryLogger",
    "QueryStats",
    "ReportedError",
    "Scope",
    "ScopeAwareSink",
    "ServerUnavailableError",
    "Severity",
    "Sink",
    "StatementStats",
    "UnsupportedVersionError",
    "__version__",
    "capture_queries",
    "current_scope",
    "eager",
    "fingerprint",
    "health_check",
    "health_check_async",
    "ignore_packages",
    "instrument",
    "normalize",
    "ping",
    "ping_async",
    "pool",
    "scope",
    "wrap_dbapi",
]


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is not None:
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value  # resolve once; later lookups skip this hook
        return value
    if name in _PACKAGES:
        return importlib.import_module(f"dbopt.{name}")
    raise AttributeError(f"module 'dbopt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_PACKAGES})
