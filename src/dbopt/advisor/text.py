"""Plain-text rendering of an :class:`AdvisorReport` (a table, then findings and errors)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbopt.advisor.report import AdvisorReport

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
                sql = " ".join(imp.sql.split())
                sql = sql if len(sql) <= 90 else sql[:87] + "..."
                lines.append(
                    f"  {imp.calls}x cost {imp.cost_before:,.1f} -> {imp.cost_after:,.1f}: {sql}"
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
    if report.rejected:
        lines.append("")
        lines.append("not recommended:")
        lines.extend(f"  {r.label}: {r.message}" for r in report.rejected)
    if report.hotspots:
        lines.append("")
        lines.append("hot statements no index fixes:")
        for h in report.hotspots:
            sql = " ".join(h.sql.split())
            sql = sql if len(sql) <= 70 else sql[:67] + "..."
            where = (
                f"; dominated by {h.dominant} ({h.dominant_share:.0%} of its cost)"
                if h.dominant
                else ""
            )
            lines.append(
                f"  {h.total_time_s:,.3f} s ({h.time_share:.0%} of measured time), "
                f"{h.calls}x{where}; best with any index: cost {h.cost_before:,.1f} -> "
                f"{h.best_cost:,.1f}: {sql}"
            )
            lines.extend(f"      at {site}" for site in h.callsites[:3])
    unchanged = [s for s in report.statements if s.status == "unchanged" and s.reason]
    if unchanged:
        lines.append("")
        lines.append("statements no index improves:")
        for st in unchanged:
            sql = " ".join(st.sql.split())
            lines.append(f"  {sql[:70]}: {st.reason}")
    if report.findings:
        lines.append("")
        lines.append("existing indexes:")
        lines.extend(f"  {f}" for f in report.findings)
    if report.errors:
        lines.append("")
        lines.append("errors:")
        for err in report.errors:
            sql = " ".join(err.sql.split())
            where = f"line {err.line}: " if err.line is not None else ""
            lines.append(f"  {where}{sql[:70]}: {err.message}")
    return "\n".join(lines)
