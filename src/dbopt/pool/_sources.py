"""Where a :class:`PoolMonitor` reads from: a SQLAlchemy engine's pool, or a psycopg_pool.

A source keeps cumulative counters (never reset) and answers ``mark()``
(the counters now) and ``window(since, until)`` (the checkout waits and the
peak in use between two marks); the monitor subtracts marks.

SQLAlchemy has no event before a checkout or on a checkout timeout, so the
SQLAlchemy source wraps the public ``Pool.connect()`` of that one pool
instance (an instance attribute, removed by ``close()``, re-applied when
``engine.dispose()`` replaces the pool) and listens to the pool events
``connect``, ``checkout``, ``checkin``, ``detach``, ``invalidate``,
``soft_invalidate`` and ``close``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from dbopt.errors import InstrumentationError
from dbopt.pool._introspect import pool_status, target_engine

__all__ = ["Mark", "PsycopgPoolSource", "SQLAlchemySource", "Source", "source_for"]

COUNTERS = (
    "checkouts",
    "wait_total",
    "timeouts",
    "errors",
    "created",
    "recycled",
    "invalidated",
    "closed",
)


@dataclass(frozen=True)
class Mark:
    """Cumulative counters of a source at one moment."""

    perf: float
    wall: float
    counts: dict[str, float]
    busy_seconds: float
    in_use: int


class _Ring:
    """The last ``size`` checkouts: (end time, wait seconds, in use after)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.times = array("d", bytes(8 * size))
        self.waits = array("d", bytes(8 * size))
        self.levels = array("l", bytes(array("l").itemsize * size))
        self.count = 0

    def add(self, when: float, wait: float, level: int) -> None:
        i = self.count % self.size
        self.times[i] = when
        self.waits[i] = wait
        self.levels[i] = level
        self.count += 1

    def copy(self) -> tuple[array[float], array[float], array[int], int]:
        """The buffers as they are now (copy under the caller's lock, scan outside it)."""
        n = min(self.count, self.size)
        return self.times[:n], self.waits[:n], self.levels[:n], n


def _scan(
    copied: tuple[array[float], array[float], array[int], int], since: float, until: float
) -> tuple[list[float], int]:
    times, waits_all, levels, n = copied
    waits: list[float] = []
    peak = 0
    for i in range(n):
        if since <= times[i] <= until:
            waits.append(waits_all[i])
            peak = max(peak, levels[i])
    return waits, peak


class Source:
    """Base of the two sources; see the module docstring."""

    kind = "pool"

    def mark(self) -> Mark:
        raise NotImplementedError

    def gauges(self) -> dict[str, Any]:
        raise NotImplementedError

    def window(self, since: Mark, until: Mark) -> tuple[list[float] | None, int | None]:
        return None, None

    def recent_waits(self, seconds: float) -> list[float]:
        """Checkout waits of the last ``seconds`` (empty where waits are not seen)."""
        return []

    def add_wait_listener(self, listener: Callable[[float], None]) -> None:
        """Call ``listener(wait_seconds)`` after each checkout (where waits are seen)."""

    def close(self) -> None:
        """Stop observing the pool (idempotent)."""


@dataclass
class _Checkout:
    """One ``Pool.connect()`` call in progress, shared by nested monitors' wrappers."""

    invalidated: set[int] = field(default_factory=set)
    levels: dict[int, int] = field(default_factory=dict)  # id(source) → in use after it


_current: contextvars.ContextVar[_Checkout | None] = contextvars.ContextVar(
    "dbopt_pool_checkout", default=None
)

_EVENTS = ("connect", "checkout", "checkin", "detach", "invalidate", "soft_invalidate", "close")


