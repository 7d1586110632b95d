"""The ``dbopt`` command: argparse over dbopt's public functions.

Subcommands: ``advise``, ``lint``, ``health``, ``partitions plan|apply|check|convert``,
``check-migrations``, ``diff``, ``erd``, ``stats``, ``report``, ``demo``, ``serve``. The database
URL comes from ``--dsn`` or ``DATABASE_URL``. Exit codes are in
:class:`dbopt.cli._errors.ExitCode` (0 ok, 1 findings at or above ``--fail-on``,
2 usage, 3 input, 4 unreachable, 5 authentication, 6 permission,
7 extension, 8 server version, 9 other database error, 10 missing extra,
130 interrupted). ``DBOPT_DEBUG=1`` also prints the traceback of an error; the
exit code stays the same.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from dbopt.cli._errors import ExitCode, classify
from dbopt.errors import DboptError

__all__ = ["ExitCode", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dbopt``."""
    from dbopt import __version__
    from dbopt.cli import advise, checks, demo, partitions, report, serve

    parser = argparse.ArgumentParser(
        prog="dbopt",
        description="See what your database access costs, and fix it.",
        epilog="exit codes: 0 ok, 1 findings at/above --fail-on, 2 usage, 3 input, "
        "4 server unreachable, 5 authentication, 6 permission, 7 missing extension, "
        "8 unsupported server version, 9 database error, 10 missing extra, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"dbopt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (demo, advise, checks, partitions, report, serve):
        for command in module.COMMANDS:
            command.add_to(sub)
    return parser


def _error_types() -> tuple[type[BaseException], ...]:
    import psycopg
    from sqlalchemy.exc import DBAPIError

    return (DboptError, psycopg.Error, DBAPIError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (expected errors print one line, no traceback)."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away: stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.OK
    except KeyboardInterrupt:
        sys.stderr.write("\ndbopt: interrupted\n")
        return ExitCode.INTERRUPTED
    except _error_types() as exc:
        exit_code, message = classify(exc)
        if os.environ.get("DBOPT_DEBUG"):
            traceback.print_exception(exc, file=sys.stderr)
        sys.stderr.write(f"dbopt: error: {message}\n")
        return int(exit_code)
    return int(code)
