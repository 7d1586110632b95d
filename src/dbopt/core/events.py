"""The query event: one record per statement an application runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from dbopt.core.fingerprint import StatementKind, fingerprint_info

if TYPE_CHECKING:
    from dbopt.core.scope import Scope
    from dbopt.typing import Parameters

__all__ = ["EAGER_BATCH_OPTION", "CallSite", "OrmContext", "QueryEvent"]

#: Execution option marking :func:`dbopt.eager.auto`'s own batch statements; its
#: value is the relationship (``"User.posts"``). The eager package sets it, the
#: SQLAlchemy adapter reads it to report the statement as an ``eager_load``.
EAGER_BATCH_OPTION = "dbopt_eager_batch"


class CallSite(NamedTuple):
    """One frame of application code: file, line and function name."""

    file: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} in {self.function}"


@dataclass(frozen=True, slots=True)
class OrmContext:
    """What the ORM was doing when it issued a statement.

    ``kind`` is ``"lazy_load"`` (an attribute access loaded a relationship),
    ``"eager_load"`` (a loader option such as selectinload ran a second query),
    or ``"query"`` (an explicit ORM statement). ``relationship`` is
    ``"Class.attribute"`` when a relationship was loaded.
    """

    kind: str
    entity: str | None = None
    relationship: str | None = None
    strategy: str | None = None
    uselist: bool | None = None
    #: The class a relationship load returns (``"Post"`` for ``User.posts``).
    target: str | None = None
    #: A lazy load whose owner came from a result of many rows (tracked only
    #: for ``NPlusOneDetector(checks=["potential"])``).
    from_many: bool = False
    #: The ``Session.merge()`` call that ran it (a number per call, and per
    #: object of ``merge_all()``), None outside ``merge()``: the loads one
    #: merge() runs for itself are not a loop of the application's.
    merge: int | None = None

    def describe(self) -> str:
        """Say it in words: ``"lazy load of User.posts"``."""
        what = self.kind.replace("_", " ")
        if self.relationship:
            return f"{what} of {self.relationship}"
        if self.entity:
            return f"{what} of {self.entity}"
        return what


@dataclass(frozen=True, slots=True)
class QueryEvent:
    """One executed statement, immutable, as every sink sees it.

    ``duration`` is in seconds from a monotonic clock; ``timestamp`` is wall
    time (``time.time()``) when the statement started. ``parameters`` are the
    values as the driver received them: each sink applies its own policy
    (redact, keep, drop) before it stores or prints them. ``callsite`` is the
    first frame outside dbopt, the ORM, the driver and web frameworks, and
    ``stack`` the application frames from there outwards (innermost first).
    """

    sql: str
    parameters: Parameters
    fingerprint: str
    duration: float
    rowcount: int | None
    executemany: bool
    error: BaseException | None
    callsite: CallSite | None
    stack: tuple[CallSite, ...]
    scope: Scope | None
    adapter: str
    dialect: str
    timestamp: float
    orm: OrmContext | None = None
    kind: StatementKind = field(default="other")

    @property
    def duration_ms(self) -> float:
        """Duration in milliseconds."""
        return self.duration * 1000.0

    @property
    def normalized(self) -> str:
        """The statement with literals and placeholders replaced by ``?``."""
        return fingerprint_info(self.sql).normalized

    @property
    def failed(self) -> bool:
        """Whether the statement raised."""
        return self.error is not None

    @property
    def scope_name(self) -> str | None:
        """The name of the scope it ran in, if any."""
        return self.scope.name if self.scope is not None else None

    def stack_key(self, depth: int = 3) -> tuple[tuple[str, int], ...]:
        """A stable key of the innermost ``depth`` application frames (file, line)."""
        return tuple((f.file, f.line) for f in self.stack[:depth])

    def to_dict(self, params: str = "redact") -> dict[str, Any]:
        """A JSON-ready dict; ``params`` is the policy for parameters."""
        from dbopt.core.params import apply_policy, jsonable

        return {
            "sql": self.sql,
            "parameters": jsonable(apply_policy(self.parameters, params)),
            "fingerprint": self.fingerprint,
            "kind": self.kind,
            "duration_ms": self.duration_ms,
            "rowcount": self.rowcount,
            "executemany": self.executemany,
            "error": repr(self.error) if self.error is not None else None,
            "callsite": str(self.callsite) if self.callsite else None,
            "scope": self.scope_name,
            "adapter": self.adapter,
            "dialect": self.dialect,
            "timestamp": self.timestamp,
            "orm": self.orm.describe() if self.orm else None,
        }


def _event_factory() -> Any:
    """A positional constructor of :class:`QueryEvent` that skips the frozen ``__init__``.

    A frozen dataclass's generated ``__init__`` calls ``object.__setattr__``
    once per field (15 of them). Instead the fields are stored on a bare
    instance of a twin class with the same slots (attribute stores the
    interpreter specialises; no ``__init__`` dispatch), and the object then becomes a
    :class:`QueryEvent` (``__class__`` assignment between identical layouts):
    the same object, frozen from there on, in under half the time. Adapters
    build one event per statement, so this is on the hot path. Where the
    twin cannot be used (another Python), the slots' descriptors are called
    instead.
    """
    slots = QueryEvent.__slots__
    names = [f for f in slots if f != "__weakref__"]
    arguments = ", ".join(names)
    twin_source = f"class _Twin:\n    __slots__ = {tuple(slots)!r}\n"
    # One call: the twin is made without its class's call (object.__new__, no
    # __init__ dispatch) and its slots stored from here.
    stores = "".join(f"    e.{n} = {n}\n" for n in names)
    source = (
        f"def make_event({arguments}):\n"
        f"    e = _new(_Twin)\n{stores}    e.__class__ = _cls\n    return e\n"
    )
    namespace: dict[str, Any] = {"_cls": QueryEvent, "_new": object.__new__}
    # the sources are built from our own field names
    exec(twin_source, namespace)  # noqa: S102
    exec(source, namespace)  # noqa: S102
    try:
        made: Any = namespace["make_event"](*range(len(names)))
        last: object = made.kind
        if type(made) is QueryEvent and last == len(names) - 1:
            return namespace["make_event"]
    except TypeError:  # layouts not interchangeable here
        pass
    setters = {f"_set_{n}": getattr(QueryEvent, n).__set__ for n in names}
    body = "\n".join(f"    _set_{n}(e, {n})" for n in names)
    source = f"def make_event({arguments}):\n    e = _new(_cls)\n{body}\n    return e\n"
    namespace = {"_new": object.__new__, "_cls": QueryEvent, **setters}
    exec(source, namespace)  # noqa: S102 - the source is built from our own field names
    return namespace["make_event"]


#: ``make_event(sql, parameters, ..., kind)``: the fields of :class:`QueryEvent` in order.
make_event: Callable[..., QueryEvent] = _event_factory()
