"""Candidate indexes for one table access: the shapes worth pricing.

From an :class:`Access` this builds single-column indexes, multi-column ones
with equality columns first (ordered by how many statements of the workload
use them, then by position), then a range or ORDER BY / GROUP BY / join
column; DESC and mixed orders when the ORDER BY needs them; INCLUDE
variants for index-only scans; partial variants for selective constant
predicates; expression keys; GIN for jsonb/array containment and trigram GIN
for ``LIKE '%x%'``. Candidates an existing valid index already covers are
dropped by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dbopt.advisor.catalog import Catalog, Column, Relation
from dbopt.advisor.model import Access, IndexSpec, KeyElem, PartialPred
from dbopt.postgres.render import ident

__all__ = ["CandidateOptions", "candidates_for", "selectivity"]

_NO_BTREE = frozenset({"json", "xml", "point", "polygon", "box", "circle", "line", "lseg", "path"})


@dataclass(frozen=True)
class CandidateOptions:
    """Limits on the candidates generated per table access.

    INCLUDE variants (for index-only scans) take at most ``max_include``
    columns, each known from pg_stats to average at most
    ``max_include_width`` bytes, and only on tables of at least
    ``include_min_pages`` 8 kB pages (10 MB): on a small table an index-only
    scan saves next to nothing and a plain index is within noise. Partial
    variants for ``col = 'value'`` likewise (Pagila's 1,000 films: ``film
    (length) WHERE rating = 'PG-13'`` measured 0.055 ms, the plain ``film
    (rating, length)`` 0.052 ms); ``IS NULL`` and boolean ones stay.
    """

    max_columns: int = 4
    max_include: int = 3
    max_include_width: int = 32
    partial_max_selectivity: float = 0.5
    gin: bool = True
    include_min_pages: int = 1280


def candidates_for(
    access: Access,
    catalog: Catalog,
    frequency: dict[tuple[int, tuple[str, str | None]], float],
    options: CandidateOptions,
) -> list[IndexSpec]:
    """Candidate index definitions for ``access`` (deduplicated, in a stable order)."""
    rel = catalog.root(access.relation)
    if not rel.is_table:
        return []
    cols = access.relation.columns
    out: dict[tuple[object, ...], IndexSpec] = {}
    limit = options.max_columns

    def usable(keys: Iterable[KeyElem]) -> list[KeyElem]:
        seen: list[KeyElem] = []
        for k in keys:
            if any(c in cols and cols[c].typname in _NO_BTREE for c in k.columns):
                continue
            if all(s.ident != k.ident for s in seen):
                seen.append(k)
        return seen[:limit]

    def add(
        keys: Sequence[KeyElem], include: Sequence[str] = (), pred: PartialPred | None = None
    ) -> None:
        keys = usable(keys)
        include = [c for c in include if all(c not in k.columns for k in keys)]
        if not keys:
            return
        spec = IndexSpec(
            rel.oid,
            "btree",
            tuple(keys),
            tuple(include),
            pred.text if pred else None,
            (pred.column,) if pred else (),
        )
        out.setdefault(spec.identity, spec)

    def rank(k: KeyElem) -> float:
        return -frequency.get((rel.oid, k.ident), 0.0)

    eq = sorted((k.plain() for k in access.eq), key=rank)
    joins = [k.plain() for k in access.join]
    ranges = [k.plain() for k in access.ranges]
    order = _normalize_order(access.order or [])
    group = [k.plain() for k in access.group or []]
    eq_idents = {k.ident for k in eq}

    for k in [*eq, *joins, *ranges, *(k.plain() for k in access.alternatives)]:
        add([k])
    composites: list[list[KeyElem]] = []
    if len(eq) >= 2:
        composites.append(eq)
    for r in ranges[:2]:
        if eq and r.ident not in eq_idents:
            composites.append([*eq[: limit - 1], r])
    if order:
        tail = [k for k in order if k.ident not in eq_idents]
        if tail:
            composites.append([*eq, *_normalize_order(tail)] if eq else order)
            if not eq:
                composites.append(order[:1])
    if group:
        tail = [k for k in group if k.ident not in eq_idents]
        composites.append([*eq, *tail])
    for j in joins[:2]:
        if eq and j.ident not in eq_idents:
            composites.append([*eq, j])
            composites.append([j, *eq])
        for r in ranges[:1]:
            if r.ident != j.ident:
                composites.append([j, r])
    for keys in composites:
        add(keys)
    main = [list(s.keys) for s in out.values()]
    preds = _selective(access.partial, access.relation, options.partial_max_selectivity)
    big = access.relation.relpages >= options.include_min_pages or (
        rel.relpages >= options.include_min_pages
    )
    for keys in main:
        if big:
            add(keys, _covering(keys, access, cols, options))
        for pred in preds:
            if pred.kind == "eq" and not big:
                continue  # col = 'value' on a small table: the plain (col, ...) is as fast
            rest = [k for k in keys if pred.column not in k.columns]
            if rest:
                add(rest, (), pred)
                if big:
                    add(rest, _covering(rest, access, cols, options, pred.column), pred)
    specs = list(out.values())
    if options.gin:
        specs.extend(_gin(access, rel, catalog))
    return specs


def _covering(
    keys: Sequence[KeyElem],
    access: Access,
    cols: dict[str, Column],
    options: CandidateOptions,
    skip: str | None = None,
) -> list[str]:
    """INCLUDE columns that make ``keys`` serve an index-only scan, or [] if not worth it."""
    if access.referenced is None:
        return []
    key_cols = {c for k in keys for c in k.columns}
    extra = sorted(access.referenced - key_cols - {skip})
    narrow = all(
        c in cols
        and cols[c].typname not in _NO_BTREE
        and (cols[c].avg_width or options.max_include_width + 1) <= options.max_include_width
        for c in extra
    )
    return extra if narrow and len(extra) <= options.max_include else []


def _normalize_order(keys: Sequence[KeyElem]) -> list[KeyElem]:
    """Keys as the ORDER BY wants them; all-descending (default nulls) becomes ascending.

    A backward scan serves the reverse order, so ``ORDER BY a DESC, b DESC``
    needs only ``(a, b)``; mixed directions are kept as written.
    """
    if keys and all(k.desc and k.nulls_first is None for k in keys):
        return [k.plain() for k in keys]
    return [k.ordered(k.desc, k.nulls_first) for k in keys]


def _gin(access: Access, rel: Relation, catalog: Catalog) -> list[IndexSpec]:
    specs: list[IndexSpec] = []
    for col, opclass in access.gin:
        specs.append(IndexSpec(rel.oid, "gin", (KeyElem.column(col, opclass),)))
    trgm_schema = catalog.extensions.get("pg_trgm")
    for col in access.trigram:
        if trgm_schema is None:
            break
        opclass = "gin_trgm_ops"
        if trgm_schema not in catalog.search_path:
            opclass = f"{ident(trgm_schema, force=True)}.gin_trgm_ops"
        specs.append(IndexSpec(rel.oid, "gin", (KeyElem.column(col, opclass),)))
    seen: set[tuple[object, ...]] = set()
    unique: list[IndexSpec] = []
    for s in specs:
        if s.identity not in seen:
            seen.add(s.identity)
            unique.append(s)
    return unique


def _selective(preds: list[PartialPred], rel: Relation, limit: float) -> list[PartialPred]:
    out: list[PartialPred] = []
    for pred in preds:
        sel = selectivity(pred, rel.columns.get(pred.column))
        if sel is not None and sel <= limit and all(p.text != pred.text for p in out):
            out.append(pred)
    return out


def selectivity(pred: PartialPred, col: Column | None) -> float | None:
    """Share of rows satisfying ``pred`` from pg_stats, or None without statistics."""
    if col is None or col.null_frac is None:
        return None
    if pred.kind == "null":
        return col.null_frac
    if pred.kind == "notnull":
        return 1.0 - col.null_frac
    value = {"true": "t", "false": "f"}.get(pred.kind, pred.value)
    if pred.kind == "eq" and col.typname == "bool":
        value = "t" if str(pred.value).lower() in ("true", "t", "1", "yes", "on") else "f"
    mcv, mcf = col.mcv or [], col.mcf or []
    if value in mcv:
        return mcf[mcv.index(value)]
    rest = max(0.0, 1.0 - sum(mcf) - col.null_frac)
    distinct = col.n_distinct or 0.0
    if distinct < 0:
        return None
    remaining = distinct - len(mcv)
    return rest / remaining if remaining > 0 else 0.0
