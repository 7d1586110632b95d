"""Findings as text for a terminal and as JSON for tools.

Works on any iterable of :class:`~dbopt.Finding` (a lint report, a migration
check, drift, health findings). Nothing here prints; the caller writes the
string where it wants.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from dbopt.findings import Finding
from dbopt.report.text import table

__all__ = ["findings_table", "render_json", "render_text", "summary_line"]


def _sorted(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-f.severity.rank, f.code, f.object))


def summary_line(findings: Iterable[Finding]) -> str:
    """``"3 findings: 1 error, 2 warning"`` (``"no findings"`` when empty)."""
    items = list(findings)
    if not items:
        return "no findings"
    counts = Counter(f.severity.value for f in items)
    parts = [f"{counts[s]} {s}" for s in ("error", "warning", "info") if counts[s]]
    noun = "finding" if len(items) == 1 else "findings"
    return f"{len(items)} {noun}: {', '.join(parts)}"


def _location(f: Finding) -> str:
    path = f.metadata.get("path")
    if not path:
        return ""
    line = f.metadata.get("line")
    return f"{path}:{line}: " if line else f"{path}: "


def render_text(
    findings: Iterable[Finding],
    *,
    why: bool = False,
    fix: bool = True,
    errors: Mapping[str, str] | None = None,
    suppressed: int = 0,
) -> str:
    """One block per finding, worst first: ``CODE severity object: message``, then the fix.

    ``why`` adds the explanation; ``errors`` (rule → reason) and the number
    of ``suppressed`` findings are reported after the summary line.
    """
    items = _sorted(findings)
    out: list[str] = []
    for f in items:
        out.append(f"{_location(f)}{f.code} {f.severity.value:<7} {f.object}: {f.message}")
        if why and f.why:
            out.append(f"    why: {f.why}")
        if fix and f.fix:
            lines = f.fix.splitlines()
            out.append(f"    fix: {lines[0]}")
            out.extend(f"         {line}" for line in lines[1:])
    out.append(summary_line(items) + (f" ({suppressed} suppressed)" if suppressed else ""))
    for key, reason in sorted((errors or {}).items()):
        out.append(f"not run: {key}: {reason}")
    return "\n".join(out)


def findings_table(findings: Iterable[Finding]) -> str:
    """The findings as a compact table (code, severity, object, message)."""
    rows = [(f.code, f.severity.value, f.object, f.message) for f in _sorted(findings)]
    return table(("code", "severity", "object", "message"), rows)


def render_json(findings: Iterable[Finding], *, indent: int | None = 2, **extra: Any) -> str:
    """``{"findings": [...], "summary": {...}, **extra}`` as JSON text (worst first)."""
    items = _sorted(findings)
    counts = Counter(f.severity.value for f in items)
    doc: dict[str, Any] = {
        "findings": [f.to_dict() for f in items],
        "summary": {
            "total": len(items),
            **{s: counts.get(s, 0) for s in ("error", "warning", "info")},
        },
        **extra,
    }
    return json.dumps(doc, indent=indent, default=str, ensure_ascii=False)
