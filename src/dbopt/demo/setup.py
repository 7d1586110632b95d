"""Demo step 1: the schema (``user_interactions`` partitioned by dbopt) and the data."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from dbopt._console import Progress
from dbopt.demo.console import Console
from dbopt.demo.data import Sizes, generate, reset_statistics
from dbopt.demo.schema import CONSTRAINTS_SQL, DETAIL_SQL, INTERACTIONS_COLUMNS, SCHEMA_SQL

__all__ = ["build", "months_back", "operations_spec"]


def months_back(today: date, months: int) -> date:
    """The first day of the month ``months`` before ``today``'s month."""
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def operations_spec() -> Any:
    """The spec the platform's operators keep: 4 months ahead, 12 months of history."""
    from dbopt.partitions import PartitionSpec

    return PartitionSpec(
        "user_interactions",
        key="created_at",
        interval="month",
        premake=4,
        retention="12 months",
        retention_mode="detach",
    )


def build(db_url: str, sizes: Sizes, console: Console) -> dict[str, Any]:
    """Create the schema and fill it; returns what was made (for the report)."""
    from dbopt.partitions import PartitionManager, PartitionSpec
    from dbopt.postgres.connect import connect

    today = datetime.now(timezone.utc).date()
    first = months_back(today, sizes.months - 1)
    detail_from = months_back(today, sizes.detail_months - 1)
    console.heading("Schema and data (seed 001: the learning platform)")
    with connect(
        db_url, "demo", read_only=False, statement_timeout_ms=None, lock_timeout_ms=None
    ) as conn:
        conn.execute(SCHEMA_SQL)
        # The launch spec: monthly partitions from the first month of data, one ahead.
        launch = PartitionSpec(
            "user_interactions", key="created_at", interval="month", start=first, premake=1
        )
        created = PartitionManager(db_url).create(launch, columns=INTERACTIONS_COLUMNS)
        conn.execute(DETAIL_SQL)
        console.line(
            f"11 tables; user_interactions partitioned by month with PartitionManager.create "
            f"({len(created.done)} partitions, {first:%Y-%m} onwards, plus a default)"
        )
        with Progress("generating data", total=sizes.total_rows) as progress:
            counts = generate(
                conn,
                sizes,
                first_month=datetime(first.year, first.month, 1, tzinfo=timezone.utc),
                detail_from=datetime(detail_from.year, detail_from.month, 1, tzinfo=timezone.utc),
                progress=progress.update,
            )
            progress.update(sizes.total_rows, "adding foreign keys")
            conn.execute(CONSTRAINTS_SQL)
            conn.execute("ANALYZE")
            reset_statistics(conn)
    rows = sum(counts.values())
    console.line(
        f"{rows:,} rows: {counts['user_interactions']:,} interactions over {sizes.months} months, "
        f"{counts['user_sessions']:,} sessions, {counts['users']:,} users, "
        f"{counts['courses']:,} courses, {counts['content_items']:,} content items"
    )
    console.line(
        "the seed's indexing strategy is left out on purpose: finding it is dbopt's job", "dim"
    )
    return {"rows": counts, "first_month": first.isoformat()}
