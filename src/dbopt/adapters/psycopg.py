"""psycopg 3 adapter: connections and pools instrumented in place through their cursor factories.

Attaching replaces ``conn.cursor_factory`` and ``conn.server_cursor_factory``
with subclasses of the factories the connection already had, whose
``execute``, ``executemany``, ``stream`` and ``copy`` (server-side cursors:
``execute``) time the call and emit an event. ``conn.execute()`` goes through
``cursor_factory``, so it is covered. For a ``ConnectionPool`` or
``AsyncConnectionPool``, ``pool.connection_class`` is replaced by a subclass
whose ``connect`` instruments each new connection, and the connections idle in
the pool are instrumented at once. Detaching puts every original back.

Not covered: connections checked out of a pool (or being opened by it) at the
moment it is instrumented, until the pool replaces them; a ``cursor_factory``
the application assigns after attaching; ``Connection.commit()``,
``rollback()`` and other commands psycopg sends without a cursor. A
connection instrumented both directly and through its pool feeds both, so a
``capture_queries()`` block sees its statements twice. In pipeline mode an event is emitted
when the statement is queued: its duration is the time to queue it, rowcount
is None and an error surfaces later, at the pipeline's sync. ``stream()`` and
``copy()`` events span the whole iteration or ``with`` block.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, ClassVar

import psycopg

from dbopt.core.callsite import capture_stack
from dbopt.core.events import CallSite
from dbopt.core.pipeline import Pipeline, report_sink_error, wall_clock
from dbopt.errors import InstrumentationError, ReportedError

__all__ = ["PsycopgAdapter"]

_STATE = "_dbopt_state"
_lock = threading.RLock()
#: original cursor class → its instrumented subclass
_classes: dict[type[Any], type[Any]] = {}


class _ConnectionState:
    """What attaching changed on one connection, and the pipelines it feeds."""

    __slots__ = ("cursor", "original_cursor", "original_server", "pipelines", "server")

    def __init__(self, conn: Any) -> None:
        self.original_cursor: type[Any] = conn.cursor_factory
        self.original_server: type[Any] = conn.server_cursor_factory
        self.cursor = _instrumented(self.original_cursor)
        self.server = _instrumented(self.original_server)
        self.pipelines: tuple[Pipeline, ...] = ()


def _active(cursor: Any) -> tuple[Pipeline, ...]:
    """The pipelines of the cursor's connection if any would see an event, else ()."""
    state: _ConnectionState | None = getattr(cursor.connection, _STATE, None)
    if state is None:
        return ()
    pipelines = state.pipelines
    for pipeline in pipelines:
        if pipeline.active:
            return pipelines
    return ()


def _statement(query: Any, params: Any, conn: Any) -> tuple[str, Any]:
    """The SQL text of ``query`` (str, bytes, ``psycopg.sql`` object, template) and its params."""
    if isinstance(query, str):
        return query, params
    try:
        if isinstance(query, (bytes, bytearray, memoryview)):
            try:
                encoding = conn.info.encoding
            except Exception:  # noqa: BLE001 - a closed connection has no encoding
                encoding = "utf-8"
            return bytes(query).decode(encoding, "replace"), params
        as_string = getattr(query, "as_string", None)
        if as_string is not None:
            return str(as_string(conn)), params
        strings = getattr(query, "strings", None)
        if isinstance(strings, tuple):  # a t-string template (Python 3.14)
            values = tuple(i.value for i in getattr(query, "interpolations", ()))
            return "%s".join(strings), values
    except Exception:  # noqa: BLE001, S110 - describing the query must never fail it
        pass
    return str(query), params


