"""Hot statements no index fixes, and the plan node that dominates them.

Where the workload measured time (a :class:`~dbopt.stats.QueryStats`,
pg_stat_statements), the statements that take the largest part of it are
checked against every candidate index at once: when even the best plan
the planner finds with all of them present costs at least
``1 - min_reduction`` of the current plan, no index fixes the statement.
The report names it with its share of the measured time and the node of
its current plan with the largest own cost (``Seq Scan on posts``,
``Sort``, ``HashAggregate``): the work an index does not remove, so the
query (or its data) has to change instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dbopt.advisor.evaluate import PlanCost, Target
from dbopt.advisor.report import Hotspot
from dbopt.advisor.select import Candidate, Selection, Selector

__all__ = ["dominant_node", "find_hotspots", "node_label"]

#: Statements at or above this share of the workload's measured time are "hot".
HOT_SHARE = 0.1
#: At most this many hot statements are checked and reported.
MAX_HOT = 5
#: An index "fixes" a statement when it lowers its cost by at least this share.
MIN_REDUCTION = 0.2


def node_label(node: dict[str, Any]) -> str:
    """``Seq Scan on posts``, ``Sort``, ``HashAggregate``, ``Index Scan using x on posts``."""
    kind = str(node.get("Node Type", "?"))
    if kind == "Aggregate":
        kind = {
            "Hashed": "HashAggregate",
            "Sorted": "GroupAggregate",
            "Mixed": "MixedAggregate",
        }.get(str(node.get("Strategy")), "Aggregate")
    if node.get("Parallel Aware"):
        kind = f"Parallel {kind}"
    if node.get("Index Name"):
        kind += f" using {node['Index Name']}"
    if node.get("Relation Name"):
        kind += f" on {node['Relation Name']}"
    elif node.get("CTE Name"):
        kind += f" on {node['CTE Name']}"
    return kind


def dominant_node(plan: Any) -> tuple[str, float] | None:
    """The node of a JSON plan with the largest own cost, and its share of the total.

    A node's own cost is its total cost minus its children's (the planner's
    estimate: EXPLAIN without ANALYZE executes nothing).
    """
    if not plan:
        return None
    root = plan[0]["Plan"]
    total = float(root.get("Total Cost", 0.0))
    best: tuple[float, dict[str, Any]] | None = None
    stack = [root]
    while stack:
        node = stack.pop()
        children = node.get("Plans", ())
        own = float(node.get("Total Cost", 0.0)) - sum(
            float(c.get("Total Cost", 0.0))
            for c in children
            if c.get("Parent Relationship") != "InitPlan"
        )
        if best is None or own > best[0]:
            best = (own, node)
        stack.extend(children)
    if best is None:
        return None
    return node_label(best[1]), (max(0.0, best[0]) / total if total > 0 else 0.0)


def find_hotspots(
    targets: Sequence[Target],
    selector: Selector,
    selection: Selection,
    candidates: Sequence[Candidate],
) -> list[Hotspot]:
    """Hot statements (by measured time) that no candidate index fixes."""
    measured = sum(t.stmt.total_time for t in targets)
    if measured <= 0:
        return []
    hot = sorted(
        (t for t in targets if t.stmt.total_time / measured >= HOT_SHARE),
        key=lambda t: -t.stmt.total_time,
    )[:MAX_HOT]
    usable = [c.id for c in candidates if c.error is None]
    out = []
    for t in hot:
        base = selection.base[t.index]
        helping = [
            c for c in usable if c in selector.cands and t.index in selector.cands[c].targets
        ]
        best: PlanCost = selection.final[t.index]
        if helping:
            with_all = selector.cost(t.index, helping)
            if with_all.cost < best.cost:
                best = with_all
        if base.cost <= 0 or best.cost < base.cost * (1.0 - MIN_REDUCTION):
            continue
        found = dominant_node(base.plan)
        out.append(
            Hotspot(
                sql=t.stmt.sql,
                calls=t.stmt.calls,
                total_time_s=t.stmt.total_time,
                time_share=t.stmt.total_time / measured,
                cost_before=base.cost,
                best_cost=best.cost,
                dominant=found[0] if found else None,
                dominant_share=found[1] if found else 0.0,
                candidates=len(helping),
                callsites=t.stmt.callsites,
            )
        )
    return out
