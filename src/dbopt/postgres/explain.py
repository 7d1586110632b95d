"""``Explainer``: EXPLAIN a captured statement on a connection of its own."""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

from dbopt.postgres.connect import connect, conninfo, translate

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import URL, Engine

    from dbopt.core.events import QueryEvent

__all__ = ["Explainer"]

_DOLLAR_PARAM = re.compile(r"\$\d+")


class Explainer:
    """Run ``EXPLAIN (FORMAT JSON)`` for events, never in the application's transaction.

    ``target`` is a SQLAlchemy ``Engine``/URL or a libpq connection string of
    the same database. The Explainer opens one psycopg connection of its own
    (lazily, reopened after a failure), runs each EXPLAIN in a read-only
    transaction that is rolled back, under ``statement_timeout_ms``. EXPLAIN
    without ANALYZE does not execute the statement. Statements with ``%s`` or
    ``%(name)s`` placeholders are explained with their captured parameters;
    ``$n`` text (pg_stat_statements) uses ``GENERIC_PLAN`` on PostgreSQL 16+.
    Thread-safe; call :meth:`close` when done.
    """

    def __init__(
        self,
        target: Engine | URL | str,
        *,
        statement_timeout_ms: int = 5000,
        connect_timeout_s: int = 5,
    ) -> None:
        self.conninfo = conninfo(target, "Explainer")
        self.statement_timeout_ms = int(statement_timeout_ms)
        self.connect_timeout_s = int(connect_timeout_s)
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def __call__(self, event: QueryEvent) -> Any:
        """Plan of ``event`` (the JSON EXPLAIN output), or None if not explainable."""
        if event.dialect != "postgresql":
            return None
        return self.explain(event.sql, event.parameters)

    def explain(self, sql: str, parameters: Any = None) -> Any:
        """``EXPLAIN (FORMAT JSON)`` of ``sql``; raises :class:`DatabaseError` on failure."""
        import psycopg

        options = "FORMAT JSON"
        if parameters is None and _DOLLAR_PARAM.search(sql):
            options += ", GENERIC_PLAN"
        if (
            isinstance(parameters, (list, tuple))
            and parameters
            and isinstance(parameters[0], (list, tuple, dict))
        ):
            parameters = parameters[0]  # executemany: explain the first set
        with self._lock:
            conn = self._connect()
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute("SET TRANSACTION READ ONLY")
                    conn.execute(f"SET LOCAL statement_timeout = {self.statement_timeout_ms}")
                    cur = conn.cursor()
                    cur.execute(f"EXPLAIN ({options}) {sql}", parameters or None)
                    row = cur.fetchone()
            except psycopg.Error as exc:
                if isinstance(exc, psycopg.OperationalError):
                    self._drop()
                raise translate(exc, "EXPLAIN failed") from exc
        return row[0] if row else None

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(
                self.conninfo,
                "explain",
                statement_timeout_ms=None,  # set per EXPLAIN (SET LOCAL)
                lock_timeout_ms=None,
                connect_timeout_s=self.connect_timeout_s,
            )
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def close(self) -> None:
        """Close the Explainer's connection."""
        with self._lock:
            self._drop()

    def __enter__(self) -> Explainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
