"""Terminal output of ``dbopt``: colour only on a tty, Markdown tables, progress on stderr.

Progress is drawn on stderr and only when stderr is a terminal, so piped
output and CI logs stay clean.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from dbopt._console import Progress, Style
from dbopt.findings import Finding, Severity

__all__ = [
    "Progress",
    "Style",
    "exit_for_findings",
    "markdown_findings",
    "markdown_table",
    "write_output",
]


def _md_cell(value: object) -> str:
    text = f"{value:.2f}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out.extend("| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows)
    return "\n".join(out)


def markdown_findings(findings: Iterable[Finding], title: str) -> str:
    """Findings as a Markdown section: a summary line and a table (worst first)."""
    from dbopt.report.findings import summary_line

    items = sorted(findings, key=lambda f: (-f.severity.rank, f.code, f.object))
    lines = [f"## {title}", "", summary_line(items), ""]
    if items:
        rows = [(f.severity.value, f.code, f"`{f.object}`", f.message, f.fix or "") for f in items]
        lines.append(markdown_table(("severity", "code", "object", "message", "fix"), rows))
    return "\n".join(lines) + "\n"


def exit_for_findings(findings: Iterable[Finding], fail_on: str) -> int:
    """1 when any finding is at or above ``fail_on`` (``"none"`` never fails), else 0."""
    if fail_on == "none":
        return 0
    limit = Severity.parse(fail_on)
    return 1 if any(f.severity >= limit for f in findings) else 0


def write_output(text: str, path: str | None, stdout: TextIO | None = None) -> None:
    """Write ``text`` to ``path`` (``-`` or None: stdout), ending with one newline."""
    body = text if text.endswith("\n") else text + "\n"
    if path and path != "-":
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(body)
        return
    (stdout or sys.stdout).write(body)


def add_params_option(parser: argparse.ArgumentParser, what: str = "json") -> None:
    """``--params redact|keep``: whether literals and parameter values reach the output."""
    parser.add_argument(
        "--params",
        choices=["redact", "keep"],
        default="redact",
        help=f"{what}: mask literals and parameter values in statements (default) or keep them",
    )
