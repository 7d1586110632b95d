"""EXPLAIN (FORMAT JSON) output as the indented text people read in psql."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["plan_text"]


def _node(node: dict[str, Any], depth: int, out: list[str]) -> None:
    what = str(node.get("Node Type", "?"))
    if node.get("Relation Name"):
        what += f" on {node['Relation Name']}"
        if node.get("Alias") and node["Alias"] != node["Relation Name"]:
            what += f" {node['Alias']}"
    if node.get("Index Name"):
        what += f" using {node['Index Name']}"
    cost = f"(cost={node.get('Startup Cost', 0)}..{node.get('Total Cost', 0)} "
    cost += f"rows={node.get('Plan Rows', '?')})"
    if "Actual Total Time" in node:
        cost += f" (actual time={node['Actual Total Time']} ms rows={node.get('Actual Rows')})"
    prefix = "  " * depth + ("-> " if depth else "")
    out.append(f"{prefix}{what}  {cost}")
    for key in ("Index Cond", "Recheck Cond", "Filter", "Hash Cond", "Join Filter", "Sort Key"):
        if key in node:
            value = node[key]
            text = ", ".join(value) if isinstance(value, list) else str(value)
            out.append("  " * depth + f"     {key}: {text}")
    for child in node.get("Plans", []) or []:
        _node(child, depth + 1, out)


def plan_text(plan: Any) -> str:
    """Readable text of an EXPLAIN JSON plan (a list, a dict, or JSON text); else ``str``."""
    if isinstance(plan, str):
        try:
            plan = json.loads(plan)
        except ValueError:
            return str(plan)
    if isinstance(plan, list) and plan and isinstance(plan[0], dict):
        plan = plan[0]
    if isinstance(plan, dict) and isinstance(plan.get("Plan"), dict):
        out: list[str] = []
        _node(plan["Plan"], 0, out)
        return "\n".join(out)
    return json.dumps(plan, indent=2, default=str)
