"""``dbopt partitions plan | apply | check | convert``: the partition manager from a spec file.

The spec file is JSON: one :meth:`PartitionSpec.to_dict`-style object, a
list of them, or ``{"specs": [...]}``. ``plan`` and ``check`` are read-only;
only ``apply`` and ``convert`` change the database.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from dbopt.cli._command import Command
from dbopt.cli._db import connect_check
from dbopt.cli._errors import CliError, ExitCode
from dbopt.cli._output import Progress, markdown_table, write_output

__all__ = ["COMMANDS", "load_specs"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="JSON file with a PartitionSpec (or a list of them)")
    p.add_argument("--dsn", help="database URL (default: $DATABASE_URL)")
    p.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument("--state-schema", default="public", help="schema of dbopt's state tables")
    p.add_argument("--lock-timeout", type=float, default=2.0, help="seconds per DDL lock wait")


def _plan_options(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--now", help="plan as of this ISO time (default: now)")


def _apply_options(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument(
        "--adopt",
        action="store_true",
        help="first adopt the existing partitions as dbopt's (PartitionManager.create)",
    )


def _convert_options(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--batch-size", type=int, default=10_000)


def _subcommands(p: argparse.ArgumentParser) -> None:
    inner = p.add_subparsers(dest="partitions_command", required=True)
    for command in _INNER:
        command.add_to(inner)


def load_specs(path: str) -> list[Any]:
    """The :class:`PartitionSpec` objects in the JSON file ``path``."""
    from dbopt.partitions import PartitionSpec, PartitionSpecError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read spec file {path}: {exc}", ExitCode.INPUT) from None
    if isinstance(data, dict) and "specs" in data:
        data = data["specs"]
    items = data if isinstance(data, list) else [data]
    specs = []
    for item in items:
        if not isinstance(item, dict):
            raise CliError(f"spec file {path}: expected objects, got {item!r}", ExitCode.INPUT)
        try:
            specs.append(PartitionSpec.from_dict(item))
        except (PartitionSpecError, TypeError, ValueError) as exc:
            raise CliError(f"spec file {path}: {exc}", ExitCode.INPUT) from None
    if not specs:
        raise CliError(f"spec file {path} holds no spec", ExitCode.INPUT)
    return specs


def _manager(args: argparse.Namespace) -> Any:
    from dbopt.partitions import PartitionManager

    server = connect_check(args.dsn)
    return PartitionManager(
        server.url, state_schema=args.state_schema, lock_timeout=args.lock_timeout
    )


def _emit(args: argparse.Namespace, texts: list[str], data: list[dict[str, Any]]) -> None:
    if args.format == "json":
        write_output(json.dumps(data if len(data) != 1 else data[0], indent=2), args.output)
    else:
        write_output("\n\n".join(texts), args.output)


def _plan_markdown(plan: Any) -> str:
    rows = [(i, op.kind, op.describe()) for i, op in enumerate(plan, 1)]
    lines = [f"### {plan.parent}", "", plan.summary, ""]
    if rows:
        lines.append(markdown_table(("#", "operation", "what and why"), rows))
    else:
        lines.append("Nothing to do: the table matches its spec.")
    lines += [f"\n> {note.message}" for note in plan.notes]
    return "\n".join(lines)


def run_plan(args: argparse.Namespace) -> int:
    """``dbopt partitions plan``."""
    specs = load_specs(args.spec)
    manager = _manager(args)
    now = None
    if args.now:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            raise CliError(f"--now: not an ISO date/time: {args.now!r}", ExitCode.INPUT) from None
    plans = [manager.plan(spec, now=now) for spec in specs]
    if args.format == "markdown":
        write_output("\n\n".join(_plan_markdown(p) for p in plans), args.output)
    else:
        _emit(args, [p.describe() for p in plans], [p.to_dict() for p in plans])
    return ExitCode.OK


def run_apply(args: argparse.Namespace) -> int:
    """``dbopt partitions apply``: exit 1 when an operation failed."""
    specs = load_specs(args.spec)
    manager = _manager(args)
    results = []
    with Progress("applying partition plans") as progress:
        for i, spec in enumerate(specs):
            progress.update(i, f"maintaining {spec.qualified}")
            results.append(manager.create(spec) if args.adopt else manager.maintain(spec))
    data = [
        {
            "parent": str(r.parent),
            "ok": r.ok,
            "results": [
                {"operation": x.operation.describe(), "status": x.status, "message": x.message}
                for x in r.results
            ],
            "notes": [n.message for n in r.notes],
        }
        for r in results
    ]
    if args.format == "markdown":
        rows = [
            (d["parent"], x["status"], x["operation"], x["message"] or "")
            for d in data
            for x in d["results"]
        ]
        write_output(markdown_table(("table", "status", "operation", "message"), rows), args.output)
    else:
        _emit(args, [r.describe() for r in results], data)
    return ExitCode.OK if all(r.ok for r in results) else ExitCode.FINDINGS


def run_check(args: argparse.Namespace) -> int:
    """``dbopt partitions check``: exit 1 when a table needs attention."""
    specs = load_specs(args.spec)
    manager = _manager(args)
    reports = [manager.check(spec) for spec in specs]
    if args.format == "markdown":
        rows = [
            (
                r.table,
                "ok" if r.ok else "needs attention",
                r.partitions,
                r.future_partitions,
                r.default_rows if r.default_rows is not None else "-",
                len(r.gaps),
                r.pending_operations,
            )
            for r in reports
        ]
        write_output(
            markdown_table(
                ("table", "status", "partitions", "ahead", "default rows", "gaps", "pending"),
                rows,
            ),
            args.output,
        )
    else:
        _emit(args, [r.describe() for r in reports], [r.to_dict() for r in reports])
    return ExitCode.OK if all(r.ok for r in reports) else ExitCode.FINDINGS


def run_convert(args: argparse.Namespace) -> int:
    """``dbopt partitions convert``: convert each spec's regular table online."""
    specs = load_specs(args.spec)
    manager = _manager(args)
    texts, data = [], []
    for spec in specs:
        with Progress(f"converting {spec.qualified} online"):
            result = manager.convert(spec.qualified, spec, batch_size=args.batch_size)
        texts.append(result.describe())
        data.append(result.to_dict())
    _emit(args, texts, data)
    return ExitCode.OK


_INNER = (
    Command("plan", "show what maintenance would do (read-only)", _plan_options, run_plan),
    Command("apply", "create / detach / drop partitions per the spec", _apply_options, run_apply),
    Command("check", "default rows, gaps, partitions ahead (read-only)", _common, run_check),
    Command(
        "convert", "convert a regular table online (changes data)", _convert_options, run_convert
    ),
)

COMMANDS = (
    Command(
        "partitions",
        "plan, apply and check declarative partitions from a spec",
        _subcommands,
        None,
        "Keep partitioned tables to a spec (docs/partitions.md).",
    ),
)