class _Run:
    """One statement being timed: what it is, when it started, where it came from."""

    __slots__ = ("executemany", "params", "pipelines", "query", "stack", "start", "started_at")

    def __init__(
        self,
        pipelines: tuple[Pipeline, ...],
        query: Any,
        params: Any,
        *,
        executemany: bool = False,
        capture: bool = False,
    ) -> None:
        self.pipelines = pipelines
        self.query = query
        self.params = params
        self.executemany = executemany
        self.stack = self._capture() if capture else None
        self.start = time.perf_counter()
        self.started_at = wall_clock(self.start)

    def _capture(self) -> tuple[CallSite, ...]:
        depth = max(p.stack_depth() for p in self.pipelines)
        return capture_stack(depth, 2) if depth > 0 else ()

    def done(
        self, cursor: Any, error: BaseException | None = None, rowcount: int | None = None
    ) -> None:
        """Hand the statement to every pipeline; the application's own error always wins."""
        duration = time.perf_counter() - self.start
        pipelines = self.pipelines
        try:
            sql, parameters = _statement(self.query, self.params, cursor.connection)
            if error is None and rowcount is None:
                rowcount = cursor.rowcount
            stack = self.stack if self.stack is not None else self._capture()
        except Exception as exc:  # noqa: BLE001 - never break the app
            report_sink_error(pipelines[0], exc, "psycopg event")
            return
        for pipeline in pipelines:
            try:
                pipeline.record(
                    sql,
                    parameters,
                    duration=duration,
                    started_at=self.started_at,
                    rowcount=rowcount,
                    executemany=self.executemany,
                    error=error,
                    stack=stack[: pipeline.callsite_depth],
                )
            except ReportedError:
                if error is None:
                    raise


