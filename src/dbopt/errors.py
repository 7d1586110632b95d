"""Errors raised by dbopt.

Every error dbopt raises derives from :class:`DboptError`::

    DboptError
    ├── ConfigurationError      a call's arguments or settings are wrong
    ├── InstrumentationError    a target cannot be instrumented (unknown type, ...)
    ├── DatabaseError           a database dbopt itself talked to failed
    │   └── ServerUnavailableError   the server could not be reached
    ├── MissingDependencyError  an optional extra is not installed (names the extra)
    └── ReportedError           raised on purpose by a sink the user configured to raise;
        │                        the only kind that escapes the event pipeline
        ├── NPlusOneError        N+1 findings of a scope (action="raise")
        ├── NPlusOneWarning      the same as a warning (action="warn"; also a UserWarning)
        ├── LazyLoadError        a lazy load under dbopt.eager.strict
        ├── QueryBudgetError     a test ran more queries than its budget (pytest plugin)
        └── NPlusOneAssertionError  assert_no_n_plus_one() found one (pytest plugin)

Driver errors are translated at the boundary into the most specific of these
with ``raise ... from exc``; the application's own statement errors are never
wrapped: they reach the application unchanged.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DatabaseError",
    "DboptError",
    "InstrumentationError",
    "MissingDependencyError",
    "ReportedError",
    "ServerUnavailableError",
]


class DboptError(Exception):
    """Root of every error dbopt raises."""


class ConfigurationError(DboptError, ValueError):
    """An argument or setting given to dbopt is invalid."""


class InstrumentationError(DboptError, TypeError):
    """A target cannot be instrumented (unsupported type or already closed)."""


class DatabaseError(DboptError):
    """A database that dbopt itself queried (catalog, EXPLAIN, harness) failed."""


class ServerUnavailableError(DatabaseError):
    """The database server could not be reached or refused the connection."""


class MissingDependencyError(DboptError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{package} is not installed; install it with: pip install 'dbopt[{extra}]'"
        )


class ReportedError(DboptError):
    """Raised on purpose by a sink configured to raise (N+1 in tests, strict modes).

    Unlike any other exception from a sink, it propagates out of the event
    pipeline (at scope end, or where the sink documents it).
    """
