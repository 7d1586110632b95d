"""Exit codes of ``dbopt`` and the translation of errors into one clear line.

A CI step reads the exit code: 0 clean, 1 findings at or above
``--fail-on``, 2 usage, and one code per kind of expected failure, so a
script can tell "the server is down" from "the password is wrong". The code
follows from the error's type alone (:data:`EXIT_CODES`): the tools raise
the typed :class:`~dbopt.DboptError` subclasses that
:mod:`dbopt.postgres.connect` maps from SQLSTATEs; no message is parsed here.
"""

from __future__ import annotations

import enum

from dbopt.errors import (
    AuthenticationError,
    ConfigurationError,
    DatabaseError,
    DatabaseNotFoundError,
    DboptError,
    MissingDependencyError,
    MissingExtensionError,
    PermissionDeniedError,
    QueryCanceledError,
    ServerUnavailableError,
    UnsupportedVersionError,
)
from dbopt.postgres.connect import MIN_SERVER_VERSION, require_server_version, translate

__all__ = [
    "EXIT_CODES",
    "CliError",
    "ExitCode",
    "classify",
    "exit_code",
    "minimum_server_version",
    "require_version",
]


class ExitCode(enum.IntEnum):
    """What the process exit status of ``dbopt`` means."""

    OK = 0
    FINDINGS = 1  # findings at or above --fail-on (or a check that is not ok)
    USAGE = 2  # argparse: unknown option, missing argument
    INPUT = 3  # bad URL, unreadable or invalid file, database does not exist
    UNREACHABLE = 4  # no server at that address, timeout, connection refused
    AUTH = 5  # authentication failed, unknown role
    PERMISSION = 6  # the role lacks a privilege dbopt needs
    EXTENSION = 7  # a required extension is not installed
    VERSION = 8  # the server's version is not supported
    DATABASE = 9  # any other database error
    DEPENDENCY = 10  # an optional Python package is missing
    INTERRUPTED = 130  # Ctrl-C


class CliError(DboptError):
    """An expected failure of a command: one line for stderr and its exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


def minimum_server_version() -> int:
    """The oldest supported PostgreSQL as ``server_version_num`` (130000)."""
    return MIN_SERVER_VERSION


def require_version(version_num: int, where: str) -> None:
    """Raise :class:`~dbopt.UnsupportedVersionError` for a server older than PostgreSQL 13."""
    require_server_version(version_num, where)


#: The exit code of each kind of error; the most specific class in an error's MRO wins.
EXIT_CODES: dict[type[BaseException], ExitCode] = {
    MissingDependencyError: ExitCode.DEPENDENCY,
    ConfigurationError: ExitCode.INPUT,
    DatabaseNotFoundError: ExitCode.INPUT,
    ServerUnavailableError: ExitCode.UNREACHABLE,
    AuthenticationError: ExitCode.AUTH,
    PermissionDeniedError: ExitCode.PERMISSION,
    MissingExtensionError: ExitCode.EXTENSION,
    UnsupportedVersionError: ExitCode.VERSION,
    QueryCanceledError: ExitCode.DATABASE,
    DatabaseError: ExitCode.DATABASE,
    DboptError: ExitCode.DATABASE,
    OSError: ExitCode.INPUT,  # an unreadable file, a directory that does not exist
}


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else text.strip()


def _typed(exc: BaseException) -> BaseException:
    """``exc`` as the DboptError type that says what went wrong.

    A driver error that escaped a tool is translated by its SQLSTATE; so is the
    driver error behind a plain ``DatabaseError`` raised before the tools used
    :func:`~dbopt.postgres.connect.translate`.
    """
    import psycopg
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, (psycopg.Error, DBAPIError)):
        return translate(exc, "dbopt")
    cause = exc.__cause__
    if type(exc) is DatabaseError and isinstance(cause, (psycopg.Error, DBAPIError)):
        typed = translate(cause, "dbopt")
        return exc if type(typed) is DatabaseError else typed
    return exc


def exit_code(exc: BaseException) -> ExitCode:
    """The exit code for an error a command raised (see :data:`EXIT_CODES`)."""
    if isinstance(exc, CliError):
        return exc.code
    for cls in type(_typed(exc)).__mro__:
        code = EXIT_CODES.get(cls)
        if code is not None:
            return code
    return ExitCode.DATABASE


def classify(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and the one-line message for an error a command raised."""
    return exit_code(exc), _first_line(str(exc))
