"""The ``dbopt`` command: argparse over dbopt's public functions."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from dbopt.errors import DboptError

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def _cmd_demo(args: argparse.Namespace) -> int:
    from dbopt.cli.demo import run_demo

    run_demo(rows=args.users, out=sys.stdout)
    return EXIT_OK


def _cmd_stats(args: argparse.Namespace) -> int:
    from dbopt.core.stats import QueryStats
    from dbopt.report.text import stats_table

    try:
        with open(args.file, encoding="utf-8") as fh:
            stats = QueryStats.from_dict(json.load(fh))
    except (OSError, ValueError) as exc:
        raise DboptError(f"cannot read stats file {args.file}: {exc}") from exc
    if args.format == "json":
        json.dump([s.to_dict() for s in stats.top(args.top, by=args.sort)], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(stats_table(stats.top(args.top, by=args.sort)) + "\n")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dbopt``."""
    parser = argparse.ArgumentParser(
        prog="dbopt", description="See what your database access costs, and fix it."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a workload and show what dbopt sees")
    demo.add_argument("--users", type=int, default=500, help="users to generate (default 500)")
    demo.set_defaults(func=_cmd_demo)
    stats = sub.add_parser("stats", help="show a saved QueryStats JSON file")
    stats.add_argument("file")
    stats.add_argument("--top", type=int, default=20)
    stats.add_argument(
        "--sort",
        default="total_time",
        choices=["total_time", "mean_time", "max_time", "p95_time", "calls", "rows", "errors"],
    )
    stats.add_argument("--format", choices=["text", "json"], default="text")
    stats.set_defaults(func=_cmd_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except DboptError as exc:
        sys.stderr.write(f"dbopt: error: {exc}\n")
        return EXIT_ERROR
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away: stop quietly, as Unix tools do
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        sys.stderr.write("dbopt: interrupted\n")
        return 130
    return code