class SQLAlchemySource(Source):
    """Counters for a SQLAlchemy ``Engine`` (or ``AsyncEngine``) pool."""

    kind = "sqlalchemy"

    def __init__(self, engine: Any, ring_size: int = 16384) -> None:
        self.engine = target_engine(engine)
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0.0)
        self._ring = _Ring(ring_size)
        self._listeners: list[Callable[[float], None]] = []
        self._wrapped: list[tuple[Any, Callable[[], Any]]] = []
        self._closed = False
        checked_out = pool_status(self.engine.pool)["checked_out"]
        self._in_use = checked_out if isinstance(checked_out, int) else 0
        self._busy = 0.0
        self._last = time.perf_counter()
        self._handlers = {name: getattr(self, f"_on_{name}") for name in _EVENTS}
        for name, handler in self._handlers.items():
            event.listen(self.engine, name, handler)
        event.listen(self.engine, "engine_disposed", self._on_disposed)
        self._wrap(self.engine.pool)

    def _wrap(self, pool: Any) -> None:
        original = pool.connect
        source = self

        def connect() -> Any:
            if source._closed:
                return original()
            outer = _current.get()
            state = outer if outer is not None else _Checkout()
            token = _current.set(state) if outer is None else None
            started = time.perf_counter()
            try:
                conn = original()
            except sa_exc.TimeoutError:
                source._count("timeouts")
                raise
            except Exception:
                source._count("errors")
                raise
            finally:
                if token is not None:
                    _current.reset(token)
            source._checked_out(started, time.perf_counter(), state.levels.get(id(source)))
            return conn

        setattr(pool, "connect", connect)  # noqa: B010 - an instance attribute, undone by close()
        self._wrapped.append((pool, connect))

    def _count(self, name: str, amount: float = 1.0) -> None:
        with self._lock:
            self._counts[name] += amount

    def _move(self, delta: int) -> int:
        now = time.perf_counter()
        self._busy += self._in_use * (now - self._last)
        self._last = now
        self._in_use = max(0, self._in_use + delta)
        return self._in_use

    def _checked_out(self, started: float, ended: float, level: int | None) -> None:
        wait = ended - started
        with self._lock:
            self._counts["checkouts"] += 1
            self._counts["wait_total"] += wait
            self._ring.add(ended, wait, level if level is not None else self._in_use)
        for listener in self._listeners:
            with contextlib.suppress(Exception):  # an exporter must never fail a checkout
                listener(wait)

    def _on_connect(self, dbapi_conn: Any, record: Any) -> None:
        self._count("created")

    def _on_checkout(self, dbapi_conn: Any, record: Any, proxy: Any) -> None:
        state = _current.get()
        if state is not None and id(self) in state.levels:
            return  # a retry of the same checkout (a listener raised DisconnectionError)
        with self._lock:
            level = self._move(+1)
        if state is not None:
            state.levels[id(self)] = level

    def _on_checkin(self, dbapi_conn: Any, record: Any) -> None:
        with self._lock:
            self._move(-1)

    def _on_detach(self, dbapi_conn: Any, record: Any) -> None:
        with self._lock:
            self._move(-1)

    def _on_invalidate(self, dbapi_conn: Any, record: Any, exception: Any) -> None:
        self._count("invalidated")
        state = _current.get()
        if state is not None:
            state.invalidated.add(id(record))

    def _on_soft_invalidate(self, dbapi_conn: Any, record: Any, exception: Any) -> None:
        self._count("invalidated")

    def _on_close(self, dbapi_conn: Any, record: Any) -> None:
        state = _current.get()
        with self._lock:
            self._counts["closed"] += 1
            if state is not None and id(record) not in state.invalidated:
                self._counts["recycled"] += 1

    def _on_disposed(self, engine: Any) -> None:
        if not self._closed:
            self._wrap(engine.pool)

    def mark(self) -> Mark:
        with self._lock:
            now = time.perf_counter()
            busy = self._busy + self._in_use * (now - self._last)
            return Mark(now, time.time(), dict(self._counts), busy, self._in_use)

    def gauges(self) -> dict[str, Any]:
        status = pool_status(self.engine.pool)
        with self._lock:
            in_use = self._in_use
        idle = status["idle"]
        return {
            "in_use": in_use,
            "idle": idle,
            "overflow": status["overflow"],
            "open": in_use + idle if isinstance(idle, int) else None,
            "capacity": status["capacity"],
            "waiting": None,
        }

    def window(self, since: Mark, until: Mark) -> tuple[list[float] | None, int | None]:
        with self._lock:
            copied = self._ring.copy()
        waits, peak = _scan(copied, since.perf, until.perf)
        return waits, max(peak, since.in_use)

    def recent_waits(self, seconds: float) -> list[float]:
        with self._lock:
            copied = self._ring.copy()
        now = time.perf_counter()
        return _scan(copied, now - seconds, now)[0]

    def add_wait_listener(self, listener: Callable[[float], None]) -> None:
        self._listeners.append(listener)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for name, handler in self._handlers.items():
            if event.contains(self.engine, name, handler):
                event.remove(self.engine, name, handler)
        if event.contains(self.engine, "engine_disposed", self._on_disposed):
            event.remove(self.engine, "engine_disposed", self._on_disposed)
        for pool, wrapper in self._wrapped:
            if pool.__dict__.get("connect") is wrapper:
                del pool.__dict__["connect"]
        self._wrapped.clear()


class PsycopgPoolSource(Source):
    """Counters for a psycopg_pool ``ConnectionPool``/``AsyncConnectionPool`` via ``get_stats()``.

    psycopg_pool reports the total wait, not each wait: the snapshot has the
    mean wait and no percentiles. A ``pop_stats()`` by someone else resets
    its counters; the monitor then counts from zero again.
    """

    kind = "psycopg_pool"

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def mark(self) -> Mark:
        stats = self.pool.get_stats()
        now = time.perf_counter()
        counts = dict.fromkeys(COUNTERS, 0.0)
        counts["checkouts"] = stats.get("requests_num", 0)
        counts["wait_total"] = stats.get("requests_wait_ms", 0) / 1000
        counts["timeouts"] = stats.get("requests_errors", 0)
        counts["errors"] = stats.get("connections_errors", 0)
        counts["created"] = stats.get("connections_num", 0)
        counts["invalidated"] = stats.get("returns_bad", 0) + stats.get("connections_lost", 0)
        in_use = stats.get("pool_size", 0) - stats.get("pool_available", 0)
        return Mark(now, time.time(), counts, stats.get("usage_ms", 0) / 1000, in_use)

    def gauges(self) -> dict[str, Any]:
        stats = self.pool.get_stats()
        size = stats.get("pool_size", 0)
        idle = stats.get("pool_available", 0)
        return {
            "in_use": max(0, size - idle),
            "idle": idle,
            "overflow": max(0, size - stats.get("pool_min", size)),
            "open": size,
            "capacity": stats.get("pool_max"),
            "waiting": stats.get("requests_waiting", 0),
        }


def source_for(target: Any) -> Source:
    """The source for an ``Engine``/``AsyncEngine`` or a psycopg_pool pool."""
    engine = target_engine(target)
    if hasattr(engine, "pool") and hasattr(engine, "dialect"):
        return SQLAlchemySource(engine)
    if callable(getattr(target, "get_stats", None)):
        return PsycopgPoolSource(target)
    raise InstrumentationError(
        f"cannot monitor {type(target).__name__}: pass a SQLAlchemy Engine or AsyncEngine, "
        "or a psycopg_pool ConnectionPool or AsyncConnectionPool"
    )


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (``fraction`` in 0..1)."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]
