"""``CheckReport``: the health of a managed partitioned table, as data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dbopt._json import FieldsDict
from dbopt.partitions import ranges as rng
from dbopt.partitions.catalog import PartitionedTable
from dbopt.partitions.ownership import is_owned
from dbopt.partitions.plan import Plan, literal_text
from dbopt.partitions.rows import count_rows
from dbopt.partitions.spec import PartitionSpec
from dbopt.partitions.state import Owned, ParentState

if TYPE_CHECKING:
    import psycopg

__all__ = ["CheckReport", "build_report"]


@dataclass(frozen=True)
class CheckReport(FieldsDict):
    """What ``PartitionManager.check`` found.

    ``default_rows`` is exact up to 100,000 (None: no default partition);
    ``future_partitions`` counts range partitions that start after the
    current range; ``gaps`` are ``(end, next start)`` holes between range
    partitions; ``misaligned`` names range partitions whose bounds are not
    on the spec's grid (hand-made or clipped; PostgreSQL itself refuses
    overlapping partitions, so a straddling partition is how an "overlap"
    with the spec shows); ``unowned`` names partitions dbopt did not create
    or adopt; ``pending_operations`` is the length of the current plan.
    """

    table: str
    partitions: int
    default_rows: int | None
    future_partitions: int
    premake: int
    gaps: tuple[tuple[str, str], ...]
    misaligned: tuple[str, ...]
    unowned: tuple[str, ...]
    last_maintenance_at: datetime | None
    pending_operations: int
    notes: tuple[str, ...] = field(default=())
    lacking: tuple[tuple[str, str], ...] = field(default=())

    @property
    def ok(self) -> bool:
        """No default rows, enough partitions ahead, no gaps, none lacking what siblings have,
        nothing left to do."""
        return (
            not self.default_rows
            and self.future_partitions >= self.premake
            and not self.gaps
            and not self.lacking
            and self.pending_operations == 0
        )

    def describe(self) -> str:
        """Readable text."""
        status = "ok" if self.ok else "needs attention"
        last = self.last_maintenance_at.isoformat() if self.last_maintenance_at else "never"
        lines = [
            f"{self.table}: {status}",
            f"  partitions: {self.partitions}, ahead: {self.future_partitions}"
            f" (premake {self.premake})",
            f"  rows in default partition: "
            f"{'no default' if self.default_rows is None else self.default_rows}",
            f"  gaps: {', '.join(f'{a} .. {b}' for a, b in self.gaps) or 'none'}",
            f"  misaligned: {', '.join(self.misaligned) or 'none'}",
            f"  not owned by dbopt: {', '.join(self.unowned) or 'none'}",
            f"  lacking what their siblings have: "
            f"{'; '.join(f'{p}: {what}' for p, what in self.lacking) or 'none'}",
            f"  pending operations: {self.pending_operations}; last maintenance: {last}",
        ]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data, with ``ok`` after the table; ``lacking`` as objects."""
        data = super().to_dict()
        data["lacking"] = [{"partition": p, "missing": what} for p, what in self.lacking]
        return {"table": data.pop("table"), "ok": self.ok, **data}


