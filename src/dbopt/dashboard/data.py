"""What the database pages read that no feature reads yet: space per table and index."""

from __future__ import annotations

from typing import Any

from dbopt.postgres.connect import Target, map_driver_errors, read_only_connection

__all__ = ["space"]

_SPACE = """
SELECT CASE c.relkind WHEN 'i' THEN 'index' WHEN 'I' THEN 'index' ELSE 'table' END AS kind,
       n.nspname AS schema, c.relname AS name,
       CASE WHEN c.relkind IN ('i', 'I') THEN t.relname END AS table,
       pg_relation_size(c.oid)::int8 AS bytes,
       CASE WHEN c.relkind IN ('i', 'I') THEN pg_relation_size(c.oid)
            ELSE pg_total_relation_size(c.oid) END::int8 AS total_bytes,
       CASE WHEN c.reltuples >= 0 AND c.relkind NOT IN ('i', 'I')
            THEN c.reltuples::float8 END AS rows
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index x ON x.indexrelid = c.oid
LEFT JOIN pg_class t ON t.oid = x.indrelid
WHERE c.relkind IN ('r', 'm', 'i', 'p', 'I')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'
ORDER BY total_bytes DESC, n.nspname, c.relname
LIMIT %(limit)s
"""


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
        return list(conn.execute(_SPACE, {"limit": limit}).fetchall())
