"""``dbopt demo``: the subcommand that runs :mod:`dbopt.demo`."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields

from dbopt.cli._command import Command
from dbopt.demo import DemoOptions, run_demo

__all__ = ["COMMANDS"]


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dsn",
        help="use this PostgreSQL server (a database is created and dropped on it); "
        "default: DATABASE_URL if set, else start an embedded server "
        "(pip install 'dbopt[embedded]')",
    )
    p.add_argument("--small", action="store_true", help="a small data set (seconds; for tests)")
    p.add_argument("--interactions", type=int, help="interactions to generate (default 600,000)")
    p.add_argument("-o", "--output", default="dbopt-demo-report.html", help="HTML report file")
    p.add_argument("--keep", action="store_true", help="with --dsn: keep the demo database")
    p.add_argument("--slow-ms", type=float, help="slow-query threshold (default 25, small 2)")
    p.add_argument("--pool-seconds", type=float, default=3.0, help="pool load phase length")


def _run(args: argparse.Namespace) -> int:
    # every DemoOptions field is an option of the same name
    given = {f.name: getattr(args, f.name) for f in fields(DemoOptions)}
    given["dsn"] = args.dsn or os.environ.get("DATABASE_URL") or None
    options = DemoOptions(**given)
    run_demo(options, sys.stdout)
    return 0


COMMANDS = (
    Command(
        "demo",
        "show everything dbopt does, on an embedded PostgreSQL",
        _options,
        _run,
        "Create the learning-platform schema, generate data, run an ORM "
        "workload with N+1s, unindexed filters and slow analytics, and show what dbopt "
        "finds and fixes. Writes an HTML report.",
    ),
)
