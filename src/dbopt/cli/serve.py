"""``dbopt serve``: the live dashboard standalone, over a database (and a saved QueryStats)."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

from dbopt.cli._command import Command
from dbopt.cli._db import connect_check
from dbopt.cli._errors import CliError, ExitCode

__all__ = ["COMMANDS"]


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dsn", help="PostgreSQL URL (default: DATABASE_URL)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8700, help="port (default 8700)")
    p.add_argument(
        "--token",
        help="require this token (default: DBOPT_DASHBOARD_TOKEN; on loopback without one, "
        "a random token is made and printed in the URL)",
    )
    p.add_argument("--stats", help="a QueryStats JSON file (QueryStats.to_dict) to show and advise")
    p.add_argument(
        "--show-values", action="store_true", help="show SQL literals (masked by default)"
    )


def _run(args: argparse.Namespace) -> int:
    from dbopt.core.stats import QueryStats
    from dbopt.dashboard import Dashboard
    from dbopt.dashboard.server import is_loopback, make_dashboard_server

    token = args.token or os.environ.get("DBOPT_DASHBOARD_TOKEN")
    if not token and not is_loopback(args.host):
        raise CliError(
            f"refusing to bind {args.host} without a token: pass --token or set "
            "DBOPT_DASHBOARD_TOKEN (only loopback addresses are served without one)",
            ExitCode.USAGE,
        )
    url = connect_check(args.dsn).url
    token = token or secrets.token_urlsafe(18)
    stats = QueryStats()
    if args.stats:
        try:
            stats = QueryStats.from_dict(json.loads(Path(args.stats).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read --stats {args.stats}: {exc}", ExitCode.INPUT) from exc
    dashboard = Dashboard(stats=stats, dsn=url, token=token, show_values=args.show_values)
    httpd = make_dashboard_server(dashboard, args.host, args.port)
    host, port = str(httpd.server_address[0]), int(httpd.server_address[1])
    sys.stdout.write(f"dbopt dashboard on http://{host}:{port}/?token={token}\n")
    sys.stdout.flush()
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
        dashboard.close()
    return 0


COMMANDS = (
    Command(
        "serve",
        "serve the live dashboard for a database",
        _options,
        _run,
        "Serve dbopt's dashboard (queries beside pg_stat_statements, the index "
        "advisor, schema lint, health, space, partitions) for one PostgreSQL database. "
        "Binds 127.0.0.1 by default; any other address needs --token.",
    ),
)
