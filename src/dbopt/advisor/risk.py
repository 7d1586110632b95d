"""Risk-aware pricing of repeated index probes (the inner side of a nested loop).

The planner prices the heap pages a repeated index scan reads with the
Mackert-Lohman formula, assuming ``effective_cache_size`` (4 GB by default)
keeps every page read once, and spreads them over as many probes as the
outer *base* table has rows: a table that fits in that cache is charged at
most its own size, however many times its pages are read again. When the
outer table is filtered only through a join, the plan probes far fewer
times than assumed. A nested loop that probes an index on a column with low
physical correlation and many rows per key then looks cheap (TPC-H SF1,
``lineitem (l_suppkey)``: priced for 10,000 suppliers at 61 units per probe,
probed 800 times for 600 rows each) and is much slower than the hash join
it replaces (each probe reads 600 scattered heap pages; Q7 measured 4.4 s
against 2.3 s without the index), because those pages do not stay in
``shared_buffers``: they are read again, from the operating system's cache
at best.

:func:`probe_risks` re-prices each such scan of a *candidate* index: the
pages fetched over all loops by the same formula but with only
``shared_buffers`` as the cache, each page read charged ``page_cost``
(``seq_page_cost`` by default: a read that the OS cache usually serves),
for the uncorrelated share of the scan: weighted by one minus the leading
key's correlation squared, as the planner weighs an uncorrelated against a
correlated scan (the correlated share keeps the planner's price). When that is
more than the planner's cost for the probes, the difference is added to the
plan's cost, and the candidate carries the reason (see
``Rejection.reason == "probe_risk"``). Index-only scans, scans under a
``Memoize`` node and tables that fit in ``shared_buffers`` are left as the
planner prices them.

The idea is that of "robust" or regression-aware index tuning (Ding et al.,
"AI Meets AI: Leveraging Query Executions to Improve Index
Recommendations", SIGMOD 2019; the what-if validation of AutoAdmin and
Database Tuning Advisor): do not trust a plan whose cost rests on an
estimate the executor is known to miss.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from dbopt.advisor.catalog import Catalog
from dbopt.advisor.model import IndexSpec

__all__ = ["ProbeRisk", "RiskModel", "probe_risks"]

_EQ_LEAD = re.compile(r'^\(+"?(\w+)"?\)? = ')


@dataclass(frozen=True)
class ProbeRisk:
    """One repeated index scan of a candidate that the planner prices too low.

    ``loops`` probes of ``rows`` heap rows each on ``table``, whose leading
    key has physical ``correlation``; ``pages`` heap page reads charged in
    all (``charged`` planner units) against ``planner`` units for the probes
    in the plan. ``extra`` is what the plan's cost was raised by.
    """

    candidate: int
    table: str
    loops: float
    rows: float
    correlation: float
    pages: float
    planner: float
    charged: float

    @property
    def extra(self) -> float:
        """Planner units added to the plan's cost."""
        return max(0.0, self.charged - self.planner)

    def describe(self) -> str:
        """One line for the report."""
        return (
            f"{self.loops:,.0f} nested-loop probes of ~{self.rows:,.0f} rows on {self.table} "
            f"(correlation {round(self.correlation, 2) + 0.0:.2f}): ~{self.pages:,.0f} heap page "
            "reads, "
            f"priced {self.charged:,.0f} instead of the planner's {self.planner:,.0f}"
        )


def cache_pages(reads: float, table_pages: float, cache: float) -> float:
    """Pages fetched by ``reads`` random tuple reads of a table (Mackert-Lohman).

    As PostgreSQL's ``index_pages_fetched``, with ``cache`` pages of cache.
    """
    t = max(1.0, table_pages)
    b = max(1.0, cache)
    if reads <= 0:
        return 0.0
    if t <= b:
        return min(2.0 * t * reads / (2.0 * t + reads), t)
    limit = 2.0 * t * b / (2.0 * t - b)
    if reads <= limit:
        return 2.0 * t * reads / (2.0 * t + reads)
    return b + (reads - limit) * (t - b) / t


@dataclass(frozen=True)
class RiskModel:
    """What :func:`probe_risks` needs: the catalog and the cache and page cost."""

    catalog: Catalog
    cache_pages: float  # shared_buffers, in 8 kB pages
    page_cost: float

    @classmethod
    def of(
        cls, catalog: Catalog, page_cost: float | None = None, cache_bytes: int | None = None
    ) -> RiskModel:
        """From the server's settings (``shared_buffers``, ``seq_page_cost``) unless given."""
        s = catalog.settings
        cost = s.get("seq_page_cost", 1.0) if page_cost is None else page_cost
        cache = s.get("shared_buffers", 16384.0) if cache_bytes is None else cache_bytes / 8192
        return cls(catalog, max(1.0, cache), cost)


