"""Why each candidate index was not recommended: the advisor is never silent.

After the selection, every candidate that was not chosen is priced once
more against the chosen set (plans are cached, so this costs only the
configurations the selection did not try) and given the first reason that
applies: it cannot be created, a chosen index covers it, no plan gets
cheaper with it, the chosen indexes already serve its statements, its write
cost or storage charge exceeds its saving, its saving rests on repeated
nested-loop probes that read far more heap pages than the planner counts
(``probe_risk``, see :mod:`dbopt.advisor.risk`), it saves less than
``min_saving`` of the workload's cost, or the budget was spent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dbopt.advisor.evaluate import PlanCost
from dbopt.advisor.report import Rejection
from dbopt.advisor.risk import ProbeRisk
from dbopt.advisor.select import Candidate, Selection, SelectionOptions

__all__ = ["rejections", "risk_notes", "risk_text"]

_EPS = 1e-6


def _size(selector: Any, cid: int) -> int:
    size = selector.evaluator.size(cid)
    if size is None and selector.extra is not None:
        size = selector.extra.size(cid)
    return int(size or 0)


def _saving(
    selector: Any,
    cand: Candidate,
    config: frozenset[int],
    current: dict[int, PlanCost],
) -> tuple[float, float]:
    """(calls-weighted saving, cost before of the statements it helps) of adding ``cand``."""
    tis = sorted(t for t in cand.targets if t in current)
    if not tis:
        return 0.0, 0.0
    results = selector.costs(config | {cand.id}, tis)
    saved = before = 0.0
    for ti, pc in results.items():
        now = current[ti].cost
        if cand.id in pc.used and pc.cost < now - _EPS:
            w = selector.targets[ti].weight
            saved += w * (now - pc.cost)
            before += w * now
    return saved, before


def _risk(selector: Any, cand: Candidate, config: frozenset[int]) -> tuple[float, list[ProbeRisk]]:
    """(calls-weighted planner-cost saving, the probe risks charged to ``cand``) of adding it.

    The planner's own saving (EXPLAIN's costs, without the risk charge) says
    what the index would have looked like had its repeated probes been
    trusted.
    """
    tis = sorted(t for t in cand.targets if t in selector.targets)
    if not tis:
        return 0.0, []
    now = selector.costs(config, tis)
    then = selector.costs(config | {cand.id}, tis)
    saved = 0.0
    risks: list[ProbeRisk] = []
    for ti in tis:
        pc = then[ti]
        mine = [r for r in pc.risks if r.candidate == cand.id]
        risks.extend(mine)
        if cand.id in pc.used:
            saved += selector.targets[ti].weight * (now[ti].planner_cost - pc.planner_cost)
    return saved, risks


def risk_text(risks: Sequence[ProbeRisk]) -> str:
    """The largest probe risk in words, and how many more there were."""
    worst = max(risks, key=lambda r: r.extra)
    more = f" (and {len(risks) - 1} more plan(s))" if len(risks) > 1 else ""
    return worst.describe() + more


def rejections(
    selector: Any,
    candidates: Sequence[Candidate],
    selection: Selection,
    options: SelectionOptions,
    labels: dict[int, str],
) -> list[Rejection]:
    """One :class:`Rejection` per candidate not in ``selection.chosen``.

    ``selector`` is the :class:`~dbopt.advisor.select.Selector` that ran the
    selection; ``labels`` names every candidate (``schema.table (cols)``).
    """
    chosen = frozenset(selection.chosen)
    total = sum(selector.budget_size(c) for c in chosen)
    workload = sum(selector.targets[ti].weight * pc.cost for ti, pc in selection.final.items())
    out: list[Rejection] = []
    for cand in candidates:
        if cand.id in chosen or cand.generated:
            continue
        label = labels[cand.id]
        size = selector.budget_size(cand.id)
        n = len(cand.targets)

        def reject(
            code: str,
            message: str,
            saving: float = 0.0,
            c: Candidate = cand,
            label: str = label,
            size: int = size,
        ) -> None:
            out.append(Rejection(label, code, message, saving, c.write_cost, size, len(c.targets)))

        if cand.error is not None:
            reject("error", f"cannot be created: {cand.error}")
            continue
        if not cand.targets:
            reject("unused", "no statement of the workload can use it")
            continue
        cover = next(
            (
                o
                for o in selection.chosen
                if selector.cands[o].spec.covers(cand.spec)
                and selector.cands[o].spec.identity != cand.spec.identity
            ),
            None,
        )
        if cover is not None:
            reject("covered", f"covered by the recommended {labels[cover]}")
            continue
        alone, alone_before = _saving(selector, cand, frozenset(), selection.base)
        planner, risks = _risk(selector, cand, frozenset())
        risky = bool(risks) and planner > _EPS
        if alone <= _EPS or (risky and alone < options.min_saving * workload):
            if risky:
                reject(
                    "probe_risk",
                    f"the planner would save {planner:,.0f} with it, through {risk_text(risks)}; "
                    "priced with those reads it "
                    + (f"saves only {alone:,.0f}" if alone > _EPS else "makes them slower"),
                    max(alone, 0.0),
                )
                continue
            reject("unused", f"no plan of its {n} statement(s) gets cheaper with it")
            continue
        saved, _ = _saving(selector, cand, chosen, selection.final)
        if saved <= _EPS:
            serving = sorted(
                {
                    labels[c]
                    for ti in cand.targets
                    if ti in selection.final
                    for c in selection.final[ti].used & chosen
                }
            )
            by = f" ({', '.join(serving)})" if serving else ""
            reject(
                "superseded",
                f"the recommended indexes{by} already serve its statements as well",
                alone,
            )
            continue
        storage = _size(selector, cand.id) / 8192 * options.page_cost
        if saved - storage - cand.write_cost <= 0:
            if saved - storage > 0:
                reject(
                    "write_cost",
                    f"its write cost {cand.write_cost:,.0f} exceeds its saving {saved:,.0f} "
                    "(planner units over the workload's window)",
                    saved,
                )
            else:
                reject(
                    "storage",
                    f"its storage charge {storage:,.0f} exceeds its saving {saved:,.0f}",
                    saved,
                )
            continue
        share = saved / workload if workload > 0 else 0.0
        if share < options.min_saving:
            reject(
                "min_saving",
                f"saves {share:.2%} of the workload's cost, below min_saving "
                f"{options.min_saving:.2%}",
                saved,
            )
            continue
        if options.max_indexes is not None and len(chosen) >= options.max_indexes:
            reject("budget", f"max_indexes ({options.max_indexes}) reached", saved)
            continue
        if options.max_total_bytes is not None and total + size > options.max_total_bytes:
            reject(
                "budget",
                f"max_total_bytes ({options.max_total_bytes:,}) reached: it needs {size:,} "
                f"bytes, {max(0, options.max_total_bytes - total):,} left",
                saved,
            )
            continue
        reject(
            "superseded",
            f"saves {saved:,.0f} next to the recommended indexes, but the selection "
            f"found a better combination without it (alone it would save {alone:,.0f} "
            f"of {alone_before:,.0f})",
            saved,
        )
    return out


def risk_notes(selector: Any, selection: Selection, labels: dict[int, str]) -> list[str]:
    """A note per recommended index whose saving was discounted for its repeated probes."""
    out = []
    for cid in selection.chosen:
        risks = [r for pc in selection.final.values() for r in pc.risks if r.candidate == cid]
        if risks:
            extra = sum(r.extra for r in risks)
            out.append(f"{labels[cid]}: saving discounted by {extra:,.0f} for {risk_text(risks)}")
    return out
