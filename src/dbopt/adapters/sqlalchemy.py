"""SQLAlchemy adapter: ``Engine``/``AsyncEngine``.

Each statement, and its failure, is timed around the dialect's driver call,
wrapped on the engine's own dialect instance (cursor events and
``handle_error`` where that is not possible), and the ORM's
``do_orm_execute`` session event tells which relationship a statement
loads. All of it is removed, and the dialect restored, when the last handle
detaches.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import itertools
import sys
import threading
import weakref
from time import perf_counter
from types import CodeType, FrameType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.engine.base import OptionEngineMixin
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.orm import Mapper, ORMExecuteState, Session
from sqlalchemy.orm.base import instance_state
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList

from dbopt.core.callsite import capture_stack
from dbopt.core.events import EAGER_BATCH_OPTION, OrmContext
from dbopt.core.nplusone_checks import JOINED_COLLECTIONS, MULTI_ROW
from dbopt.core.pipeline import (
    _CLOCK_RESYNC,
    Pipeline,
    _clock_sync,
    _collectors,
    collect_hooks,
    collecting,
    report_sink_error,
    wall_clock,
)
from dbopt.errors import ReportedError

__all__ = ["SQLAlchemyAdapter"]

_KEY = "_dbopt_started"

#: (statement object, context) of the ORM statement about to run in this context.
_pending_orm: contextvars.ContextVar[tuple[Any, OrmContext] | None] = contextvars.ContextVar(
    "dbopt_pending_orm", default=None
)
_orm_users = [0]
_orm_lock = threading.Lock()


#: OrmContext objects are immutable and few (one per mapper or relationship
#: and load kind): build each once instead of on every ORM statement.
_contexts: dict[Any, OrmContext] = {}


def _relationship_context(prop: Any, lazy: bool) -> OrmContext:
    key = (prop, lazy)
    ctx = _contexts.get(key)
    if ctx is None:
        name = getattr(prop, "key", None)
        parent = getattr(getattr(prop, "parent", None), "class_", None)
        owner = parent.__name__ if parent is not None else None
        ctx = OrmContext(
            kind="lazy_load" if lazy else "eager_load",
            entity=owner,
            relationship=f"{owner}.{name}" if owner and name else name,
            strategy=str(getattr(prop, "lazy", "")) or None,
            uselist=getattr(prop, "uselist", None),
            target=_target_name(prop),
        )
        _contexts[key] = ctx
    return ctx


def _query_context(mapper: Any) -> OrmContext:
    ctx = _contexts.get(mapper)
    if ctx is None:
        ctx = OrmContext(kind="query", entity=mapper.class_.__name__ if mapper else None)
        _contexts[mapper] = ctx
    return ctx


def _caller_running(code: CodeType, limit: int) -> FrameType | None:
    """The frame running ``code`` among the ``limit`` frames above the ORM listener's caller."""
    frame: FrameType | None = sys._getframe(3)
    for _ in range(limit):
        if frame is None or frame.f_code is code:
            return frame
        frame = frame.f_back
    return None


def _in_session_refresh() -> bool:
    """Whether ``Session.refresh()`` is on the stack (an explicit refresh, not a lazy one)."""
    return _caller_running(_REFRESH_CODE, _REFRESH_FRAMES) is not None


_REFRESH_CODE = Session.refresh.__code__
#: Frames walked from the ORM event to ``Session.refresh`` at most.
_REFRESH_FRAMES = 40

_MERGE_CODE = Session._merge.__code__
#: Frames walked from the ORM event to the innermost ``Session._merge`` at most:
#: it is 5 frames above the listener's caller for the load by key and 7 for a
#: relationship's lazy load (SQLAlchemy 2.0.59 and 2.1.9, sync and async).
_MERGE_FRAMES = 10
#: The key under which a ``merge()`` call's number is kept in its own
#: ``_recursive`` dict (one per call, and per object of ``merge_all``).
_MERGE_MARK = object()
_merge_calls = itertools.count(1)


