"""Turn a selection into an :class:`AdvisorReport`: names, DDL, impacts, shares."""

from __future__ import annotations

from collections import defaultdict

from dbopt.advisor.catalog import Catalog
from dbopt.advisor.ddl import create_statements, drop_statements, index_name, reused_indexes
from dbopt.advisor.evaluate import Target
from dbopt.advisor.report import (
    AdvisorError,
    AdvisorReport,
    Recommendation,
    StatementImpact,
    StatementResult,
)
from dbopt.advisor.select import Candidate, Selection
from dbopt.advisor.workload import Workload

__all__ = ["build_report"]

_EPS = 1e-6


def build_report(
    catalog: Catalog,
    workload: Workload,
    targets: list[Target],
    candidates: list[Candidate],
    selection: Selection,
    errors: list[tuple[int | None, str, str]],
    skipped: dict[int, str],
    notes: list[str],
    method: str,
) -> AdvisorReport:
    """The report for ``selection`` over ``workload``."""
    cands = {c.id: c for c in candidates}
    chosen = set(selection.chosen)
    by_index = {t.index: t for t in targets}
    credit: dict[int, float] = defaultdict(float)
    helped: dict[int, list[Target]] = defaultdict(list)
    for t in targets:
        base, final = selection.base[t.index], selection.final[t.index]
        used = sorted(final.used & chosen)
        if not used:
            continue
        saving = max(0.0, t.weight * (base.cost - final.cost))
        for cid in used:
            credit[cid] += saving / len(used)
            helped[cid].append(t)
    # where the workload measured time, each helped statement's time times its
    # relative cost reduction: what the recommendations are ranked by
    timed = any(t.stmt.total_time > 0 for t in targets)
    seconds: dict[int, float] = defaultdict(float)
    for t in targets:
        base, final = selection.base[t.index], selection.final[t.index]
        used = sorted(final.used & chosen)
        if used and base.cost > 0 and t.stmt.total_time > 0:
            saved = t.stmt.total_time * max(0.0, 1.0 - final.cost / base.cost)
            for cid in used:
                seconds[cid] += saved / len(used)
    total = sum(credit.values())
    taken = {i.name for i in catalog.indexes} | {r.name for r in catalog.relations.values()}
    names: dict[int, str] = {}
    recs = []
    for cid in sorted(chosen, key=lambda c: (-seconds[c], -credit[c], c)):
        cand = cands[cid]
        rel = cand.relation
        name = index_name(cand.spec, rel, taken)
        taken.add(name)
        names[cid] = name
        impacts = tuple(
            StatementImpact(
                t.stmt.sql,
                t.stmt.calls,
                selection.base[t.index].cost,
                selection.final[t.index].cost,
                t.stmt.callsites,
            )
            for t in sorted(helped[cid], key=lambda t: -t.weight * selection.base[t.index].cost)
        )
        recs.append(
            Recommendation(
                schema=rel.schema,
                table=rel.name,
                name=name,
                method=cand.spec.method,
                keys=cand.spec.keys,
                include=cand.spec.include,
                predicate=cand.spec.predicate,
                ddl=tuple(create_statements(cand.spec, rel, name, catalog)),
                drop_ddl=tuple(
                    drop_statements(
                        rel,
                        name,
                        restore=tuple(
                            (i, catalog.relations[i.table_oid])
                            for i in reused_indexes(cand.spec, rel, catalog)
                        ),
                    )
                ),
                size_bytes=selection.sizes.get(cid, 0),
                statements=impacts,
                saving=credit[cid],
                saving_share=credit[cid] / total if total > 0 else 0.0,
                write_cost=cand.write_cost,
                evaluated_by="heuristic" if cand.heuristic else method,
                partitioned=rel.kind == "p",
                built_bytes=cand.estimated_bytes,
                time_saved_s=seconds[cid] if timed else None,
            )
        )
    error_at = {i: m for i, _, m in errors if i is not None}
    results = []
    for i, stmt in enumerate(workload.statements):
        if i in error_at:
            results.append(
                StatementResult(
                    stmt.sql, stmt.calls, "error", error_at[i], callsites=stmt.callsites
                )
            )
        elif i in skipped:
            results.append(
                StatementResult(
                    stmt.sql, stmt.calls, "skipped", skipped[i], callsites=stmt.callsites
                )
            )
        elif i in by_index:
            base, final = selection.base[i], selection.final[i]
            used_names = tuple(names[c] for c in sorted(final.used & chosen))
            better = bool(used_names) and final.cost < base.cost - _EPS
            results.append(
                StatementResult(
                    stmt.sql,
                    stmt.calls,
                    "improved" if better else "unchanged",
                    cost_before=base.cost,
                    cost_after=final.cost,
                    indexes=used_names,
                    callsites=stmt.callsites,
                )
            )
    before = sum(t.weight * selection.base[t.index].cost for t in targets)
    after = sum(t.weight * selection.final[t.index].cost for t in targets)
    return AdvisorReport(
        method=method,
        recommendations=recs,
        statements=results,
        errors=[AdvisorError(sql, message) for _, sql, message in errors],
        notes=notes,
        total_cost_before=before,
        total_cost_after=after,
        evaluations=selection.evaluations,
    )
