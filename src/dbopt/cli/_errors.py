"""Exit codes of ``dbopt`` and the translation of errors into one clear line.

A CI step reads the exit code: 0 clean, 1 findings at or above
``--fail-on``, 2 usage, and one code per kind of expected failure, so a
script can tell "the server is down" from "the password is wrong".
"""

from __future__ import annotations

import enum
import re

from dbopt.errors import (
    ConfigurationError,
    DatabaseError,
    DboptError,
    MissingDependencyError,
    ServerUnavailableError,
)

__all__ = ["CliError", "ExitCode", "classify", "minimum_server_version", "require_version"]


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


#: Oldest PostgreSQL dbopt supports (server_version_num).
_MIN_VERSION = 130000


def minimum_server_version() -> int:
    """The oldest supported PostgreSQL as ``server_version_num`` (130000)."""
    return _MIN_VERSION


def require_version(version_num: int, where: str) -> None:
    """Raise :class:`CliError` (VERSION) for a server older than PostgreSQL 13."""
    if version_num < _MIN_VERSION:
        if version_num >= 100000:
            major = str(version_num // 10000)
        else:
            major = f"{version_num // 10000}.{version_num // 100 % 100}"
        raise CliError(
            f"{where} runs PostgreSQL {major}; dbopt needs PostgreSQL 13 or newer",
            ExitCode.VERSION,
        )


_AUTH = re.compile(
    r"password authentication failed|authentication failed|role \S+ does not exist|"
    r"no pg_hba\.conf entry|not permitted to log in|password must be|"
    r"SCRAM|fe_sendauth|no password supplied",
    re.IGNORECASE,
)
_NO_DATABASE = re.compile(r'database "[^"]*" does not exist', re.IGNORECASE)
_PERMISSION = re.compile(r"permission denied|must be (superuser|owner)", re.IGNORECASE)
_UNREACHABLE = re.compile(
    r"connection refused|could not translate host name|timeout expired|"
    r"is the server running|no route to host|network is unreachable|"
    r"could not connect|server closed the connection|connection timed out|"
    r"the database system is (starting up|shutting down)",
    re.IGNORECASE,
)
_BAD_CONNINFO = re.compile(
    r"invalid (\S+ )?value|invalid connection option|invalid URI|missing \"=\"|"
    r"end of string reached|invalid integer value|unterminated quoted string",
    re.IGNORECASE,
)
_EXTENSION = re.compile(
    r'extension "[^"]+" is not available|could not open extension control file|'
    r"must be loaded via .?shared_preload_libraries",
    re.IGNORECASE,
)

_SQLSTATE_CODES = {
    "42501": ExitCode.PERMISSION,
    "3D000": ExitCode.INPUT,
    "28000": ExitCode.AUTH,
    "28P01": ExitCode.AUTH,
    "57P03": ExitCode.UNREACHABLE,
}


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else text.strip()


def _sqlstate(exc: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str):
            return state
        current = current.__cause__ or current.__context__
    return None


def _by_text(text: str) -> ExitCode | None:
    if _NO_DATABASE.search(text) or _BAD_CONNINFO.search(text):
        return ExitCode.INPUT
    if _AUTH.search(text):
        return ExitCode.AUTH
    if _PERMISSION.search(text):
        return ExitCode.PERMISSION
    if _EXTENSION.search(text):
        return ExitCode.EXTENSION
    if _UNREACHABLE.search(text):
        return ExitCode.UNREACHABLE
    return None


def classify(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and the one-line message for an error a command raised."""
    if isinstance(exc, CliError):
        return exc.code, str(exc)
    text = _first_line(str(exc))
    if isinstance(exc, MissingDependencyError):
        return ExitCode.DEPENDENCY, text
    state = _sqlstate(exc)
    if state in _SQLSTATE_CODES:
        return _SQLSTATE_CODES[state], text
    if state is not None and state.startswith("08"):
        return ExitCode.UNREACHABLE, text
    if isinstance(exc, (ConfigurationError, ValueError)):
        return ExitCode.INPUT, text
    by_text = _by_text(str(exc))
    if by_text is not None:
        return by_text, text
    if isinstance(exc, ServerUnavailableError):
        return ExitCode.UNREACHABLE, text
    if isinstance(exc, DatabaseError):
        return ExitCode.DATABASE, text
    if isinstance(exc, OSError):
        return ExitCode.INPUT, text
    return ExitCode.DATABASE, text
