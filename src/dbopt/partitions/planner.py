"""Build a ``Plan``: compare a spec with the catalog and ownership records. Issues no DDL.

The few queries it runs are reads: rows of the default partition that would
conflict with a new range, names already taken, the current maximum of an
integer key, and the tables behind ownership records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from psycopg import sql

from dbopt.partitions import ranges as rng
from dbopt.partitions.catalog import PartitionedTable
from dbopt.partitions.errors import PartitionSpecError
from dbopt.partitions.grid import Grid, Value
from dbopt.partitions.naming import format_name, taken_names, unique_names
from dbopt.partitions.ownership import is_owned, reconcile
from dbopt.partitions.plan import (
    Bound,
    CreatePartition,
    DefaultBound,
    DetachPartition,
    HashBound,
    ListBound,
    Name,
    Note,
    Operation,
    Plan,
    RangeBound,
    in_run_order,
    literal_text,
)
from dbopt.partitions.rows import (
    DEFAULT_ROWS_CAP,
    collect_conflicts,
    count_rows,
    default_conflicts,
    fetch_count,
    send_conflicts,
    send_count,
)
from dbopt.partitions.spec import PartitionSpec
from dbopt.partitions.state import Owned

if TYPE_CHECKING:
    import psycopg

__all__ = ["build_plan"]


@dataclass
class _Draft:
    """What the planner plans against, and the operations and notes it collects."""

    conn: psycopg.Connection[Any] | None
    spec: PartitionSpec
    table: PartitionedTable
    learned: str | None  # the naming learned from the existing partitions
    name: str  # new partitions are named after it
    ops: list[Operation] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    checked: set[Name] = field(default_factory=set)  # names whose existence was read
    taken: set[Name] = field(default_factory=set)  # those of them a relation has
    default_rows: int | None = None  # the default partition's rows, when already counted
    default_empty: bool = False  # known to hold no row
    free: bool = False  # new names taken as free (not asked)

    def create(self, name: str, why: str, bound: Bound) -> CreatePartition:
        """A new partition ``name`` in the table's schema, with the spec's placement."""
        spec = self.spec
        return CreatePartition(
            Name(self.table.schema, self.table.name),
            Name(self.table.schema, name),
            why,
            bound=bound,
            zone=spec.timezone,
            tablespace=spec.tablespace,
            storage_parameters=tuple((spec.storage_parameters or {}).items()),
        )


def build_plan(
    conn: psycopg.Connection[Any] | None,
    spec: PartitionSpec,
    table: PartitionedTable,
    owned: dict[int, Owned],
    *,
    learned: str | None,
    now: datetime | int | None,
    name_as: str | None = None,
    default_empty: bool = False,
    names_free: bool = False,
) -> Plan:
    """The plan that brings ``table`` to ``spec`` at ``now`` (default: the current time).

    ``conn`` None plans without a database (offline migrations): ``table``
    must then be empty of partitions, as a table about to be created is.

    ``name_as`` is the parent name new partitions are named after (default:
    the table's own; a conversion names them after the table they replace).

    ``default_empty``: the default partition is known to hold no row (no
    query counts its rows or conflicts). ``names_free``: new partitions'
    names are taken as free without asking (for a caller that falls back to
    a full plan when a name turns out taken).
    """
    if table.strategy != spec.strategy:
        raise PartitionSpecError(
            f"{table.qualified} is partitioned by {table.strategy}, the spec says {spec.strategy}"
        )
    if table.key != spec.key:
        raise PartitionSpecError(
            f"{table.qualified} is partitioned on {table.key_definition}, the spec says {spec.key}"
        )
    parent = Name(table.schema, table.name)
    wall = now if isinstance(now, datetime) else datetime.now(timezone.utc)
    draft = _Draft(
        conn,
        spec,
        table,
        learned,
        name_as or table.name,
        default_empty=default_empty,
        free=names_free,
    )
    reconciled, notes = reconcile(conn, spec, table, owned, wall)
    draft.ops += reconciled
    draft.notes += notes
    if spec.strategy == "range":
        shown = _plan_range(draft, owned, now)
    elif spec.strategy == "list":
        shown = literal_text(wall, spec.timezone)
        _plan_list(draft)
    else:
        shown = literal_text(wall, spec.timezone)
        _plan_hash(draft)
    _plan_default(draft)
    ops = in_run_order(draft.ops)
    if names_free:
        draft.checked.update(op.partition for op in ops if isinstance(op, CreatePartition))
    return Plan(
        parent,
        _summary(spec),
        shown,
        tuple(unique_names(conn, ops, (draft.checked, draft.taken))),
        tuple(draft.notes),
    )


def _summary(spec: PartitionSpec) -> str:
    if spec.strategy == "list":
        return f"list on {spec.key}, {len(spec.values or {})} value sets"
    if spec.strategy == "hash":
        return f"hash on {spec.key}, modulus {spec.modulus}"
    step = f"{spec.interval} in {spec.timezone}" if spec.interval else f"width {spec.width}"
    keep = (
        f"retention {spec.retention}"
        if spec.retention is not None
        else f"retention {spec.retention_count} partitions"
        if spec.retention_count
        else "no retention"
    )
    return f"range on {spec.key} ({step}), premake {spec.premake}, {keep} ({spec.retention_mode})"


def _key_now(
    conn: psycopg.Connection[Any] | None,
    spec: PartitionSpec,
    table: PartitionedTable,
    grid: Grid,
    now: datetime | int | None,
) -> Value:
    if grid.kind != "integer":
        return grid.key_value(now if now is not None else datetime.now(timezone.utc))
    if now is not None:
        return grid.key_value(now)
    if conn is None:
        return int(spec.start) if isinstance(spec.start, int) else 0
    row = conn.execute(
        sql.SQL("SELECT max({}) FROM {}").format(
            sql.Identifier(table.key), sql.Identifier(table.schema, table.name)
        )
    ).fetchone()
    if row and row[0] is not None:
        return int(row[0])
    return int(spec.start) if isinstance(spec.start, int) else 0


def _plan_range(draft: _Draft, owned: dict[int, Owned], now: datetime | int | None) -> str:
    conn, spec, table = draft.conn, draft.spec, draft.table
    if table.key_kind is None:
        raise PartitionSpecError(
            f"{table.qualified} is partitioned on {table.key_definition}; range plans need one"
            " column of type timestamptz, timestamp, date or an integer"
        )
    grid = spec.grid(table.key_kind)
    at = _key_now(conn, spec, table, grid, now)
    current: Any = grid.floor(at)
    end = grid.shift(current, spec.premake + 1)
    existing = table.ranges()
    first: Any = current
    if spec.start is not None:
        first = grid.floor(grid.key_value(spec.start))
    else:
        # Continue from the newest partition when maintenance fell behind.
        uppers: list[Any] = [p.upper for p in existing if p.upper is not None]
        if uppers and max(uppers) < current:
            first = grid.floor(max(uppers))
    cutoff = grid.minus(at, spec.age) if spec.age is not None else None
    if cutoff is not None:
        first = max(first, grid.floor(cutoff))
    if spec.retention_count:
        first = max(first, grid.shift(current, 1 - spec.retention_count))
    pieces = rng.uncovered(rng.desired_ranges(grid, first, end), existing)
    template = spec.naming_for(spec.interval or "integer", draft.learned)
    creates = []
    after_current: Any = grid.shift(current, 1)
    for piece in pieces:
        if piece.lower >= after_current:
            why = "premake: ahead of the current range"
        elif piece.upper > current:
            why = (
                "holds the current time" if grid.kind != "integer" else "holds the current maximum"
            )
        else:
            why = "backfill from start" if spec.start is not None else "catching up to now"
        if not piece.aligned:
            why += "; clipped to the existing partitions around it"
        name = format_name(template, draft.name, grid.name_fields(piece.lower, piece.upper))
        creates.append(draft.create(name, why, RangeBound(piece.lower, piece.upper)))
    _add_creates(draft, creates)
    planned = [
        op.bound.lower
        for op in creates
        if isinstance(op.bound, RangeBound) and op.bound.lower is not None
    ]
    for part in rng.expired(
        existing, now=at, cutoff=cutoff, keep=spec.retention_count, planned=planned
    ):
        if part.detach_pending:
            continue
        if cutoff is not None:
            why = (
                f"past retention: ends {literal_text(part.upper, spec.timezone)},"
                f" cutoff {literal_text(cutoff, spec.timezone)}"
            )
        else:
            why = f"past retention: older than the {spec.retention_count} most recent ranges"
        if not is_owned(part, owned):
            draft.notes.append(
                Note(
                    "not_owned",
                    f"{part.qualified} is {why} but was not created or adopted"
                    " by dbopt; left attached",
                    part.qualified,
                )
            )
            continue
        draft.ops.append(
            DetachPartition(
                Name(table.schema, table.name),
                Name(part.schema, part.name),
                why,
                oid=part.oid,
                then_drop=spec.retention_mode == "drop",
            )
        )
    return literal_text(at, spec.timezone)


def _plan_list(draft: _Draft) -> None:
    spec = draft.spec
    existing = [p for p in draft.table.partitions if p.kind == "list"]
    template = spec.naming_for("list", draft.learned)
    creates = []
    for label, values in (spec.values or {}).items():
        wanted = {_as_text(v) for v in values}
        if any(set(p.values) == wanted for p in existing):
            continue
        clash = [p.qualified for p in existing if wanted & set(p.values)]
        if clash:
            draft.notes.append(
                Note(
                    "list_conflict",
                    f"values of {label!r} are split across {', '.join(clash)}; not created",
                    clash[0],
                )
            )
            continue
        name = format_name(template, draft.name, {"label": label})
        creates.append(draft.create(name, f"list values for {label!r}", ListBound(tuple(values))))
    _add_creates(draft, creates)


def _plan_hash(draft: _Draft) -> None:
    spec = draft.spec
    existing = [p for p in draft.table.partitions if p.kind == "hash"]
    other = sorted({p.modulus for p in existing if p.modulus and p.modulus != spec.modulus})
    if other:
        draft.notes.append(
            Note(
                "hash_modulus",
                f"existing hash partitions use modulus {other};"
                f" the spec says {spec.modulus}; nothing created (re-partitioning is manual)",
            )
        )
        return
    have = {p.remainder for p in existing if p.remainder is not None}
    template = spec.naming_for("hash", draft.learned)
    modulus = spec.modulus or 1
    for remainder in range(modulus):
        if remainder in have:
            continue
        name = format_name(template, draft.name, {"remainder": remainder})
        why = f"hash remainder {remainder} of {spec.modulus}"
        draft.ops.append(draft.create(name, why, HashBound(modulus, remainder)))


def _plan_default(draft: _Draft) -> None:
    conn, spec, default = draft.conn, draft.spec, draft.table.default
    if default is None:
        if spec.has_default:
            name = format_name(spec.naming_for("default"), draft.name, {})
            why = "the spec asks for a default partition"
            draft.ops.append(draft.create(name, why, DefaultBound()))
        return
    if not spec.has_default:
        draft.notes.append(
            Note(
                "default_kept",
                f"{default.qualified} exists though the spec asks for no default"
                " partition; left in place",
                default.qualified,
            )
        )
    count = draft.default_rows
    if count is None:
        count = 0 if conn is None or draft.default_empty else count_rows(conn, default)
    if count:
        more = "+" if count >= DEFAULT_ROWS_CAP else ""
        draft.notes.append(
            Note(
                "default_rows",
                f"{count}{more} rows sit in the default partition"
                f" {default.qualified}; drain_default() moves them",
                default.qualified,
                count,
            )
        )


def _add_creates(draft: _Draft, creates: list[CreatePartition]) -> None:
    conn, spec, table = draft.conn, draft.spec, draft.table
    if conn is None or not creates:
        conflicts = default_conflicts(conn, table, [op.bound for op in creates], spec.timezone)
    elif draft.free and (draft.default_empty or table.default is None):
        conflicts = [0] * len(creates)  # nothing to ask
    elif draft.default_empty or table.default is None:
        found = taken_names(conn, [op.partition for op in creates]).fetchall()
        conflicts = [0] * len(creates)
        draft.checked.update(op.partition for op in creates)
        draft.taken.update(Name(str(r[0]), str(r[1])) for r in found)
    else:
        # One round trip: which names are taken (for unique_names) rides with the
        # default partition's conflict counts and its row count (for _plan_default).
        names = [op.partition for op in creates]
        with conn.pipeline():  # fetched after it ends: a fetch inside costs a sync more
            taken = taken_names(conn, names)
            sent = send_conflicts(conn, table, [op.bound for op in creates], spec.timezone)
            counted = None if table.default is None else send_count(conn, table.default)
        conflicts = collect_conflicts(sent, len(creates))
        if counted is not None:
            draft.default_rows = fetch_count(counted)
        found = taken.fetchall()
        draft.checked.update(names)
        draft.taken.update(Name(str(r[0]), str(r[1])) for r in found)
    for op, rows in zip(creates, conflicts, strict=True):
        if rows:
            draft.notes.append(
                Note(
                    "default_conflict",
                    f"{op.partition} not created: {rows} rows for"
                    f" {op.bound.text(spec.timezone)} sit in the default partition;"
                    " run drain_default()",
                    str(op.partition),
                    rows,
                )
            )
        else:
            draft.ops.append(op)


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return literal_text(value)
