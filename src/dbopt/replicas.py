"""Read replicas for SQLAlchemy sessions: reads to replicas, writes to the primary.

:class:`ReplicaRouter` hands out sessions (:meth:`~ReplicaRouter.sessionmaker`,
:meth:`~ReplicaRouter.async_sessionmaker`) whose ``get_bind`` chooses the
engine per statement:

* the primary for writes (ORM flushes, ``INSERT``/``UPDATE``/``DELETE``,
  any text that is not a ``SELECT``, ``SELECT ... FOR UPDATE``), for every
  statement of a session after it wrote (until its transaction ends), for
  ``bind_arguments={"dbopt_primary": True}``, and for ``read_your_writes_s``
  seconds after a commit that wrote, for the same ``writer_key()`` (the
  whole process when no key function is given);
* otherwise a replica that answered its last check within
  ``check_interval_s`` with a replay lag of at most ``max_lag_s``, round
  robin; the primary when none does.

A replica is checked in the request path at most once per
``check_interval_s`` (one thread checks, the others use the last answer), so
a replica that stops or falls behind stops receiving reads within about
``check_interval_s`` plus its connect timeout. A read that fails on a
replica because of the routing runs again on the primary, after rolling the
read-only transaction back: the server went away (the replica is marked
down), a recovery conflict canceled it, or the standby refused a write that
looked like a read (``WITH d AS (DELETE ...) SELECT``, a ``SELECT`` of a
function that writes). No request fails because of the routing.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Engine, event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.ext.asyncio import async_sessionmaker as _async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as _sessionmaker
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import Select

from dbopt._json import FieldsDict
from dbopt.core.fingerprint import fingerprint_info
from dbopt.errors import ConfigurationError
from dbopt.pool.budget import ConnectionBudget
from dbopt.pool.config import PoolConfig
from dbopt.pool.presets import PRESETS

__all__ = ["ReplicaPools", "ReplicaRouter", "ReplicaStatus", "RoutingSession", "replica_pools"]

T = TypeVar("T")

#: Replay lag of a standby in seconds: 0 when it has replayed all it received
#: (an idle primary sends nothing, so the age of the last replayed transaction
#: alone would grow forever), else that age. After a restart the receive
#: position restarts at a segment boundary, behind the replay position.
LAG_SQL = (
    "SELECT pg_is_in_recovery(), CASE"
    " WHEN NOT pg_is_in_recovery() THEN NULL"
    " WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0"
    " ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0)"
    " END::float8"
)
#: The last error a replica's connection raised in this thread or task.
_replica_failure: contextvars.ContextVar[BaseException | None] = contextvars.ContextVar(
    "dbopt_replica_failure", default=None
)
_WROTE = "dbopt_wrote"
#: Set when a read was rerun on the primary: the transaction stays there.
_PINNED = "dbopt_pinned"
_LAST = "dbopt_last_bind"
_MAX_WRITERS = 100_000


@dataclass(frozen=True)
class ReplicaStatus(FieldsDict):
    """What the last check of one replica found. ``lag_s`` is its replay lag in seconds."""

    name: str
    available: bool
    lag_s: float | None
    checked_at: float
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without ``checked_at``, this process's monotonic clock)."""
        data = super().to_dict()
        del data["checked_at"]
        return data


class _Replica:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = engine.url.render_as_string(hide_password=True)
        self.status = ReplicaStatus(self.name, False, None, float("-inf"), "not checked yet")
        self.lock = threading.Lock()


