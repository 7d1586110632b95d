"""Protocols and aliases shared by dbopt's modules (sinks, adapters)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from dbopt.core.events import QueryEvent
    from dbopt.core.scope import Scope

__all__ = [
    "ParamPolicy",
    "Parameters",
    "ScopeAwareSink",
    "Sink",
]

#: Parameters as a driver received them: a sequence (positional styles), a
#: mapping (named styles), a sequence of either for executemany, or None.
Parameters: TypeAlias = Sequence[Any] | Mapping[str, Any] | None

#: What a sink keeps of statement parameters.
ParamPolicy: TypeAlias = Literal["redact", "keep", "drop"]


@runtime_checkable
class Sink(Protocol):
    """Anything that receives query events: ``sink(event)``.

    A sink must be quick (it runs on every statement) and should not raise;
    if it does, dbopt logs the error (rate-limited) and the application's
    statement is unaffected. Only :class:`dbopt.errors.ReportedError` escapes.
    """

    def __call__(self, event: QueryEvent, /) -> None: ...


@runtime_checkable
class ScopeAwareSink(Sink, Protocol):
    """A sink that also wants to know when a :func:`dbopt.scope` ends."""

    def scope_end(self, scope: Scope, /) -> None: ...
