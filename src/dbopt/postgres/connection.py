"""A read-only psycopg connection of dbopt's own, with statement and lock timeouts.

Shared by the linter, the health report and the schema tools. The session is
``default_transaction_read_only``, so nothing dbopt runs through it can write,
and ``lock_timeout`` bounds any wait on a lock another session holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dbopt.errors import ConfigurationError, ServerUnavailableError
from dbopt.postgres.connect import Target, conninfo

__all__ = ["Target", "conninfo", "read_only_connection"]


@contextmanager
def read_only_connection(
    target: Target,
    *,
    tool: str,
    statement_timeout_ms: int = 5000,
    lock_timeout_ms: int = 1000,
    connect_timeout_s: int = 5,
) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A new autocommit, read-only connection with both timeouts set; closed on exit.

    Raises :class:`~dbopt.ServerUnavailableError` when the server cannot be reached.
    """
    if statement_timeout_ms <= 0 or lock_timeout_ms <= 0:
        raise ConfigurationError("statement_timeout_ms and lock_timeout_ms must be positive")
    info = conninfo(target, tool)
    try:
        conn = psycopg.connect(
            info,
            autocommit=True,
            connect_timeout=connect_timeout_s,
            application_name=f"dbopt-{tool}",
            prepare_threshold=None,
            row_factory=dict_row,
        )
    except psycopg.Error as exc:
        raise ServerUnavailableError(f"{tool} cannot connect: {exc}") from exc
    try:
        conn.execute(
            "SELECT set_config('statement_timeout', %s, false),"
            " set_config('lock_timeout', %s, false),"
            " set_config('default_transaction_read_only', 'on', false),"
            " set_config('idle_in_transaction_session_timeout', %s, false)",
            (str(int(statement_timeout_ms)), str(int(lock_timeout_ms)), "60000"),
        )
        yield conn
    finally:
        conn.close()
