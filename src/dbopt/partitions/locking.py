"""Run: the advisory lock per parent, and DDL under ``lock_timeout`` with retry and backoff."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import errors

from dbopt.partitions.errors import LockTimeoutError, PartitionLockedError

if TYPE_CHECKING:
    from dbopt.partitions.plan import Name

__all__ = ["LockPolicy", "configure", "parent_lock", "with_retry"]

T = TypeVar("T")
_NAMESPACE = "dbopt.partitions"
#: Errors worth another attempt: the lock was busy, or we were a deadlock's victim.
RETRYABLE = (errors.LockNotAvailable, errors.DeadlockDetected)


@dataclass(frozen=True)
class LockPolicy:
    """How long DDL may wait for locks, and how it retries.

    Each statement runs under ``lock_timeout`` seconds; when a lock is not
    granted in time (or a deadlock is detected) the operation's transaction
    rolls back and is retried up to ``retries`` times, sleeping ``backoff``
    seconds doubled per attempt (capped at ``max_backoff``, with jitter).
    ``lock_wait`` is how long to wait for another maintainer's advisory lock.
    """

    lock_timeout: float = 2.0
    retries: int = 5
    backoff: float = 0.2
    max_backoff: float = 5.0
    lock_wait: float = 60.0
    statement_timeout: float | None = None

    def sleep_before(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        base = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return float(base * (0.5 + random.random()))


def configure(conn: psycopg.Connection[Any], policy: LockPolicy) -> None:
    """Session settings the manager relies on: ISO dates, UTC, the lock timeout."""
    statement = policy.statement_timeout
    conn.execute(
        "SELECT set_config('DateStyle', 'ISO, YMD', false), set_config('TimeZone', 'UTC', false),"
        " set_config('lock_timeout', %s, false), set_config('statement_timeout',"
        " coalesce(%s, current_setting('statement_timeout')), false)",
        (
            f"{int(policy.lock_timeout * 1000)}ms",
            None if statement is None else f"{int(statement * 1000)}ms",
        ),
    )


def with_retry(fn: Callable[[], T], policy: LockPolicy, what: str) -> tuple[T, int]:
    """``fn()`` and the number of attempts it took; LockTimeoutError when all fail."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn(), attempt
        except RETRYABLE as exc:
            if attempt > policy.retries:
                raise LockTimeoutError(
                    f"{what}: locks not granted within {policy.lock_timeout}s"
                    f" after {attempt} attempts: {exc}"
                ) from exc
            time.sleep(policy.sleep_before(attempt))


def lock_keys(parent: Name | str) -> tuple[str, str]:
    """The two texts hashed into the advisory lock key of ``parent``."""
    return _NAMESPACE, str(parent)


#: The query that tries the advisory lock of a parent (parameters: ``lock_keys``).
TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))"


#: A setting that ``TRY_LOCK_NOTED`` sets to whether the lock was granted, so that a
#: later statement of the same pipeline can check it (``StateStore.unchanged_sql``).
HELD_FLAG = "dbopt.partitions_held"

#: ``TRY_LOCK``, its answer kept in ``HELD_FLAG`` (same parameters).
TRY_LOCK_NOTED = (
    f"SELECT set_config('{HELD_FLAG}', pg_try_advisory_lock(hashtext(%s), hashtext(%s))::text,"
    " false)"
)

#: Whether this session holds the lock (same parameters): after a pipeline that tried it
#: failed, without taking it a second time (session advisory locks nest).
HOLDS_LOCK = (
    "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory'"
    " AND pid = pg_backend_pid() AND classid = hashtext(%s)::oid"
    " AND objid = hashtext(%s)::oid AND objsubid = 2 AND granted)"
)

#: The query that releases it (same parameters).
UNLOCK = "SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))"


class Hold:
    """The advisory lock ``parent_lock`` holds.

    A caller may send ``UNLOCK`` with ``keys`` itself, e.g. in a pipeline with
    its last statements (one round trip), and once that has succeeded set
    ``released`` so that ``parent_lock`` does not unlock again on exit.
    """

    def __init__(self, keys: tuple[str, str]) -> None:
        self.keys = keys
        self.released = False


@contextmanager
def parent_lock(
    conn: psycopg.Connection[Any], parent: Name | str, wait: float, *, held: bool = False
) -> Iterator[Hold]:
    """Hold the session advisory lock of ``parent``; PartitionLockedError after ``wait`` s.

    Two maintainers of one parent never run at once; the second waits (polling)
    and then plans against what the first left, usually nothing to do.
    ``held``: the caller took it already (``TRY_LOCK`` returned true); only
    release it on exit.
    """
    keys = lock_keys(parent)
    deadline = time.monotonic() + wait
    pause = 0.02
    while not held:
        row = conn.execute(TRY_LOCK, keys).fetchone()
        if row and row[0]:
            break
        if time.monotonic() >= deadline:
            raise PartitionLockedError(
                f"another maintainer holds the lock of {parent} (waited {wait}s)"
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.5)
    hold = Hold(keys)
    try:
        yield hold
    finally:
        if not conn.closed and not hold.released:
            try:
                conn.execute(UNLOCK, keys)
            except psycopg.Error:
                conn.close()  # closing the session releases the lock