def build_report(
    conn: psycopg.Connection[Any],
    spec: PartitionSpec,
    table: PartitionedTable,
    owned: dict[int, Owned],
    parent: ParentState | None,
    plan: Plan,
    now: datetime | int | None,
) -> CheckReport:
    """Assemble a report from what the manager read (one count of the default partition)."""
    default_rows = None if table.default is None else count_rows(conn, table.default)
    future = 0
    gaps: tuple[tuple[str, str], ...] = ()
    misaligned: tuple[str, ...] = ()
    ranges = table.ranges()
    if spec.strategy == "range" and table.key_kind is not None:
        from datetime import timezone

        grid = spec.grid(table.key_kind)
        at: Any = (
            int(plan.now)
            if grid.kind == "integer"
            else grid.key_value(now if now is not None else datetime.now(timezone.utc))
        )
        boundary: Any = grid.shift(grid.floor(at), 1)
        future = sum(1 for p in ranges if p.lower is not None and p.lower >= boundary)
        gaps = tuple(
            (literal_text(a, spec.timezone), literal_text(b, spec.timezone))
            for a, b in rng.gaps(ranges)
        )
        misaligned = tuple(
            p.qualified
            for p in ranges
            if p.lower is None
            or p.upper is None
            or grid.floor(p.lower) != p.lower
            or grid.shift(p.lower, 1) != p.upper
        )
    return CheckReport(
        table=table.qualified,
        partitions=len(table.partitions),
        default_rows=default_rows,
        future_partitions=future,
        premake=spec.premake if spec.strategy == "range" else 0,
        gaps=gaps,
        misaligned=misaligned,
        unowned=tuple(p.qualified for p in table.partitions if not is_owned(p, owned)),
        last_maintenance_at=parent.last_maintenance_at if parent else None,
        pending_operations=len(plan.operations),
        notes=tuple(n.message for n in plan.notes),
        lacking=sibling_gaps(conn, table),
    )


# Each index and foreign key of the given partitions as a signature that does not depend
# on names or attribute numbers: method, uniqueness, key columns by name (expressions and
# predicates as node trees without parse locations); foreign keys by column names and
# the referenced table and columns.
_SIGNATURES = """
SELECT c.oid AS relid, 'index' AS kind,
       am.amname || CASE WHEN i.indisunique THEN ' unique' ELSE '' END
       || ' (' || (SELECT string_agg(COALESCE(a.attname, '(expression)'), ', ' ORDER BY k.ord)
                   FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, ord)
                   LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.num
                   WHERE k.ord <= i.indnkeyatts) || ')'
       || CASE WHEN i.indpred IS NULL THEN '' ELSE ' WHERE ...' END AS what,
       regexp_replace(COALESCE(i.indexprs::text, '') || '|' || COALESCE(i.indpred::text, ''),
                      ' :(location|varattno|varattnosyn|varnosyn) -?[0-9]+', '', 'g') AS detail
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE c.oid = ANY(%(oids)s::oid[])
UNION ALL
SELECT c.oid, 'foreign key',
       '(' || (SELECT string_agg(a.attname, ', ' ORDER BY k.ord)
               FROM unnest(co.conkey) WITH ORDINALITY k(num, ord)
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.num)
       || ') -> ' || co.confrelid::regclass::text || ' ('
       || (SELECT string_agg(a.attname, ', ' ORDER BY k.ord)
           FROM unnest(co.confkey) WITH ORDINALITY k(num, ord)
           JOIN pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.num) || ')',
       ''
FROM pg_constraint co
JOIN pg_class c ON c.oid = co.conrelid
WHERE co.contype = 'f' AND c.oid = ANY(%(oids)s::oid[])
"""


def sibling_gaps(
    conn: psycopg.Connection[Any], table: PartitionedTable
) -> tuple[tuple[str, str], ...]:
    """``(partition, what)`` for each index or foreign key that at least half of the
    partitions of ``table`` have and that partition lacks.

    Indexes created on the parent reach every partition by themselves; this
    finds the ones added partition by partition (or a partition attached
    without them), which a new or re-attached partition easily misses.
    """
    parts = [p for p in table.partitions if not p.subpartitioned and not p.detach_pending]
    if len(parts) < 2:
        return ()
    by_oid = {p.oid: p for p in parts}
    held: dict[tuple[str, str, str], set[int]] = {}
    from psycopg.rows import tuple_row

    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(_SIGNATURES, {"oids": list(by_oid)})
        for relid, kind, what, detail in cur.fetchall():
            held.setdefault((kind, what, detail), set()).add(relid)
    out = []
    for (kind, what, _), have in sorted(held.items()):
        if 2 * len(have) < len(parts) or len(have) == len(parts):
            continue
        for p in parts:
            if p.oid not in have:
                out.append((p.qualified, f"{kind} {what}"))
    return tuple(sorted(set(out)))
