"""Partition names: format a template, and learn the template of hand-made partitions.

Names only ever decide what a new partition is called; which partitions
exist, and which retention expires, is decided from bounds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from dbopt.partitions.catalog import Partition
from dbopt.partitions.errors import PartitionSpecError
from dbopt.partitions.grid import Grid
from dbopt.partitions.plan import CreatePartition, Name, Operation

if TYPE_CHECKING:
    import psycopg

__all__ = ["MAX_NAME_BYTES", "format_name", "learn_template", "taken_names", "unique_names"]

#: PostgreSQL truncates identifiers longer than this (NAMEDATALEN - 1).
MAX_NAME_BYTES = 63


def format_name(template: str, parent: str, fields: Mapping[str, object]) -> str:
    """``template`` filled in; raises PartitionSpecError when it cannot be or is too long."""
    try:
        name = template.format(parent=parent, **fields)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        raise PartitionSpecError(f"naming template {template!r} does not fit: {exc}") from exc
    if not name or len(name.encode()) > MAX_NAME_BYTES:
        raise PartitionSpecError(
            f"partition name {name!r} from {template!r} is empty or longer than"
            f" {MAX_NAME_BYTES} bytes; give a shorter naming template"
        )
    return name


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _candidates(name: str, parent: str, fields: Mapping[str, object]) -> list[str]:
    """Templates that would produce ``name`` for a range described by ``fields``."""
    start = fields["start"]
    if isinstance(start, int):
        tokens = [(str(start), "{start}")]
    else:
        if not isinstance(start, (date, datetime)):
            return []
        tokens = [
            (f"{start.year:04d}", "{start:%Y}"),
            (f"{start.month:02d}", "{start:%m}"),
            (str(fields["mon"]), "{mon}"),
            (f"{start.day:02d}", "{start:%d}"),
        ]
        if isinstance(start, datetime):
            tokens.append((f"{start.hour:02d}", "{start:%H}"))
        tokens += [
            (f"{fields['week']:02d}", "{week:02d}"),
            (str(fields["quarter"]), "{quarter}"),
        ]
    body, prefix = name, ""
    if name.startswith(parent):
        body, prefix = name[len(parent) :], "{parent}"
    out: list[str] = []
    # Replace tokens left to right, each after the previous one, trying each
    # token in turn (a greedy scan is enough for the usual y/m/d orders).
    template, pos = prefix, 0
    for text, field in tokens:
        at = body.find(text, pos)
        if at < 0:
            continue
        template += _escape(body[pos:at]) + field
        pos = at + len(text)
    template += _escape(body[pos:])
    out.append(template)
    if isinstance(start, (date, datetime)) and "{week:02d}" in template:
        out.append(template.replace("{start:%Y}", "{isoyear}"))
    return out


def learn_template(parent: str, partitions: Sequence[Partition], grid: Grid) -> str | None:
    """The naming template every range partition with a lower bound follows, or None."""
    ranges = [p for p in partitions if p.kind == "range" and p.parsed and p.lower is not None]
    if not ranges:
        return None
    sample = ranges[-1]
    for template in _candidates(
        sample.name,
        parent,
        grid.name_fields(sample.lower, sample.upper),  # type: ignore[arg-type]
    ):
        try:
            if all(
                format_name(template, parent, grid.name_fields(p.lower, p.upper)) == p.name  # type: ignore[arg-type]
                for p in ranges
            ):
                return template
        except PartitionSpecError:
            continue
    return None


def taken_names(conn: psycopg.Connection[Any], names: Sequence[Name]) -> psycopg.Cursor[Any]:
    """Send the query of which of ``names`` a relation has; its rows are (schema, name).

    The rows are not fetched here, so that a caller in a pipeline can send
    other queries in the same round trip.
    """
    return conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
        ([n.schema for n in names], [n.name for n in names]),
    )


def unique_names(
    conn: psycopg.Connection[Any] | None,
    ops: list[Operation],
    known: tuple[set[Name], set[Name]] | None = None,
) -> list[Operation]:
    """Give each new partition a name no relation in its schema has (``_1``, ``_2`` ...).

    ``known`` is (names checked, those of them taken) from an earlier
    ``taken_names``; when it covers every new partition no query is sent.
    """
    creates = [op for op in ops if isinstance(op, CreatePartition)]
    if not creates or conn is None:
        return ops
    planned: set[Name] = set()
    if known is not None and all(op.partition in known[0] for op in creates):
        taken = known[1]
    else:
        rows = taken_names(conn, [op.partition for op in creates]).fetchall()
        taken = {Name(r[0], r[1]) for r in rows}
    out: list[Operation] = []
    for op in ops:
        if not isinstance(op, CreatePartition):
            out.append(op)
            continue
        name, n = op.partition, 0
        while name in taken or name in planned or (n and _exists(conn, name)):
            n += 1
            name = Name(op.partition.schema, f"{op.partition.name[: 62 - len(str(n))]}_{n}")
        planned.add(name)
        out.append(replace(op, partition=name) if n else op)
    return out


def _exists(conn: psycopg.Connection[Any], name: Name) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s",
        (name.schema, name.name),
    ).fetchone()
    return row is not None
