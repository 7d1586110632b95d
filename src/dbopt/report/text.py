"""Plain-text tables for terminals and logs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dbopt.core.stats import StatementStats

__all__ = ["stats_table", "table"]


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A left-aligned text table; numbers are right-aligned."""
    body = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    numeric = [all(_is_number(row[i]) for row in body) and bool(body) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(row) for row in body)
    return "\n".join(out)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def stats_table(entries: Iterable[StatementStats], sql_width: int = 70) -> str:
    """The top statements of a :class:`~dbopt.QueryStats` as a table (times in ms)."""
    rows = []
    for s in entries:
        sql = (
            s.normalized
            if len(s.normalized) <= sql_width
            else s.normalized[: sql_width - 3] + "..."
        )
        rows.append(
            (s.calls, s.total_time * 1000, s.mean_time * 1000, s.p95_time * 1000, s.rows, sql)
        )
    return table(("calls", "total ms", "mean ms", "p95 ms", "rows", "statement"), rows)
