"""Ownership records against the catalog: what is dbopt's, and what the records need."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dbopt.partitions.catalog import Partition, PartitionedTable
from dbopt.partitions.plan import (
    DropPartition,
    FinalizeDetach,
    ForgetPartition,
    MarkDetached,
    Name,
    Note,
    OwnedOperation,
    literal_text,
)
from dbopt.partitions.spec import PartitionSpec
from dbopt.partitions.state import Owned

if TYPE_CHECKING:
    import psycopg

__all__ = ["is_owned", "reconcile"]


@dataclass
class _Draft:
    ops: list[OwnedOperation]
    notes: list[Note]


def is_owned(part: Partition, owned: dict[int, Owned]) -> bool:
    """True when ``part`` is recorded as dbopt's under its current OID and name."""
    record = owned.get(part.oid)
    return record is not None and (record.schema, record.name) == (part.schema, part.name)


def reconcile(
    conn: psycopg.Connection[Any] | None,
    spec: PartitionSpec,
    table: PartitionedTable,
    owned: dict[int, Owned],
    wall: datetime,
) -> tuple[list[OwnedOperation], list[Note]]:
    """Operations and notes that bring the ownership records in line with the catalog.

    Finishes interrupted concurrent detaches, forgets records of tables that
    are gone (or renamed, or detached by someone else), records detaches that
    completed unrecorded, reports staged drains, and drops detached tables
    whose grace is over (``detach_then_drop``).
    """
    draft = _Draft([], [])
    parent = Name(table.schema, table.name)
    attached = {p.oid: p for p in table.partitions}
    for part in table.partitions:
        if part.detach_pending:
            if is_owned(part, owned):
                draft.ops.append(
                    FinalizeDetach(
                        parent,
                        Name(part.schema, part.name),
                        "an earlier DETACH CONCURRENTLY was interrupted",
                        oid=part.oid,
                    )
                )
            else:
                draft.notes.append(
                    Note(
                        "detach_pending",
                        f"{part.qualified} is pending detach and not owned by dbopt; left as is",
                        part.qualified,
                    )
                )
    loose = [
        rec
        for oid, rec in owned.items()
        if oid not in attached or not is_owned(attached[oid], owned)
    ]
    if not loose or conn is None:
        return draft.ops, draft.notes
    found: dict[int, tuple[str, str, bool] | None] = {
        rec.oid: rec.here for rec in loose if rec.located
    }
    if len(found) < len(loose):  # records read without the catalog beside them
        rows = conn.execute(
            "SELECT c.oid, n.nspname, c.relname, c.relispartition FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY(%s)",
            ([rec.oid for rec in loose],),
        ).fetchall()
        found = {int(r[0]): (r[1], r[2], bool(r[3])) for r in rows}
    for rec in loose:
        here = found.get(rec.oid)
        target = Name(rec.schema, rec.name)
        if here is None or (here[0], here[1]) != (rec.schema, rec.name):
            draft.ops.append(
                ForgetPartition(
                    parent, target, "the table no longer exists (or was renamed)", oid=rec.oid
                )
            )
        elif here[2]:
            draft.ops.append(
                ForgetPartition(parent, target, "now a partition of another table", oid=rec.oid)
            )
        elif rec.status == "attached":
            draft.ops.append(
                ForgetPartition(
                    parent, target, "detached outside dbopt; no longer managed", oid=rec.oid
                )
            )
        elif rec.status == "staging":
            draft.notes.append(
                Note(
                    "drain_interrupted",
                    f"{target} holds rows moved out of the default partition but is not"
                    " attached yet; run drain_default() to finish",
                    str(target),
                )
            )
        elif rec.status == "detaching":
            draft.ops.append(
                MarkDetached(parent, target, "a detach finished but was not recorded", oid=rec.oid)
            )
        elif spec.retention_mode == "detach_then_drop" and rec.detached_at is not None:
            due = rec.detached_at + spec.grace
            if due <= wall:
                draft.ops.append(
                    DropPartition(
                        parent,
                        target,
                        f"detached {literal_text(rec.detached_at, spec.timezone)},"
                        f" grace {spec.grace} is over",
                        oid=rec.oid,
                    )
                )
    return draft.ops, draft.notes
