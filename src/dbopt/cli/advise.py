"""``dbopt advise``: the index advisor over a SQL file, a saved QueryStats or pg_stat_statements."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dbopt.cli._command import Command
from dbopt.cli._db import connect_check
from dbopt.cli._errors import CliError, ExitCode
from dbopt.cli._output import (
    Progress,
    add_params_option,
    exit_for_findings,
    markdown_table,
    write_output,
)

__all__ = ["COMMANDS", "load_source", "render_markdown"]

PG_STAT_STATEMENTS = "pg_stat_statements"


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source",
        nargs="?",
        default=PG_STAT_STATEMENTS,
        help="FILE.sql, FILE.json (QueryStats) or pg_stat_statements (default)",
    )
    p.add_argument("--dsn", help="database URL (default: $DATABASE_URL)")
    p.add_argument(
        "--format", choices=["text", "json", "sql", "alembic", "markdown"], default="text"
    )
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument("--max-indexes", type=int, default=20)
    p.add_argument(
        "--min-saving", type=float, default=0.003, help="share of the workload's cost (0..1)"
    )
    p.add_argument("--max-total-bytes", type=int, default=None, help="storage budget (built size)")
    p.add_argument("--limit", type=int, default=500, help="pg_stat_statements: top statements")
    for flag, text in _FLAGS:
        p.add_argument(flag, action="store_true", help=text)
    for flag, choices, default, text in _CHOICES:
        p.add_argument(flag, choices=choices, default=default, help=text)
    add_params_option(p, "json")
    p.add_argument("--revision", help="alembic: revision id")
    p.add_argument("--down-revision", help="alembic: down_revision")


#: The advisor's on/off options (see :func:`_options`).
_FLAGS = (
    ("--verify", "measure with EXPLAIN ANALYZE (executes)"),
    ("--install-hypopg", "CREATE EXTENSION hypopg if missing"),
    ("--real-indexes", "without hypopg, price with real indexes in a rolled-back transaction"),
    (
        "--fail-on-error",
        "exit 3 when a workload statement cannot be parsed or explained "
        "(the others are still advised and reported)",
    ),
    (
        "--no-probe-risk",
        "trust the planner's price of repeated nested-loop index probes (by default they "
        "are priced with the heap pages they re-read beyond shared_buffers)",
    ),
)
#: Its options that take one of a few values: flag, choices, default, help.
_CHOICES = (
    (
        "--fail-on",
        ["info", "warning", "error", "none"],
        "error",
        "exit 1 when an existing-index finding is at or above this (default error)",
    ),
    (
        "--write-window",
        ["auto", "counters", "workload", "none"],
        "auto",
        "which writes each index is charged for (default auto: the workload's own period)",
    ),
)


def load_source(source: str) -> Any:
    """The workload argument for :meth:`IndexAdvisor.advise` named by ``source``."""
    from dbopt.core.stats import QueryStats

    if source == PG_STAT_STATEMENTS:
        return source
    path = Path(source)
    if not path.is_file():
        raise CliError(
            f"no such workload file: {source} (give a .sql file, a QueryStats .json file "
            f"or {PG_STAT_STATEMENTS})",
            ExitCode.INPUT,
        )
    if path.suffix == ".json":
        try:
            return QueryStats.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CliError(f"cannot read QueryStats file {source}: {exc}", ExitCode.INPUT) from None
    if path.suffix == ".sql":
        return path
    raise CliError(f"unknown workload file type: {source} (.sql or .json)", ExitCode.INPUT)


def render_markdown(report: Any) -> str:
    """An :class:`AdvisorReport` as Markdown: recommendations, DDL, findings, errors."""
    from dbopt.cli._output import markdown_findings

    lines = [
        "## Index advisor",
        "",
        f"Method: `{report.method}`; workload cost {report.total_cost_before:,.0f} → "
        f"{report.total_cost_after:,.0f}; {len(report.statements)} statement(s).",
        "",
    ]
    lines.extend(f"> {note}" for note in report.notes)
    if report.recommendations:
        rows = [
            (
                f"`{r.name}`",
                r.label,
                f"{r.size_bytes / 1024:,.0f} kB",
                f"{r.saving_share:.0%}",
                len(r.statements),
            )
            for r in report.recommendations
        ]
        lines += ["", markdown_table(("name", "index", "size", "share", "statements"), rows)]
        lines += ["", "```sql", report.to_sql().rstrip(), "```"]
    else:
        lines.append("No index to add.")
    lines += ["", markdown_findings(report.findings, "Existing indexes")]
    if report.errors:
        lines += ["## Statements not advised", ""]
        lines += [
            f"- {'line ' + str(e.line) + ': ' if e.line is not None else ''}"
            f"`{' '.join(e.sql.split())[:80]}`: {e.message}"
            for e in report.errors
        ]
    if report.hotspots:
        lines += ["", "## Hot statements no index fixes", ""]
        lines += [
            f"- `{' '.join(h.sql.split())[:80]}`: {h.total_time_s:,.3f} s "
            f"({h.time_share:.0%} of measured time), {h.calls} call(s)"
            + (f", dominated by {h.dominant}" if h.dominant else "")
            for h in report.hotspots
        ]
    if report.rejected:
        lines += ["", "## Not recommended", ""]
        lines += [f"- {r.label}: {r.message}" for r in report.rejected]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Run ``dbopt advise``."""
    from dbopt.advisor import IndexAdvisor, PgStatStatements

    workload = load_source(args.source)
    server = connect_check(
        args.dsn, extensions=(PG_STAT_STATEMENTS,) if workload == PG_STAT_STATEMENTS else ()
    )
    if workload == PG_STAT_STATEMENTS:
        workload = PgStatStatements(limit=args.limit)
    advisor = IndexAdvisor(
        server.url,
        max_indexes=args.max_indexes,
        min_saving=args.min_saving,
        max_total_bytes=args.max_total_bytes,
        install_hypopg=args.install_hypopg,
        real_indexes=args.real_indexes,
        write_window=args.write_window,
        probe_risk=not args.no_probe_risk,
    )
    with Progress("advising"):
        report = advisor.advise(workload, verify=args.verify)
    if args.format == "json":
        from dbopt.report.privacy import private_data

        data = private_data(report.to_dict(), getattr(args, "params", "redact"))
        text = json.dumps(data, indent=2, default=str)
    elif args.format == "sql":
        text = report.to_sql()
    elif args.format == "alembic":
        text = report.to_alembic(revision=args.revision, down_revision=args.down_revision)
    elif args.format == "markdown":
        text = render_markdown(report)
    else:
        text = report.to_text()
    write_output(text, args.output)
    if args.output and args.output != "-":
        sys.stderr.write(f"wrote {args.output}\n")
    if report.errors:
        sys.stderr.write(f"{len(report.errors)} statement(s) not advised:\n")
        for err in report.errors:
            where = f"line {err.line}: " if err.line is not None else ""
            sql = " ".join(err.sql.split())
            sys.stderr.write(f"  {where}{sql[:70]}: {err.message}\n")
        if args.fail_on_error:
            return int(ExitCode.INPUT)
    return exit_for_findings(report.findings, args.fail_on)


COMMANDS = (
    Command(
        "advise",
        "recommend indexes for a workload",
        _options,
        run,
        "Recommend indexes for a workload: a .sql file, a saved QueryStats "
        "JSON file (dbopt stats format), or pg_stat_statements (the default). Read-only.",
    ),
)
