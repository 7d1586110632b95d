"""``Handle``: one verb, ``close()``, undoes anything dbopt attached or started.

Every object dbopt hands back to undo later (an :class:`~dbopt.Instrumentation`,
the eager loading handles, a :class:`~dbopt.pool.PoolMonitor` and its
:class:`~dbopt.pool.PeriodicLog`, the framework integrations) is a
:class:`Handle`: ``close()`` undoes it (idempotent) and a ``with`` block
closes it on exit. The verbs they had before (``detach``, ``undo``, ``stop``)
remain as deprecated aliases (:func:`deprecated_verb`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import TracebackType
from typing import TypeAlias, TypeVar

from typing_extensions import Unpack

__all__ = ["ExcInfo", "Handle", "deprecated_verb"]

_H = TypeVar("_H", bound="Handle")

#: What ``__exit__`` receives: the exception's type, the exception and its
#: traceback (all None when the block ended normally). Context managers take
#: it as ``def __exit__(self, *exc_info: Unpack[ExcInfo])``.
ExcInfo: TypeAlias = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]


class Handle:
    """Something to undo: ``close()`` (idempotent), or a ``with`` block that closes it."""

    def close(self) -> None:
        """Undo what this handle attached or started; calling it again does nothing."""
        raise NotImplementedError

    def __enter__(self: _H) -> _H:
        return self

    def __exit__(self, *exc_info: Unpack[ExcInfo]) -> None:
        self.close()

    def _deprecated_verb(self, old: str) -> None:
        """Warn that ``old()`` is now ``close()`` (call from the old method)."""
        warnings.warn(
            f"{type(self).__name__}.{old}() is now close(), the one verb that undoes "
            "every dbopt handle",
            DeprecationWarning,
            stacklevel=3,
        )


def deprecated_verb(old: str) -> Callable[[Handle], None]:
    """The method ``old()`` a handle had before ``close()``: it warns, then closes.

    In the class body: ``undo = deprecated_verb("undo")``.
    """

    def verb(self: Handle) -> None:
        self._deprecated_verb(old)
        self.close()

    verb.__name__ = old
    verb.__doc__ = "Deprecated: use :meth:`close`."
    return verb
