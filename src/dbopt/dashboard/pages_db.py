"""The pages the database fills: Indexes (advisor), Schema & health, Partitions, Pool."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from dbopt.dashboard.layout import e, fmt_bytes, table, tiles
from dbopt.report.html_charts import before_after_bars, hbar_chart, line_chart, timeline

if TYPE_CHECKING:
    from dbopt.advisor.report import AdvisorReport
    from dbopt.dashboard.jobs import Job
    from dbopt.findings import Finding
    from dbopt.health.model import HealthReport
    from dbopt.lint.runner import LintReport
    from dbopt.pool.snapshot import PoolSnapshot

__all__ = [
    "findings_table",
    "health_page",
    "indexes_page",
    "partitions_section",
    "pool_page",
]


def findings_table(findings: list[Finding], empty: str) -> str:
    """Findings with their severity, object, message and fix."""
    return table(
        ["severity", "code", "object", "message", "fix"],
        [
            [
                f'<span class="sev sev-{e(f.severity.value)}">{e(f.severity.value)}</span>',
                e(f.code),
                f"<code>{e(f.object)}</code>",
                e(f.message),
                f"<pre>{e(f.fix)}</pre>" if f.fix else "",
            ]
            for f in findings
        ],
        empty=empty,
    )


def indexes_page(job: Job, base: str, has_stats: bool) -> str:
    """The advisor's button, its progress, and the last run's recommendations and findings."""
    running = job.state == "running"
    source = "the recorded QueryStats" if has_stats else "pg_stat_statements"
    head = (
        f"<p>Runs the index advisor over {e(source)} on demand (hypothetical indexes, "
        "read-only; its own statement timeout).</p>"
        f'<p><button data-advise="{e(base)}/indexes/run" data-status="{e(base)}/indexes/status" '
        f'data-running="{1 if running else 0}">Run the advisor</button>'
        f'<span id="advisor-progress" class="progress">{e(job.describe())}</span></p>'
    )
    report: AdvisorReport | None = job.result
    if job.error:
        head += f'<p class="error">last run failed: {e(job.error)}</p>'
    if report is None:
        return head
    recs = report.recommendations
    body = tiles(
        [
            (str(len(recs)), "indexes recommended"),
            (f"{report.total_cost_before:,.0f}", "workload cost before"),
            (f"{report.total_cost_after:,.0f}", "cost with them (what-if)"),
            (report.method, "method"),
            (f"{report.elapsed_s:.1f} s", "advisor run"),
        ]
    )
    body += before_after_bars(
        [
            (s.sql[:60], s.cost_before or 0.0, s.cost_after or 0.0)
            for s in report.statements
            if s.status == "improved"
        ][:10],
        unit="cost",
        label="statement cost before and after",
    )
    body += "<h3>Recommendations</h3>" + table(
        ["index", "saving", "size", "statements", "DDL"],
        [
            [
                f"<code>{e(r.label)}</code>",
                f"{r.saving_share:.0%}",
                fmt_bytes(r.size_bytes),
                str(len(r.statements)),
                "<pre>" + e("\n".join(f"{d};" for d in r.ddl)) + "</pre>",
            ]
            for r in recs
        ],
        empty="no index would pay for itself on this workload",
        attrs=' id="recommendations"',
    )
    if recs:
        body += (
            "<h3>SQL</h3><pre>"
            + e(report.to_sql())
            + "</pre><h3>Alembic migration</h3><pre>"
            + e(report.to_alembic())
            + "</pre>"
        )
    body += "<h3>Existing indexes</h3>" + findings_table(
        list(report.findings), "no finding on existing indexes"
    )
    if report.errors:
        body += "<h3>Not analysed</h3>" + table(
            ["statement", "why"],
            [[f"<pre>{e(x.sql[:300])}</pre>", e(x.message)] for x in report.errors[:20]],
        )
    return head + body


def health_page(
    lint: LintReport | None,
    health: HealthReport | None,
    space: list[dict[str, Any]],
    errors: dict[str, str],
    age_s: float,
    base: str,
) -> str:
    """Lint findings, every health check, and the largest tables and indexes."""
    out = (
        f'<p class="note">read {age_s:.0f} s ago · '
        f'<a href="{e(base)}/health?refresh=1">refresh</a></p>'
    )
    for what, why in errors.items():
        out += f'<p class="error">{e(what)}: {e(why)}</p>'
    if health is not None:
        out += "<h3>Health checks</h3>" + table(
            ["status", "check", "summary", "value", "threshold"],
            [
                [
                    f'<span class="sev status-{e(c.status.value)}">{e(c.status.value)}</span>',
                    f"{e(c.code)} {e(c.name)}",
                    e(c.summary),
                    "" if c.value is None else f"{c.value:,.2f} {e(c.unit)}",
                    e(c.threshold),
                ]
                for c in health.checks
            ],
            attrs=' id="checks"',
        )
        out += "<h3>Health findings</h3>" + findings_table(list(health.findings), "none")
    if lint is not None:
        out += "<h3>Schema lint</h3>" + findings_table(list(lint.findings), "no lint finding")
    if space:
        out += "<h3>Space</h3>" + hbar_chart(
            [(f"{r['schema']}.{r['name']}", r["total_bytes"] / 1024) for r in space[:12]],
            unit="kB",
            label="largest tables and indexes",
        )
        out += table(
            ["kind", "table or index", "table", "size", "total with indexes and TOAST", "rows"],
            [
                [
                    e(r["kind"]),
                    f"<code>{e(r['schema'])}.{e(r['name'])}</code>",
                    e(r.get("table") or ""),
                    fmt_bytes(r["bytes"]),
                    fmt_bytes(r["total_bytes"]),
                    "" if r["rows"] is None else f"{r['rows']:,.0f}",
                ]
                for r in space
            ],
            numeric=(3, 4, 5),
        )
    return out


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return None


def partitions_section(
    name: str, parts: list[Any], check: Any | None, spec: Any | None, status: dict[str, Any]
) -> str:
    """One partitioned table: its timeline, premake and retention, default rows, maintenance."""
    items = []
    for p in parts:
        lo, hi = _as_datetime(p.lower), _as_datetime(p.upper)
        if lo is not None and hi is not None:
            items.append((p.name, lo, hi, "existing", p.rows_estimate))
    facts = [
        (str(status.get("partitions", len(parts))), "partitions"),
        (str(status.get("future", "-")), "ahead of now"),
        (
            "-" if status.get("default_rows") is None else f"{status['default_rows']:,.0f}",
            "rows in the default partition",
        ),
    ]
    if spec is not None:
        facts.append((str(spec.premake), "premake"))
        facts.append((str(spec.retention or spec.retention_count or "keep all"), "retention"))
    if check is not None:
        last = check.last_maintenance_at
        facts.append((last.strftime("%Y-%m-%d %H:%M") if last else "never", "last maintenance"))
        facts.append((str(check.pending_operations), "pending operations"))
    out = f'<h3><code>{e(name)}</code> <span class="sev status-{e(status.get("status", "ok"))}">'
    out += f"{e(status.get('status', 'ok'))}</span></h3>" + tiles(facts)
    out += timeline(items, now=datetime.now(timezone.utc), label=f"partitions of {name}")
    out += table(
        ["partition", "bound", "rows (estimate)", "size"],
        [
            [
                f"<code>{e(p.name)}</code>",
                f"<code>{e(p.bound)}</code>",
                "" if p.rows_estimate is None else f"{p.rows_estimate:,}",
                fmt_bytes(p.size_bytes),
            ]
            for p in parts
        ],
        numeric=(2, 3),
    )
    return out


def pool_page(
    snapshots: list[tuple[PoolSnapshot, list[Finding]]],
    history: dict[str, list[tuple[float, float]]],
) -> str:
    """Each monitored pool: utilization and checkout waits against the targets, and findings."""
    if not snapshots:
        return (
            '<p class="empty">No pool monitor: create the dashboard with '
            "<code>monitors=[dbopt.pool.PoolMonitor(engine)]</code>.</p>"
        )
    out = ""
    for snap, found in snapshots:
        util = snap.utilization
        wait = snap.wait_mean_ms
        out += f"<h3>{e(snap.name)} <small>({e(snap.source)})</small></h3>"
        out += tiles(
            [
                (f"{util:.0%}" if util is not None else "-", "utilization (target < 80 %)"),
                (f"{wait:.2f} ms" if wait is not None else "-", "mean checkout wait (< 10 ms)"),
                (
                    f"{snap.wait_p95_ms:.2f} ms" if snap.wait_p95_ms is not None else "-",
                    "p95 wait",
                ),
                (str(snap.timeouts), "timeouts"),
                (f"{snap.in_use}/{snap.capacity if snap.capacity is not None else '∞'}", "in use"),
                (f"{snap.checkouts:,}", "checkouts"),
            ]
        )
        points = history.get(snap.name, [])
        if len(points) > 1:
            t0 = points[0][0]
            out += line_chart(
                [(t - t0, v * 100.0) for t, v in points],
                ceiling=100.0,
                limit=80.0,
                unit="% utilization",
                label=f"utilization of {snap.name}",
            )
        out += findings_table(found, "within the targets")
    return out
