"""``Handle``: one verb, ``close()``, undoes anything dbopt attached or started.

Every object dbopt hands back to undo later (an :class:`~dbopt.Instrumentation`,
the eager loading handles, a :class:`~dbopt.pool.PoolMonitor` and its
:class:`~dbopt.pool.PeriodicLog`, the framework integrations) is a
:class:`Handle`: ``close()`` undoes it (idempotent) and a ``with`` block
closes it on exit. The verbs they had before (``detach``, ``undo``, ``stop``)
remain as deprecated aliases.
"""

from __future__ import annotations

import warnings
from types import TracebackType
from typing import TypeVar

__all__ = ["Handle"]

_H = TypeVar("_H", bound="Handle")


class Handle:
    """Something to undo: ``close()`` (idempotent), or a ``with`` block that closes it."""

    def close(self) -> None:
        """Undo what this handle attached or started; calling it again does nothing."""
        raise NotImplementedError

    def __enter__(self: _H) -> _H:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _deprecated_verb(self, old: str) -> None:
        """Warn that ``old()`` is now ``close()`` (call from the old method)."""
        warnings.warn(
            f"{type(self).__name__}.{old}() is now close(), the one verb that undoes "
            "every dbopt handle",
            DeprecationWarning,
            stacklevel=3,
        )
