"""Price candidates without building anything: pg_stats and the current plan.

Used when hypopg is not installed and real (rolled-back) indexes were not
allowed, and for GIN candidates, which hypopg cannot simulate. For each
sequential scan in a statement's current plan it estimates what an index
scan on the candidate would cost from the column statistics (equality
columns first, then one range column; ORDER BY ... LIMIT served in index
order) and subtracts the difference. Coarse by design; the report says
which method priced each recommendation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import psycopg

from dbopt.advisor.analyze import StatementShape
from dbopt.advisor.catalog import Catalog, Column, Relation
from dbopt.advisor.evaluate import ExplainError, PlanCost, Target, explain, plan_cost
from dbopt.advisor.model import Access, IndexSpec

__all__ = ["HeuristicEvaluator", "estimate_size"]

_RANGE_SEL = 1.0 / 3.0


def estimate_size(spec: IndexSpec, rel: Relation, catalog: Catalog, fraction: float = 1.0) -> int:
    """Rough index size in bytes from row count and column widths."""
    width = 0
    for key in spec.keys:
        for col in key.columns if key.is_column else ():
            c = rel.columns.get(col)
            width += c.avg_width if c is not None and c.avg_width else 8
        if not key.is_column:
            width += 8
    for col in spec.include:
        c = rel.columns.get(col)
        width += c.avg_width if c is not None and c.avg_width else 8
    rows = max(1.0, rel.reltuples) * fraction
    per_tuple = 8 + 4 + math.ceil(width / 8) * 8
    factor = 3.0 if spec.method == "gin" else 1.0 / 0.9
    return int(8192 + rows * per_tuple * factor)


class HeuristicEvaluator:
    """Estimate plan costs with candidate indexes from statistics alone."""

    method = "heuristic"

    def __init__(self, conn: psycopg.Connection[Any], catalog: Catalog) -> None:
        self.conn = conn
        self.catalog = catalog
        self.base: dict[int, PlanCost] = {}
        self.sizes: dict[int, int] = {}
        s = catalog.settings
        self.random_page = s.get("random_page_cost", 4.0)
        self.seq_page = s.get("seq_page_cost", 1.0)
        self.cpu_tuple = s.get("cpu_tuple_cost", 0.01)
        self.cpu_index = s.get("cpu_index_tuple_cost", 0.005)
        self.cpu_op = s.get("cpu_operator_cost", 0.0025)

    def costs(
        self, config: Sequence[tuple[int, IndexSpec]], targets: Sequence[Target]
    ) -> list[PlanCost | ExplainError]:
        """Estimated cost of each target if ``config`` existed."""
        for cid, spec in config:
            if cid not in self.sizes:
                rel = self.catalog.relations[spec.table_oid]
                self.sizes[cid] = estimate_size(spec, rel, self.catalog)
        out: list[PlanCost | ExplainError] = []
        for target in targets:
            base = self.base.get(target.index)
            if base is None:
                try:
                    base = plan_cost(explain(self.conn, target), {})
                except ExplainError as exc:
                    out.append(exc)
                    continue
                self.base[target.index] = base
            out.append(self.estimate(base, target.shape, config))
        return out

    def size(self, cid: int) -> int | None:
        """Estimated size in bytes."""
        return self.sizes.get(cid)

    def close(self) -> None:
        """Nothing to release."""

    def estimate(
        self, base: PlanCost, shape: StatementShape, config: Sequence[tuple[int, IndexSpec]]
    ) -> PlanCost:
        """``base`` with each sequential scan replaced by the best candidate's scan."""
        for cid, spec in config:
            if cid not in self.sizes:
                rel = self.catalog.relations[spec.table_oid]
                self.sizes[cid] = estimate_size(spec, rel, self.catalog)
        top = base.plan[0]["Plan"]
        best_at: dict[int, tuple[float, int]] = {}  # replaced plan node -> (saving, candidate)
        for node, parents, loops in _scans(top, [], 1.0):
            leaf = self._relation(node, shape)
            if leaf is None:
                continue
            root = self.catalog.root(leaf)
            accesses = [a for a in shape.accesses if self.catalog.root(a.relation) is root]
            for cid, spec in config:
                if spec.table_oid != root.oid:
                    continue
                for access in accesses:
                    est = self._saving(spec, access, node, parents, leaf, root)
                    if est is None or est[1] <= 0:
                        continue
                    key, saving = est[0], est[1] * loops
                    if key not in best_at or saving > best_at[key][0]:
                        best_at[key] = (saving, cid)
        total = float(top["Total Cost"])
        saving = sum(s for s, _ in best_at.values())
        used = frozenset(c for _, c in best_at.values())
        return PlanCost(max(total - saving, total * 0.001), used, base.plan)

    def _relation(self, node: dict[str, Any], shape: StatementShape) -> Relation | None:
        name = node.get("Relation Name")
        for access in shape.accesses:
            for rel in [access.relation, *self._leaf_relations(access.relation)]:
                if rel.name == name:
                    return rel
        return None

    def _leaf_relations(self, rel: Relation) -> list[Relation]:
        return self.catalog.leaves(rel) if rel.children else []

    def _saving(
        self,
        spec: IndexSpec,
        access: Access,
        node: dict[str, Any],
        parents: list[dict[str, Any]],
        leaf: Relation,
        root: Relation,
    ) -> tuple[int, float] | None:
        """(id of the plan node replaced, cost saved) if ``spec`` can serve ``node``."""
        if spec.predicate and spec.predicate not in {p.text for p in access.partial}:
            return None
        rows_total = max(1.0, leaf.reltuples or float(node.get("Plan Rows", 1)))
        pages = max(1.0, float(leaf.relpages))
        node_cost = float(node["Total Cost"])
        node_rows = max(1.0, float(node.get("Plan Rows", 1)))
        key = id(node)
        gather = parents[0] if parents else None
        if gather is not None and gather.get("Node Type") in ("Gather", "Gather Merge"):
            node_cost = float(gather["Total Cost"])
            node_rows = max(1.0, float(gather.get("Plan Rows", 1)))
            parents = parents[1:]
            key = id(gather)
        if spec.method == "gin":
            col = spec.keys[0].columns[0]
            if col not in {c for c, _ in access.gin} and col not in access.trigram:
                return None
            return key, node_cost - self._fetch_cost(node_rows, pages, rows_total, 2.0)
        sel, matched, ordered_from = self._match(spec, access, root)
        if matched and ordered_from is None:
            preds = {k.ident for k in [*access.eq, *access.ranges]}
            keys = {k.ident for k in spec.keys[:matched]}
            if preds and preds <= keys:
                sel = node_rows / rows_total  # the planner's own estimate of all the filters
            return key, node_cost - self._fetch_cost(rows_total * sel, pages, rows_total, 1.0)
        if ordered_from is not None and access.limited and parents:
            limit = next((p for p in parents if p.get("Node Type") == "Limit"), None)
            if limit is None:
                return None
            want = max(1.0, float(limit.get("Plan Rows", 1)))
            scanned = node_rows if spec.predicate else rows_total * sel
            fetched = min(scanned, want * scanned / node_rows)
            new = self._fetch_cost(fetched, pages, rows_total, 1.0, random=True)
            return id(limit), float(limit["Total Cost"]) - new
        return None

    def _match(
        self, spec: IndexSpec, access: Access, root: Relation
    ) -> tuple[float, int, int | None]:
        eq = {k.ident for k in access.eq} | {k.ident for k in access.join}
        ranges = {k.ident for k in access.ranges}
        order = [k.ident for k in access.order or []]
        sel, matched = 1.0, 0
        for i, key in enumerate(spec.keys):
            if key.ident in eq:
                col = root.columns.get(key.columns[0]) if key.is_column else None
                sel *= self._eq_sel(col, root.reltuples)
                matched += 1
                continue
            if key.ident in ranges:
                sel *= _RANGE_SEL
                matched += 1
                return sel, matched, None
            if order and [k.ident for k in spec.keys[i : i + len(order)]] == order:
                return sel, matched, i
            break
        return sel, matched, None

    @staticmethod
    def _eq_sel(col: Column | None, rows: float) -> float:
        if col is None or not col.n_distinct:
            return 0.005
        distinct = col.n_distinct
        if distinct < 0:
            distinct = -distinct * max(1.0, rows)
        return 1.0 / max(1.0, distinct)

    def _fetch_cost(
        self, rows: float, pages: float, total: float, factor: float, random: bool = False
    ) -> float:
        """Cost of fetching ``rows`` of a ``pages``-page table through an index.

        Like the planner's bitmap heap scan: pages fetched by the Mackert-Lohman
        approximation, each costing between random and sequential page cost
        depending on how much of the table is read. ``random`` (an ordered
        index scan) pays a random page per row. ``factor`` scales the index part
        (GIN lookups cost more than btree descents).
        """
        rows = max(1.0, rows)
        descent = math.ceil(math.log2(total + 1)) * self.cpu_op + 3 * 50 * self.cpu_op
        index = factor * (descent + rows * (self.cpu_index + self.cpu_op))
        if random:
            heap = min(rows, pages * 4) * self.random_page
        else:
            fetched = min(pages, 2 * pages * rows / (2 * pages + rows))
            per_page = self.random_page - (self.random_page - self.seq_page) * math.sqrt(
                fetched / pages
            )
            heap = fetched * per_page
        return index + heap + rows * self.cpu_tuple


def _scans(
    node: dict[str, Any], parents: list[dict[str, Any]], loops: float
) -> list[tuple[dict[str, Any], list[dict[str, Any]], float]]:
    """Sequential scans with their ancestors (nearest first) and estimated loop count."""
    out = []
    if node.get("Node Type") == "Seq Scan":
        out.append((node, list(reversed(parents)), loops))
    children = node.get("Plans", ())
    for child in children:
        child_loops = loops
        if node.get("Node Type") == "Nested Loop" and child.get("Parent Relationship") == "Inner":
            outer = next((c for c in children if c.get("Parent Relationship") == "Outer"), None)
            child_loops = loops * max(1.0, float(outer.get("Plan Rows", 1)) if outer else 1.0)
        out.extend(_scans(child, [*parents, node], child_loops))
    return out
