"""Choose the set of indexes that minimizes the whole workload's cost, under a budget.

Greedy with lazy re-evaluation: each round adds the move with the largest
net gain, ``sum(calls x (cost now - cost with it)) - write cost - storage``,
given the indexes already chosen (so one index serving several statements
beats several serving one each, and an index made redundant by a wider one
stops gaining). A move is one candidate, or the set of candidates one
statement's plan uses together when all exist (a join needing an index on
each side). It is taken only if its gain is positive and it saves at least
``min_saving`` of the current cost of the statements it helps. A final pass
drops chosen indexes that cost more to keep than their removal would cost.
Plan costs are cached per statement and relevant configuration.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbopt.advisor.catalog import Relation
from dbopt.advisor.evaluate import CandidateError, ExplainError, PlanCost, Target
from dbopt.advisor.model import IndexSpec

__all__ = ["Candidate", "Selection", "SelectionOptions", "Selector", "drop_covered"]

_EPS = 1e-6


@dataclass
class Candidate:
    """A candidate index and the statements (target positions) it may help."""

    id: int
    spec: IndexSpec
    relation: Relation
    targets: set[int] = field(default_factory=set)
    write_cost: float = 0.0
    error: str | None = None
    heuristic: bool = False


@dataclass(frozen=True)
class SelectionOptions:
    """Budget and threshold of the selection.

    ``page_cost`` charges each 8 kB page of an index this many planner units
    (once, not per call): between two indexes that serve the workload about
    equally well, the smaller one wins.
    """

    max_indexes: int | None = 20
    max_total_bytes: int | None = None
    min_saving: float = 0.3
    page_cost: float = 0.01


@dataclass
class Selection:
    """The chosen candidate ids and the costs before and after, per target."""

    chosen: list[int]
    base: dict[int, PlanCost]
    final: dict[int, PlanCost]
    evaluations: int
    sizes: dict[int, int]


class Selector:
    """Run the selection for ``targets`` over ``candidates`` with ``evaluator``.

    ``extra`` (optional) prices candidates the main evaluator cannot
    (GIN under hypopg): it receives the main evaluator's plan and adjusts it.
    """

    def __init__(
        self,
        evaluator: Any,
        targets: Sequence[Target],
        candidates: Sequence[Candidate],
        base: dict[int, PlanCost],
        options: SelectionOptions,
        extra: Any = None,
    ) -> None:
        self.evaluator = evaluator
        self.extra = extra
        self.targets = {t.index: t for t in targets}
        self.cands = {c.id: c for c in candidates}
        self.base = base
        self.options = options
        self.cache: dict[tuple[int, frozenset[int]], PlanCost] = {}
        self.evaluations = 0
        self.by_table: dict[int, list[int]] = defaultdict(list)
        for t in targets:
            for oid in t.tables:
                self.by_table[oid].append(t.index)

    # pricing -------------------------------------------------------------

    def _relevant(self, t: Target, config: Iterable[int]) -> frozenset[int]:
        return frozenset(
            c
            for c in config
            if c in self.cands
            and self.cands[c].error is None
            and self.cands[c].relation.oid in t.tables
        )

    def costs(self, config: Iterable[int], tis: Iterable[int]) -> dict[int, PlanCost]:
        """Cost of each target in ``tis`` with the indexes ``config`` present."""
        config = frozenset(config)
        todo: dict[frozenset[int], list[Target]] = defaultdict(list)
        wanted = list(dict.fromkeys(tis))
        for ti in wanted:
            t = self.targets[ti]
            rel = self._relevant(t, config)
            if (ti, rel) not in self.cache:
                todo[rel].append(t)
        for rel, targets in todo.items():
            self._price(rel, targets)
        out: dict[int, PlanCost] = {}
        for ti in wanted:
            t = self.targets[ti]
            rel = self._relevant(t, config)
            if (ti, rel) not in self.cache:  # a candidate failed while pricing
                self._price(rel, [t])
            out[ti] = self.cache[(ti, rel)]
        return out

    def cost(self, ti: int, config: Iterable[int]) -> PlanCost:
        """Cost of target ``ti`` with ``config``."""
        return self.costs(config, [ti])[ti]

    def _price(self, rel: frozenset[int], targets: list[Target]) -> None:
        while True:
            main = [(c, self.cands[c].spec) for c in sorted(rel) if not self.cands[c].heuristic]
            extra = [(c, self.cands[c].spec) for c in sorted(rel) if self.cands[c].heuristic]
            try:
                results = self.evaluator.costs(main, targets) if main else None
            except CandidateError as exc:
                self.cands[exc.candidate].error = str(exc)
                rel = frozenset(c for c in rel if c != exc.candidate)
                continue
            break
        self.evaluations += len(targets)
        for i, t in enumerate(targets):
            result = results[i] if results is not None else self.base[t.index]
            if isinstance(result, ExplainError):
                result = self.base[t.index]
            if extra and self.extra is not None:
                adjusted = self.extra.estimate(result, t.shape, extra)
                result = PlanCost(adjusted.cost, result.used | adjusted.used, result.plan)
            self.cache[(t.index, self._relevant(t, rel))] = result

    # selection -----------------------------------------------------------

    def _gain(
        self, members: frozenset[int], chosen: frozenset[int], current: dict[int, PlanCost]
    ) -> tuple[float, float]:
        """(net gain, saving share of the helped statements) of adding ``members``."""
        new = members - chosen
        if not new or any(self.cands[c].error is not None for c in new):
            return 0.0, 0.0
        tis = sorted({ti for c in new for ti in self.cands[c].targets})
        results = self.costs(chosen | new, tis)
        saved = before = 0.0
        for ti, pc in results.items():
            now = current[ti].cost
            if pc.used & new and pc.cost < now - _EPS:
                w = self.targets[ti].weight
                saved += w * (now - pc.cost)
                before += w * now
        if before <= 0 or any(self.cands[c].error is not None for c in new):
            return 0.0, 0.0
        return saved - self._upkeep(new), saved / before

    def _upkeep(self, cids: Iterable[int]) -> float:
        """Write overhead plus storage charge of ``cids``."""
        return sum(
            self.cands[c].write_cost + self._size(c) / 8192 * self.options.page_cost for c in cids
        )

    def _size(self, cid: int) -> int:
        size = self.evaluator.size(cid)
        if size is None and self.extra is not None:
            size = self.extra.size(cid)
        return int(size or 0)

    def _bundles(self) -> list[frozenset[int]]:
        """Per statement, the candidates its plan uses when all of them exist (2 or more)."""
        per_target: dict[int, list[int]] = defaultdict(list)
        for cid, cand in self.cands.items():
            for ti in cand.targets:
                per_target[ti].append(cid)
        out: list[frozenset[int]] = []
        for ti, cids in sorted(per_target.items()):
            if len(cids) < 2:
                continue
            used = self.cost(ti, cids).used & frozenset(cids)
            if len(used) >= 2 and used not in out:
                out.append(frozenset(used))
        return out

    def run(self) -> Selection:
        """Greedy selection (single indexes and per-statement bundles), then pruning."""
        opts = self.options
        chosen: list[int] = []
        current = dict(self.base)
        moves: list[frozenset[int]] = [frozenset([c]) for c in sorted(self.cands)]
        moves.extend(self._bundles())
        heap: list[tuple[float, int, int, int]] = []
        for i, move in enumerate(moves):
            gain, share = self._gain(move, frozenset(), current)
            if gain > 0 and share >= opts.min_saving:
                width = sum(len(self.cands[c].spec.keys) for c in move)
                heapq.heappush(heap, (-gain, width, i, 0))
        total_size = 0
        while heap:
            _, width, i, stamp = heapq.heappop(heap)
            new = moves[i] - set(chosen)
            if not new:
                continue
            if stamp != len(chosen):
                gain, share = self._gain(moves[i], frozenset(chosen), current)
                if gain > 0 and share >= opts.min_saving:
                    heapq.heappush(heap, (-gain, width, i, len(chosen)))
                continue
            size = sum(self._size(c) for c in new)
            if opts.max_indexes is not None and len(chosen) + len(new) > opts.max_indexes:
                continue
            if opts.max_total_bytes is not None and total_size + size > opts.max_total_bytes:
                continue
            chosen.extend(sorted(new))
            total_size += size
            for oid in {self.cands[c].relation.oid for c in new}:
                self._refresh(current, chosen, oid)
        chosen = self._prune(chosen, current)
        chosen = self._drop_covered(chosen)
        final = self.costs(chosen, list(self.targets))
        sizes = {cid: self._size(cid) for cid in chosen}
        return Selection(chosen, self.base, final, self.evaluations, sizes)

    def _refresh(self, current: dict[int, PlanCost], chosen: list[int], oid: int) -> None:
        current.update(self.costs(chosen, self.by_table.get(oid, [])))

    def _drop_covered(self, chosen: list[int]) -> list[int]:
        return drop_covered({cid: self.cands[cid].spec for cid in chosen}, chosen)

    def _prune(self, chosen: list[int], current: dict[int, PlanCost]) -> list[int]:
        for cid in list(reversed(chosen)):
            if cid not in chosen:
                continue
            rest = frozenset(c for c in chosen if c != cid)
            tis = self.by_table.get(self.cands[cid].relation.oid, [])
            without = self.costs(rest, tis)
            loss = 0.0
            for ti in tis:
                delta = without[ti].cost - current[ti].cost
                if delta > _EPS:
                    loss += self.targets[ti].weight * delta
            if loss - self._upkeep([cid]) <= 0:
                chosen = [c for c in chosen if c != cid]
                current.update(without)
        return chosen


def drop_covered(specs: Mapping[int, IndexSpec], chosen: list[int]) -> list[int]:
    """``chosen`` without an index that another chosen index covers (leading-prefix rule).

    The planner may pick both when each wins one plan by a hair; keeping both
    would only add write cost, and the linter would flag the pair (LINT005),
    so the wider index is kept. A partial index is only covered by one with
    the same predicate (it is smaller than any full one).
    """
    kept = list(chosen)
    for cid in chosen:
        spec = specs[cid]
        if any(
            other != cid
            and specs[other].predicate == spec.predicate
            and specs[other].covers(spec)
            and specs[other].identity != spec.identity
            for other in kept
        ):
            kept.remove(cid)
    return kept