def _merge_call() -> int | None:
    """The number of the ``Session.merge()`` call on the stack, or None outside one.

    Only called while the session's autoflush is off, which ``merge()`` does
    for its whole run. ``merge()`` makes a fresh ``_recursive`` dict per call
    (``merge_all()`` one per object) and hands it down every nested
    ``_merge``; the call's number is stored there under a key of dbopt's own,
    so it lives as long as the call and is never reused.
    """
    frame = _caller_running(_MERGE_CODE, _MERGE_FRAMES)
    if frame is None:
        return None
    recursive = frame.f_locals.get("_recursive")
    if type(recursive) is not dict:
        return None
    mark = recursive.get(_MERGE_MARK)
    if mark is None:
        mark = recursive[_MERGE_MARK] = next(_merge_calls)
    return int(mark)


def _merge_context(base: OrmContext, call: int) -> OrmContext:
    """``base`` run inside ``merge()`` call number ``call`` (built per statement: calls differ)."""
    return dataclasses.replace(base, merge=call, from_many=False)


def _column_context(state: ORMExecuteState) -> OrmContext:
    """A ``column_load`` context: ``strategy`` is ``"expired"``, ``"deferred"`` or ``"refresh"``.

    ``relationship`` names the deferred attributes (``"User.bio"``); an
    expired object's reload (every column again) names none, and neither
    does an explicit ``session.refresh()``.
    """
    mapper = state.bind_mapper
    owner = mapper.class_.__name__ if mapper is not None else None
    if _in_session_refresh():
        return _contexts.get(("refresh", mapper)) or _contexts.setdefault(
            ("refresh", mapper), OrmContext(kind="column_load", entity=owner, strategy="refresh")
        )
    options = getattr(state.statement, "_compile_options", None)
    keys = tuple(sorted(getattr(options, "_only_load_props", None) or ()))
    refreshed = getattr(state.load_options, "_refresh_state", None)
    expired = getattr(refreshed, "expired_attributes", None) or ()
    strategy = "expired" if not keys or any(key in expired for key in keys) else "deferred"
    key = ("column", mapper, strategy, keys if strategy == "deferred" else ())
    ctx = _contexts.get(key)
    if ctx is None:
        names = ", ".join(f"{owner}.{k}" for k in keys) if strategy == "deferred" else None
        ctx = OrmContext(kind="column_load", entity=owner, relationship=names, strategy=strategy)
        if len(_contexts) < 10_000:
            _contexts[key] = ctx
    return ctx


def _sibling_joined_collections(state: ORMExecuteState) -> tuple[str, ...]:
    """Collections one statement joins that multiply each other's rows (none or 2+).

    From its loader options (``joinedload`` of a one-to-many or many-to-many)
    and the root mapper's ``lazy="joined"`` collections; a collection nested
    under another (``joinedload(A.b).joinedload(B.c)``) does not multiply its
    siblings' rows, so only collections on separate branches count.
    """
    paths: dict[tuple[str, ...], str] = {}
    mapper = state.bind_mapper
    if mapper is not None:
        for prop in mapper.relationships:
            if prop.uselist and prop.lazy == "joined":
                paths[(prop.key,)] = f"{mapper.class_.__name__}.{prop.key}"
    for option in getattr(state.statement, "_with_options", ()):
        for element in getattr(option, "context", ()):
            if ("lazy", "joined") not in (getattr(element, "strategy", None) or ()):
                continue
            props = [p for p in element.path if hasattr(p, "uselist")]
            if props and props[-1].uselist:
                last = props[-1]
                name = f"{last.parent.class_.__name__}.{last.key}"
                if len(props) > 1:
                    # nested: the option must be chained from the root entity
                    # (a bare selectinload(User.followers) on select(Article) is refused)
                    hops = ".".join(
                        f"{'selectin' if p.uselist else 'joined'}load"
                        f"({p.parent.class_.__name__}.{p.key})"
                        for p in props[:-1]
                    )
                    name = f"{name} (via {hops})"
                paths[tuple(p.key for p in props)] = name
    if len(paths) < 2:
        return ()
    keys = list(paths)
    siblings = {
        paths[a] for a in keys for b in keys if a != b and a[: len(b)] != b and b[: len(a)] != a
    }
    return tuple(sorted(siblings)) if len(siblings) >= 2 else ()


