"""What a SQLAlchemy pool is configured with, and what it holds now.

``size()``, ``timeout()``, ``checkedin()``, ``checkedout()`` and
``overflow()`` are public on ``QueuePool``; ``max_overflow``, ``recycle`` and
``pre_ping`` are only kept as attributes (``_max_overflow``, ``_recycle``,
``_pre_ping``, the ones ``Pool.recreate()`` reads). They are read here and
nowhere else, never written; a pool without them reports None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PoolSettings", "pool_settings", "pool_status", "target_engine"]


@dataclass(frozen=True)
class PoolSettings:
    """A SQLAlchemy pool's configuration: None where the pool class has no such notion."""

    kind: str
    size: int | None
    max_overflow: int | None
    timeout: float | None
    recycle: float | None
    pre_ping: bool | None

    @property
    def capacity(self) -> int | None:
        """Most connections the pool opens at once; None when unbounded or unknown."""
        if self.kind == "NullPool":
            return None
        if self.kind in ("StaticPool", "AssertionPool"):
            return 1
        if self.size is None or self.max_overflow is None or self.max_overflow < 0:
            return None
        return self.size + self.max_overflow


def target_engine(target: Any) -> Any:
    """The sync ``Engine`` behind an ``Engine`` or ``AsyncEngine``."""
    return getattr(target, "sync_engine", target)


def _call(pool: Any, name: str) -> Any:
    method = getattr(pool, name, None)
    return method() if callable(method) else None


def pool_settings(pool: Any) -> PoolSettings:
    """Read a SQLAlchemy pool's settings."""
    recycle = getattr(pool, "_recycle", None)
    size = _call(pool, "size")
    max_overflow = getattr(pool, "_max_overflow", None)
    return PoolSettings(
        kind=type(pool).__name__,
        size=size if isinstance(size, int) else None,
        max_overflow=max_overflow if isinstance(max_overflow, int) else None,
        timeout=_call(pool, "timeout"),
        recycle=None if recycle is None or recycle < 0 else float(recycle),
        pre_ping=getattr(pool, "_pre_ping", None),
    )


def pool_status(pool: Any) -> dict[str, Any]:
    """Connections held by a SQLAlchemy pool now: checked out, idle, overflow, capacity."""
    settings = pool_settings(pool)
    checked_out = _call(pool, "checkedout")
    overflow = _call(pool, "overflow")
    return {
        "kind": settings.kind,
        "size": settings.size,
        "capacity": settings.capacity,
        "checked_out": checked_out,
        "idle": _call(pool, "checkedin"),
        "overflow": max(0, overflow) if isinstance(overflow, int) else None,
    }
