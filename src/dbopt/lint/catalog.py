"""What the linter knows about a database: the shared snapshot of :mod:`dbopt.postgres.catalog`."""

from __future__ import annotations

from dbopt.postgres.catalog import (
    PARTS,
    Catalog,
    Column,
    ColumnStats,
    Constraint,
    Index,
    SequenceInfo,
    Table,
    load,
)

__all__ = [
    "PARTS",
    "Catalog",
    "Column",
    "ColumnStats",
    "Constraint",
    "Index",
    "SequenceInfo",
    "Table",
    "load",
]
