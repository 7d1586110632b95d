"""Choose the set of indexes that minimizes the whole workload's cost, under a budget.

The objective is the workload's cost, ``sum(calls x plan cost)``, plus the
upkeep of the chosen indexes (write cost over the workload's window and a
small storage charge). The search borrows from the index-selection
literature (see docs/advisor.md, "Selection"):

* greedy with lazy re-evaluation over *moves*: add one candidate; add the
  set of candidates one statement's plan uses together (a join needing an
  index on each side); or, as in Extend (Schlosser et al., ICDE 2019),
  replace a chosen index by the same index with one more key column that
  the workload filters, joins, groups or sorts on (candidate generation that
  is not limited to fixed rules);
* under a storage budget, moves are ranked by net gain per byte (Extend,
  DB2Advis) as well as by absolute net gain, and the better of the two
  results is kept; then a swap pass (as in Relaxation and AutoAdmin's
  enumeration) drops each chosen index in turn, refills the freed budget and
  keeps the result when the workload's cost falls;
* a move is taken only if it saves at least ``min_saving`` of the
  workload's current cost (Extend's 0.3 %), a workload-level threshold;
* a final pass drops chosen indexes that cost more to keep than their
  removal would cost, and indexes another chosen index covers.

Plan costs are cached per statement and *relevant* configuration: the
candidates of the configuration that statement may use (its keys lead with a
column the statement filters, joins, groups or sorts on, or it covers every
column the statement reads from the table, or a plan was seen using it).
Others cannot change its plan. A cached plan also answers for every smaller
configuration that still holds the indexes the plan uses (removing an index
a plan does not use leaves that plan the cheapest), so dropping an unused
index in the swap and prune passes costs no EXPLAIN.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbopt.advisor.catalog import Relation
from dbopt.advisor.evaluate import CandidateError, ExplainError, PlanCost, Target
from dbopt.advisor.model import IndexSpec, KeyElem

__all__ = ["Candidate", "Selection", "SelectionOptions", "Selector", "drop_covered"]

_EPS = 1e-6


@dataclass
class Candidate:
    """A candidate index and the statements (target positions) it may help.

    ``generated`` marks a candidate the selection made while searching (a
    chosen index extended by one key column); ``estimated_bytes`` is the
    built size with B-tree deduplication (see :mod:`dbopt.advisor.sizes`).
    """

    id: int
    spec: IndexSpec
    relation: Relation
    targets: set[int] = field(default_factory=set)
    write_cost: float = 0.0
    error: str | None = None
    heuristic: bool = False
    generated: bool = False
    estimated_bytes: int | None = None


@dataclass(frozen=True)
class SelectionOptions:
    """Budgets and threshold of the selection.

    ``max_total_bytes`` counts the estimated built size of each index (with
    deduplication), or the evaluator's estimate when there is none.
    ``min_saving`` is a share of the whole workload's current cost that a
    move must save. ``page_cost`` charges each 8 kB page of an index this
    many planner units (once, not per call): between two indexes that serve
    the workload about equally well, the smaller one wins. ``extend`` lets
    the search append key columns to chosen indexes, up to ``max_columns``;
    under a byte budget the swap pass tries dropping the ``swap_trials``
    largest chosen indexes.
    """

    max_indexes: int | None = 20
    max_total_bytes: int | None = None
    min_saving: float = 0.003
    page_cost: float = 0.01
    extend: bool = True
    max_columns: int = 4
    swap_trials: int = 4


@dataclass
class Selection:
    """The chosen candidate ids and the costs before and after, per target."""

    chosen: list[int]
    base: dict[int, PlanCost]
    final: dict[int, PlanCost]
    evaluations: int
    sizes: dict[int, int]
    strategy: str = "gain"


@dataclass(frozen=True)
class _Move:
    add: frozenset[int]
    remove: frozenset[int] = frozenset()


class Selector:
    """Run the selection for ``targets`` over ``candidates`` with ``evaluator``.

    ``extra`` (optional) prices candidates the main evaluator cannot
    (GIN under hypopg): it receives the main evaluator's plan and adjusts it.
    ``attributes`` maps a table oid to the column keys the workload uses on
    it (the columns Extend-style moves append); ``variant`` turns an
    extended :class:`IndexSpec` into a new candidate (its write cost);
    ``reach`` gives the targets a new candidate may serve; ``reads`` maps
    (target, table oid) to the columns the target reads there (None: all).
    """

    def __init__(
        self,
        evaluator: Any,
        targets: Sequence[Target],
        candidates: Sequence[Candidate],
        base: dict[int, PlanCost],
        options: SelectionOptions,
        extra: Any = None,
        *,
        attributes: Mapping[int, Sequence[KeyElem]] | None = None,
        variant: Callable[[IndexSpec, Candidate], float] | None = None,
        sizer: Callable[[IndexSpec], int | None] | None = None,
        reach: Callable[[Candidate], Iterable[int]] | None = None,
        reads: Mapping[tuple[int, int], set[str] | None] | None = None,
    ) -> None:
        self.evaluator = evaluator
        self.extra = extra
        self.targets = {t.index: t for t in targets}
        self.cands = {c.id: c for c in candidates}
        self.base = base
        self.options = options
        self.attributes = dict(attributes or {})
        self.variant = variant
        self.sizer = sizer
        self.reach = reach
        self.reads = reads
        self.cache: dict[tuple[int, frozenset[int]], PlanCost] = {}
        # per target: (relevant configuration priced, its cost), for subset lookups
        self._known: dict[int, list[tuple[frozenset[int], PlanCost]]] = defaultdict(list)
        self.explains = 0
        self.evaluations = 0
        self.by_table: dict[int, list[int]] = defaultdict(list)
        self.by_identity = {c.spec.identity: c.id for c in candidates}
        self._extensions: dict[int, list[int]] = {}
        # per ranking (by ratio or not): each move's score from the empty configuration
        self._first: dict[bool, dict[_Move, float | None]] = {}
        for t in targets:
            for oid in t.tables:
                self.by_table[oid].append(t.index)

    # pricing -------------------------------------------------------------

    def _relevant(self, t: Target, config: Iterable[int]) -> frozenset[int]:
        """The candidates of ``config`` that may change ``t``'s plan (see the module doc)."""
        ti = t.index
        return frozenset(
            c
            for c in config
            if c in self.cands and self.cands[c].error is None and ti in self.cands[c].targets
        )

    def _lookup(self, ti: int, rel: frozenset[int]) -> PlanCost | None:
        """The cached cost of ``ti`` with ``rel``, or one derived from a larger configuration.

        A plan priced with ``known`` present that uses only indexes of ``rel``
        (``rel`` within ``known``) is still the cheapest with ``rel``: the
        removed indexes only took away alternatives the planner did not pick.
        """
        hit = self.cache.get((ti, rel))
        if hit is not None:
            return hit
        for known, pc in self._known[ti]:
            if pc.used <= rel <= known:
                self.cache[(ti, rel)] = pc
                return pc
        return None

    def _store(self, ti: int, rel: frozenset[int], pc: PlanCost) -> None:
        if (ti, rel) not in self.cache:
            self._known[ti].append((rel, pc))
        self.cache[(ti, rel)] = pc

    def costs(self, config: Iterable[int], tis: Iterable[int]) -> dict[int, PlanCost]:
        """Cost of each target in ``tis`` with the indexes ``config`` present."""
        config = frozenset(config)
        todo: dict[frozenset[int], list[Target]] = defaultdict(list)
        wanted = list(dict.fromkeys(tis))
        for ti in wanted:
            t = self.targets[ti]
            rel = self._relevant(t, config)
            if self._lookup(ti, rel) is None:
                todo[rel].append(t)
        for rel, targets in todo.items():
            self._price(rel, targets)
        out: dict[int, PlanCost] = {}
        for ti in wanted:
            t = self.targets[ti]
            # not found: a candidate failed while pricing, or a plan used one thought
            # irrelevant (now relevant): price again
            while (found := self._lookup(ti, self._relevant(t, config))) is None:
                self._price(self._relevant(t, config), [t])
            out[ti] = found
        return out

    def cost(self, ti: int, config: Iterable[int]) -> PlanCost:
        """Cost of target ``ti`` with ``config``."""
        return self.costs(config, [ti])[ti]

    def _explain(
        self, rel: frozenset[int], targets: list[Target]
    ) -> tuple[frozenset[int], list[PlanCost]]:
        """Price ``targets`` with exactly ``rel``; candidates that fail are marked and left out."""
        while True:
            main = [(c, self.cands[c].spec) for c in sorted(rel) if not self.cands[c].heuristic]
            extra = [(c, self.cands[c].spec) for c in sorted(rel) if self.cands[c].heuristic]
            # hypothetical indexes already there that none of ``targets`` may use stay:
            # they cannot change these plans, and dropping them would cost a round trip
            live = getattr(self.evaluator, "live", None)
            tis = {t.index for t in targets}
            keep = [
                (c, self.cands[c].spec)
                for c in sorted(live or ())
                if c not in rel
                and c in self.cands
                and self.cands[c].error is None
                and not self.cands[c].targets & tis
            ]
            try:
                results = self.evaluator.costs(main + keep, targets) if main else None
            except CandidateError as exc:
                self.cands[exc.candidate].error = str(exc)
                rel = frozenset(c for c in rel if c != exc.candidate)
                continue
            break
        self.evaluations += len(targets)
        if main:
            self.explains += len(targets)
        out: list[PlanCost] = []
        for i, t in enumerate(targets):
            result = results[i] if results is not None else self.base[t.index]
            if isinstance(result, ExplainError):
                result = self.base[t.index]
            if extra and self.extra is not None:
                adjusted = self.extra.estimate(result, t.shape, extra)
                result = PlanCost(
                    adjusted.cost, result.used | adjusted.used, result.plan, result.risks
                )
            out.append(result)
        return rel, out

    def _price(self, rel: frozenset[int], targets: list[Target]) -> None:
        rel, results = self._explain(rel, targets)
        for t, result in zip(targets, results, strict=True):
            for c in result.used - rel:  # a kept index the plan used after all
                self.cands[c].targets.add(t.index)
            self._store(t.index, self._relevant(t, rel | result.used), result)

    def _discover(self) -> None:
        """Price each statement once with every candidate on its tables.

        A candidate its plan uses becomes relevant to it even when no rule
        predicted it (``min()`` through an index, an index-only scan of a
        wide index): the finer cache key stays exact for what the planner
        actually does.
        """
        for ti, t in self.targets.items():
            every = frozenset(
                c
                for c, cand in self.cands.items()
                if cand.relation.oid in t.tables and cand.error is None
            )
            if not every or self._lookup(ti, self._relevant(t, every)) is not None:
                continue
            every, results = self._explain(every, [t])
            for c in results[0].used & every:
                self.cands[c].targets.add(ti)
            self._store(ti, self._relevant(t, every), results[0])

    def _screen(self) -> None:
        """Find, per statement, the candidates its plan ignores, a few EXPLAINs for all of them.

        Price the statement with all its candidates, take out those the plan
        uses, and again, until a plan uses none of the rest: each of the rest
        alone leaves the statement's plan as it is (the cache derives it), so
        the first round of the greedy search needs no EXPLAIN for them.
        """
        for ti, t in self.targets.items():
            rest = self._relevant(t, self.cands)
            while rest:
                used = self.cost(ti, rest).used & rest
                if not used:
                    break
                rest = self._relevant(t, rest - used)

    # the objective ---------------------------------------------------------

    def _upkeep(self, cids: Iterable[int]) -> float:
        """Write overhead plus storage charge of ``cids``."""
        return sum(
            self.cands[c].write_cost + self._size(c) / 8192 * self.options.page_cost for c in cids
        )

    def _size(self, cid: int) -> int:
        """The evaluator's size of ``cid`` (hypopg's, measured, or estimated)."""
        size = self.evaluator.size(cid)
        if size is None and self.extra is not None:
            size = self.extra.size(cid)
        return int(size or 0)

    def budget_size(self, cid: int) -> int:
        """Bytes ``cid`` counts against ``max_total_bytes``: the built-size estimate."""
        est = self.cands[cid].estimated_bytes
        return int(est) if est is not None else self._size(cid)

    def workload_cost(self, config: Iterable[int]) -> float:
        """``sum(calls x cost)`` over the workload with ``config``."""
        results = self.costs(config, list(self.targets))
        return sum(self.targets[ti].weight * pc.cost for ti, pc in results.items())

    def objective(self, config: Iterable[int]) -> float:
        """Workload cost plus upkeep of ``config``: what the selection minimizes."""
        config = list(config)
        return self.workload_cost(config) + self._upkeep(config)

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

    # moves ---------------------------------------------------------------

    def _evaluate(
        self, move: _Move, chosen: frozenset[int], total: float, size: int, by_ratio: bool
    ) -> float | None:
        """Score of ``move`` from ``chosen`` (None: not allowed or not worth it)."""
        opts = self.options
        add = move.add - chosen
        if not add or not move.remove <= chosen:
            return None
        if any(self.cands[c].error is not None for c in add):
            return None
        after = (chosen - move.remove) | add
        if opts.max_indexes is not None and len(after) > opts.max_indexes:
            return None
        tis = sorted({ti for c in add | move.remove for ti in self.cands[c].targets})
        appended = self._appended(move)
        if appended is not None:
            # the extended index serves the other statements as the one it replaces
            # (a little larger); only those that read the appended column can gain
            oid = self.cands[next(iter(move.add))].relation.oid
            tis = [ti for ti in tis if self._reads(ti, oid, appended)]
        now = self.costs(chosen, tis)
        then = self.costs(after, tis)
        if any(self.cands[c].error is not None for c in add):
            return None
        saved = sum(self.targets[ti].weight * (now[ti].cost - then[ti].cost) for ti in tis)
        if not any(then[ti].used & add for ti in tis):
            return None
        net = saved - self._upkeep(add) + self._upkeep(move.remove)
        if net <= _EPS or saved < opts.min_saving * total:
            return None
        grow = sum(self.budget_size(c) for c in add) - sum(self.budget_size(c) for c in move.remove)
        if opts.max_total_bytes is not None and size + grow > opts.max_total_bytes:
            return None
        return net / max(grow, 8192) if by_ratio else net

    def _appended(self, move: _Move) -> set[str] | None:
        """The columns an extension move appends (None: not an extension move)."""
        if len(move.add) != 1 or len(move.remove) != 1:
            return None
        new = self.cands[next(iter(move.add))]
        old = self.cands[next(iter(move.remove))]
        if not new.generated or new.spec.keys[:-1] != old.spec.keys:
            return None
        return set(new.spec.keys[-1].columns)

    def _reads(self, ti: int, oid: int, columns: set[str]) -> bool:
        """True if target ``ti`` reads any of ``columns`` of table ``oid`` (or cannot tell)."""
        if self.reads is None:
            return True
        read = self.reads.get((ti, oid), set())
        return read is None or bool(read & columns)

    def _extend(self, cid: int) -> list[int]:
        """Candidates that are ``cid`` with one more key column the workload uses."""
        if cid in self._extensions:
            return self._extensions[cid]
        out: list[int] = []
        self._extensions[cid] = out
        cand = self.cands[cid]
        spec = cand.spec
        if (
            not self.options.extend
            or spec.method != "btree"
            or len(spec.keys) >= self.options.max_columns
        ):
            return out
        have = {k.expr for k in spec.keys}
        for key in self.attributes.get(cand.relation.oid, ()):
            if key.expr in have:  # the same column again, with another opclass, is no key
                continue
            include = tuple(c for c in spec.include if key.columns != (c,))
            new = IndexSpec(
                spec.table_oid,
                "btree",
                (*spec.keys, key),
                include,
                spec.predicate,
                spec.predicate_columns,
            )
            known = self.by_identity.get(new.identity)
            if known is None:
                known = max(self.cands) + 1
                write = self.variant(new, cand) if self.variant is not None else cand.write_cost
                est = self.sizer(new) if self.sizer is not None else None
                made = Candidate(
                    known,
                    new,
                    cand.relation,
                    set(cand.targets),
                    write,
                    heuristic=cand.heuristic,
                    generated=True,
                    estimated_bytes=est,
                )
                if self.reach is not None:
                    made.targets.update(self.reach(made))
                self.cands[known] = made
                self.by_identity[new.identity] = known
            out.append(known)
        return out

    def _greedy(
        self,
        moves: Sequence[_Move],
        by_ratio: bool,
        start: Sequence[int] = (),
        banned: frozenset[int] = frozenset(),
    ) -> list[int]:
        """Lazy greedy from ``start``: the best-scoring move each round until none is worth it.

        A move's score from the empty configuration bounds its score from any
        other (an index gains less once others exist, the assumption lazy
        greedy rests on), so a greedy from ``start`` queues the moves with
        those bounds and prices only the ones that reach the top; a move that
        was not worth it from the empty configuration stays out.
        """
        chosen: list[int] = list(start)
        first = self._first.setdefault(by_ratio, {})
        pool: list[_Move] = list(moves)
        for cid in chosen:
            pool.extend(_Move(frozenset([e]), frozenset([cid])) for e in self._extend(cid))
        heap: list[tuple[float, int, int, int]] = []
        stamp = 0

        def state() -> tuple[frozenset[int], float, int]:
            config = frozenset(chosen)
            size = sum(self.budget_size(c) for c in config)
            return config, self.workload_cost(config), size

        config, total, size = state()

        def push(i: int) -> float | None:
            move = pool[i]
            if move.add & banned:
                return None
            score = self._evaluate(move, config, total, size, by_ratio)
            if score is not None:
                width = sum(len(self.cands[c].spec.keys) for c in move.add)
                heapq.heappush(heap, (-score, width, i, stamp))
            return score

        for i in range(len(pool)):
            move = pool[i]
            if chosen and move in first and not move.remove:
                bound = first[move]
                if bound is not None and not move.add & banned:
                    width = sum(len(self.cands[c].spec.keys) for c in move.add)
                    heapq.heappush(heap, (-bound, width, i, -1))
                continue
            score = push(i)
            if not chosen and not banned:
                first[move] = score
        while heap:
            _, _, i, when = heapq.heappop(heap)
            if when != stamp:
                push(i)
                continue
            move = pool[i]
            chosen = [c for c in chosen if c not in move.remove]
            chosen.extend(sorted(move.add - set(chosen)))
            stamp += 1
            config, total, size = state()
            for cid in sorted(move.add):
                for ext in self._extend(cid):
                    pool.append(_Move(frozenset([ext]), frozenset([cid])))
                    push(len(pool) - 1)
        return chosen

    def _swap(self, chosen: list[int], moves: Sequence[_Move]) -> list[int]:
        """Drop each chosen index in turn and refill by gain per byte; keep improvements."""
        best, best_obj = chosen, self.objective(chosen)
        # the largest indexes first: they block the most budget
        order = sorted(best, key=lambda c: -self.budget_size(c))[: self.options.swap_trials]
        for cid in order:
            if cid not in best:
                continue
            rest = [c for c in best if c != cid]
            trial = self._greedy(moves, True, rest, frozenset([cid]))
            obj = self.objective(trial)
            if obj < best_obj * (1 - 1e-4):
                best, best_obj = trial, obj
        return best

    def run(self) -> Selection:
        """Greedy selections (by gain, and by gain per byte under a byte budget), swaps, pruning."""
        opts = self.options
        self._discover()
        self._screen()
        moves = [_Move(frozenset([c])) for c in sorted(self.cands)]
        moves.extend(_Move(b) for b in self._bundles())
        runs = [("gain", self._greedy(moves, False))]
        if opts.max_total_bytes is not None:
            runs.append(("ratio", self._greedy(moves, True)))
        strategy, chosen = min(runs, key=lambda r: self.objective(r[1]))
        if opts.max_total_bytes is not None:
            swapped = self._swap(chosen, moves)
            if swapped != chosen:
                strategy, chosen = f"{strategy}+swap", swapped
        current = self.costs(chosen, list(self.targets))
        chosen = self._prune(chosen, current)
        chosen = self._drop_covered(chosen)
        final = self.costs(chosen, list(self.targets))
        sizes = {cid: self._size(cid) for cid in chosen}
        return Selection(chosen, self.base, final, self.evaluations, sizes, strategy)

    def _drop_covered(self, chosen: list[int]) -> list[int]:
        return drop_covered({cid: self.cands[cid].spec for cid in chosen}, chosen)

    def _prune(self, chosen: list[int], current: dict[int, PlanCost]) -> list[int]:
        """Drop indexes whose removal costs less than their upkeep, or than ``min_saving``."""
        total = sum(self.targets[ti].weight * pc.cost for ti, pc in current.items())
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
            if loss - self._upkeep([cid]) <= 0 or loss < self.options.min_saving * total:
                chosen = [c for c in chosen if c != cid]
                current.update(without)
        return chosen


def drop_covered(specs: Mapping[int, IndexSpec], chosen: list[int]) -> list[int]:
    """``chosen`` without an index that another chosen index covers (leading-prefix rule).

    The planner may pick both when each wins one plan by a hair; keeping both
    would only add write cost, and the linter would flag the pair (LINT005),
    so the wider index is kept. Coverage is predicate-aware: a partial index
    is only covered by one with the same predicate, and covers no full one.
    """
    kept = list(chosen)
    for cid in chosen:
        spec = specs[cid]
        if any(
            other != cid and specs[other].covers(spec) and specs[other].identity != spec.identity
            for other in kept
        ):
            kept.remove(cid)
    return kept
