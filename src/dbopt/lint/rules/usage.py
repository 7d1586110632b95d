"""Usage: tables nobody reads."""

from __future__ import annotations

from collections.abc import Iterator

from dbopt.findings import Finding
from dbopt.lint.base import LintConfig, Rule, rule, table_meta
from dbopt.lint.catalog import Catalog

__all__: list[str] = []


@rule(
    "LINT015",
    "table_never_scanned",
    "info",
    "A table has not been read (no sequential or index scan) since statistics were reset.",
    "A table nothing reads is either dead weight (backups, vacuum, disk) or read only on a "
    "replica; check both before dropping it. Each index build counts as a sequential scan "
    "in the statistics, so up to one scan per index is not counted as a read.",
)
def table_never_scanned(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    since = catalog.stats_reset.isoformat() if catalog.stats_reset else None
    for table in catalog.top_level():
        leaves = catalog.leaves(table)
        counted = [t for t in leaves if t.seq_scan is not None]
        if not counted:
            continue
        # building an index counts as one sequential scan of its table: discount them
        scans = sum(max((t.seq_scan or 0) - len(t.indexes), 0) + (t.idx_scan or 0) for t in counted)
        if scans:
            continue
        rows = sum(max(t.n_live_tup or 0, 0) for t in counted)
        yield r.finding(
            table.sql_name,
            f"table {table.sql_name} has never been scanned"
            + (f" since {since}" if since else "")
            + f" ({rows} live rows)",
            **table_meta(table, live_rows=rows, stats_reset=since),
        )
