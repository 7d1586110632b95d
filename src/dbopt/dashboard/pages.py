"""The pages the application's own recording fills: Requests, one request, Queries."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from dbopt.core.nplusone_findings import NPlusOneFinding
from dbopt.dashboard.layout import bar, e, fmt_bytes, fmt_ms, table, tiles
from dbopt.report.html_charts import hbar_chart, line_chart

if TYPE_CHECKING:
    from dbopt.core.stats import QueryStats
    from dbopt.dashboard.recorder import RecordedRequest, RequestRecorder
    from dbopt.health.statements import StatementsJoin

__all__ = ["queries_page", "request_page", "requests_page"]

PER_PAGE = 50
_SORTS = {
    "total": ("total_time", "total time"),
    "mean": ("mean_time", "mean"),
    "p95": ("p95_time", "p95"),
    "calls": ("calls", "calls"),
}


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%H:%M:%S")


def _finding_html(f: NPlusOneFinding) -> str:
    what = "N+1" if f.kind == "n_plus_one" else "repeated query"
    rel = f" of <code>{e(f.relationship)}</code>" if f.relationship else ""
    sites = ", ".join(f"<code>{e(s)}</code>" for s in f.callsites) or "unknown call site"
    return (
        f'<div class="finding {e(f.kind)}"><strong>{what}</strong>: {f.count} statements{rel} '
        f"from {sites}<pre>{e(' '.join(f.sql.split())[:600])}</pre>"
        f"<div>fix: {e(f.suggestion)}</div></div>"
    )


def requests_page(recorder: RequestRecorder | None, base: str, page_no: int, params: str) -> str:
    """The recent requests, newest first, ``PER_PAGE`` a page, with their findings."""
    if recorder is None:
        return (
            '<p class="empty">No RequestRecorder: create the dashboard with '
            "<code>recorder=RequestRecorder()</code> and attach it to your engine "
            "(<code>dbopt.instrument(engine, recorder)</code>).</p>"
        )
    records = recorder.requests()
    total_db = sum(r.db_s for r in records)
    total_wall = sum(r.wall_s for r in records)
    statements = sum(r.count for r in records)
    pages = max(1, (len(records) + PER_PAGE - 1) // PER_PAGE)
    page_no = max(1, min(page_no, pages))
    shown = records[(page_no - 1) * PER_PAGE : page_no * PER_PAGE]
    flagged = 0
    rows = []
    classes = []
    for r in shown:
        found = r.findings(params)
        flagged += bool(found)
        n1 = sum(1 for f in found if f.kind == "n_plus_one")
        rep = len(found) - n1
        share = r.db_s / r.wall_s if r.wall_s > 0 else 0.0
        label = f'<span class="bad">{n1} N+1</span>' if n1 else ""
        if rep:
            label += f' <span class="bad">{rep} repeated</span>'
        classes.append("flagged" if found else "")
        rows.append(
            [
                e(_when(r.started_at)),
                f'<a href="{e(base)}/requests/{r.id}">{e(r.name or f"#{r.id}")}</a>',
                str(r.count),
                fmt_ms(r.db_s),
                fmt_ms(r.wall_s),
                bar(min(1.0, share)),
                label or '<span class="ok">none</span>',
            ]
        )
    by_name: dict[str, float] = defaultdict(float)
    for r in records:
        by_name[r.name or "(unnamed)"] += r.db_s * 1000.0
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:8]
    recent = list(reversed(records[:200]))
    t0 = recent[0].started_at if recent else time.time()
    points = [(r.started_at - t0, r.db_s * 1000.0) for r in recent]
    pager = (
        f'<div class="pager">page {page_no} of {pages}'
        + (f' <a href="{e(base)}/requests?page={page_no - 1}">newer</a>' if page_no > 1 else "")
        + (f' <a href="{e(base)}/requests?page={page_no + 1}">older</a>' if page_no < pages else "")
        + "</div>"
    )
    return (
        f'<p data-poll="{e(base)}/api/summary">{len(records):,} requests recorded</p>'
        + tiles(
            [
                (f"{len(records):,}", "requests recorded"),
                (f"{statements:,}", "statements"),
                (f"{total_db / total_wall:.0%}" if total_wall else "-", "time in the database"),
                (fmt_bytes(recorder.nbytes), f"memory (bound {fmt_bytes(recorder.max_bytes)})"),
                (f"{flagged}", "of this page's requests with findings"),
            ]
        )
        + "<h3>Database time by request name</h3>"
        + hbar_chart(top, unit="ms", label="database time by request name")
        + "<h3>Database time of the latest requests</h3>"
        + line_chart(
            points,
            ceiling=max((v for _, v in points), default=1.0),
            limit=None,
            unit="ms",
            label="database time per request",
        )
        + pager
        + table(
            ["at (UTC)", "request", "statements", "db ms", "wall ms", "db share", "findings"],
            rows,
            numeric=(2, 3, 4),
            attrs=' id="requests"',
            row_classes=classes,
        )
    )


def request_page(
    record: RecordedRequest, base: str, params: str, *, show_values: bool, can_explain: bool
) -> str:
    """One request: its findings, then every statement with call site and EXPLAIN."""
    from dbopt.core.fingerprint import mask_literals

    found = record.findings(params)
    rows = []
    for i, st in enumerate(record.statements):
        text = st.sql if show_values else mask_literals(st.sql)
        cell = f"<pre>{e(text[:2000])}</pre>"
        if show_values and st.parameters is not None:
            cell += f"<div>parameters: <code>{e(repr(st.parameters)[:500])}</code></div>"
        action = ""
        if can_explain and st.kind == "select":
            action = (
                f'<button class="small" data-explain="{e(base)}/explain" '
                f'data-request="{record.id}" data-index="{i}" data-target="plan-{i}">'
                "EXPLAIN</button>"
            )
        cell += f'<pre id="plan-{i}" class="plan"></pre>' if action else ""
        rows.append(
            [
                str(i + 1),
                fmt_ms(st.offset),
                fmt_ms(st.duration),
                "" if st.rowcount is None or st.rowcount < 0 else str(st.rowcount),
                cell,
                f"<code>{e(st.callsite)}</code>" if st.callsite else "",
                e(st.orm.describe()) if st.orm else "",
                action + (f' <span class="error">{e(st.error)}</span>' if st.error else ""),
            ]
        )
    dropped = (
        f'<p class="note">{record.dropped} more statements were run and not kept '
        "(max_statements).</p>"
        if record.dropped
        else ""
    )
    tags = ", ".join(f"{k}={v}" for k, v in record.tags.items())
    return (
        f'<p><a href="{e(base)}/requests">&larr; all requests</a> · {e(tags)}</p>'
        + tiles(
            [
                (str(record.count), "statements"),
                (fmt_ms(record.db_s), "ms in the database"),
                (fmt_ms(record.wall_s), "ms wall"),
                (str(len(found)), "findings"),
            ]
        )
        + ("<h3>Findings</h3>" + "".join(_finding_html(f) for f in found) if found else "")
        + "<h3>Statements</h3>"
        + dropped
        + table(
            ["#", "at ms", "ms", "rows", "statement", "call site", "ORM", ""],
            rows,
            numeric=(0, 1, 2, 3),
            attrs=' id="statements"',
        )
    )


def queries_page(
    stats: QueryStats | None,
    joined: StatementsJoin | None,
    recorder: RequestRecorder | None,
    sort: str,
    base: str,
    error: str | None,
) -> str:
    """The application's statements beside pg_stat_statements, and the trend of the window."""
    if stats is None:
        return (
            '<p class="empty">No QueryStats: create the dashboard with <code>stats=</code> '
            "the QueryStats your application attached.</p>"
        )
    key, label = _SORTS.get(sort, _SORTS["total"])
    links = " · ".join(
        f'<a href="{e(base)}/queries?sort={name}">{e(text)}</a>'
        if name != sort
        else f"<strong>{e(text)}</strong>"
        for name, (_, text) in _SORTS.items()
    )
    server = {r.fingerprint: r.server for r in joined.rows} if joined else {}
    top = stats.top(50, by=key)  # type: ignore[arg-type]
    rows = []
    for st in top:
        srv = server.get(st.fingerprint)
        sites = sorted(st.callsites.items(), key=lambda kv: -kv[1])[:3]
        rows.append(
            [
                f"<pre>{e(st.normalized[:600])}</pre>",
                "<br>".join(f"<code>{e(s)}</code> x{n}" for s, n in sites),
                f"{st.calls:,}",
                fmt_ms(st.total_time),
                fmt_ms(st.mean_time),
                fmt_ms(st.p95_time),
                f"{srv.calls:,}" if srv else "-",
                f"{srv.total_ms:,.1f}" if srv else "-",
                f"{srv.shared_blks_hit:,} / {srv.shared_blks_read:,}" if srv else "-",
                f"{srv.hit_ratio:.1%}" if srv and srv.hit_ratio is not None else "-",
                f"{srv.io_ms:,.1f}" if srv else "-",
            ]
        )
    note = ""
    if error:
        note = f'<p class="note">pg_stat_statements not read: {e(error)}</p>'
    elif joined is not None and not joined.available:
        note = f'<p class="note">{e(joined.note)}</p>'
    elif joined is not None:
        note = (
            f'<p class="note">{joined.matched} statements matched to pg_stat_statements '
            f"(extension {e(joined.extversion)}) by fingerprint.</p>"
        )
    server_only = [r for r in joined.rows if r.app is None][:10] if joined else []
    trend = ""
    if recorder is not None and len(recorder):
        buckets: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
        records = recorder.requests()
        t0 = min(r.started_at for r in records)
        span = max(1.0, max(r.started_at for r in records) - t0)
        width = max(1.0, span / 60)
        for r in records:
            b = buckets[int((r.started_at - t0) / width)]
            b[0] += r.count
            b[1] += r.db_s * 1000.0
        points = [(k * width, v[1]) for k, v in sorted(buckets.items())]
        trend = "<h3>Database time over the recording window</h3>" + line_chart(
            points,
            ceiling=max(v for _, v in points),
            limit=None,
            unit=f"ms per {width:.1f} s",
            label="database time over the window",
        )
    chart = hbar_chart(
        [(s.normalized[:60], s.total_time * 1000.0) for s in stats.top(10)],
        unit="ms",
        label="total time by statement",
    )
    return (
        tiles(
            [
                (f"{len(stats):,}", "statements (fingerprints)"),
                (f"{stats.total_calls:,}", "calls"),
                (f"{stats.duration_s:,.0f} s", "recording window"),
            ]
        )
        + note
        + chart
        + trend
        + f"<p>top 50 by {e(label)} · sort by {links}</p>"
        + table(
            [
                "statement",
                "call sites",
                "calls",
                "total ms",
                "mean ms",
                "p95 ms",
                "server calls",
                "server total ms",
                "shared hit / read",
                "hit ratio",
                "I/O ms",
            ],
            rows,
            numeric=range(2, 11),
            attrs=' id="queries"',
        )
        + (
            "<h3>Other clients' statements (server only)</h3>"
            + table(
                ["statement", "calls", "total ms", "mean ms", "shared hit / read"],
                [
                    [
                        f"<pre>{e(r.text[:400])}</pre>",
                        f"{r.server.calls:,}",
                        f"{r.server.total_ms:,.1f}",
                        f"{r.server.mean_ms:,.2f}",
                        f"{r.server.shared_blks_hit:,} / {r.server.shared_blks_read:,}",
                    ]
                    for r in server_only
                    if r.server is not None
                ],
                numeric=(1, 2, 3),
            )
            if server_only
            else ""
        )
    )
