"""Findings on the indexes that exist: duplicates, prefix-covered, unused, invalid, missing on FKs.

Codes: ``IDX001`` duplicate, ``IDX002`` covered by a wider index's leading
columns, ``IDX003`` unused since the statistics were reset, ``IDX004``
invalid (a failed ``CREATE INDEX CONCURRENTLY``), ``IDX005`` foreign key
without an index on its columns. An index that enforces a constraint
(primary key, unique, exclusion) is never proposed for dropping, nor is the
only index serving a foreign key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pglast
from pglast import ast, enums

from dbopt.advisor.catalog import Catalog, ExistingIndex
from dbopt.advisor.ddl import create_statements, drop_statements, index_name, qualified
from dbopt.advisor.model import IndexSpec, KeyElem
from dbopt.advisor.sqltree import deparse, is_node, normalize_predicate, strip_casts
from dbopt.findings import Finding, Severity

__all__ = [
    "ExistingOptions",
    "existing_findings",
    "existing_specs",
    "normalize_predicate",
    "parse_index",
]


@dataclass(frozen=True)
class ExistingOptions:
    """Thresholds for the findings on existing indexes.

    ``min_stats_age_s``: an index counts as unused only when the statistics
    cover at least this long (default 7 days); ``max_scans``: scans at or
    below this count are "unused".
    """

    min_stats_age_s: float = 7 * 24 * 3600
    max_scans: int = 0


def parse_index(index: ExistingIndex) -> IndexSpec | None:
    """The :class:`IndexSpec` of an existing index (None if it cannot be parsed)."""
    try:
        stmt: Any = pglast.parse_sql(index.definition)[0].stmt
    except (pglast.parser.ParseError, IndexError):
        return None
    keys = []
    for elem in stmt.indexParams or ():
        desc = elem.ordering == enums.SortByDir.SORTBY_DESC
        nulls = None
        if elem.nulls_ordering == enums.SortByNulls.SORTBY_NULLS_FIRST:
            nulls = True
        elif elem.nulls_ordering == enums.SortByNulls.SORTBY_NULLS_LAST:
            nulls = False
        opclass = ".".join(s.sval for s in elem.opclass) if elem.opclass else None
        if elem.name is not None:
            key = KeyElem.column(elem.name, opclass)
        else:
            cols = tuple(sorted({r.fields[-1].sval for r in _column_refs(elem.expr) if r.fields}))
            key = KeyElem(deparse(elem.expr), cols, False, opclass=opclass)
        keys.append(key.ordered(desc, nulls))
    include = tuple(e.name for e in stmt.indexIncludingParams or () if e.name)
    predicate = deparse(strip_casts(stmt.whereClause)) if stmt.whereClause is not None else None
    pred_cols = (
        tuple(sorted({r.fields[-1].sval for r in _column_refs(stmt.whereClause)}))
        if stmt.whereClause is not None
        else ()
    )
    return IndexSpec(
        index.table_oid, stmt.accessMethod or "btree", tuple(keys), include, predicate, pred_cols
    )


def _column_refs(node: Any) -> list[Any]:
    out: list[Any] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if is_node(n, ast.ColumnRef):
            out.append(n)
        elif is_node(n, ast.Node):
            for name in getattr(type(n), "__slots__", ()):
                value = getattr(n, name, None)
                stack.extend(value if isinstance(value, tuple) else [value])
    return [r for r in out if isinstance(getattr(r.fields[-1], "sval", None), str)]


def existing_specs(catalog: Catalog) -> dict[int, IndexSpec]:
    """Parsed specs of every existing index, by index oid."""
    out = {}
    for index in catalog.indexes:
        spec = parse_index(index)
        if spec is not None:
            out[index.oid] = spec
    return out


def _scans(index: ExistingIndex, catalog: Catalog) -> int:
    if not index.partitioned:
        return index.scans
    return sum(
        _scans(child, catalog) for child in catalog.indexes if child.parent_index == index.oid
    )


def _protects_fk(index: ExistingIndex, specs: dict[int, IndexSpec], catalog: Catalog) -> bool:
    """True if ``index`` is the only valid index whose leading columns serve a foreign key."""
    spec = specs.get(index.oid)
    if spec is None:
        return False
    for fk in catalog.foreign_keys:
        if fk.table_oid != index.table_oid or not _serves_fk(spec, fk.columns):
            continue
        others = [
            i
            for i in catalog.indexes_on(index.table_oid)
            if i.oid != index.oid
            and i.valid
            and i.oid in specs
            and _serves_fk(specs[i.oid], fk.columns)
        ]
        if not others:
            return True
    return False


def _serves_fk(spec: IndexSpec, columns: Iterable[str]) -> bool:
    cols = set(columns)
    lead = spec.keys[: len(cols)]
    return (
        spec.method == "btree"
        and spec.predicate is None
        and len(lead) == len(cols)
        and all(k.is_column for k in lead)
        and {k.columns[0] for k in lead} == cols
    )


def _droppable(index: ExistingIndex) -> bool:
    return not (index.primary or index.unique or index.constraint or index.parent_index)


def existing_findings(catalog: Catalog, options: ExistingOptions) -> list[Finding]:
    """Every finding on the indexes of ``catalog``, in a stable order."""
    specs = existing_specs(catalog)
    findings: list[Finding] = []
    reported: set[int] = set()
    by_table: dict[int, list[ExistingIndex]] = {}
    for index in catalog.indexes:
        by_table.setdefault(index.table_oid, []).append(index)
    for oid, indexes in sorted(by_table.items()):
        rel = catalog.relations.get(oid)
        if rel is None:
            continue
        valid = [i for i in indexes if i.valid and i.oid in specs and i.parent_index is None]
        for a in valid:
            for b in valid:
                if a.oid == b.oid or a.oid in reported or b.oid in reported:
                    continue
                if not _droppable(a) or specs[a.oid].identity != specs[b.oid].identity:
                    continue
                if not _droppable(b) or a.name > b.name:
                    reported.add(a.oid)
                    findings.append(_drop_finding("IDX001", a, b, rel.kind, "duplicates"))
        for a in valid:
            for b in valid:
                if a.oid == b.oid or a.oid in reported or b.oid in reported:
                    continue
                sa, sb = specs[a.oid], specs[b.oid]
                if (
                    _droppable(a)
                    and sa.predicate == sb.predicate
                    and len(sa.keys) < len(sb.keys)
                    and sb.covers(sa)
                ):
                    reported.add(a.oid)
                    findings.append(_drop_finding("IDX002", a, b, rel.kind, "is covered by"))
        age = catalog.stats_age_s
        old_enough = age is None or age >= options.min_stats_age_s
        for index in valid:
            if index.oid in reported or not _droppable(index) or not old_enough:
                continue
            scans = _scans(index, catalog)
            if scans > options.max_scans or _protects_fk(index, specs, catalog):
                continue
            reported.add(index.oid)
            since = (
                f"since the statistics were reset {age / 86400:.0f} days ago"
                if age is not None
                else "since statistics began"
            )
            findings.append(
                Finding(
                    "IDX003",
                    Severity.WARNING,
                    qualified(index.schema, index.name),
                    f"index {index.name} on {rel.qualified} was scanned {scans} times {since}",
                    "An unused index costs disk, cache and write time on every insert and "
                    "non-HOT update. Check replicas before dropping: their scans are not "
                    "counted here.",
                    drop_statements(rel, index.name)[0] + ";",
                    {"scans": scans, "size_bytes": index.size_bytes, "stats_age_s": age},
                )
            )
        for index in indexes:
            if index.valid or index.parent_index is not None:
                continue
            findings.append(
                Finding(
                    "IDX004",
                    Severity.ERROR,
                    qualified(index.schema, index.name),
                    f"index {index.name} on {rel.qualified} is invalid",
                    "An invalid index (usually a failed CREATE INDEX CONCURRENTLY) is never "
                    "used for reads but is still maintained on writes.",
                    ";\n".join(
                        [*drop_statements(rel, index.name), _recreate(index.definition, rel.kind)]
                    )
                    + ";",
                    {"size_bytes": index.size_bytes},
                )
            )
    findings.extend(_unindexed_fks(catalog, specs))
    return findings


def _recreate(definition: str, kind: str) -> str:
    if kind == "p":
        return definition
    return definition.replace("CREATE INDEX ", "CREATE INDEX CONCURRENTLY ", 1).replace(
        "CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX CONCURRENTLY ", 1
    )


def _drop_finding(
    code: str, index: ExistingIndex, other: ExistingIndex, kind: str, verb: str
) -> Finding:
    rel_name = qualified(index.schema, index.name)
    return Finding(
        code,
        Severity.WARNING,
        rel_name,
        f"index {index.name} {verb} {other.name}",
        f"{other.name} serves every scan {index.name} serves; the extra index only costs "
        "disk, cache and write time.",
        f"DROP INDEX {'CONCURRENTLY ' if kind != 'p' else ''}IF EXISTS {rel_name};",
        {"index": index.definition, "kept": other.definition, "size_bytes": index.size_bytes},
    )


def _unindexed_fks(catalog: Catalog, specs: dict[int, IndexSpec]) -> list[Finding]:
    out = []
    for fk in catalog.foreign_keys:
        rel = catalog.relations.get(fk.table_oid)
        if rel is None or not rel.is_table:
            continue
        served = any(
            i.valid and i.oid in specs and _serves_fk(specs[i.oid], fk.columns)
            for i in catalog.indexes_on(fk.table_oid)
        )
        if served:
            continue
        spec = IndexSpec(rel.oid, "btree", tuple(KeyElem.column(c) for c in fk.columns))
        taken = {i.name for i in catalog.indexes}
        name = index_name(spec, rel, taken)
        ref = catalog.relations.get(fk.ref_oid)
        out.append(
            Finding(
                "IDX005",
                Severity.WARNING,
                qualified(rel.schema, rel.name),
                f"foreign key {fk.name} ({', '.join(fk.columns)}) on {rel.qualified} has no index",
                "Every DELETE or key UPDATE on "
                f"{ref.qualified if ref else 'the referenced table'} scans this table to "
                "check the constraint, and joins on the key cannot use an index.",
                ";\n".join(create_statements(spec, rel, name, catalog)) + ";",
                {"constraint": fk.name, "columns": list(fk.columns)},
            )
        )
    return out
