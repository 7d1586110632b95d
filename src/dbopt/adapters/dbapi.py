"""Any DB-API 2 connection (sqlite3, PyMySQL, psycopg2, ...) through a proxy.

DB-API connections cannot be instrumented in place, so
:func:`dbopt.wrap_dbapi` (in :mod:`dbopt.instrument`) returns a proxy
connection whose cursors time every ``execute`` and ``executemany``.
Everything else passes through to the real objects.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from dbopt.core.callsite import capture_stack
from dbopt.core.pipeline import Pipeline
from dbopt.errors import ReportedError

if TYPE_CHECKING:
    from dbopt.instrument import Instrumentation

__all__ = ["ConnectionProxy", "CursorProxy", "DbapiAdapter", "dialect_of"]

_DIALECTS = {
    "sqlite3": "sqlite",
    "pysqlite2": "sqlite",
    "pymysql": "mysql",
    "MySQLdb": "mysql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "psycopg2": "postgresql",
    "psycopg": "postgresql",
    "pg8000": "postgresql",
    "oracledb": "oracle",
    "pyodbc": "mssql",
    "duckdb": "duckdb",
}


def dialect_of(conn: Any) -> str:
    """The dialect name of a DB-API connection, guessed from its driver's module."""
    top = (type(conn).__module__ or "").split(".")[0]
    return _DIALECTS.get(top, top or "unknown")


class DbapiAdapter:
    """The pipeline of one proxied connection; the proxy reports only while attached."""

    name = "dbapi"

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.attached = False

    def attach(self) -> None:
        """Start reporting (sinks, and ``capture_queries()`` blocks)."""
        self.attached = True

    def detach(self) -> None:
        """Stop reporting: the proxy only passes calls through."""
        self.attached = False


def _sql_text(sql: Any) -> str:
    if isinstance(sql, str):
        return sql
    if isinstance(sql, (bytes, bytearray)):
        return bytes(sql).decode("utf-8", "replace")
    return str(sql)


def _run(
    adapter: DbapiAdapter,
    method: Any,
    sql: Any,
    parameters: Any,
    executemany: bool,
    cursor: Any,
) -> Any:
    pipeline = adapter.pipeline
    if not (adapter.attached and pipeline.active):
        return method(sql) if parameters is None else method(sql, parameters)
    if executemany and parameters is not None and not isinstance(parameters, Sequence):
        parameters = list(parameters)
    args = (sql,) if parameters is None else (sql, parameters)
    started_at = time.time()
    start = time.perf_counter()
    try:
        result = method(*args)
    except Exception as exc:
        with suppress(ReportedError):  # the statement's own error is what the app sees
            pipeline.record(
                _sql_text(sql),
                parameters,
                duration=time.perf_counter() - start,
                started_at=started_at,
                rowcount=None,
                executemany=executemany,
                error=exc,
                stack=capture_stack(pipeline.stack_depth(), 2),
            )
        raise
    duration = time.perf_counter() - start
    try:
        rowcount = cursor.rowcount
    except Exception:  # noqa: BLE001 - some drivers raise on closed cursors
        rowcount = None
    pipeline.record(
        _sql_text(sql),
        parameters,
        duration=duration,
        started_at=started_at,
        rowcount=rowcount,
        executemany=executemany,
        stack=capture_stack(pipeline.stack_depth(), 2),
    )
    return result


class CursorProxy:
    """A DB-API cursor whose ``execute``/``executemany`` emit events."""

    __slots__ = ("_dbopt_connection", "_dbopt_cursor")

    def __init__(self, cursor: Any, connection: ConnectionProxy) -> None:
        self._dbopt_cursor = cursor
        self._dbopt_connection = connection

    @property
    def connection(self) -> ConnectionProxy:
        """The proxy connection this cursor belongs to."""
        return self._dbopt_connection

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        """Execute one statement; returns what the driver's cursor returns."""
        result = _run(
            self._dbopt_connection._dbopt_adapter,
            self._dbopt_cursor.execute,
            operation,
            parameters,
            False,
            self._dbopt_cursor,
        )
        return self if result is self._dbopt_cursor else result

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        """Execute one statement per parameter set (observed, an iterator becomes a list)."""
        result = _run(
            self._dbopt_connection._dbopt_adapter,
            self._dbopt_cursor.executemany,
            operation,
            seq_of_parameters,
            True,
            self._dbopt_cursor,
        )
        return self if result is self._dbopt_cursor else result

    def __iter__(self) -> Iterator[Any]:
        return iter(self._dbopt_cursor)

    def __next__(self) -> Any:
        return next(self._dbopt_cursor)

    def __enter__(self) -> CursorProxy:
        enter = getattr(self._dbopt_cursor, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, *exc: object) -> Any:
        exit_ = getattr(self._dbopt_cursor, "__exit__", None)
        if exit_ is not None:
            return exit_(*exc)
        self._dbopt_cursor.close()
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dbopt_cursor, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in CursorProxy.__slots__:
            object.__setattr__(self, name, value)
        else:
            setattr(self._dbopt_cursor, name, value)


class ConnectionProxy:
    """A DB-API connection whose cursors emit events; see :func:`dbopt.wrap_dbapi`."""

    def __init__(self, connection: Any, adapter: DbapiAdapter) -> None:
        object.__setattr__(self, "_dbopt_connection", connection)
        object.__setattr__(self, "_dbopt_adapter", adapter)
        object.__setattr__(self, "dbopt_handle", None)

    @property
    def wrapped(self) -> Any:
        """The real driver connection."""
        return self._dbopt_connection

    def cursor(self, *args: Any, **kwargs: Any) -> CursorProxy:
        """A proxied cursor of the real connection."""
        return CursorProxy(self._dbopt_connection.cursor(*args, **kwargs), self)

    def execute(self, operation: Any, parameters: Any = None) -> CursorProxy:
        """The sqlite3-style shortcut: a new cursor, executed."""
        cursor = self.cursor()
        cursor.execute(operation, parameters)
        return cursor

    def executemany(self, operation: Any, seq_of_parameters: Any) -> CursorProxy:
        """The sqlite3-style shortcut for ``executemany``."""
        cursor = self.cursor()
        cursor.executemany(operation, seq_of_parameters)
        return cursor

    def detach(self) -> None:
        """Detach the sinks given to :func:`dbopt.wrap_dbapi`."""
        handle: Instrumentation | None = self.dbopt_handle
        if handle is not None:
            handle.close()

    def __enter__(self) -> ConnectionProxy:
        self._dbopt_connection.__enter__()
        return self

    def __exit__(self, *exc: object) -> Any:
        return self._dbopt_connection.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dbopt_connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._dbopt_connection, name, value)

    def __repr__(self) -> str:
        return f"<dbopt ConnectionProxy of {self._dbopt_connection!r}>"
