"""The sections of the HTML report, each from the ``to_dict()`` data of one result.

Every text is escaped here; tables are sortable by the report's script.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from html import escape
from typing import Any

from dbopt.core.callsite import display_path
from dbopt.report.html_charts import before_after_bars, hbar_chart, line_chart, timeline
from dbopt.report.html_plan import plan_text

__all__ = [
    "advisor_section",
    "escape_text",
    "findings_table",
    "nplusone_section",
    "partitions_section",
    "pool_section",
    "slow_section",
    "statements_section",
]


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, raw: bool = False) -> str:
    """A sortable table; cells are escaped unless ``raw`` (then they are HTML already)."""
    if not rows:
        return '<p class="empty">Nothing to show.</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for value in row:
            num = isinstance(value, (int, float)) and not isinstance(value, bool)
            text = (
                f"{value:,.2f}"
                if isinstance(value, float)
                else str(value)
                if raw or num
                else _e(value)
            )
            cells.append(f'<td class="num">{text}</td>' if num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _code(sql: object, limit: int = 240) -> str:
    text = " ".join(str(sql).split())
    if len(text) <= limit:
        return f"<code>{_e(text)}</code>"
    return f'<code title="{_e(text)}">{_e(text[: limit - 1])}…</code>'


_SELECT_LIST = re.compile(r"^\s*select\s+(distinct\s+)?.*?\s+from\s+", re.IGNORECASE | re.DOTALL)


def _label(sql: str) -> str:
    """A statement as a short chart label: the select list collapsed to an ellipsis."""
    text = " ".join(sql.split())
    return _SELECT_LIST.sub("select … from ", text, count=1)


def _site(site: str) -> str:
    """``app/auth/routes.py:42 in f`` of ``/project/app/auth/routes.py:42 in f``.

    The file relative to the project root (:func:`dbopt.core.callsite.display_path`),
    never a bare base name, so two ``routes.py`` stay apart; the full text
    stays in the tooltip.
    """
    where, found, function = site.partition(" in ")
    file, sep, line = where.rpartition(":")
    if not sep or not line.isdigit():
        file, line = where, ""
    shown = display_path(file).replace("\\", "/") + (f":{line}" if line else "")
    return f"{shown} in {function}" if found else shown


def _severity(value: str) -> str:
    return f'<span class="sev sev-{_e(value)}">{_e(value)}</span>'


def statements_section(items: Sequence[Mapping[str, Any]]) -> str:
    top = sorted(items, key=lambda s: -float(s.get("total_time", 0.0)))[:12]
    chart = hbar_chart(
        [
            (_label(str(s.get("normalized", ""))), float(s.get("total_time", 0.0)) * 1000)
            for s in top
        ],
        unit="ms",
        label="Top statements by total time",
    )
    rows = [
        (
            int(s.get("calls", 0)),
            float(s.get("total_time", 0.0)) * 1000,
            float(s.get("mean_time", 0.0)) * 1000,
            float(s.get("p95_time", 0.0)) * 1000,
            _code(s.get("normalized", "")),
            "<br>".join(
                f'<span title="{_e(c)}">{_e(_site(c))}</span>'
                for c in list(s.get("callsites", {}))[:2]
            ),
        )
        for s in top
    ]
    table = _table(
        ("calls", "total ms", "mean ms", "p95 ms", "statement", "call sites"), rows, raw=True
    )
    return chart + table


def server_statements_section(data: Mapping[str, Any]) -> str:
    """The application's statements beside the server's pg_stat_statements rows."""
    rows = []
    for r in list(data.get("rows") or [])[:25]:
        app, srv = r.get("app") or {}, r.get("server") or {}
        ratio = srv.get("hit_ratio")
        rows.append(
            (
                app.get("calls", ""),
                f"{float(app['total_ms']):.1f}" if app else "",
                srv.get("calls", ""),
                f"{float(srv['total_ms']):.1f}" if srv else "",
                f"{ratio:.1%}" if isinstance(ratio, float) else "",
                srv.get("shared_blks_read", ""),
                f"{float(srv['io_ms']):.1f}" if srv else "",
                _code(r.get("text", "")),
                "<br>".join(
                    f'<span title="{_e(c)}">{_e(_site(c))}</span>'
                    for c in list(app.get("callsites", {}))[:2]
                ),
            )
        )
    headers = (
        "app calls",
        "app ms",
        "server calls",
        "server ms",
        "buffer hits",
        "blocks read",
        "I/O ms",
        "statement",
        "call sites",
    )
    note = (
        f'<p class="note">{_e(data.get("matched", 0))} of the application\'s statements found '
        "in pg_stat_statements (joined by fingerprint; the server also counts other clients)</p>"
    )
    return note + _table(headers, rows, raw=True)


def nplusone_section(data: Mapping[str, Any]) -> str:
    findings = data.get("findings", [])
    out = []
    per_request = data.get("requests") or []
    before, after = data.get("before"), data.get("after")
    if per_request:
        out.append(
            before_after_bars(
                [(str(r["request"]), float(r["before"]), float(r["after"])) for r in per_request],
                unit="queries",
                label="Queries per request before and after the fix",
            )
        )
    elif before is not None and after is not None:
        out.append(
            before_after_bars(
                [("queries per request", float(before), float(after))],
                unit="queries",
                label="Queries before and after the fix",
            )
        )
    if data.get("fix"):
        out.append(f"<p>{_e(data['fix'])}</p>")
    rows = [
        (
            _e(f.get("kind", "")),
            int(f.get("count", 0)),
            _e(f.get("relationship") or "-"),
            _e(_site(f.get("callsite") or "")),
            _e(f.get("scope_path") or f.get("scope") or ""),
            f"<code>{_e(f.get('loader_option') or f.get('suggestion') or '')}</code>",
        )
        for f in findings
    ]
    out.append(
        _table(("kind", "queries", "relationship", "call site", "scope", "fix"), rows, raw=True)
    )
    return "".join(out)


def slow_section(items: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for q in items:
        plan = q.get("plan")
        plan_html = (
            f"<details><summary>plan</summary><pre>{_e(plan_text(plan))}</pre></details>"
            if plan
            else ""
        )
        out.append(
            f'<div class="slow"><p><b>{float(q.get("duration_ms", 0.0)):,.1f} ms</b> '
            f"{_e(_site(q.get('callsite') or ''))}</p><pre>{_e(q.get('sql', ''))}</pre>"
            f"{plan_html}</div>"
        )
    return "".join(out) or '<p class="empty">No statement crossed the threshold.</p>'


def advisor_section(data: Mapping[str, Any]) -> str:
    out = [
        f"<p>Method <b>{_e(data.get('method'))}</b>; estimated workload cost "
        f"{float(data.get('total_cost_before', 0)):,.0f} → "
        f"{float(data.get('total_cost_after', 0)):,.0f} (planner units).</p>"
    ]
    out += [f'<p class="note">{_e(n)}</p>' for n in data.get("notes", [])]
    applied = data.get("applied") or []
    if applied:
        out.append("<h3>Measured before and after applying the indexes</h3>")
        out.append(
            before_after_bars(
                [
                    (_label(str(m["sql"])), float(m["before_ms"]), float(m["after_ms"]))
                    for m in applied
                ],
                unit="ms",
                label="Statement time before and after the recommended indexes",
            )
        )
    recs = data.get("recommendations", [])
    rows = [
        (
            f"<code>{_e(r.get('name'))}</code>",
            _e(f"{r.get('schema')}.{r.get('table')} ({', '.join(r.get('columns', []))})"),
            _e(_size(float(r.get("size_bytes", 0)))),
            round(float(r.get("saving_share", 0)) * 100, 1),
            len(r.get("statements", [])),
            _ddl(r.get("ddl", [])),
        )
        for r in recs
    ]
    out.append("<h3>Recommended indexes</h3>")
    out.append(_table(("name", "index", "size", "share %", "statements", "DDL"), rows, raw=True))
    hot = data.get("hotspots") or []
    if hot:
        out.append("<h3>Hot statements no index fixes</h3>")
        out.append(
            _table(
                ("statement", "measured s", "share %", "calls", "dominated by"),
                [
                    (
                        _label(str(h.get("sql", ""))),
                        round(float(h.get("total_time_s", 0)), 3),
                        round(float(h.get("time_share", 0)) * 100, 1),
                        h.get("calls", 0),
                        h.get("dominant") or "",
                    )
                    for h in hot
                ],
            )
        )
    if data.get("findings"):
        out.append("<h3>Existing indexes</h3>")
        out.append(findings_table(data["findings"]))
    return "".join(out)


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _ddl(statements: Sequence[str]) -> str:
    """The DDL of an index; several statements (a partitioned table) fold under the first."""
    text = ";\n".join(statements) + ";"
    if len(statements) <= 1:
        return f"<pre>{_e(text)}</pre>"
    return (
        f"<details><summary>{len(statements)} statements (partitioned table)</summary>"
        f"<pre>{_e(text)}</pre></details>"
    )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def partitions_section(data: Mapping[str, Any]) -> str:
    items = []
    for p in data.get("partitions", []):
        start, end = _parse_time(p.get("lower")), _parse_time(p.get("upper"))
        if start and end:
            items.append(
                (
                    str(p["name"]),
                    start,
                    end,
                    str(p.get("status", "existing")),
                    p.get("rows_estimate"),
                )
            )
    out = [
        timeline(
            items, now=_parse_time(data.get("now")), label=f"Partitions of {data.get('table', '')}"
        )
    ]
    plan = data.get("plan")
    if plan:
        out.append(f"<h3>Plan</h3><p>{_e(plan.get('summary'))}; now {_e(plan.get('now'))}</p>")
        ops = [
            (i, _e(op.get("kind")), _e(op.get("partition")), _e(op.get("reason")))
            for i, op in enumerate(plan.get("operations", []), 1)
        ]
        out.append(_table(("#", "operation", "partition", "why"), ops, raw=True))
        out += [f'<p class="note">{_e(n.get("message"))}</p>' for n in plan.get("notes", [])]
    run = data.get("maintenance")
    if run:
        out.append("<h3>Maintenance run</h3>")
        rows = [
            (
                _e(r.get("status")),
                _e(r.get("kind")),
                _e(r.get("partition")),
                _e(r.get("message") or ""),
                float(r.get("seconds", 0.0)) * 1000,
            )
            for r in run.get("results", [])
        ]
        out.append(_table(("status", "operation", "partition", "message", "ms"), rows, raw=True))
    check = data.get("check")
    if check:
        status = "ok" if check.get("ok") else "needs attention"
        out.append(
            f"<h3>Check</h3><p>{_e(check.get('table'))}: <b>{_e(status)}</b>; "
            f"{_e(check.get('partitions'))} partitions, {_e(check.get('future_partitions'))} "
            f"ahead (premake {_e(check.get('premake'))}), default rows "
            f"{_e(check.get('default_rows'))}, pending {_e(check.get('pending_operations'))}</p>"
        )
    return "".join(out)


def pool_section(data: Mapping[str, Any]) -> str:
    out = []
    samples = data.get("samples") or []
    capacity = float(data.get("capacity") or 0)
    if samples:
        out.append(
            line_chart(
                [(float(t), float(v)) for t, v in samples],
                ceiling=capacity,
                limit=capacity * 0.8 if capacity else None,
                unit="connections in use",
                label="Pool: connections in use over time",
            )
        )
    snap = data.get("snapshot")
    if snap:
        util, wait = snap.get("utilization"), snap.get("wait_mean_ms")
        out.append(
            f"<p>{_e(snap.get('checkouts'))} checkouts, utilization "
            f"{'-' if util is None else f'{float(util):.0%}'}, mean wait "
            f"{'-' if wait is None else f'{float(wait):.1f}'} ms, peak in use "
            f"{_e(snap.get('peak_in_use'))} of {_e(snap.get('capacity'))}, timeouts "
            f"{_e(snap.get('timeouts'))}.</p>"
        )
    preset = data.get("preset")
    if preset:
        reasons = preset.get("reasons", {})
        rows = [(_e(k), _e(preset.get(k)), _e(reasons.get(k, ""))) for k in reasons]
        out.append(f"<h3>Preset <code>{_e(preset.get('preset', ''))}</code></h3>")
        out.append(_table(("setting", "value", "why"), rows, raw=True))
    return "".join(out)


def _fix(text: str) -> str:
    """A finding's fix; a long one folds under its first line."""
    if not text:
        return ""
    lines = text.strip().splitlines()
    if len(lines) <= 3 and len(text) <= 300:
        return f"<pre>{_e(text)}</pre>"
    return f"<details><summary>{_e(lines[0][:70])}…</summary><pre>{_e(text)}</pre></details>"


def findings_table(findings: Sequence[Mapping[str, Any]]) -> str:
    order = {"error": 0, "critical": 0, "warning": 1, "info": 2}
    items = sorted(findings, key=lambda f: (order.get(str(f.get("severity")), 3), f.get("code")))
    rows = [
        (
            _severity(str(f.get("severity", ""))),
            f'<span class="nowrap">{_e(f.get("code"))}</span>',
            f"<code>{_e(f.get('object'))}</code>",
            _e(f.get("message")),
            _fix(str(f.get("fix") or "")),
        )
        for f in items
    ]
    return _table(("severity", "code", "object", "message", "fix"), rows, raw=True)


escape_text = _e