class ReplicaRouter:
    """Routes each session statement to the primary or a replica (see the module docs).

    ``primary`` and ``replicas`` are ``Engine`` or ``AsyncEngine`` objects
    (give them a ``connect_timeout``: a replica that does not answer costs a
    check at most that long). ``counts`` tells where statements went:
    ``replica``, ``write``, ``read_your_writes``, ``fallback`` (no replica
    fit), ``retried`` (a read that failed on a replica and ran on the
    primary).
    """

    def __init__(
        self,
        primary: Engine | AsyncEngine,
        replicas: Sequence[Engine | AsyncEngine],
        *,
        max_lag_s: float = 5.0,
        check_interval_s: float = 1.0,
        read_your_writes_s: float = 2.0,
        writer_key: Callable[[], Hashable] | None = None,
        check_timeout_ms: int = 2000,
    ) -> None:
        if max_lag_s < 0 or check_interval_s < 0 or read_your_writes_s < 0:
            raise ConfigurationError("max_lag_s, check_interval_s and read_your_writes_s >= 0")
        self.primary = _sync(primary)
        self.replicas = [_Replica(_sync(engine)) for engine in replicas]
        self.max_lag_s = max_lag_s
        self.check_interval_s = check_interval_s
        self.read_your_writes_s = read_your_writes_s
        self.writer_key = writer_key
        self.check_timeout_ms = int(check_timeout_ms)
        self.counts: Counter[str] = Counter()
        self._by_engine = {id(r.engine): r for r in self.replicas}
        self._writes: dict[Hashable, float] = {}
        self._turn = itertools.count()
        for replica in self.replicas:
            event.listen(replica.engine, "handle_error", self._on_replica_error)

    def close(self) -> None:
        """Stop listening to the replicas' errors (the engines are the caller's to dispose)."""
        for replica in self.replicas:
            if event.contains(replica.engine, "handle_error", self._on_replica_error):
                event.remove(replica.engine, "handle_error", self._on_replica_error)

    def _on_replica_error(self, context: Any) -> None:
        """A replica's connection broke: route around it now, and remember the error raised."""
        if context.is_disconnect or isinstance(context.sqlalchemy_exception, exc.OperationalError):
            self.mark_down(context.engine, context.original_exception)
            _replica_failure.set(context.sqlalchemy_exception)

    # Sessions

    def sessionmaker(self, **options: Any) -> _sessionmaker[RoutingSession]:
        """A ``sessionmaker`` of :class:`RoutingSession` bound to this router."""
        return _sessionmaker(class_=RoutingSession, router=self, **options)

    def async_sessionmaker(self, **options: Any) -> _async_sessionmaker[AsyncSession]:
        """An ``async_sessionmaker`` whose sessions route through this router."""
        return _async_sessionmaker(sync_session_class=RoutingSession, router=self, **options)

    # Routing

    def bind_for(self, session: Session, clause: Any, force_primary: bool = False) -> Engine:
        """The engine ``clause`` runs on in ``session`` (called by ``get_bind``)."""
        info = session.info
        if force_primary or info.get(_WROTE) or info.get(_PINNED):
            return self._to_primary(info, "write" if info.get(_WROTE) else "fallback")
        if _writes(clause):
            info[_WROTE] = True
            return self._to_primary(info, "write")
        if self._recent_write():
            return self._to_primary(info, "read_your_writes")
        replica = self._pick()
        if replica is None:
            return self._to_primary(info, "fallback")
        self.counts["replica"] += 1
        info[_LAST] = replica.engine
        return replica.engine

    def _to_primary(self, info: dict[Any, Any], why: str) -> Engine:
        self.counts[why] += 1
        info[_LAST] = self.primary
        return self.primary

    def _pick(self) -> _Replica | None:
        if not self.replicas:
            return None
        start = next(self._turn)
        count = len(self.replicas)
        for i in range(count):
            replica = self.replicas[(start + i) % count]
            if self._usable(replica):
                return replica
        return None

    def _usable(self, replica: _Replica) -> bool:
        status = replica.status
        if time.monotonic() - status.checked_at >= self.check_interval_s and replica.lock.acquire(
            blocking=False
        ):
            try:
                status = replica.status = self._check(replica)
            finally:
                replica.lock.release()
        return status.available and status.lag_s is not None and status.lag_s <= self.max_lag_s

    def _check(self, replica: _Replica) -> ReplicaStatus:
        try:
            with replica.engine.connect() as conn:
                conn.exec_driver_sql(f"SET statement_timeout = {self.check_timeout_ms}")
                row = conn.exec_driver_sql(LAG_SQL).one()
                conn.rollback()
        except Exception as error:  # noqa: BLE001 - a replica that cannot answer is down
            return ReplicaStatus(replica.name, False, None, time.monotonic(), _describe(error))
        in_recovery, lag = bool(row[0]), row[1]
        if not in_recovery:
            return ReplicaStatus(
                replica.name, False, None, time.monotonic(), "not a standby (promoted?)"
            )
        return ReplicaStatus(replica.name, True, float(lag), time.monotonic())

    def mark_down(self, engine: Engine, error: BaseException | str) -> None:
        """Stop routing to ``engine``'s replica until its next check."""
        replica = self._by_engine.get(id(engine))
        if replica is not None:
            text = error if isinstance(error, str) else _describe(error)
            replica.status = ReplicaStatus(replica.name, False, None, time.monotonic(), text)

    def status(self, refresh: bool = False) -> list[ReplicaStatus]:
        """The last check of each replica (checked now with ``refresh``; sync engines only)."""
        if refresh:
            for replica in self.replicas:
                replica.status = self._check(replica)
        return [replica.status for replica in self.replicas]

    # Read-your-writes

    def _key(self) -> Hashable:
        return self.writer_key() if self.writer_key is not None else None

    def note_write(self) -> None:
        """Send this writer's reads to the primary for ``read_your_writes_s`` from now."""
        if self.read_your_writes_s <= 0:
            return
        writes = self._writes
        if len(writes) >= _MAX_WRITERS:
            now = time.monotonic()
            for key in [k for k, t in writes.items() if now - t > self.read_your_writes_s]:
                writes.pop(key, None)
        writes[self._key()] = time.monotonic()

    def _recent_write(self) -> bool:
        if not self._writes:
            return False
        at = self._writes.get(self._key())
        return at is not None and time.monotonic() - at < self.read_your_writes_s

    def _retryable(self, session: Session, error: exc.DBAPIError) -> str | None:
        """Why ``error``, raised on a replica, goes away when the statement reruns on the primary.

        ``"write"``: the statement wrote (a ``SELECT`` calling a writing
        function, a ``WITH ... DELETE``) and the standby refused it (SQLSTATE
        25006); ``"conflict"``: a recovery conflict canceled it (40001);
        ``"down"``: the replica's connection broke (the replica is marked
        down). None: not the routing's doing, or not on a replica.
        """
        engine = session.info.get(_LAST)
        if engine is None or id(engine) not in self._by_engine or session.info.get(_WROTE):
            return None
        sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
        if sqlstate == "25006":
            why = "write"
        elif sqlstate == "40001":
            why = "conflict"
        elif error.connection_invalidated or isinstance(error, exc.OperationalError):
            why = "down"
            self.mark_down(engine, error)
        else:
            return None
        self.counts["retried"] += 1
        return why


