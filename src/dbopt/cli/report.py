"""``dbopt stats`` (show a saved QueryStats file) and ``dbopt report`` (one HTML file)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

from dbopt.cli._command import Command
from dbopt.cli._db import connect_check, display_url
from dbopt.cli._errors import CliError, ExitCode
from dbopt.cli._output import Progress, add_params_option, markdown_table, write_output

__all__ = ["COMMANDS", "build_report_data", "load_stats"]

_SORTS = ["total_time", "mean_time", "max_time", "p95_time", "calls", "rows", "errors"]


def _stats_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--sort", default="total_time", choices=_SORTS)
    p.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    add_params_option(p, "json")


def _report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="dbopt-report.html", help="file to write")
    p.add_argument("--from", dest="from_file", help="report data saved as JSON (demo)")
    p.add_argument("--stats", help="a saved QueryStats JSON file")
    p.add_argument("--dsn", help="database URL (default: $DATABASE_URL)")
    p.add_argument("--partitions", help="JSON spec file: show these tables' partitions")
    p.add_argument(
        "--advise",
        nargs="?",
        const=True,
        default=None,
        metavar="WORKLOAD",
        help="run the index advisor (on WORKLOAD: a .sql file, a QueryStats .json file or "
        "pg_stat_statements; default --stats FILE, else pg_stat_statements)",
    )
    p.add_argument(
        "--server-stats",
        action="store_true",
        help="with --stats: each statement beside the server's pg_stat_statements row "
        "(calls, time, shared buffers, I/O), joined by fingerprint",
    )
    p.add_argument("--lint", action="store_true", help="run the schema linter")
    p.add_argument("--health", action="store_true", help="run the health report")
    p.add_argument("--title", default="dbopt report")
    p.add_argument("--format", choices=["html", "json"], default="html")
    add_params_option(p, "html and json")


def load_stats(path: str) -> Any:
    """A :class:`QueryStats` from a JSON file; INPUT error when it cannot be read."""
    from dbopt.core.stats import QueryStats

    try:
        with open(path, encoding="utf-8") as fh:
            return QueryStats.from_dict(json.load(fh))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CliError(f"cannot read stats file {path}: {exc}", ExitCode.INPUT) from None


def run_stats(args: argparse.Namespace) -> int:
    """``dbopt stats FILE``."""
    from dbopt.report.text import stats_table

    top = load_stats(args.file).top(args.top, by=args.sort)
    if args.format == "json":
        policy = getattr(args, "params", "redact")
        write_output(json.dumps([s.to_dict(policy) for s in top], indent=2), None)
    elif args.format == "markdown":
        rows = [
            (
                s.calls,
                s.total_time * 1000,
                s.mean_time * 1000,
                s.p95_time * 1000,
                s.rows,
                f"`{s.normalized[:100]}`",
            )
            for s in top
        ]
        write_output(
            markdown_table(("calls", "total ms", "mean ms", "p95 ms", "rows", "statement"), rows),
            None,
        )
    else:
        write_output(stats_table(top), None)
    return ExitCode.OK


def build_report_data(args: argparse.Namespace) -> dict[str, Any]:
    """The report's data from the command's inputs (files and, with ``--dsn``, the database)."""
    data: dict[str, Any] = {
        "title": args.title,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "findings": {},
    }
    summary: list[list[Any]] = []
    stats = load_stats(args.stats) if args.stats else None
    if stats is not None:
        data["statements"] = [s.to_dict("keep") for s in stats.top(25)]
        summary.append(["statements recorded", stats.total_calls])
    wants_db = args.advise or args.lint or args.health or args.partitions or args.server_stats
    if not wants_db:
        if stats is None:
            raise CliError(
                "nothing to report: give --stats FILE, --from FILE, or --dsn with "
                "--advise/--lint/--health/--partitions",
                ExitCode.INPUT,
            )
        data["summary"] = summary
        return data
    server = connect_check(args.dsn)
    data["subtitle"] = f"{display_url(server.url)} (PostgreSQL {server.version})"
    if args.server_stats:
        if stats is None:
            raise CliError("--server-stats needs --stats FILE", ExitCode.INPUT)
        from dbopt.health.statements import statements

        joined = statements(server.url, stats)
        data["server_statements"] = joined.to_dict()
        if joined.available:
            summary.append(["statements found on the server", joined.matched])
        else:
            data.setdefault("notes", []).append(f"pg_stat_statements: {joined.note}")
    if args.advise:
        from dbopt.advisor import IndexAdvisor
        from dbopt.cli.advise import load_source

        workload: Any = stats
        if isinstance(args.advise, str):
            workload = load_source(args.advise)
        if workload is None:
            if "pg_stat_statements" not in server.extensions:
                raise CliError(
                    "--advise needs --stats FILE or the pg_stat_statements extension",
                    ExitCode.EXTENSION,
                )
            workload = "pg_stat_statements"
        with Progress("advising"):
            report = IndexAdvisor(server.url).advise(workload)
        data["advisor"] = report.to_dict()
        summary.append(["indexes recommended", len(report.recommendations)])
    if args.lint:
        from dbopt.lint import lint

        with Progress("linting"):
            findings = lint(server.url).findings
        data["findings"]["Schema lint"] = [f.to_dict() for f in findings]
        summary.append(["lint findings", len(findings)])
    if args.health:
        from dbopt.health import health

        with Progress("checking health"):
            found = health(server.url).findings
        data["findings"]["Health"] = [f.to_dict() for f in found]
        summary.append(["health findings", len(found)])
    if args.partitions:
        from dbopt.cli.partitions import load_specs
        from dbopt.partitions import PartitionManager

        manager = PartitionManager(server.url)
        for spec in load_specs(args.partitions)[:1]:
            plan = manager.plan(spec)
            data["partitions"] = {
                "table": spec.qualified,
                "now": datetime.now(timezone.utc).isoformat(),
                "partitions": [p.to_dict() for p in manager.partitions(spec.qualified)],
                "plan": plan.to_dict(),
                "check": manager.check(spec).to_dict(),
            }
    data["summary"] = summary
    return data


def run_report(args: argparse.Namespace) -> int:
    """``dbopt report``: HTML (or the data as JSON) to ``--output``."""
    from dbopt.report.html import load_data, write_html
    from dbopt.report.privacy import private_data

    if args.from_file:
        try:
            data = load_data(args.from_file)
        except (OSError, ValueError) as exc:
            raise CliError(
                f"cannot read report data {args.from_file}: {exc}", ExitCode.INPUT
            ) from None
    else:
        data = build_report_data(args)
    data = private_data(data, getattr(args, "params", "redact"))
    if args.format == "json":
        write_output(json.dumps(data, indent=2, default=str), args.output)
    else:
        write_html(data, args.output)
    sys.stdout.write(f"{args.output}\n")
    return ExitCode.OK


COMMANDS = (
    Command("stats", "show a saved QueryStats JSON file", _stats_options, run_stats),
    Command(
        "report",
        "write one self-contained HTML report",
        _report_options,
        run_report,
        "Render query statistics, advisor results, partition state and findings "
        "into one HTML file (no network needed to view it).",
    ),
)
