"""One self-contained HTML file from dbopt's results: no network, no CDN, inline SVG charts.

:func:`render_html` takes JSON-ready data (the ``to_dict()`` output of
dbopt's results), so a report can be rebuilt from a saved JSON file
(``dbopt report --from data.json``). Every key is optional; a section
appears when its data is there:

* ``title``, ``subtitle``, ``generated_at``, ``summary`` (``[[label, value], ...]``),
  ``notes`` (list of text)
* ``statements``: ``StatementStats.to_dict()`` list (top statements by total time)
* ``server_statements``: ``health.statements.StatementsJoin.to_dict()`` (beside the server)
* ``nplusone``: ``{"findings": [NPlusOneFinding.to_dict()], "before": n, "after": n,
  "fix": "how the query count was brought down"}``
* ``slow_queries``: ``[{"sql", "duration_ms", "callsite", "plan"}]`` (plan: EXPLAIN JSON)
* ``advisor``: ``AdvisorReport.to_dict()`` plus optional ``"applied": [{"sql",
  "before_ms", "after_ms"}]`` (measured around applying the indexes)
* ``partitions``: ``{"table", "now", "partitions": [Partition.to_dict() + "status"],
  "plan": Plan.to_dict(), "maintenance": ApplyResult-like dict, "check": CheckReport.to_dict()}``
* ``pool``: ``{"preset": PoolConfig.to_dict(), "samples": [[seconds, in_use]],
  "capacity": n, "snapshot": PoolSnapshot.to_dict()}``
* ``findings``: ``{"section title": [Finding.to_dict(), ...]}``
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dbopt.report.html_assets import CSS, SCRIPT
from dbopt.report.html_sections import (
    advisor_section,
    findings_table,
    nplusone_section,
    partitions_section,
    pool_section,
    server_statements_section,
    slow_section,
    statements_section,
)
from dbopt.report.html_sections import escape_text as _e

__all__ = ["load_data", "render_html", "write_html"]


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def render_html(data: Mapping[str, Any]) -> str:
    """The report page for ``data`` (see the module docstring for its keys)."""
    title = str(data.get("title") or "dbopt report")
    generated = data.get("generated_at") or datetime.now(timezone.utc).isoformat(timespec="seconds")
    sections: list[tuple[str, str, str]] = []
    if data.get("statements"):
        sections.append(
            ("statements", "Top statements by total time", statements_section(data["statements"]))
        )
    if data.get("server_statements"):
        sections.append(
            (
                "server",
                "The same statements on the server (pg_stat_statements)",
                server_statements_section(data["server_statements"]),
            )
        )
    if data.get("nplusone"):
        sections.append(("nplusone", "N+1 queries", nplusone_section(data["nplusone"])))
    if data.get("slow_queries") is not None:
        sections.append(
            ("slow", "Slow queries and their plans", slow_section(data["slow_queries"]))
        )
    if data.get("advisor"):
        sections.append(("advisor", "Index advisor", advisor_section(data["advisor"])))
    if data.get("partitions"):
        sections.append(("partitions", "Partitions", partitions_section(data["partitions"])))
    if data.get("pool"):
        sections.append(("pool", "Connection pool", pool_section(data["pool"])))
    for name, findings in (data.get("findings") or {}).items():
        anchor = "f-" + "".join(c if c.isalnum() else "-" for c in name.lower())
        sections.append((anchor, name, findings_table(findings)))
    summary = "".join(
        f'<div class="tile"><div class="v">{_e(v)}</div><div class="k">{_e(k)}</div></div>'
        for k, v in data.get("summary", [])
    )
    nav = "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t, _ in sections)
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in data.get("notes", []))
    body = "".join(_section(a, t, b) for a, t, b in sections)
    csp = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>{_e(data.get('subtitle', ''))}</p>"
        f'<p class="meta">generated {_e(generated)} by dbopt</p></header>'
        f'<div class="tiles">{summary}</div><nav>{nav}</nav>{notes}{body}'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def write_html(data: Mapping[str, Any], path: str | Path) -> Path:
    """Render ``data`` to ``path`` (UTF-8); returns the path. Saves nothing else."""
    target = Path(path)
    target.write_text(render_html(data), encoding="utf-8")
    return target


def load_data(path: str | Path) -> dict[str, Any]:
    """Report data saved as JSON (what ``dbopt demo`` writes next to its HTML)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("report data must be a JSON object")
    return data