class RoutingSession(Session):
    """A ``Session`` whose statements a :class:`ReplicaRouter` routes; made by its sessionmakers."""

    def __init__(self, *args: Any, router: ReplicaRouter, **options: Any) -> None:
        super().__init__(*args, **options)
        self.router = router

    def get_bind(self, mapper: Any = None, *, clause: Any = None, **kw: Any) -> Engine:
        """The primary or a replica for ``clause`` (``bind_arguments``: ``dbopt_primary``)."""
        return self.router.bind_for(self, clause, bool(kw.get("dbopt_primary")))

    def _rerun(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except exc.DBAPIError as error:
            why = self.router._retryable(self, error)
            if why is None:
                raise
            self.rollback()  # only reads ran in this transaction: nothing is lost
            # the rerun and the rest of this transaction stay on the primary
            self.info[_WROTE if why == "write" else _PINNED] = True
            return call()

    def execute(self, *args: Any, **kw: Any) -> Any:
        """``Session.execute``; a read that fails on a replica runs again on the primary."""
        return self._rerun(lambda: super(RoutingSession, self).execute(*args, **kw))

    def scalars(self, *args: Any, **kw: Any) -> Any:
        """``Session.scalars``, rerun on the primary as :meth:`execute` is."""
        return self._rerun(lambda: super(RoutingSession, self).scalars(*args, **kw))

    def scalar(self, *args: Any, **kw: Any) -> Any:
        """``Session.scalar``, rerun on the primary as :meth:`execute` is."""
        return self._rerun(lambda: super(RoutingSession, self).scalar(*args, **kw))

    def commit(self) -> None:
        """Commit; after a write, this writer's reads stay on the primary for a while."""
        try:
            super().commit()  # may flush, and so write
        except exc.DBAPIError as error:
            if error is not _replica_failure.get() or self.info.get(_WROTE):
                raise
            # a read-only transaction whose replica went away: nothing to commit
            _replica_failure.set(None)
            self.router.counts["retried"] += 1
            self._ending(super().rollback)
            return
        self.info.pop(_PINNED, None)
        if self.info.pop(_WROTE, False):
            self.router.note_write()

    def rollback(self) -> None:
        """Roll back; the session may read from replicas again."""
        self.info.pop(_WROTE, None)
        self.info.pop(_PINNED, None)
        self._ending(super().rollback)

    def close(self) -> None:
        """Close; the session may read from replicas again."""
        self.info.pop(_WROTE, None)
        self.info.pop(_PINNED, None)
        self._ending(super().close)

    def _ending(self, end: Callable[[], None]) -> None:
        """Run ``end``; a replica whose connection broke under a read-only transaction is no error.

        Ending the transaction rolls the replica's connection back; if that
        server went away after the reads were answered, nothing is lost, so
        the error is not the caller's: the session is ended again without it.
        """
        try:
            end()
        except exc.DBAPIError as error:
            if error is not _replica_failure.get():
                raise
            _replica_failure.set(None)
            self.router.counts["retried"] += 1
            end()


def _sync(engine: Engine | AsyncEngine) -> Engine:
    return engine.sync_engine if isinstance(engine, AsyncEngine) else engine


def _describe(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def _writes(clause: Any) -> bool:
    """Whether ``clause`` may write (unknown: yes)."""
    if isinstance(clause, Select):
        return getattr(clause, "_for_update_arg", None) is not None
    if clause is None or isinstance(clause, UpdateBase):
        return True
    if isinstance(clause, TextClause):
        return fingerprint_info(clause.text).kind != "select"
    return False


# Pools


@dataclass(frozen=True)
class ReplicaPools:
    """Pool configurations of one process: its primary pool and its pool per replica."""

    primary: PoolConfig
    replica: PoolConfig

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of both configurations."""
        return {"primary": self.primary.to_dict(), "replica": self.replica.to_dict()}


def replica_pools(
    preset: str,
    *args: Any,
    primary_budget: ConnectionBudget | None = None,
    replica_budget: ConnectionBudget | None = None,
    **options: Any,
) -> ReplicaPools:
    """A preset (``"web"``, ``"async_web"``, ``"worker"``...) sized for a primary and its replicas.

    Each pool is the preset sized from its own server's budget (a replica
    has its own ``max_connections``; read it with
    :func:`dbopt.pool.connection_budget` on the replica): a unit of work may
    hold a primary and a replica connection at once, so each pool gets the
    preset's concurrency capped by its server's share. The replica pool is
    ``read_only`` and its ``application_name`` ends in ``-replica``. Raises
    :class:`ConfigurationError` for an unknown preset or a budget too small.
    """
    factory = PRESETS.get(preset)
    if factory is None:
        raise ConfigurationError(f"unknown preset {preset!r}; one of {sorted(PRESETS)}")
    primary = factory(*args, budget=primary_budget, **options)
    replica = factory(*args, budget=replica_budget, **options)
    replica = replace(
        replica,
        application_name=f"{replica.application_name}-replica",
        read_only=True,
        reasons={
            **replica.reasons,
            "read_only": "a write routed to a replica by mistake fails at once, "
            "with a clear error, instead of depending on the server's role",
        },
    )
    return ReplicaPools(primary, replica)
