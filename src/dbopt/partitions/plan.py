"""Typed plan operations, each with the reason it is needed, and the ``Plan`` holding them.

A plan is data: nothing here talks to a database. ``Plan.describe()`` is for
people, ``Plan.to_dict()`` for programs; ``PartitionManager.apply(plan)``
carries it out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, NamedTuple
from zoneinfo import ZoneInfo

from dbopt._json import FieldsDict
from dbopt.partitions.grid import Value
from dbopt.postgres import render

__all__ = [
    "AdoptPartition",
    "Bound",
    "CreatePartition",
    "DefaultBound",
    "DetachPartition",
    "DropPartition",
    "FinalizeDetach",
    "ForgetPartition",
    "HashBound",
    "ListBound",
    "MarkDetached",
    "Name",
    "Note",
    "Operation",
    "OwnedOperation",
    "Plan",
    "RangeBound",
    "in_run_order",
    "literal_text",
]


class Name(NamedTuple):
    """A schema-qualified relation name (unquoted parts)."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


def literal_text(value: Any, zone: str = "UTC") -> str:
    """A bound value as PostgreSQL reads it: timestamptz shown in ``zone`` with its offset."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(ZoneInfo(zone))
        return str(value.isoformat(sep=" "))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _value_text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return render.literal(literal_text(value))


@dataclass(frozen=True)
class RangeBound:
    """``FOR VALUES FROM (lower) TO (upper)``; None is MINVALUE / MAXVALUE."""

    lower: Value | None
    upper: Value | None

    def text(self, zone: str = "UTC") -> str:
        """The bound clause as text."""
        lo = "MINVALUE" if self.lower is None else f"'{literal_text(self.lower, zone)}'"
        hi = "MAXVALUE" if self.upper is None else f"'{literal_text(self.upper, zone)}'"
        return f"FOR VALUES FROM ({lo}) TO ({hi})"


@dataclass(frozen=True)
class ListBound:
    """``FOR VALUES IN (...)``."""

    values: tuple[Any, ...]

    def text(self, zone: str = "UTC") -> str:
        """The bound clause as text."""
        items = ", ".join(_value_text(v) for v in self.values)
        return f"FOR VALUES IN ({items})"


@dataclass(frozen=True)
class HashBound:
    """``FOR VALUES WITH (MODULUS m, REMAINDER r)``."""

    modulus: int
    remainder: int

    def text(self, zone: str = "UTC") -> str:
        """The bound clause as text."""
        return f"FOR VALUES WITH (MODULUS {self.modulus}, REMAINDER {self.remainder})"


@dataclass(frozen=True)
class DefaultBound:
    """``DEFAULT``."""

    def text(self, zone: str = "UTC") -> str:
        """The bound clause as text."""
        return "DEFAULT"


Bound = RangeBound | ListBound | HashBound | DefaultBound


@dataclass(frozen=True)
class Operation:
    """One step of a plan: what it does to which table, and why.

    A subclass names its ``kind`` (the name in ``to_dict`` and ``describe``)
    as a class keyword: ``class DropPartition(OwnedOperation, kind="drop_detached")``.
    """

    kind: ClassVar[str] = "operation"
    parent: Name
    partition: Name
    reason: str

    def __init_subclass__(cls, kind: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = kind

    def describe(self) -> str:
        """One readable line."""
        return f"{self.kind.replace('_', ' ')} {self.partition} ({self.reason})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {
            "kind": self.kind,
            "parent": str(self.parent),
            "partition": str(self.partition),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class CreatePartition(Operation, kind="create_partition"):
    """Create a table like the parent and attach it with ``bound`` (recorded as owned)."""

    bound: Bound = field(default_factory=DefaultBound)
    zone: str = "UTC"
    tablespace: str | None = None
    storage_parameters: tuple[tuple[str, Any], ...] = ()

    def describe(self) -> str:
        return f"create {self.partition} {self.bound.text(self.zone)} ({self.reason})"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "bound": self.bound.text(self.zone)}


@dataclass(frozen=True)
class OwnedOperation(Operation, kind="owned_operation"):
    """An operation on a table dbopt owns: ``oid`` names it (checked with its name)."""

    oid: int = 0


@dataclass(frozen=True)
class DetachPartition(OwnedOperation, kind="detach_partition"):
    """Detach an owned partition (``CONCURRENTLY`` when no default exists); maybe drop it."""

    then_drop: bool = False

    def describe(self) -> str:
        verb = "detach and drop" if self.then_drop else "detach"
        return f"{verb} {self.partition} ({self.reason})"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "then_drop": self.then_drop}


@dataclass(frozen=True)
class DropPartition(OwnedOperation, kind="drop_detached"):
    """Drop an owned table that is already detached."""


@dataclass(frozen=True)
class FinalizeDetach(OwnedOperation, kind="finalize_detach"):
    """Finish a ``DETACH ... CONCURRENTLY`` that was interrupted."""


@dataclass(frozen=True)
class AdoptPartition(Operation, kind="adopt_partition"):
    """Record an existing partition as owned, so retention may act on it."""

    bound: str = ""


@dataclass(frozen=True)
class ForgetPartition(OwnedOperation, kind="forget_partition"):
    """Remove the ownership record of a table that is gone or no longer ours."""


@dataclass(frozen=True)
class MarkDetached(OwnedOperation, kind="mark_detached"):
    """Record a detach that completed but was not recorded (an interrupted run)."""


#: The order a plan runs its operations in: first finish or record what an
#: interrupted run left, then create, detach and drop; any other kind last.
_RUN_ORDER: dict[type[Operation], int] = {
    FinalizeDetach: 0,
    MarkDetached: 1,
    ForgetPartition: 1,
    CreatePartition: 2,
    DetachPartition: 3,
    DropPartition: 4,
}


def in_run_order(ops: Iterable[Operation]) -> list[Operation]:
    """``ops`` in the order a plan runs them (stable within a kind)."""
    return sorted(ops, key=lambda op: _RUN_ORDER.get(type(op), len(_RUN_ORDER)))


@dataclass(frozen=True)
class Note(FieldsDict):
    """Something the plan does not change but the caller should know."""

    kind: str
    message: str
    partition: str | None = None
    rows: int | None = None


@dataclass(frozen=True)
class Plan:
    """The operations that bring ``parent`` to its spec, with notes; empty when converged."""

    parent: Name
    summary: str
    now: str
    operations: tuple[Operation, ...] = ()
    notes: tuple[Note, ...] = ()
    spec: Any = None

    def __len__(self) -> int:
        return len(self.operations)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations)

    @property
    def converged(self) -> bool:
        """True when there is nothing to do."""
        return not self.operations

    def describe(self) -> str:
        """The plan as readable text, one operation per line, then the notes."""
        head = f"{self.parent}: {self.summary}; now {self.now}"
        if self.converged:
            lines = [f"{head}: nothing to do"]
        else:
            lines = [f"{head}: {len(self.operations)} operation(s)"]
            lines += [f"  {i}. {op.describe()}" for i, op in enumerate(self.operations, 1)]
        lines += [f"  note: {note.message}" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data."""
        return {
            "parent": str(self.parent),
            "summary": self.summary,
            "now": self.now,
            "operations": [op.to_dict() for op in self.operations],
            "notes": [note.to_dict() for note in self.notes],
        }