@contextmanager
def _recording_copy(
    cursor: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> Iterator[None]:
    """Time and record the ``COPY`` statement of a ``cursor.copy(...)`` block (sync or async)."""
    pipelines = _active(cursor)
    if not pipelines:
        yield
        return
    query = _query(args, kwargs, "statement")
    run = _Run(pipelines, query, _params(args, kwargs), capture=True)
    try:
        yield
    except Exception as exc:
        run.done(cursor, exc)
        raise
    run.done(cursor)


def _query(args: tuple[Any, ...], kwargs: Mapping[str, Any], name: str = "query") -> Any:
    return args[0] if args else kwargs.get(name)


def _params(args: tuple[Any, ...], kwargs: Mapping[str, Any], name: str = "params") -> Any:
    return args[1] if len(args) > 1 else kwargs.get(name)


def _prepare(
    pipelines: tuple[Pipeline, ...], args: tuple[Any, ...], kwargs: dict[str, Any], many: bool
) -> tuple[tuple[Any, ...], _Run]:
    """The call's arguments (executemany's parameter sets made a list) and its timer."""
    if not many:
        return args, _Run(pipelines, _query(args, kwargs), _params(args, kwargs))
    params_seq = _params(args, kwargs, "params_seq")
    if params_seq is not None and not isinstance(params_seq, Sequence):
        params_seq = list(params_seq)
        if len(args) > 1:
            args = (args[0], params_seq, *args[2:])
        else:
            kwargs["params_seq"] = params_seq
    return args, _Run(pipelines, _query(args, kwargs), params_seq, executemany=True)


def _timed(cursor: Any, method: Any, args: Any, kwargs: Any, many: bool = False) -> Any:
    """Call ``execute``/``executemany`` of the base class and emit its event."""
    pipelines = _active(cursor)
    if not pipelines:
        return method(*args, **kwargs)
    args, run = _prepare(pipelines, args, kwargs, many)
    try:
        result = method(*args, **kwargs)
    except Exception as exc:
        run.done(cursor, exc)
        raise
    run.done(cursor)
    return result


async def _timed_async(cursor: Any, method: Any, args: Any, kwargs: Any, many: bool = False) -> Any:
    """The asyncio twin of :func:`_timed`."""
    pipelines = _active(cursor)
    if not pipelines:
        return await method(*args, **kwargs)
    args, run = _prepare(pipelines, args, kwargs, many)
    try:
        result = await method(*args, **kwargs)
    except Exception as exc:
        run.done(cursor, exc)
        raise
    run.done(cursor)
    return result


class _Cursor(psycopg.Cursor[Any]):
    """Timing overrides mixed into a connection's ``cursor_factory``."""

    __slots__ = ()
    _dbopt_instrumented: ClassVar[bool] = True

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return _timed(self, super().execute, args, kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> None:
        _timed(self, super().executemany, args, kwargs, many=True)

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        pipelines = _active(self)
        rows_iter: Any = super().stream(*args, **kwargs)
        if not pipelines:
            yield from rows_iter
            return
        run = _Run(pipelines, _query(args, kwargs), _params(args, kwargs), capture=True)
        rows, error = 0, None
        try:
            for row in rows_iter:
                rows += 1
                yield row
        except Exception as exc:
            error = exc
            raise
        finally:
            rows_iter.close()
            run.done(self, error, rows)

    @contextmanager
    def copy(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with _recording_copy(self, args, kwargs), super().copy(*args, **kwargs) as copy:
            yield copy


class _ServerCursor(psycopg.ServerCursor[Any]):
    """Timing of ``execute`` (the DECLARE) mixed into ``server_cursor_factory``."""

    __slots__ = ()
    _dbopt_instrumented: ClassVar[bool] = True

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return _timed(self, super().execute, args, kwargs)


class _AsyncCursor(psycopg.AsyncCursor[Any]):
    """The asyncio twin of :class:`_Cursor`."""

    __slots__ = ()
    _dbopt_instrumented: ClassVar[bool] = True

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return await _timed_async(self, super().execute, args, kwargs)

    async def executemany(self, *args: Any, **kwargs: Any) -> None:
        await _timed_async(self, super().executemany, args, kwargs, many=True)

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        pipelines = _active(self)
        rows_iter: Any = super().stream(*args, **kwargs)
        if not pipelines:
            async for row in rows_iter:
                yield row
            return
        run = _Run(pipelines, _query(args, kwargs), _params(args, kwargs), capture=True)
        rows, error = 0, None
        try:
            async for row in rows_iter:
                rows += 1
                yield row
        except Exception as exc:
            error = exc
            raise
        finally:
            await rows_iter.aclose()
            run.done(self, error, rows)

    @asynccontextmanager
    async def copy(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        with _recording_copy(self, args, kwargs):
            async with super().copy(*args, **kwargs) as copy:
                yield copy


class _AsyncServerCursor(psycopg.AsyncServerCursor[Any]):
    """The asyncio twin of :class:`_ServerCursor`."""

    __slots__ = ()
    _dbopt_instrumented: ClassVar[bool] = True

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return await _timed_async(self, super().execute, args, kwargs)


def _instrumented(base: type[Any]) -> type[Any]:
    """The subclass of cursor class ``base`` with the timing overrides (cached)."""
    if getattr(base, "_dbopt_instrumented", False):
        return base
    with _lock:
        cls = _classes.get(base)
        if cls is None:
            if issubclass(base, psycopg.AsyncServerCursor):
                mixin: type[Any] = _AsyncServerCursor
            elif issubclass(base, psycopg.ServerCursor):
                mixin = _ServerCursor
            elif issubclass(base, psycopg.AsyncCursor):
                mixin = _AsyncCursor
            elif issubclass(base, psycopg.Cursor):
                mixin = _Cursor
            else:
                return base
            namespace = {
                "__slots__": (),
                "__module__": base.__module__,
                "__qualname__": base.__qualname__,
            }
            cls = type(base.__name__, (mixin, base), namespace)
            _classes[base] = cls
        return cls


def _add_pipeline(conn: Any, pipeline: Pipeline) -> None:
    with _lock:
        state: _ConnectionState | None = getattr(conn, _STATE, None)
        if state is None:
            state = _ConnectionState(conn)
            conn.cursor_factory = state.cursor
            conn.server_cursor_factory = state.server
            setattr(conn, _STATE, state)
        if pipeline not in state.pipelines:
            state.pipelines = (*state.pipelines, pipeline)


def _remove_pipeline(conn: Any, pipeline: Pipeline) -> None:
    with _lock:
        state: _ConnectionState | None = getattr(conn, _STATE, None)
        if state is None or pipeline not in state.pipelines:
            return
        state.pipelines = tuple(p for p in state.pipelines if p is not pipeline)
        if state.pipelines:
            return
        if conn.cursor_factory is state.cursor:
            conn.cursor_factory = state.original_cursor
        if conn.server_cursor_factory is state.server:
            conn.server_cursor_factory = state.original_server
        delattr(conn, _STATE)


class PsycopgAdapter:
    """Instrument a psycopg 3 connection or pool in place; see the module docstring.

    The target is held weakly: instrumenting does not keep a connection or a
    pool alive.
    """

    name = "psycopg"

    def __init__(self, target: Any, pipeline: Pipeline, *, is_pool: bool) -> None:
        self.pipeline = pipeline
        self.is_pool = is_pool
        self._target = weakref.ref(target)
        self._attached = False
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._pool_class: type[Any] | None = None
        self._original_pool_class: type[Any] | None = None

    @classmethod
    def for_target(cls, target: Any, callsite_depth: int) -> PsycopgAdapter:
        """Adapter for a ``Connection``, ``AsyncConnection`` or psycopg_pool pool.

        Raises :class:`InstrumentationError` for anything else and for a
        closed connection.
        """
        pipeline = Pipeline(cls.name, "postgresql", callsite_depth=callsite_depth)
        if isinstance(target, (psycopg.Connection, psycopg.AsyncConnection)):
            if target.closed:
                raise InstrumentationError(f"cannot instrument a closed connection: {target!r}")
            return cls(target, pipeline, is_pool=False)
        if _is_pool(target):
            return cls(target, pipeline, is_pool=True)
        raise InstrumentationError(
            f"cannot instrument {type(target).__qualname__}: the psycopg adapter takes a "
            "Connection, an AsyncConnection or a psycopg_pool connection pool"
        )

    @property
    def target(self) -> Any:
        """The instrumented connection or pool (None once garbage-collected)."""
        return self._target()

    def attach(self) -> None:
        """Swap in the instrumented factories (idempotent)."""
        target = self._target()
        with _lock:
            if self._attached or target is None:
                return
            self._attached = True
            if not self.is_pool:
                _add_pipeline(target, self.pipeline)
                return
            self._original_pool_class = target.connection_class
            self._pool_class = self._connection_class(target.connection_class)
            target.connection_class = self._pool_class
        for conn in _idle_connections(target):
            self._adopt(conn)

    def detach(self) -> None:
        """Put back every factory and connection class this adapter replaced (idempotent)."""
        target = self._target()
        with _lock:
            if not self._attached:
                return
            self._attached = False
            if not self.is_pool:
                if target is not None:
                    _remove_pipeline(target, self.pipeline)
                return
            if target is not None and target.connection_class is self._pool_class:
                target.connection_class = self._original_pool_class
            connections = list(self._connections)
            self._connections = weakref.WeakSet()
        for conn in connections:
            _remove_pipeline(conn, self.pipeline)

    def _adopt(self, conn: Any) -> None:
        """Instrument one connection of the pool; never fails the pool."""
        try:
            with _lock:
                if self._attached:
                    _add_pipeline(conn, self.pipeline)
                    self._connections.add(conn)
        except Exception as exc:  # noqa: BLE001 - the pool's connection must still work
            report_sink_error(self, exc, "instrumenting a pool connection")

    def _connection_class(self, base: type[Any]) -> type[Any]:
        """A subclass of the pool's connection class whose ``connect`` adopts the connection."""
        adapter = weakref.ref(self)

        if issubclass(base, psycopg.AsyncConnection):

            async def connect_async(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
                parent: Any = super(subclass, cls)
                conn = await parent.connect(*args, **kwargs)
                owner = adapter()
                if owner is not None:
                    owner._adopt(conn)
                return conn

            connect: Any = connect_async
        else:

            def connect_sync(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
                parent: Any = super(subclass, cls)
                conn = parent.connect(*args, **kwargs)
                owner = adapter()
                if owner is not None:
                    owner._adopt(conn)
                return conn

            connect = connect_sync
        namespace = {
            "connect": classmethod(connect),
            "__module__": base.__module__,
            "__qualname__": base.__qualname__,
        }
        subclass: type[Any] = type(base.__name__, (base,), namespace)
        return subclass

    def __repr__(self) -> str:
        kind = "pool" if self.is_pool else "connection"
        state = "attached" if self._attached else "detached"
        return f"<PsycopgAdapter {kind} {state} target={self._target()!r}>"


def _is_pool(target: Any) -> bool:
    try:
        import psycopg_pool
    except ImportError:
        return False
    return isinstance(target, (psycopg_pool.ConnectionPool, psycopg_pool.AsyncConnectionPool))


def _idle_connections(pool: Any) -> list[Any]:
    """The connections waiting in ``pool`` now (psycopg_pool keeps them in ``_pool``)."""
    for _ in range(3):
        try:
            return list(getattr(pool, "_pool", ()))
        except RuntimeError:  # mutated by a pool worker while copying
            continue
    return []
