"""Usage: tables nobody reads (once the statistics cover a long enough period)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg

from dbopt.findings import Finding, Severity
from dbopt.lint.base import LintConfig, Rule, register_rules, table_meta
from dbopt.lint.catalog import Catalog
from dbopt.lint.samples import reader

__all__ = ["stats_period"]

# When the counters started: their last reset, else the database's creation (the
# PG_VERSION file of its directory, written by CREATE DATABASE; pg_stat_file needs
# superuser or pg_read_server_files, so without it the start stays unknown).
STATS_PERIOD = """
SELECT d.stats_reset,
       CASE WHEN d.stats_reset IS NULL
             AND has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE')
            THEN (pg_stat_file('base/' || d.datid || '/PG_VERSION', true)).modification
       END AS created,
       now() AS now
FROM pg_stat_database d
WHERE d.datname = current_database()
"""


@reader("stats_period")
def _stats_period(cur: psycopg.Cursor[dict[str, Any]], catalog: Catalog) -> None:
    row = cur.execute(STATS_PERIOD).fetchone() or {}
    start, now = row.get("stats_reset") or row.get("created"), row.get("now")
    catalog.derived["stats_period"] = (start, now)
    if catalog.stats_age_s is None and start is not None and now is not None:
        # never reset: the counters are as old as the database (LINT006 reads this too)
        catalog.stats_age_s = (now - start).total_seconds()


def stats_period(catalog: Catalog) -> tuple[datetime | None, float | None]:
    """When the statistics started and how many seconds they cover (None: unknown)."""
    start, now = catalog.derived.get("stats_period", (None, None))
    if start is None or now is None:
        return None, None
    return start, (now - start).total_seconds()


def table_never_scanned(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    start, age = stats_period(catalog)
    if age is not None and age < config.unused_table_min_stats_age_s:
        return
    since = start.isoformat() if start else None
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
            + (f" since {since}" if since else " (statistics period unknown)")
            + f" ({rows} live rows)",
            **table_meta(
                table,
                live_rows=rows,
                stats_reset=since,
                stats_age_s=round(age) if age is not None else None,
            ),
        )


register_rules(
    Rule(
        "LINT015",
        "table_never_scanned",
        Severity.INFO,
        "A table has not been read (no sequential or index scan) since statistics were reset.",
        "A table nothing reads is either dead weight (backups, vacuum, disk) or read only on a "
        "replica; check both before dropping it. Each index build counts as a sequential scan "
        "in the statistics, so up to one scan per index is not counted as a read. Nothing is "
        "reported until the statistics cover ``unused_table_min_stats_age_s`` (a week): a "
        "database minutes old has read nothing yet.",
        table_never_scanned,
        needs=("relations", "columns", "constraints", "indexes", "stats_period"),
    ),
)
