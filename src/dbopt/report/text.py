"""Plain-text tables for terminals and logs."""

from __future__ import annotations

from collections.abc import Iterable

from dbopt._console import table
from dbopt.core.stats import StatementStats

__all__ = ["stats_table", "table"]


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