def _joined_context(base: OrmContext, joined: tuple[str, ...]) -> OrmContext:
    key = ("joined", base.entity, joined)
    ctx = _contexts.get(key)
    if ctx is None:
        ctx = OrmContext(
            kind="query", entity=base.entity, relationship=", ".join(joined), strategy="joined"
        )
        if len(_contexts) < 10_000:
            _contexts[key] = ctx
    return ctx


def _on_orm_execute(state: ORMExecuteState) -> None:
    try:
        batch = state.execution_options.get(EAGER_BATCH_OPTION)
        if batch:
            # a batch of dbopt.eager.auto: one statement for many parents
            ctx = _contexts.get(batch) or _contexts.setdefault(
                batch,
                OrmContext(
                    kind="eager_load",
                    entity=str(batch).partition(".")[0],
                    relationship=str(batch),
                ),
            )
        elif state.is_column_load:
            # deferred or expired columns of one object: also under
            # joinedload(...).load_only(...), where the path is a relationship's
            ctx = _column_context(state)
        elif state.is_relationship_load:
            path = state.loader_strategy_path
            prop = path[-1] if path is not None and len(path) else None
            owner = state.lazy_loaded_from
            ctx = _relationship_context(prop, owner is not None)
            eager = prop is not None and getattr(prop, "lazy", "select") != "select"
            if owner is not None and eager and _in_session_refresh():
                # a mapped eager strategy run for one object: session.refresh(obj, [rel])
                ctx = _relationship_context(prop, False)
            if MULTI_ROW.wanted:
                if owner is not None and owner in _from_many:
                    ctx = _from_many_context(ctx)
                _note_rows(state, bool(getattr(prop, "uselist", False)))
        else:
            ctx = _query_context(state.bind_mapper)
            if MULTI_ROW.wanted and state.is_select:
                _note_rows(state, _many_rows(state))
            if JOINED_COLLECTIONS.wanted:
                joined = _sibling_joined_collections(state)
                if joined:
                    ctx = _joined_context(ctx, joined)
        if not state.session.autoflush:  # merge() turns it off while it runs
            call = _merge_call()
            if call is not None:
                ctx = _merge_context(ctx, call)
        _pending_orm.set((state.statement, ctx))
    except Exception:  # noqa: BLE001 - ORM context is a courtesy, never a failure
        _pending_orm.set(None)


#: Objects loaded by a statement that can return many rows (``checks=["potential"]``).
_from_many: weakref.WeakSet[Any] = weakref.WeakSet()
_MANY_ROWS = "_dbopt_many_rows"
_load_listening = [False]


def _from_many_context(base: OrmContext) -> OrmContext:
    key = ("from_many", base)
    ctx = _contexts.get(key)
    if ctx is None:
        ctx = dataclasses.replace(base, from_many=True)
        if len(_contexts) < 10_000:
            _contexts[key] = ctx
    return ctx


def _note_rows(state: ORMExecuteState, many: bool) -> None:
    """Mark the objects ``state`` loads as from a multi-row result (via the ``load`` event)."""
    if not many:
        return
    if not _load_listening[0]:
        with _orm_lock:
            if not _load_listening[0] and _orm_users[0]:
                event.listen(Mapper, "load", _on_load)
                _load_listening[0] = True
    state.update_execution_options(**{_MANY_ROWS: True})


def _on_load(target: Any, context: Any) -> None:
    try:
        if context.execution_options.get(_MANY_ROWS):
            _from_many.add(instance_state(target))
    except Exception:  # noqa: BLE001, S110 - a courtesy, never a failure of the load
        pass


