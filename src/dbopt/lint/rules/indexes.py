"""Indexes: duplicates, prefix-covered, unused and invalid ones."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from dbopt.findings import Finding
from dbopt.lint.base import LintConfig, Rule, rule, table_meta
from dbopt.lint.catalog import Catalog, Index, Table
from dbopt.lint.rules.keys import covers
from dbopt.postgres.render import comment, ident, qualified

__all__: list[str] = []


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


def _rank(idx: Index) -> tuple[int, int, int, int]:
    return (not idx.is_primary, not idx.backs_constraint, not idx.is_unique, idx.oid)


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


def _candidates(table: Table) -> list[Index]:
    return [i for i in table.indexes if i.parent is None and i.is_valid]


@rule(
    "LINT004",
    "duplicate_index",
    "warning",
    "Two indexes have the same definition.",
    "Every write maintains both; the planner uses only one. The copy costs disk, cache and "
    "write time for nothing.",
)
def duplicate_index(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    for table in catalog.top_level():
        groups: dict[tuple[object, ...], list[Index]] = defaultdict(list)
        for idx in _candidates(table):
            groups[_signature(idx)].append(idx)
        for group in groups.values():
            if len(group) < 2:
                continue
            keep, *others = sorted(group, key=_rank)
            for idx in others:
                yield r.finding(
                    f"{qualified(table.schema, idx.name)}",
                    f"index {idx.name} duplicates {keep.name} on {table.sql_name} "
                    f"({_describe(table, idx)})",
                    fix=_drop(table, idx),
                    **table_meta(
                        table,
                        index=idx.name,
                        duplicate_of=keep.name,
                        size_bytes=idx.relpages * catalog.block_size,
                    ),
                )


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


@rule(
    "LINT005",
    "redundant_index",
    "warning",
    "An index's columns are the leading columns of another index.",
    "A B-tree on (a, b) serves every lookup and ordering on (a) as well; the shorter index "
    "only adds write cost and cache pressure.",
)
def redundant_index(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    for table in catalog.top_level():
        indexes = _candidates(table)
        for a in indexes:
            if a.is_unique or a.backs_constraint:
                continue  # a unique index enforces something the longer one does not
            wider = [b for b in indexes if b is not a and _prefix_of(a, b)]
            if not wider:
                continue
            b = min(wider, key=lambda i: (i.key_count, i.oid))
            yield r.finding(
                f"{qualified(table.schema, a.name)}",
                f"index {a.name} ({', '.join(table.column_names(a.key_columns))}) is covered "
                f"by {b.name} ({', '.join(table.column_names(b.key_columns))}) on {table.sql_name}",
                fix=_drop(table, a),
                **table_meta(
                    table,
                    index=a.name,
                    covered_by=b.name,
                    size_bytes=a.relpages * catalog.block_size,
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


@rule(
    "LINT006",
    "unused_index",
    "info",
    "An index has not been scanned since statistics were last reset.",
    "An index nobody reads still costs every INSERT and UPDATE, disk and cache. Check "
    "replicas too (their scans are counted there) and how long statistics have been "
    "collecting before dropping it.",
    needs=("relations", "columns", "constraints", "indexes"),
)
def unused_index(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    children: dict[int, list[Index]] = defaultdict(list)
    for table in catalog:
        for idx in table.indexes:
            if idx.parent is not None:
                children[idx.parent].append(idx)
    since = catalog.stats_reset.isoformat() if catalog.stats_reset else None
    for table in catalog.top_level():
        fks = [c for c in table.constraints if c.type == "f" and not c.inherited]
        for idx in _candidates(table):
            if idx.is_unique or idx.backs_constraint or idx.is_exclusion:
                continue
            scans = _scans(catalog, idx, children)
            pages = _pages(idx, children)
            if scans is None or scans > 0 or pages < config.unused_index_min_pages:
                continue
            sole_fk_cover = any(
                covers(idx, fk.columns)
                and not any(covers(o, fk.columns) for o in table.indexes if o is not idx)
                for fk in fks
            )
            if sole_fk_cover:
                continue  # dropping it would re-create LINT001
            yield r.finding(
                f"{qualified(table.schema, idx.name)}",
                f"index {idx.name} on {table.sql_name} has never been scanned"
                + (f" since {since}" if since else ""),
                fix=_drop(table, idx),
                **table_meta(
                    table, index=idx.name, size_bytes=pages * catalog.block_size, stats_reset=since
                ),
            )


@rule(
    "LINT007",
    "invalid_index",
    "error",
    "An index is invalid (a failed CREATE INDEX CONCURRENTLY or an unattached partition index).",
    "An invalid index is never used by queries but is still maintained on every write; a "
    "unique one may or may not be enforcing uniqueness.",
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
