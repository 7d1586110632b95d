"""Plain-text rendering of an :class:`AdvisorReport` (a table, then findings and errors)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbopt.advisor.report import AdvisorReport, Hotspot

__all__ = ["render_text"]


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover - loop always returns


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return out


def _one_line(sql: str, width: int, mark: str = "") -> str:
    """``sql`` on one line, cut to ``width`` characters (ending in ``mark`` when cut)."""
    sql = " ".join(sql.split())
    return sql if len(sql) <= width else sql[: width - len(mark)] + mark


def _section(title: str, items: list[str]) -> list[str]:
    """A blank line, ``title:`` and the items; nothing when there are none."""
    return ["", f"{title}:", *items] if items else []


def _hotspot(h: Hotspot) -> list[str]:
    where = (
        f"; dominated by {h.dominant} ({h.dominant_share:.0%} of its cost)" if h.dominant else ""
    )
    return [
        f"  {h.total_time_s:,.3f} s ({h.time_share:.0%} of measured time), "
        f"{h.calls}x{where}; best with any index: cost {h.cost_before:,.1f} -> "
        f"{h.best_cost:,.1f}: {_one_line(h.sql, 70, '...')}",
        *(f"      at {site}" for site in h.callsites[:3]),
    ]


def render_text(report: AdvisorReport) -> str:
    """The report as lines of text."""
    before, after = report.total_cost_before, report.total_cost_after
    ratio = f"{before / after:.1f}x" if after > 0 else "-"
    lines = [
        f"Index advisor ({report.method}): {len(report.recommendations)} recommendation(s), "
        f"{_size(report.total_size_bytes)}; workload cost {before:,.0f} -> {after:,.0f} "
        f"({ratio}); {len(report.statements)} statement(s) in {report.elapsed_s:.2f} s",
    ]
    lines.extend(f"note: {n}" for n in report.notes)
    if report.recommendations:
        timed = any(r.time_saved_s is not None for r in report.recommendations)
        rows = []
        for rec in report.recommendations:
            saved = (
                [f"{rec.time_saved_s:,.3f} s" if rec.time_saved_s is not None else "-"]
                if timed
                else []
            )
            rows.append(
                [
                    rec.label,
                    *saved,
                    _size(rec.size_bytes)
                    + (f" (built ~{_size(rec.built_bytes)})" if rec.built_bytes else ""),
                    f"{rec.saving_share:.0%}",
                    str(len(rec.statements)),
                    rec.evaluated_by,
                ]
            )
        lines.append("")
        header = ["index", *(["time saved"] if timed else []), "size", "share", "statements"]
        lines.extend(_table([*header, "method"], rows))
        for rec in report.recommendations:
            lines.append("")
            lines.append(f"{rec.name}:")
            lines.extend(f"  {stmt};" for stmt in rec.ddl)
            for imp in rec.statements[:5]:
                lines.append(
                    f"  {imp.calls}x cost {imp.cost_before:,.1f} -> {imp.cost_after:,.1f}: "
                    f"{_one_line(imp.sql, 90, '...')}"
                )
                lines.extend(f"      at {site}" for site in imp.callsites[:3])
    if report.measurements is not None:
        b, a = report.measured_before_ms or 0.0, report.measured_after_ms or 0.0
        speed = f"{b / a:.1f}x" if a > 0 else "-"
        lines.append("")
        lines.append(f"measured (EXPLAIN ANALYZE): {b:,.1f} ms -> {a:,.1f} ms ({speed})")
    if report.writes.get("reason"):
        lines.append("")
        lines.append(f"write cost: {report.writes['reason']}")
        lines.extend(f"  observed: {o}" for o in report.writes.get("observed", []))
    lines += _section("not recommended", [f"  {r.label}: {r.message}" for r in report.rejected])
    lines += _section(
        "hot statements no index fixes", [line for h in report.hotspots for line in _hotspot(h)]
    )
    lines += _section(
        "statements no index improves",
        [
            f"  {_one_line(st.sql, 70)}: {st.reason}"
            for st in report.statements
            if st.status == "unchanged" and st.reason
        ],
    )
    lines += _section("existing indexes", [f"  {f}" for f in report.findings])
    lines += _section(
        "errors",
        [
            f"  {'' if e.line is None else f'line {e.line}: '}{_one_line(e.sql, 70)}: {e.message}"
            for e in report.errors
        ],
    )
    return "\n".join(lines)
