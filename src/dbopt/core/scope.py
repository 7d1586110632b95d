"""Scopes: units of work (a request, a job, a test) that events belong to."""

from __future__ import annotations

import contextvars
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from typing_extensions import ParamSpec, Self, Unpack

from dbopt.core.sinks import end_scope
from dbopt.handle import ExcInfo

__all__ = ["Scope", "current_scope", "scope"]

P = ParamSpec("P")
R = TypeVar("R")

_current: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("dbopt_scope", default=None)
_ids = itertools.count(1)


@dataclass(eq=False, slots=True)
class Scope:
    """A unit of work. Identity is the object itself; ``id`` is unique per process."""

    name: str | None
    tags: dict[str, Any]
    parent: Scope | None = None
    id: int = field(default_factory=lambda: next(_ids))
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, or None while open."""
        return None if self.ended is None else self.ended - self.started

    @property
    def path(self) -> str:
        """Names from the outermost scope to this one, joined with ``/``."""
        names: list[str] = []
        node: Scope | None = self
        while node is not None:
            names.append(node.name or f"#{node.id}")
            node = node.parent
        return "/".join(reversed(names))

    def __repr__(self) -> str:
        return f"<Scope {self.path} tags={self.tags!r}>"


def current_scope() -> Scope | None:
    """The innermost open scope in this thread or task, or None."""
    return _current.get()


class scope:  # noqa: N801 - used like a function, as contextlib's helpers are
    """Mark a unit of work; events run inside carry it.

    Usable as ``with dbopt.scope("GET /users"):``, ``async with``, or as a
    decorator. When it ends, every attached sink with a ``scope_end`` method
    is told (see :mod:`dbopt.core.pipeline`); a sink configured to raise (an
    N+1 detector in tests) raises here, never inside the statement.
    Scopes nest; contextvars keep them right across threads and asyncio tasks.
    """

    __slots__ = ("_name", "_scope", "_tags", "_token")

    def __init__(self, name: str | None = None, **tags: Any) -> None:
        self._name = name
        self._tags = tags
        self._scope: Scope | None = None
        self._token: contextvars.Token[Scope | None] | None = None

    def __enter__(self) -> Scope:
        if self._token is not None:
            raise RuntimeError("a dbopt.scope object cannot be entered twice at once")
        self._scope = Scope(self._name, dict(self._tags), parent=_current.get())
        self._token = _current.set(self._scope)
        return self._scope

    def __exit__(self, *exc_info: Unpack[ExcInfo]) -> None:
        if self._token is None or self._scope is None:
            raise RuntimeError("dbopt.scope exited without being entered")
        _current.reset(self._token)
        self._token = None
        ended, self._scope = self._scope, None
        ended.ended = time.monotonic()
        end_scope(ended, failed=exc_info[1] is not None)

    def end(self, failure: BaseException | None = None) -> None:
        """Leave the scope entered with ``__enter__()``, for middleware that cannot use ``with``.

        ``failure`` is the exception that ended the unit of work, if any.
        """
        if failure is None:
            self.__exit__(None, None, None)
        else:
            self.__exit__(type(failure), failure, failure.__traceback__)

    async def __aenter__(self) -> Scope:
        return self.__enter__()

    async def __aexit__(self, *exc_info: Unpack[ExcInfo]) -> None:
        self.__exit__(*exc_info)

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        import functools
        import inspect

        name = self._name or getattr(func, "__qualname__", None)
        tags = self._tags
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                async with scope(name, **tags):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with scope(name, **tags):
                return func(*args, **kwargs)

        return wrapper

    def __copy__(self) -> Self:
        return type(self)(self._name, **self._tags)
