"""Indexes: duplicates, prefix-covered, unused and invalid ones."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dbopt.findings import Finding, Severity
from dbopt.lint.base import LintConfig, Rule, register_rules, table_meta
from dbopt.lint.catalog import Catalog, Index, Table
from dbopt.lint.rules.keys import covers
from dbopt.postgres.render import comment, ident, qualified

__all__ = ["IndexPlan", "Redundant", "index_plan", "keep_rank", "stats_old_enough"]


def _signature(idx: Index) -> tuple[object, ...]:
    n = idx.key_count
    return (
        idx.method,
        tuple(idx.keys),
        tuple(idx.include),
        idx.predicate,
        tuple(idx.opclasses[:n]),
        tuple(idx.collations[:n]),
        tuple(idx.options[:n]),
    )


def keep_rank(idx: Index) -> tuple[bool, bool, bool, bool, int]:
    """The order in which twins are kept: the first of a group survives.

    The index backing a primary key, then one backing another constraint, then
    one attached to the parent's partitioned index (it cannot be dropped on its
    own and follows the parent), then a unique one, then the oldest (lowest
    oid). Statistics play no part, so runs at different times (lint today, the
    advisor next week) keep the same twin and their drop advice never adds up
    to dropping both.
    """
    return (
        not idx.is_primary,
        not idx.backs_constraint,
        idx.parent is None,
        not idx.is_unique,
        idx.oid,
    )


def _drop(table: Table, idx: Index) -> str:
    name = qualified(table.schema, idx.name)
    if idx.backs_constraint:
        return (
            f"ALTER TABLE {table.sql_name} DROP CONSTRAINT {ident(idx.name)};"
            "  -- the index backs a constraint; repoint foreign keys that use it first"
        )
    if idx.partitioned:
        return f"DROP INDEX {name};  -- partitioned index: CONCURRENTLY is not allowed"
    return f"DROP INDEX CONCURRENTLY {name};"


def _describe(table: Table, idx: Index) -> str:
    cols = ", ".join(table.column_names(idx.key_columns))
    extra = " WHERE ..." if idx.predicate else ""
    unique = "UNIQUE " if idx.is_unique else ""
    return f"{unique}{idx.method} ({cols}){extra}"


def _prefix_of(a: Index, b: Index) -> bool:
    n = a.key_count
    return (
        a.method == b.method == "btree"
        and n < b.key_count
        and a.keys == b.keys[:n]
        and a.predicate == b.predicate
        and a.opclasses[:n] == b.opclasses[:n]
        and a.collations[:n] == b.collations[:n]
        and a.options[:n] == b.options[:n]
        and set(a.include) <= set(b.include) | set(b.keys)
    )


@dataclass(frozen=True)
class Redundant:
    """An index another one on the same table makes redundant (LINT004 or LINT005)."""

    table: Table
    index: Index
    kept: Index
    kind: str  # "duplicate" or "prefix"


@dataclass
class IndexPlan:
    """Which indexes of a catalog are redundant, decided once for every index rule.

    ``duplicates`` and ``covered`` map an index oid to why it can go. Every
    table is judged on its own, partitions included: an index attached to
    its parent's partitioned index is never proposed for dropping (it goes
    with its parent, whose own twin is reported on the parent), so twins on
    a partition are reported once, on that partition, and the one kept is
    the attached one when there is one.
    """

    duplicates: dict[int, Redundant] = field(default_factory=dict)
    covered: dict[int, Redundant] = field(default_factory=dict)

    def dropped(self) -> set[int]:
        """Oids of every index LINT004 or LINT005 proposes to drop."""
        return set(self.duplicates) | set(self.covered)


def index_plan(catalog: Catalog) -> IndexPlan:
    """The duplicate and prefix-covered indexes of ``catalog`` (LINT004, LINT005).

    Computed once per snapshot and shared by LINT004, LINT005 and LINT006.
    """
    cached = catalog.derived.get("index_plan")
    if isinstance(cached, IndexPlan):
        return cached
    plan = IndexPlan()
    catalog.derived["index_plan"] = plan
    for table in catalog:
        valid = [i for i in table.indexes if i.is_valid]
        groups: dict[tuple[object, ...], list[Index]] = defaultdict(list)
        for idx in valid:
            groups[_signature(idx)].append(idx)
        for group in groups.values():
            keep, *others = sorted(group, key=keep_rank)
            for idx in others:
                if idx.parent is None:  # an attached twin goes with its parent's twin
                    plan.duplicates[idx.oid] = Redundant(table, idx, keep, "duplicate")
        survivors = [i for i in valid if i.oid not in plan.duplicates]
        for a in valid:
            if a.is_unique or a.backs_constraint or a.parent is not None:
                continue  # a unique index enforces something the longer one does not
            wider = [b for b in survivors if b is not a and _prefix_of(a, b)]
            if wider:
                b = min(wider, key=lambda i: (i.key_count, keep_rank(i)))
                plan.covered[a.oid] = Redundant(table, a, b, "prefix")
    return plan


def _where(catalog: Catalog, table: Table) -> dict[str, Any]:
    parent = catalog.tables.get(table.parent or 0) if table.is_partition else None
    return {"partition_of": parent.sql_name} if parent is not None else {}


def duplicate_index(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    return _drop_findings(catalog, r, index_plan(catalog).duplicates)


def redundant_index(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    return _drop_findings(catalog, r, index_plan(catalog).covered)


def _drop_findings(catalog: Catalog, r: Rule, plan: dict[int, Redundant]) -> Iterator[Finding]:
    """A finding for each index ``plan`` drops in favour of its ``kept`` twin."""
    for red in plan.values():
        table, idx, kept = red.table, red.index, red.kept
        if red.kind == "duplicate":
            key = "duplicate_of"
            message = (
                f"index {idx.name} duplicates {kept.name} on {table.sql_name} "
                f"({_describe(table, idx)})"
            )
        else:
            key = "covered_by"
            message = (
                f"index {idx.name} ({', '.join(table.column_names(idx.key_columns))}) is "
                f"covered by {kept.name} ({', '.join(table.column_names(kept.key_columns))}) "
                f"on {table.sql_name}"
            )
        yield r.finding(
            qualified(table.schema, idx.name),
            message,
            fix=_drop(table, idx),
            **table_meta(
                table,
                index=idx.name,
                size_bytes=idx.relpages * catalog.block_size,
                **{key: kept.name},
                **_where(catalog, table),
            ),
        )


def _scans(catalog: Catalog, idx: Index, children: dict[int, list[Index]]) -> int | None:
    if not idx.partitioned:
        return idx.idx_scan
    total, seen = 0, False
    for child in children.get(idx.oid, []):
        n = _scans(catalog, child, children)
        if n is not None:
            total, seen = total + n, True
    return total if seen else None


def _pages(idx: Index, children: dict[int, list[Index]]) -> int:
    return idx.relpages + sum(_pages(c, children) for c in children.get(idx.oid, []))


def _last_fk_cover(
    catalog: Catalog,
    table: Table,
    idx: Index,
    children: dict[int, list[Index]],
    dropped: set[int],
) -> bool:
    """True when dropping ``idx`` (and the partition indexes attached to it) leaves a
    foreign key of its table, or of one of its partitions, without a covering index."""
    stack, gone = [(table, idx)], {idx.oid}
    while stack:
        tbl, index = stack.pop()
        for child in children.get(index.oid, []):
            sub = catalog.tables.get(child.relid)
            if sub is not None:
                gone.add(child.oid)
                stack.append((sub, child))
        for fk in tbl.constraints:
            # a partition's inherited foreign key needs an index on the partition too
            if fk.type != "f" or (fk.inherited and not tbl.is_partition):
                continue
            if not covers(index, fk.columns):
                continue
            others = [o for o in tbl.indexes if o.oid not in gone and o.oid not in dropped]
            if not any(covers(o, fk.columns) for o in others):
                return True
    return False


def stats_old_enough(catalog: Catalog, config: LintConfig) -> bool:
    """True when the statistics cover ``config.unused_index_min_stats_age_s``.

    Statistics never reset (no ``stats_reset``) count as old enough.
    """
    age = catalog.stats_age_s
    return age is None or age >= config.unused_index_min_stats_age_s


def unused_index(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    if not stats_old_enough(catalog, config):
        return
    children: dict[int, list[Index]] = defaultdict(list)
    for table in catalog:
        for idx in table.indexes:
            if idx.parent is not None:
                children[idx.parent].append(idx)
    plan = index_plan(catalog)
    # An index that absorbs a twin or a covered prefix also absorbs its scans.
    absorbed: dict[int, list[Index]] = defaultdict(list)
    for red in [*plan.duplicates.values(), *plan.covered.values()]:
        absorbed[red.kept.oid].append(red.index)
    dropped = plan.dropped()
    since = catalog.stats_reset.isoformat() if catalog.stats_reset else None
    for table in catalog:
        # newest first: of two unused indexes serving one foreign key, the older stays
        for idx in sorted(table.indexes, key=keep_rank, reverse=True):
            if (
                not idx.is_valid
                or idx.parent is not None
                or idx.oid in dropped
                or idx.is_unique
                or idx.backs_constraint
                or idx.is_exclusion
            ):
                continue
            counts = [_scans(catalog, i, children) for i in [idx, *absorbed[idx.oid]]]
            if counts[0] is None:
                continue
            scans = sum(c or 0 for c in counts)
            pages = _pages(idx, children)
            if scans > config.unused_index_max_scans or pages < config.unused_index_min_pages:
                continue
            if _last_fk_cover(catalog, table, idx, children, dropped):
                continue  # dropping it would re-create LINT001
            dropped.add(idx.oid)
            yield r.finding(
                f"{qualified(table.schema, idx.name)}",
                f"index {idx.name} on {table.sql_name} "
                + (f"was scanned {scans} times" if scans else "has never been scanned")
                + (f" since {since}" if since else ""),
                fix=_drop(table, idx),
                **table_meta(
                    table,
                    index=idx.name,
                    scans=scans,
                    size_bytes=pages * catalog.block_size,
                    stats_reset=since,
                    **_where(catalog, table),
                ),
            )


def invalid_index(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    for table in catalog:
        for idx in table.indexes:
            if idx.is_valid:
                continue
            name = qualified(table.schema, idx.name)
            if idx.partitioned:
                fix = comment(
                    f"attach the missing partition indexes: ALTER INDEX {name} "
                    "ATTACH PARTITION <schema>.<partition_index>;"
                )
            else:
                fix = f"REINDEX INDEX CONCURRENTLY {name};"
            yield r.finding(
                name,
                f"index {idx.name} on {table.sql_name} is invalid",
                fix=fix,
                **table_meta(table, index=idx.name, unique=idx.is_unique),
            )


register_rules(
    Rule(
        "LINT004",
        "duplicate_index",
        Severity.WARNING,
        "Two indexes have the same definition.",
        "Every write maintains both; the planner uses only one. The copy costs disk, cache and "
        "write time for nothing.",
        duplicate_index,
    ),
    Rule(
        "LINT005",
        "redundant_index",
        Severity.WARNING,
        "An index's columns are the leading columns of another index.",
        "A B-tree on (a, b) serves every lookup and ordering on (a) as well; the shorter index "
        "only adds write cost and cache pressure.",
        redundant_index,
    ),
    Rule(
        "LINT006",
        "unused_index",
        Severity.INFO,
        "An index has not been scanned since statistics were last reset.",
        "An index nobody reads still costs every INSERT and UPDATE, disk and cache. Check "
        "replicas too (their scans are counted there) and how long statistics have been "
        "collecting before dropping it.",
        unused_index,
    ),
    Rule(
        "LINT007",
        "invalid_index",
        Severity.ERROR,
        "An index is invalid (a failed CREATE INDEX CONCURRENTLY or an unattached partition "
        "index).",
        "An invalid index is never used by queries but is still maintained on every write; a "
        "unique one may or may not be enforcing uniqueness.",
        invalid_index,
    ),
)
