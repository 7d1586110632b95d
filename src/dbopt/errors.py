"""Errors raised by dbopt.

Every error dbopt raises derives from :class:`DboptError`::

    DboptError
    ├── ConfigurationError      a call's arguments or settings are wrong
    ├── InstrumentationError    a target cannot be instrumented (unknown type, ...)
    ├── DatabaseError           a database dbopt itself talked to failed
    │   ├── ServerUnavailableError   the server could not be reached (08xxx, 57P0x,
    │   │                            refused, timed out, lost the connection)
    │   ├── AuthenticationError      the login was refused (28xxx, unknown role)
    │   ├── DatabaseNotFoundError    no database of that name (3D000)
    │   ├── PermissionDeniedError    the role lacks a privilege dbopt needs (42501)
    │   ├── MissingExtensionError    an extension dbopt needs is not installed
    │   ├── UnsupportedVersionError  the server's PostgreSQL is too old
    │   └── QueryCanceledError       a statement or lock timeout, or a cancel
    │                                (57014, 55P03)
    ├── MissingDependencyError  an optional extra is not installed (names the extra)
    └── ReportedError           raised on purpose by a sink the user configured to raise;
        │                        the only kind that escapes the event pipeline
        ├── NPlusOneError        N+1 findings of a scope (action="raise")
        ├── NPlusOneWarning      the same as a warning (action="warn"; also a UserWarning)
        ├── LazyLoadError        a lazy load under dbopt.eager.strict
        ├── QueryBudgetError     a test ran more queries than its budget (pytest plugin)
        └── NPlusOneAssertionError  assert_no_n_plus_one() found one (pytest plugin)

Driver errors are translated at the boundary into the most specific of these
by their SQLSTATE (:func:`dbopt.postgres.connect.translate`), with
``raise ... from exc``; the application's own statement errors are never
wrapped: they reach the application unchanged.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "DatabaseError",
    "DatabaseNotFoundError",
    "DboptError",
    "InstrumentationError",
    "MissingDependencyError",
    "MissingExtensionError",
    "PermissionDeniedError",
    "QueryCanceledError",
    "ReportedError",
    "ServerUnavailableError",
    "UnsupportedVersionError",
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
    """The database server could not be reached, refused the connection or went away."""


class AuthenticationError(DatabaseError):
    """The server refused the login: unknown role, wrong password, no pg_hba entry."""


class DatabaseNotFoundError(DatabaseError):
    """The server has no database of the name given (or it was dropped meanwhile)."""


class PermissionDeniedError(DatabaseError):
    """The role lacks a privilege dbopt needs (``CONNECT``, ``SELECT`` on a view, ...)."""


class MissingExtensionError(DatabaseError):
    """An extension dbopt needs is not installed (or not preloaded); ``extension`` names it."""

    def __init__(self, message: str, extension: str = "") -> None:
        super().__init__(message)
        self.extension = extension


class UnsupportedVersionError(DatabaseError):
    """The server's PostgreSQL version is older than dbopt supports."""


class QueryCanceledError(DatabaseError):
    """A statement outlived ``statement_timeout`` or ``lock_timeout``, or was canceled."""


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