def _many_rows(state: ORMExecuteState) -> bool:
    """Whether a top-level ORM SELECT can return many rows.

    Not when it has ``LIMIT 1`` or its WHERE clause (a conjunction) tests
    every primary-key column, or one unique column, for equality with a
    value (``session.get()``, ``select(User).where(User.id == 1)``).
    """
    statement = state.statement
    if getattr(statement, "_limit", None) == 1:
        return False
    mapper = state.bind_mapper
    where = getattr(statement, "whereclause", None)
    if mapper is None or where is None:
        return True
    clauses = where.clauses if isinstance(where, BooleanClauseList) else (where,)
    if isinstance(where, BooleanClauseList) and where.operator is not operators.and_:
        return True
    keys: set[tuple[Any, str]] = set()
    unique = False
    for clause in clauses:
        if not isinstance(clause, BinaryExpression) or clause.operator is not operators.eq:
            continue
        for column, value in ((clause.left, clause.right), (clause.right, clause.left)):
            table = getattr(column, "table", None)
            if isinstance(value, BindParameter) and table is not None:
                keys.add((table, column.name))
                unique = unique or bool(getattr(column, "unique", False))
    primary_key = {(column.table, column.name) for column in mapper.primary_key}
    return not (unique or (primary_key and primary_key <= keys))


def _target_name(prop: Any) -> str | None:
    target = getattr(getattr(prop, "mapper", None), "class_", None)
    return target.__name__ if target is not None else None


def _orm_listen() -> None:
    with _orm_lock:
        if _orm_users[0] == 0:
            event.listen(Session, "do_orm_execute", _on_orm_execute)
        _orm_users[0] += 1


def _orm_unlisten() -> None:
    with _orm_lock:
        _orm_users[0] -= 1
        if _orm_users[0] == 0 and event.contains(Session, "do_orm_execute", _on_orm_execute):
            event.remove(Session, "do_orm_execute", _on_orm_execute)
        if _orm_users[0] == 0 and _load_listening[0]:
            event.remove(Mapper, "load", _on_load)
            _load_listening[0] = False


def _collect_block(change: int) -> None:
    """A ``capture_queries()`` block opened (+1) or closed (-1): its events get ORM context."""
    if change > 0:
        _orm_listen()
    else:
        _orm_unlisten()


collect_hooks.append(_collect_block)


def _orm_context(context: Any) -> OrmContext | None:
    pending = _pending_orm.get()
    if pending is None or context is None:
        return None
    statement, ctx = pending
    return ctx if getattr(context, "invoked_statement", None) is statement else None


def _refused_lazy_load(error: BaseException | None) -> OrmContext | None:
    """The lazy load an ``AsyncSession`` refused with ``MissingGreenlet``, if that is ``error``."""
    if not isinstance(error, MissingGreenlet):
        return None
    pending = _pending_orm.get()
    if pending is None or pending[1].kind != "lazy_load":
        return None
    return pending[1]


def _reset_dialect_flag(dialect: Any, had_flag: bool) -> None:
    """Clear the "has listeners" flag ``handle_error`` set on ``dialect``, if none is left.

    SQLAlchemy never clears it, and while it is set every statement checks
    the dialect's (empty) ``do_execute`` listeners.
    """
    if had_flag or "_has_events" not in vars(dialect):
        return
    dispatch = dialect.dispatch
    try:
        names = dispatch._event_names
        if any(getattr(getattr(dispatch, name), "listeners", None) for name in names):
            return
    except Exception:  # noqa: BLE001 - SQLAlchemy internals changed: leave the flag set
        return
    del dialect._has_events


#: Set on an exception the dialect wrapper saw (it recorded the failed statement).
_RECORDED = "_dbopt_recorded"

#: The dialect methods every statement of an ``Engine`` goes through.
_DRIVER_CALLS = ("do_execute", "do_executemany", "do_execute_no_params")


