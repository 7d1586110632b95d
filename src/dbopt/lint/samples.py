"""Small extra reads some rules need beyond the shared catalog snapshot.

Each reader takes the linter's read-only connection and the loaded catalog and
stores what it found in ``catalog.derived`` under its own key. Readers query
``pg_catalog`` and ``pg_stats`` only (never a user table) and a reader that
fails (timeout, privilege) records the failure in ``catalog.errors`` under its
name, so only the rules that need it are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dbopt.postgres.catalog import Catalog

__all__ = ["READERS", "load_extra", "reader"]

Reader = Callable[["psycopg.Cursor[dict[str, Any]]", Catalog], None]

#: Extra readers by name (the name is what a rule lists in ``needs``).
READERS: dict[str, Reader] = {}


def reader(name: str) -> Callable[[Reader], Reader]:
    """Register the decorated function as the extra reader ``name``."""

    def register(fn: Reader) -> Reader:
        READERS[name] = fn
        return fn

    return register


def load_extra(connection: psycopg.Connection[Any], catalog: Catalog, names: set[str]) -> None:
    """Run the registered readers in ``names`` on ``connection``, each in its own savepoint."""
    for name, fn in READERS.items():
        if name not in names:
            continue
        try:
            with connection.transaction(), connection.cursor(row_factory=dict_row) as cur:
                fn(cur, catalog)
        except (
            psycopg.errors.QueryCanceled,
            psycopg.errors.LockNotAvailable,
            psycopg.errors.InsufficientPrivilege,
        ) as exc:
            catalog.errors[name] = f"{type(exc).__name__}: {str(exc).strip()}"