def probe_risks(
    model: RiskModel, plan: Any, names: Mapping[str, int], specs: Mapping[int, IndexSpec]
) -> list[ProbeRisk]:
    """The under-priced repeated scans of candidate indexes in a JSON ``plan``.

    ``names`` maps an index name (hypopg's oid as text, or a built index's
    name) to its candidate id, ``specs`` a candidate id to its definition.
    """
    out: list[ProbeRisk] = []
    stack: list[tuple[Any, float]] = [(plan[0]["Plan"], 1.0)]
    while stack:
        node, loops = stack.pop()
        kind = node.get("Node Type")
        children = node.get("Plans", ())
        if kind == "Memoize":
            continue  # probes once per distinct key; left as the planner prices it
        if kind in ("Index Scan", "Bitmap Heap Scan") and loops > 1.0:
            probed = _probed(node, names, specs)
            risk = None if probed is None else _risk(model, node, loops, probed)
            if risk is not None:
                out.append(risk)
        for child in children:
            rel = child.get("Parent Relationship")
            if kind == "Nested Loop" and rel == "Inner":
                outer = next((c for c in children if c.get("Parent Relationship") == "Outer"), None)
                rows = float(outer.get("Plan Rows", 1.0)) if outer is not None else 1.0
                stack.append((child, loops * max(1.0, rows)))
            elif rel == "SubPlan":
                stack.append((child, loops * max(1.0, float(node.get("Plan Rows", 1.0)))))
            else:
                stack.append((child, loops))
    return out


def _index_node(node: Any) -> Any:
    """The node naming the index: the scan itself, or a bitmap heap scan's single index."""
    if node.get("Node Type") == "Index Scan":
        return node
    kids = node.get("Plans", ())
    if len(kids) == 1 and kids[0].get("Node Type") == "Bitmap Index Scan":
        return kids[0]
    return None


class _Probed(NamedTuple):
    """A scan's index node and the candidate (id and definition) it names."""

    index: Any
    cid: int
    spec: IndexSpec


def _probed(node: Any, names: Mapping[str, int], specs: Mapping[int, IndexSpec]) -> _Probed | None:
    """What a scan probes, if it names one of the candidates."""
    index = _index_node(node)
    if index is None:
        return None
    name = str(index.get("Index Name", ""))
    m = re.match(r"<(\d+)>", name)
    cid = names.get(m.group(1) if m else name)
    if cid is None or cid not in specs:
        return None
    return _Probed(index, cid, specs[cid])


def _risk(model: RiskModel, node: Any, loops: float, probed: _Probed) -> ProbeRisk | None:
    index, cid, spec = probed
    rel = model.catalog.relations.get(spec.table_oid)
    if rel is None or rel.kind != "r" or rel.relpages <= model.cache_pages or not spec.keys:
        return None
    lead = spec.keys[0]
    if not lead.is_column:
        return None
    col = rel.columns.get(lead.columns[0])
    if col is None or col.correlation is None:
        return None
    rows = float(node.get("Plan Rows", 1.0))
    cond = str(index.get("Index Cond", ""))
    eq = _EQ_LEAD.match(cond)
    if eq is not None and eq.group(1) == col.name and " AND " not in cond and col.n_distinct:
        # the rows the probe fetches before its filter: the rows per key
        distinct = -col.n_distinct * rel.reltuples if col.n_distinct < 0 else col.n_distinct
        rows = max(rows, rel.reltuples / max(1.0, distinct))
    planner = loops * float(node.get("Total Cost", 0.0))
    # the uncorrelated share of the scan reads a page per row, the correlated share
    # reads neighbouring rows together: the planner's estimate is trusted for that
    # share (weighted as the planner weighs them, by the correlation squared)
    scattered = cache_pages(loops * rows, rel.relpages, model.cache_pages)
    c2 = col.correlation * col.correlation
    pages = (1.0 - c2) * scattered
    charged = pages * model.page_cost + c2 * planner
    if charged <= planner * 1.01:  # within rounding of the planner's own price
        return None
    return ProbeRisk(cid, rel.qualified, loops, rows, col.correlation, pages, planner, charged)
