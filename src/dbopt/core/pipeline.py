"""Deliver events to sinks: deduplicated, refcounted, and failure-proof.

Adapters call :meth:`Pipeline.record` after each statement. Sinks that raise
are logged (once a minute per sink) and skipped; the application's statement
is never affected. Only :class:`~dbopt.errors.ReportedError` escapes, and only
from ``scope_end``.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FunctionType, MethodType
from typing import TYPE_CHECKING, Any

from dbopt.core.events import CallSite, OrmContext, QueryEvent, make_event
from dbopt.core.fingerprint import _cache as _fingerprints
from dbopt.core.fingerprint import fingerprint_info
from dbopt.core.scope import _current
from dbopt.core.sinks import end_scope, register, report_sink_error, unregister
from dbopt.errors import ReportedError

if TYPE_CHECKING:
    from dbopt.typing import Parameters, Sink

__all__ = [
    "Pipeline",
    "collect",
    "collecting",
    "end_scope",
    "report_sink_error",
    "wall_clock",
]

#: [wall time minus perf_counter(), perf_counter() when it was measured].
_clock_sync = [time.time() - time.perf_counter(), time.perf_counter()]
#: Seconds after which the offset is measured again (the wall clock may be stepped).
_CLOCK_RESYNC = 10.0


def wall_clock(counter: float) -> float:
    """The wall time (``time.time()``) at which ``time.perf_counter()`` read ``counter``.

    One addition instead of a ``time.time()`` call per statement; the offset
    between the two clocks is measured again every few seconds, so a stepped
    wall clock is followed within that time.
    """
    sync = _clock_sync
    if counter - sync[1] > _CLOCK_RESYNC:
        now = time.perf_counter()
        sync[0] = time.time() - now
        sync[1] = now
    return counter + sync[0]


#: Collectors opened by ``capture_queries()`` in this context.
_collectors: contextvars.ContextVar[tuple[Callable[[QueryEvent], None], ...]] = (
    contextvars.ContextVar("dbopt_collectors", default=())
)


def collecting() -> bool:
    """Whether a ``capture_queries()`` block is open in this context."""
    return bool(_collectors.get())


#: Called with +1 when a ``collect()`` block opens and -1 when it closes
#: (adapters that listen for more only while a block may want it).
collect_hooks: list[Callable[[int], None]] = []


@contextmanager
def collect(callback: Callable[[QueryEvent], None]) -> Iterator[None]:
    """Hand every event recorded in this context to ``callback`` while the block runs.

    What ``capture_queries()`` stands on: the events of every instrumented
    target, sinks or not, go to ``callback`` too.
    """
    for hook in collect_hooks:
        hook(1)
    token = _collectors.set((*_collectors.get(), callback))
    try:
        yield
    finally:
        _collectors.reset(token)
        for hook in collect_hooks:
            hook(-1)


def _call_of(sink: Sink) -> Callable[[QueryEvent], Any]:
    """What to call for ``sink``: its class's ``__call__`` bound to it, for a Python class.

    The interpreter calls a bound Python method from Python code without a C
    round trip (it cannot for an instance with ``__call__``): a few hundred
    instructions less per sink and statement.
    """
    try:
        call = type(sink).__call__
    except AttributeError:  # not callable: it fails where it is called, as before
        return sink
    if isinstance(call, FunctionType):
        return MethodType(call, sink)
    return sink


class Pipeline:
    """The sinks attached to one instrumented target.

    The same sink attached twice is counted once (and must be detached twice
    to leave). ``sinks`` is an immutable tuple swapped under a lock, so the
    per-event path reads it without locking.
    """

    __slots__ = (
        "_counts",
        "_lock",
        "adapter",
        "calls",
        "callsite_depth",
        "depth",
        "dialect",
        "on_change",
        "orm",
        "sinks",
    )

    def __init__(self, adapter: str, dialect: str, *, callsite_depth: int = 5) -> None:
        self.adapter = adapter
        self.dialect = dialect
        self.callsite_depth = callsite_depth
        #: Application frames the attached sinks need (see :meth:`stack_depth`).
        self.depth = 0
        #: Whether an attached sink reads ``event.orm`` (see :meth:`wants_orm`).
        self.orm = False
        self.sinks: tuple[Sink, ...] = ()
        #: (sink, what to call with each event), in the order of :attr:`sinks`.
        self.calls: tuple[tuple[Sink, Callable[[QueryEvent], Any]], ...] = ()
        #: Called (no lock held) after the set of sinks changed: adapters
        #: whose listeners depend on what the sinks read set it.
        self.on_change: Callable[[], None] | None = None
        self._counts: dict[int, int] = {}
        self._lock = threading.Lock()

    def add(self, sink: Sink) -> None:
        """Attach ``sink`` (again: only its count goes up)."""
        with self._lock:
            count = self._counts.get(id(sink), 0)
            self._counts[id(sink)] = count + 1
            if count == 0:
                self.sinks = (*self.sinks, sink)
                self._update_depth()
        register(sink)
        self._changed()

    def remove(self, sink: Sink) -> None:
        """Detach one attachment of ``sink``."""
        with self._lock:
            count = self._counts.get(id(sink), 0)
            if count == 0:
                return
            if count == 1:
                del self._counts[id(sink)]
                self.sinks = tuple(s for s in self.sinks if s is not sink)
                self._update_depth()
            else:
                self._counts[id(sink)] = count - 1
        unregister(sink)
        self._changed()

    def clear(self) -> None:
        """Detach every sink."""
        with self._lock:
            sinks, self.sinks = self.sinks, ()
            counts, self._counts = self._counts, {}
            self.depth = 0
            self.orm = False
            self.calls = ()
        for sink in sinks:
            for _ in range(counts.get(id(sink), 1)):
                unregister(sink)
        self._changed()

    def _changed(self) -> None:
        hook = self.on_change
        if hook is not None:
            hook()

    def _update_depth(self) -> None:
        """Recompute :attr:`depth` from the sinks (lock held).

        A sink may say how many application frames it reads with a
        ``dbopt_stack_depth`` attribute (QueryStats and QueryLogger read only
        the call site: 1); any other sink gets ``callsite_depth`` frames.
        """
        full = self.callsite_depth
        depth = 0
        for sink in self.sinks:
            wanted = getattr(sink, "dbopt_stack_depth", full)
            depth = max(depth, min(full, wanted if isinstance(wanted, int) else full))
        self.depth = depth
        self.calls = tuple((sink, _call_of(sink)) for sink in self.sinks)
        self.orm = any(getattr(sink, "dbopt_reads_orm", True) is not False for sink in self.sinks)

    def wants_orm(self) -> bool:
        """Whether the next event needs its ORM context (``event.orm``).

        A sink that never reads it says so with ``dbopt_reads_orm = False``
        (QueryStats and QueryLogger do); any other sink, and an open
        ``capture_queries()`` block, gets it. Adapters for which finding the
        context costs (Django's frame walk) skip it otherwise.
        """
        return self.orm or bool(_collectors.get())

    def stack_depth(self) -> int:
        """Application frames to capture for the next event: what the sinks need.

        A ``capture_queries()`` block open in this context gets the full
        ``callsite_depth``. The call-site walk is skipped when this is 0.
        """
        if _collectors.get():
            return self.callsite_depth
        return self.depth

    def refused(
        self,
        sql: str,
        parameters: Parameters,
        *,
        error: BaseException,
        stack: tuple[CallSite, ...] = (),
        orm: OrmContext | None = None,
    ) -> None:
        """A statement the ORM issued and the driver never ran (an ``AsyncSession``'s lazy
        load outside ``greenlet_spawn``): not a statement, so only sinks with a
        ``dbopt_refused(event)`` method (the N+1 detector) hear of it.
        """
        wanting = [s for s in self.sinks if getattr(s, "dbopt_refused", None) is not None]
        if not wanting:
            return
        try:
            info = fingerprint_info(sql)
            event = make_event(
                sql, parameters, info.fingerprint, 0.0, None, False, error,
                stack[0] if stack else None, stack, _current.get(), self.adapter,
                self.dialect, 0.0, orm, info.kind,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - never break the app
            report_sink_error(self, exc, "event construction")
            return
        for sink in wanting:
            try:
                sink.dbopt_refused(event)  # type: ignore[attr-defined]
            except ReportedError:
                raise
            except Exception as exc:  # noqa: BLE001 - never break the app
                report_sink_error(sink, exc, "dbopt_refused")

    @property
    def active(self) -> bool:
        """Whether any sink or ``capture_queries`` block would see an event."""
        return bool(self.sinks) or bool(_collectors.get())

    def record(
        self,
        sql: str,
        parameters: Parameters,
        *,
        duration: float,
        started_at: float,
        rowcount: int | None,
        executemany: bool = False,
        error: BaseException | None = None,
        stack: tuple[CallSite, ...] = (),
        orm: OrmContext | None = None,
    ) -> None:
        """Build the event for one statement and hand it to every sink."""
        self.emit(sql, parameters, duration, started_at, rowcount, executemany, error, stack, orm)

    def emit(
        self,
        sql: str,
        parameters: Parameters,
        duration: float,
        started_at: float,
        rowcount: int | None,
        executemany: bool,
        error: BaseException | None,
        stack: tuple[CallSite, ...],
        orm: OrmContext | None,
    ) -> None:
        """:meth:`record` with positional arguments: the adapters' hot path."""
        collectors = _collectors.get()
        calls = self.calls
        if not calls and not collectors:
            return
        try:
            # the cache's dict, read here: one call less per statement
            info = _fingerprints.get(sql) if type(sql) is str else None
            if info is None:
                info = fingerprint_info(sql)
            # Positional: a frozen dataclass's keyword __init__ is measurably slower.
            event = make_event(
                sql,
                parameters,
                info.fingerprint,
                duration,
                rowcount if rowcount is None or rowcount >= 0 else None,
                executemany,
                error,
                stack[0] if stack else None,
                stack,
                _current.get(),
                self.adapter,
                self.dialect,
                started_at,
                orm,
                info.kind,
            )
        except Exception as exc:  # noqa: BLE001 - never break the app
            report_sink_error(self, exc, "event construction")
            return
        for sink, call in calls:
            try:
                call(event)
            except ReportedError:
                raise
            except Exception as exc:  # noqa: BLE001 - never break the app
                report_sink_error(sink, exc, "__call__")
        for collect in collectors:
            collect(event)
