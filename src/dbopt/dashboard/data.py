"""What the database pages read that no feature reads yet: space per table and index
(the query lives with the other catalog queries, :data:`dbopt.postgres.catalog.SPACE`)."""

from __future__ import annotations

from typing import Any

from dbopt.postgres.catalog import SPACE
from dbopt.postgres.connect import Target, map_driver_errors, read_only_connection

__all__ = ["space"]


def space(
    target: Target, *, limit: int = 50, statement_timeout_ms: int = 5000
) -> list[dict[str, Any]]:
    """The ``limit`` largest tables and indexes: kind, schema, name, bytes, total bytes, rows.

    ``total_bytes`` of a table includes its indexes and TOAST; ``rows`` is the
    planner's estimate (None before the first ANALYZE). Read-only.
    """
    with (
        read_only_connection(
            target, tool="dashboard space", statement_timeout_ms=statement_timeout_ms
        ) as conn,
        map_driver_errors("could not read table sizes"),
    ):
        return list(conn.execute(SPACE, {"limit": limit}).fetchall())
