"""``dbopt.instrument``: attach sinks to an engine, connection or pool, explicitly.

Also the two entry points that instrument on the caller's behalf:
:func:`wrap_dbapi` (a proxy around any DB-API connection) and
:func:`capture_queries` (the events of a block).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from dbopt.adapters.dbapi import ConnectionProxy, DbapiAdapter, dialect_of
from dbopt.core.capture import CapturedQueries
from dbopt.core.pipeline import Pipeline, collect
from dbopt.errors import InstrumentationError
from dbopt.handle import Handle, deprecated_verb

if TYPE_CHECKING:
    from dbopt.typing import Sink

__all__ = ["Instrumentation", "capture_queries", "instrument", "wrap_dbapi"]


class Adapter(Protocol):
    """What :func:`instrument` needs of an adapter."""

    pipeline: Pipeline

    def attach(self) -> None: ...

    def detach(self) -> None: ...


_lock = threading.RLock()
#: target → (adapter, number of live handles)
_adapters: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()


def _make_adapter(target: Any, callsite_depth: int, orm_context: bool) -> tuple[Any, Adapter]:
    """Return (registry key, new adapter) for ``target``."""
    from sqlalchemy.engine import Engine

    engine_types: tuple[type[Any], ...] = (Engine,)
    try:  # SQLAlchemy's asyncio extension needs greenlet, which is optional
        from sqlalchemy.ext.asyncio import AsyncEngine
    except ImportError:
        pass
    else:
        engine_types = (Engine, AsyncEngine)
    if isinstance(target, engine_types):
        from dbopt.adapters.sqlalchemy import SQLAlchemyAdapter

        adapter = SQLAlchemyAdapter.for_target(target, callsite_depth, orm_context=orm_context)
        return adapter.engine, adapter
    if any(
        (cls.__module__ or "").split(".")[0] in ("psycopg", "psycopg_pool")
        for cls in type(target).__mro__
    ):
        from dbopt.adapters.psycopg import PsycopgAdapter

        return target, PsycopgAdapter.for_target(target, callsite_depth)
    if isinstance(target, ConnectionProxy):
        return target, target._dbopt_adapter
    raise InstrumentationError(
        f"cannot instrument {type(target).__qualname__}: pass a SQLAlchemy Engine or "
        "AsyncEngine, a psycopg 3 connection or pool; wrap other DB-API connections "
        "with dbopt.wrap_dbapi(conn, *sinks)"
    )


class Instrumentation(Handle):
    """A handle on sinks attached to one target; ``close()`` undoes exactly it.

    Also a context manager: ``with dbopt.instrument(engine, stats): ...``.
    ``detach()`` is the deprecated name of ``close()``.
    """

    def __init__(self, target: Any, adapter: Adapter, sinks: tuple[Sink, ...]) -> None:
        self._target = weakref.ref(target) if _weakrefable(target) else (lambda: target)
        self.adapter = adapter
        self.sinks = sinks
        self.attached = True

    @property
    def target(self) -> Any:
        """The instrumented object (None once it was garbage-collected)."""
        return self._target()

    def close(self) -> None:
        """Remove this handle's sinks; the last handle also removes the listeners (idempotent)."""
        with _lock:
            if not self.attached:
                return
            self.attached = False
            for sink in self.sinks:
                self.adapter.pipeline.remove(sink)
            target = self._target()
            entry = _adapters.get(target) if target is not None else None
            if entry is not None and entry[0] is self.adapter:
                entry[1] -= 1
                if entry[1] <= 0:
                    self.adapter.detach()
                    del _adapters[target]
            elif entry is None:
                self.adapter.detach()

    detach = deprecated_verb("detach")

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"<Instrumentation {state} sinks={len(self.sinks)} adapter={self.adapter!r}>"


def _weakrefable(obj: Any) -> bool:
    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True


def instrument(
    target: Any, *sinks: Sink, callsite_depth: int = 5, orm_context: bool = True
) -> Instrumentation:
    """Attach ``sinks`` to ``target`` and return a handle whose ``close()`` detaches them.

    ``target`` is a SQLAlchemy ``Engine``/``AsyncEngine``, a psycopg 3
    ``Connection``/``AsyncConnection``, a psycopg_pool pool, or a proxy from
    :func:`dbopt.wrap_dbapi`. Nothing else is patched. Attaching the same
    sink to the same target twice delivers each event to it once.
    ``callsite_depth`` is how many application frames events keep (0 turns
    call-site capture off) and applies when the target is first instrumented.
    ``orm_context`` (SQLAlchemy only) listens to the ORM's ``do_orm_execute``
    event so events say "lazy load of User.posts", which the N+1 detector
    uses to name the fix; SQLAlchemy's ORM pays ~10-15 µs per ORM statement
    for any such listener, so it is there only while a sink reads
    ``event.orm`` (QueryStats and QueryLogger do not) or a
    ``capture_queries()`` block is open; ``orm_context=False`` turns it off.
    With no sinks, the target still feeds ``capture_queries()`` blocks.
    """
    for sink in sinks:
        if not callable(sink):
            raise InstrumentationError(f"a sink must be callable, got {sink!r}")
    with _lock:
        entry = _adapters.get(target) if _weakrefable(target) else None
        if entry is None:
            key, adapter = _make_adapter(target, callsite_depth, orm_context)
            entry = _adapters.get(key)
            if entry is None:
                adapter.attach()
                entry = [adapter, 0]
                _adapters[key] = entry
            target = key
        adapter = entry[0]
        entry[1] += 1
        for sink in sinks:
            adapter.pipeline.add(sink)
        return Instrumentation(target, adapter, tuple(sinks))


def wrap_dbapi(
    connection: Any, *sinks: Sink, dialect: str | None = None, callsite_depth: int = 5
) -> ConnectionProxy:
    """Wrap any DB-API 2 connection so its statements emit events to ``sinks``.

    Use the returned proxy in place of the connection. ``dialect`` defaults
    to one guessed from the driver module (sqlite3 → ``"sqlite"``, PyMySQL →
    ``"mysql"``, psycopg2 → ``"postgresql"``). ``proxy.detach()`` removes the
    sinks; more can be attached with ``dbopt.instrument(proxy, sink)``.
    Raises :class:`~dbopt.errors.InstrumentationError` when ``connection`` is
    already a proxy (attach more sinks with ``dbopt.instrument(proxy, sink)``).
    """
    if isinstance(connection, ConnectionProxy):
        raise InstrumentationError(
            "this connection is already wrapped: attach more sinks with "
            "dbopt.instrument(proxy, *sinks)"
        )

    adapter = DbapiAdapter(
        Pipeline(
            DbapiAdapter.name, dialect or dialect_of(connection), callsite_depth=callsite_depth
        )
    )
    proxy = ConnectionProxy(connection, adapter)
    object.__setattr__(proxy, "dbopt_handle", instrument(proxy, *sinks))
    return proxy


@contextmanager
def capture_queries(*targets: Any) -> Iterator[CapturedQueries]:
    """Collect the events of every instrumented target run in this context.

    With targets (an engine, a psycopg connection, ...), they are
    instrumented for the duration of the block and detached after. Events
    from other threads or tasks that did not inherit this context are not
    collected.
    """
    captured = CapturedQueries()
    with ExitStack() as stack:
        for target in targets:
            stack.enter_context(instrument(target))
        with collect(captured.append):
            yield captured
