"""``dbopt lint | health | check-migrations | diff | erd``: the schema checkers from the shell.

Each prints findings as text, JSON, SARIF (lint, check-migrations, diff)
or Markdown, and exits 1 when a finding is at or above ``--fail-on``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbopt.cli._command import Command
from dbopt.cli._db import connect_check
from dbopt.cli._errors import CliError, ExitCode
from dbopt.cli._output import Progress, exit_for_findings, markdown_findings, write_output
from dbopt.findings import Finding

if TYPE_CHECKING:
    from dbopt.report.sarif import RuleDoc

__all__ = ["COMMANDS", "render_findings"]

_FAIL_ON = ["info", "warning", "error", "none"]


def _options(p: argparse.ArgumentParser, formats: Sequence[str], fail_on: str = "error") -> None:
    p.add_argument("--format", choices=list(formats), default="text")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument(
        "--fail-on",
        choices=_FAIL_ON,
        default=fail_on,
        help=f"exit 1 when a finding is at or above this severity (default {fail_on})",
    )


def _lint_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dsn", help="database URL (default: $DATABASE_URL)")
    p.add_argument("--schema", action="append", default=[], help="limit to this schema")
    p.add_argument("--rule", action="append", help="run only this rule (code or name)")
    p.add_argument("--exclude", action="append", default=[], help="skip this rule")
    p.add_argument("--why", action="store_true", help="text: explain each finding")
    _options(p, ["text", "json", "sarif", "markdown"])


def _health_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dsn", help="database URL (default: $DATABASE_URL)")
    p.add_argument("--schema", action="append", default=[], help="limit per-table checks")
    p.add_argument("--check", action="append", help="run only this check (code or name)")
    _options(p, ["text", "json", "sarif", "markdown"])


def _migrations_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help=".sql files, Alembic revisions or directories")
    p.add_argument(
        "--no-lock-timeout-rule", action="store_true", help="do not require SET lock_timeout"
    )
    p.add_argument(
        "--enable",
        action="append",
        default=[],
        metavar="RULE",
        help="turn on an opt-in rule (code or name; 'all' for every one); repeatable",
    )
    p.add_argument(
        "--pg-version",
        type=int,
        metavar="MAJOR",
        help="the server version the migrations will run on (e.g. 15); some advice depends on it",
    )
    _options(p, ["text", "json", "sarif", "markdown"], fail_on="warning")


def _diff_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", help="module:attribute of a MetaData or declarative base")
    p.add_argument("--dsn", help="database URL (default: $DATABASE_URL)")
    p.add_argument("--path", default=".", help="directory to import the models from")
    _options(p, ["text", "json", "sarif", "markdown"])


def _erd_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dsn", help="database URL (default: $DATABASE_URL)")
    p.add_argument("--models", help="module:attribute to draw instead of a database")
    p.add_argument("--path", default=".", help="directory to import the models from")
    p.add_argument("--schema", action="append", default=[], help="limit to this schema")
    p.add_argument("--format", choices=["mermaid", "dot", "markdown"], default="mermaid")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")


def render_findings(
    findings: list[Finding],
    fmt: str,
    title: str,
    *,
    why: bool = False,
    errors: dict[str, str] | None = None,
    suppressed: int = 0,
    rules: Mapping[str, RuleDoc] | None = None,
    **extra: Any,
) -> str:
    """``findings`` in ``fmt`` (text, json, sarif or markdown); ``rules`` describe them in SARIF."""
    from dbopt.report.findings import render_json, render_text

    if fmt == "json":
        return render_json(findings, errors=errors or {}, **extra)
    if fmt == "sarif":
        from dbopt.report.sarif import render_sarif

        return render_sarif(findings, rules=rules)
    if fmt == "markdown":
        text = markdown_findings(findings, title)
        for key, reason in sorted((errors or {}).items()):
            text += f"\n> not run: {key}: {reason}"
        return text
    return render_text(findings, why=why, errors=errors, suppressed=suppressed)


def _finish(args: argparse.Namespace, text: str, findings: list[Finding]) -> int:
    write_output(text, args.output)
    return exit_for_findings(findings, args.fail_on)


def run_lint(args: argparse.Namespace) -> int:
    """``dbopt lint``."""
    from dbopt.lint import RULES, lint

    server = connect_check(args.dsn)
    with Progress("linting the schema"):
        report = lint(server.url, schemas=args.schema, rules=args.rule, exclude=args.exclude)
    text = render_findings(
        report.findings,
        args.format,
        f"Schema lint of {server.database}",
        why=args.why,
        errors=report.errors,
        suppressed=len(report.suppressed),
        tables=report.tables,
        rules=RULES,
    )
    return _finish(args, text, report.findings)


def run_health(args: argparse.Namespace) -> int:
    """``dbopt health``."""
    from dbopt.health import RULES, health

    server = connect_check(args.dsn)
    with Progress("checking health"):
        report = health(server.url, checks=args.check, schemas=args.schema)
    findings = report.findings
    if args.format == "json":
        text = json.dumps(report.to_dict(), indent=2, default=str)
    elif args.format == "text":
        text = report.to_text()
    else:
        text = render_findings(findings, args.format, f"Health of {server.database}", rules=RULES)
    return _finish(args, text, findings)


def run_migrations(args: argparse.Namespace) -> int:
    """``dbopt check-migrations``: no database needed."""
    from dbopt.migrations import RULES, check

    for path in args.paths:
        if not Path(path).exists():
            raise CliError(f"no such file or directory: {path}", ExitCode.INPUT)
    report = check(
        args.paths,
        require_lock_timeout=not args.no_lock_timeout_rule,
        pg_version=args.pg_version,
        enable=args.enable,
    )
    text = render_findings(
        report.findings,
        args.format,
        "Migration safety",
        errors=report.errors,
        suppressed=len(report.suppressed),
        rules=RULES,
    )
    code = _finish(args, text, report.findings)
    if report.errors and code == ExitCode.OK:
        return ExitCode.INPUT
    return code


def import_object(spec: str, path: str) -> Any:
    """``module:attribute`` imported with ``path`` first on ``sys.path``."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise CliError(f"expected module:attribute, got {spec!r}", ExitCode.INPUT)
    root = str(Path(path).resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise CliError(f"cannot import {spec}: {exc}", ExitCode.INPUT) from None
    return obj


def run_diff(args: argparse.Namespace) -> int:
    """``dbopt diff``: drift between models and the database."""
    from dbopt.schema import RULES, diff

    models = import_object(args.models, args.path)
    server = connect_check(args.dsn)
    report = diff(models, server.url)
    text = render_findings(
        report.findings,
        args.format,
        "Schema drift",
        suppressed=len(report.suppressed),
        rules=RULES,
    )
    return _finish(args, text, report.findings)


def run_erd(args: argparse.Namespace) -> int:
    """``dbopt erd``: from a database (``--dsn``) or models (``--models``)."""
    from dbopt.schema import erd

    source: Any = (
        import_object(args.models, args.path) if args.models else connect_check(args.dsn).url
    )
    write_output(erd(source, format=args.format, schemas=args.schema), args.output)
    return ExitCode.OK


COMMANDS = (
    Command(
        "lint", "lint the schema (missing FK indexes, keys, types ...)", _lint_options, run_lint
    ),
    Command(
        "health",
        "health report: hit ratios, vacuum, bloat, locks ...",
        _health_options,
        run_health,
    ),
    Command(
        "check-migrations",
        "find migration statements that lock or break a live database",
        _migrations_options,
        run_migrations,
    ),
    Command(
        "diff",
        "schema drift between SQLAlchemy models and the database",
        _diff_options,
        run_diff,
    ),
    Command("erd", "entity-relationship diagram (Mermaid, DOT, Markdown)", _erd_options, run_erd),
)
