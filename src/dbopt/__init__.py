"""dbopt: see what your application's database access costs, and fix it.

Attach sinks to an engine or connection with :func:`instrument`; every
statement becomes a :class:`QueryEvent` that :class:`QueryLogger`,
:class:`QueryStats` and :func:`capture_queries` read. Mark units of work with
:func:`scope`.
"""

from __future__ import annotations

from dbopt import eager, pool
from dbopt.adapters.dbapi import wrap_dbapi
from dbopt.core.callsite import ignore_packages
from dbopt.core.capture import CapturedQueries, capture_queries
from dbopt.core.events import CallSite, OrmContext, QueryEvent
from dbopt.core.fingerprint import fingerprint, normalize
from dbopt.core.logger import QueryLogger
from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.nplusone_allow import NPlusOneAllow
from dbopt.core.nplusone_findings import NPlusOneError, NPlusOneFinding, NPlusOneWarning
from dbopt.core.scope import Scope, current_scope, scope
from dbopt.core.stats import QueryStats, StatementStats
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
from dbopt.instrument import Instrumentation, instrument
from dbopt.pool.health import PingResult, health_check, health_check_async, ping, ping_async
from dbopt.typing import ScopeAwareSink, Sink

__version__ = "0.1.0"

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
