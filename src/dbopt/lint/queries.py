"""The catalog queries, now in :mod:`dbopt.postgres.catalog` (re-exported here)."""

from __future__ import annotations

from dbopt.postgres.catalog import (
    COLUMNS,
    CONSTRAINTS,
    INDEXES,
    RELATIONS,
    SEQUENCES,
    SERVER,
    STATS,
)

__all__ = [
    "COLUMNS",
    "CONSTRAINTS",
    "INDEXES",
    "RELATIONS",
    "SEQUENCES",
    "SERVER",
    "STATS",
]