class SQLAlchemyAdapter:
    """One ``Engine`` feeding one :class:`Pipeline`.

    The statement is timed around the dialect's own driver calls
    (``do_execute``, ``do_executemany``, ``do_execute_no_params``), which
    this adapter wraps on the engine's dialect instance and restores on
    :meth:`detach`: no SQLAlchemy event is needed, so an engine pays neither
    for their dispatch nor for the events that any engine- or dialect-level
    listener switches on (a lone ``handle_error`` listener adds about a
    tenth to a SQLite primary-key SELECT). A failure is recorded when the
    driver call raises; errors SQLAlchemy raises before it reaches the
    driver (no cursor, a failing ``before_cursor_execute`` listener) are
    not statements that ran and are not recorded. Where the dialect cannot
    be wrapped alone (an engine made by
    ``execution_options()``, which shares its parent's dialect, or a dialect
    whose methods something else has already replaced), the adapter listens
    to ``before_cursor_execute``/``after_cursor_execute`` and ``handle_error``
    instead.
    """

    name = "sqlalchemy"

    def __init__(self, engine: Engine, pipeline: Pipeline, *, orm_context: bool = True) -> None:
        self.engine = engine
        self.pipeline = pipeline
        self.orm_context = orm_context
        self._attached = False
        #: The wrappers installed on the dialect, by method name (empty: listeners).
        self._wrapped: dict[str, Any] = {}
        #: [still attached]: read by a wrapper something else wrapped again.
        self._live = [False]
        self._dialect_flag = False
        #: Whether this adapter counts among the ORM listener's users now.
        self._orm_user = False
        #: Whether a handle_error listener for refused lazy loads is attached.
        self._refusals = False
        self._orm_lock = threading.Lock()
        pipeline.on_change = self._sync_orm

    @classmethod
    def for_target(
        cls, target: Any, callsite_depth: int, *, orm_context: bool = True
    ) -> SQLAlchemyAdapter:
        """Adapter for an ``Engine`` or ``AsyncEngine``."""
        engine: Engine = getattr(target, "sync_engine", target)
        pipeline = Pipeline(cls.name, engine.dialect.name, callsite_depth=callsite_depth)
        return cls(engine, pipeline, orm_context=orm_context)

    @property
    def wraps_dialect(self) -> bool:
        """Whether statements are timed by wrapping the dialect (else: cursor events)."""
        return bool(self._wrapped)

    def attach(self) -> None:
        """Start recording (idempotent)."""
        if self._attached:
            return
        self._live = [True]
        self._dialect_flag = "_has_events" in vars(self.engine.dialect)
        if not self._wrap_dialect():
            event.listen(self.engine, "before_cursor_execute", self._before, retval=True)
            event.listen(self.engine, "after_cursor_execute", self._after)
            event.listen(self.engine, "handle_error", self._error)
        self._attached = True
        self._sync_orm()

    def detach(self) -> None:
        """Stop recording and restore the engine (idempotent)."""
        if not self._attached:
            return
        self._live[0] = False
        if self._wrapped:
            dialect = self.engine.dialect
            for name, wrapper in self._wrapped.items():
                if vars(dialect).get(name) is wrapper:
                    delattr(dialect, name)
                # else something wrapped ours: it stays, and passes through (_live)
            self._wrapped = {}
        else:
            event.remove(self.engine, "before_cursor_execute", self._before)
            event.remove(self.engine, "after_cursor_execute", self._after)
            event.remove(self.engine, "handle_error", self._error)
            _reset_dialect_flag(self.engine.dialect, self._dialect_flag)
        self._attached = False
        self._sync_orm()

    def _sync_orm(self) -> None:
        """Listen to the ORM while attached and a sink may read ``event.orm``.

        With ``orm_context=True``: an adapter without sinks (it feeds
        ``capture_queries()`` blocks) or with a sink that does not declare
        ``dbopt_reads_orm = False`` listens; one whose sinks all declare it
        (QueryStats, QueryLogger) spares its ORM statements the cost of a
        ``do_orm_execute`` listener. An open ``capture_queries()`` block
        listens on its own.
        """
        with self._orm_lock:
            pipeline = self.pipeline
            wanted = self._attached and self.orm_context and (not pipeline.sinks or pipeline.orm)
            if wanted and not self._orm_user:
                _orm_listen()
            elif self._orm_user and not wanted:
                _orm_unlisten()
            self._orm_user = wanted
            # An AsyncSession's lazy load outside greenlet_spawn can fail before the
            # driver call (SQLAlchemy 2.1 makes the cursor first): the wrapper never sees
            # it, so an async engine whose ORM context is read also hears handle_error.
            refusals = wanted and bool(self._wrapped) and bool(self.engine.dialect.is_async)
            if refusals and not self._refusals:
                event.listen(self.engine, "handle_error", self._refused)
            elif self._refusals and not refusals:
                event.remove(self.engine, "handle_error", self._refused)
                _reset_dialect_flag(self.engine.dialect, self._dialect_flag)
            self._refusals = refusals

    def _refused(self, exception_context: Any) -> None:
        """``handle_error`` on a wrapped async engine: tell the pipeline of a refused lazy load."""
        error = exception_context.original_exception
        if exception_context.statement is None or getattr(error, _RECORDED, False):
            return  # the wrapper recorded it: the driver call itself failed
        orm = _refused_lazy_load(error)
        if orm is not None:
            pipeline = self.pipeline
            depth = pipeline.stack_depth()
            pipeline.refused(
                exception_context.statement,
                exception_context.parameters,
                error=error,
                stack=capture_stack(depth) if depth else (),
                orm=orm,
            )

    def _wrap_dialect(self) -> bool:
        """Wrap the dialect's driver calls on the instance; False where that is not safe."""
        engine = self.engine
        dialect = engine.dialect
        if isinstance(engine, OptionEngineMixin) or any(n in vars(dialect) for n in _DRIVER_CALLS):
            return False
        run_plain = dialect.do_execute_no_params
        timed_plain = self._timed(
            lambda cursor, statement, _parameters, context: run_plain(cursor, statement, context),
            executemany=False,
        )

        def do_execute_no_params(cursor: Any, statement: str, context: Any = None) -> None:
            # the parameters after_cursor_execute would be given: the empty ones
            given = getattr(context, "parameters", None)
            timed_plain(cursor, statement, given[0] if given else None, context)

        wrappers = {
            "do_execute": self._timed(dialect.do_execute, executemany=False),
            "do_executemany": self._timed(dialect.do_executemany, executemany=True),
            "do_execute_no_params": do_execute_no_params,
        }
        for name, wrapper in wrappers.items():
            setattr(dialect, name, wrapper)
        self._wrapped = wrappers
        return True

    def _timed(self, run: Any, *, executemany: bool) -> Any:
        """``run`` (a dialect's ``do_execute``/``do_executemany``), timed and recorded.

        One flat function records both outcomes (in its ``finally``): a call
        to a recording helper with eight arguments would cost every statement
        about 1k instructions (docs/benchmarks/hook_overhead.md).
        """
        live = self._live
        pipeline = self.pipeline

        def timed(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
            error: Exception | None = None
            ran = False
            start = perf_counter()
            try:
                run(cursor, statement, parameters, context)
                ran = True
            except Exception as exc:
                error = exc
                with contextlib.suppress(Exception):
                    setattr(exc, _RECORDED, True)  # for handle_error (_refused)
                raise
            finally:
                end = perf_counter()
                if (ran or error is not None) and (pipeline.sinks or (live[0] and collecting())):
                    try:
                        # the engine's first connection checking the server
                        # (dialect.initialize) is not recorded: SQLAlchemy sends no
                        # cursor events for its statements either
                        if context is None or getattr(
                            context.root_connection, "_allow_autobegin", True
                        ):
                            orm = None
                            pending = None if context is None else _pending_orm.get()
                            if (
                                pending is not None
                                and getattr(context, "invoked_statement", None) is pending[0]
                            ):
                                orm = pending[1]
                            rowcount = None
                            if error is None:
                                try:
                                    rowcount = cursor.rowcount
                                except Exception:  # noqa: BLE001 - drivers may raise after close
                                    rowcount = None
                            # pipeline.stack_depth() and wall_clock(), inline
                            depth = pipeline.callsite_depth if _collectors.get() else pipeline.depth
                            sync = _clock_sync
                            pipeline.emit(
                                statement,
                                parameters,
                                end - start,
                                start + sync[0]
                                if start - sync[1] <= _CLOCK_RESYNC
                                else wall_clock(start),
                                rowcount,
                                executemany,
                                error,
                                capture_stack(depth) if depth else (),
                                orm,
                            )
                    except ReportedError:
                        if error is None:
                            raise  # a sink that raises on purpose (a query budget)
                    except Exception as failure:  # noqa: BLE001 - never break the app
                        report_sink_error(pipeline, failure, "recording")

        return timed

    def _before(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> tuple[str, Any]:
        """``before_cursor_execute`` (where the dialect is not wrapped)."""
        parameters, context = rest[0], rest[1]
        pipeline = self.pipeline
        if pipeline.sinks or collecting():
            # One float: the wall-clock start is derived from it afterwards.
            if context is not None:
                context._dbopt_started = perf_counter()
            else:
                conn.info[_KEY] = perf_counter()
        # retval=True spares SQLAlchemy's wrapper frame around a plain listener.
        return statement, parameters

    def _started(self, conn: Any, context: Any) -> float | None:
        if context is not None:
            started: float | None = getattr(context, _KEY, None)
            if started is not None:
                return started
        return conn.info.pop(_KEY, None)  # type: ignore[no-any-return]

    def _after(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        """``after_cursor_execute`` (where the dialect is not wrapped)."""
        end = perf_counter()
        parameters, context, executemany = rest
        pipeline = self.pipeline
        if not pipeline.sinks and not collecting():
            return
        started = getattr(context, _KEY, None) if context is not None else None
        if started is None:
            started = conn.info.pop(_KEY, None)
            if started is None:
                return
        try:
            rowcount = cursor.rowcount
        except Exception:  # noqa: BLE001 - some drivers raise after close
            rowcount = None
        depth = pipeline.stack_depth()
        pipeline.emit(
            statement,
            parameters,
            end - started,
            wall_clock(started),
            rowcount,
            executemany,
            None,
            capture_stack(depth) if depth else (),
            _orm_context(context),
        )

    def _error(self, exception_context: Any) -> None:
        end = perf_counter()
        pipeline = self.pipeline
        if not pipeline.active or exception_context.statement is None:
            return
        context = exception_context.execution_context
        started = (
            self._started(exception_context.connection, context)
            if (exception_context.connection is not None)
            else None
        )
        if started is None:
            # It failed before the driver got it (an AsyncSession's lazy load outside
            # greenlet_spawn raises MissingGreenlet when the cursor is made): no
            # statement ran, as a before_cursor_execute counter and the server agree.
            # The N+1 detector still hears of a refused lazy load.
            orm = _refused_lazy_load(exception_context.original_exception)
            if orm is not None:
                depth = pipeline.stack_depth()
                pipeline.refused(
                    exception_context.statement,
                    exception_context.parameters,
                    error=exception_context.original_exception,
                    stack=capture_stack(depth) if depth else (),
                    orm=orm,
                )
            return
        duration = end - started
        depth = pipeline.stack_depth()
        pipeline.emit(
            exception_context.statement,
            exception_context.parameters,
            duration,
            wall_clock(end - duration),
            None,
            bool(getattr(context, "executemany", False)),
            exception_context.original_exception,
            capture_stack(depth) if depth else (),
            _orm_context(context),
        )
