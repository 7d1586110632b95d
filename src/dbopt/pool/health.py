"""``ping()``: a liveness/readiness probe for a ``/health`` route that never hangs.

The probe checks a connection out of the application's own pool (so an
exhausted pool reads as not ready) and runs ``SELECT 1``, on PostgreSQL under
``SET LOCAL statement_timeout``. It runs on a daemon thread the caller waits
for at most ``timeout`` seconds: a server that is down, or accepts
connections and never answers, gives ``"down"`` in time. A probe stuck on
such a server keeps running in the background (holding at most one pool
slot); later calls wait for that probe instead of piling up new ones.

``ping`` was called ``health_check``, a name that also meant the health
report (:func:`dbopt.health.health`) and its checks; ``health_check`` and
``health_check_async`` remain as deprecated aliases that return the old dict.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from dbopt._json import FieldsDict
from dbopt.errors import ConfigurationError
from dbopt.pool._introspect import pool_status, target_engine

__all__ = ["PingResult", "health_check", "health_check_async", "ping", "ping_async"]

_QUERY = "SELECT 1"


class _Probe:
    def __init__(self, run: Callable[[], None]) -> None:
        self.started = time.perf_counter()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.finished: float | None = None
        self._run = run

    def __call__(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported in the result, never raised
            self.error = exc
        finally:
            self.finished = time.perf_counter()
            self.done.set()


_inflight: dict[int, _Probe] = {}
_inflight_lock = threading.Lock()


def _is_async(target: Any) -> bool:
    from psycopg_pool import AsyncConnectionPool

    return hasattr(target, "sync_engine") or isinstance(target, AsyncConnectionPool)


def _status(target: Any) -> dict[str, Any]:
    try:
        if callable(getattr(target, "get_stats", None)):
            stats = target.get_stats()
            size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
            return {
                "kind": type(target).__name__,
                "size": stats.get("pool_min"),
                "capacity": stats.get("pool_max"),
                "checked_out": max(0, size - idle),
                "idle": idle,
                "waiting": stats.get("requests_waiting"),
            }
        return pool_status(target_engine(target).pool)
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not raise
        return {"error": f"{type(exc).__name__}: {exc}"}


def _sync_probe(target: Any, timeout: float) -> Callable[[], None]:
    ms = max(1, int(timeout * 1000))
    if callable(getattr(target, "connection", None)) and hasattr(target, "get_stats"):

        def run_psycopg() -> None:
            with target.connection(timeout=timeout) as conn:
                conn.execute(f"SET LOCAL statement_timeout = {ms}")
                conn.execute(_QUERY).fetchone()

        return run_psycopg
    engine = target_engine(target)

    def run_engine() -> None:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
            conn.exec_driver_sql(_QUERY).scalar()

    return run_engine


@dataclass(frozen=True)
class PingResult(FieldsDict):
    """What :func:`ping` saw: ``up`` or ``down``, how fast, why not, and the pool's state.

    * ``status``: ``"up"`` or ``"down"`` (:attr:`up` is the same as a bool);
    * ``latency_ms``: how long ``SELECT 1`` took, None when down;
    * ``error``: why it is down (``"OperationalError: ..."``), None when up;
    * ``timeout_s``: the deadline the probe had;
    * ``checked_at``: when (UTC);
    * ``pool``: what the pool holds now (``kind``, ``size``, ``checked_out`` ...).

    :meth:`to_dict` is the JSON body for a ``/health`` route. Reading it like
    the dict ``health_check`` returned (``result["status"]``, ``.get()``)
    still works, with a :class:`DeprecationWarning`.
    """

    status: Literal["up", "down"]
    latency_ms: float | None
    error: str | None
    timeout_s: float
    checked_at: dt.datetime
    pool: dict[str, Any] = field(default_factory=dict)

    @property
    def up(self) -> bool:
        """True when the database answered in time."""
        return self.status == "up"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``checked_at`` as an ISO time with milliseconds)."""
        data = super().to_dict()
        data["checked_at"] = self.checked_at.isoformat(timespec="milliseconds")
        return data

    def __getitem__(self, key: str) -> Any:
        _warn_mapping()
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Deprecated mapping access: use the attribute (``result.status``)."""
        _warn_mapping()
        return self.to_dict().get(key, default)


def _warn_mapping() -> None:
    warnings.warn(
        "ping() returns a PingResult: read its attributes (result.status, result.up) "
        "or result.to_dict() instead of indexing it",
        DeprecationWarning,
        stacklevel=3,
    )


def _result(target: Any, timeout: float, error: str | None, latency: float | None) -> PingResult:
    return PingResult(
        status="up" if error is None else "down",
        latency_ms=None if latency is None else round(latency * 1000, 3),
        error=error,
        timeout_s=timeout,
        checked_at=dt.datetime.now(dt.timezone.utc),
        pool=_status(target),
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}".rstrip(": ")


def ping(target: Any, *, timeout: float = 2.0) -> PingResult:
    """Probe a SQLAlchemy ``Engine`` or psycopg_pool ``ConnectionPool`` for a ``/health`` route.

    Returns within ``timeout`` seconds (plus thread scheduling), whatever
    the server does; never raises for a database problem. For
    ``AsyncEngine``/``AsyncConnectionPool`` use :func:`ping_async`.
    """
    if timeout <= 0:
        raise ConfigurationError("timeout must be > 0 seconds")
    if _is_async(target):
        raise ConfigurationError("an async engine or pool needs: await ping_async(...)")
    deadline = time.perf_counter() + timeout
    with _inflight_lock:
        probe = _inflight.get(id(target))
        if probe is None:
            probe = _Probe(_sync_probe(target, timeout))
            _inflight[id(target)] = probe
            threading.Thread(
                target=_run_and_forget, args=(target, probe), name="dbopt-health", daemon=True
            ).start()
    if not probe.done.wait(max(0.0, deadline - time.perf_counter())):
        running = time.perf_counter() - probe.started
        return _result(
            target,
            timeout,
            f"no answer within {timeout:g} s (probe running for {running:.1f} s)",
            None,
        )
    if probe.error is not None:
        return _result(target, timeout, _describe(probe.error), None)
    return _result(target, timeout, None, (probe.finished or probe.started) - probe.started)


def _run_and_forget(target: Any, probe: _Probe) -> None:
    try:
        probe()
    finally:
        with _inflight_lock:
            if _inflight.get(id(target)) is probe:
                del _inflight[id(target)]


_async_tasks: set[asyncio.Task[None]] = set()


async def ping_async(target: Any, *, timeout: float = 2.0) -> PingResult:
    """:func:`ping` for an ``AsyncEngine`` or psycopg_pool ``AsyncConnectionPool``.

    The probe is a task that is cancelled (not awaited) when ``timeout``
    passes, so the caller gets ``"down"`` in time even if cancelling it takes
    longer.
    """
    if timeout <= 0:
        raise ConfigurationError("timeout must be > 0 seconds")
    ms = max(1, int(timeout * 1000))

    async def run() -> None:
        if hasattr(target, "sync_engine"):
            async with target.connect() as conn:
                if target.dialect.name == "postgresql":
                    await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
                await conn.exec_driver_sql(_QUERY)
        else:
            async with target.connection(timeout=timeout) as conn:
                await conn.execute(f"SET LOCAL statement_timeout = {ms}")
                await (await conn.execute(_QUERY)).fetchone()

    started = time.perf_counter()
    task = asyncio.ensure_future(run())
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        _async_tasks.add(task)
        task.add_done_callback(_forget)
        return _result(target, timeout, f"no answer within {timeout:g} s", None)
    exc = task.exception()
    if exc is not None:
        return _result(target, timeout, _describe(exc), None)
    return _result(target, timeout, None, time.perf_counter() - started)


def _forget(task: asyncio.Task[None]) -> None:
    _async_tasks.discard(task)
    if not task.cancelled():
        task.exception()


def _renamed(old: str, new: str) -> None:
    warnings.warn(
        f"dbopt.{old}() is now dbopt.{new}(), which returns a PingResult "
        "(result.status, result.to_dict())",
        DeprecationWarning,
        stacklevel=3,
    )


def health_check(target: Any, *, timeout: float = 2.0) -> dict[str, Any]:
    """Deprecated name of :func:`ping`; returns ``ping(...).to_dict()``."""
    _renamed("health_check", "ping")
    return ping(target, timeout=timeout).to_dict()


async def health_check_async(target: Any, *, timeout: float = 2.0) -> dict[str, Any]:
    """Deprecated name of :func:`ping_async`; returns ``(await ping_async(...)).to_dict()``."""
    _renamed("health_check_async", "ping_async")
    return (await ping_async(target, timeout=timeout)).to_dict()
