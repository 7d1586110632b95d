"""``IndexAdvisor``: which indexes to add (and drop), proven on the workload."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import psycopg

from dbopt.advisor.analyze import AnalysisError, Analyzer
from dbopt.advisor.candidates import CandidateOptions, candidates_for, selectivity
from dbopt.advisor.catalog import Catalog, load_catalog
from dbopt.advisor.evaluate import (
    ExplainError,
    HypoEvaluator,
    PlanCost,
    RealIndexEvaluator,
    Target,
)
from dbopt.advisor.existing import ExistingOptions, existing_findings, existing_specs
from dbopt.advisor.heuristic import HeuristicEvaluator
from dbopt.advisor.hotspots import find_hotspots
from dbopt.advisor.model import IndexSpec, KeyElem, PartialPred
from dbopt.advisor.reasons import rejections, risk_notes
from dbopt.advisor.recommend import build_report
from dbopt.advisor.report import AdvisorError, Rejection
from dbopt.advisor.risk import RiskModel
from dbopt.advisor.select import Candidate, SelectionOptions, Selector
from dbopt.advisor.sizes import btree_size
from dbopt.advisor.workload import Workload, load_workload
from dbopt.advisor.writes import WRITE_WINDOWS, TableWrites, WriteWindow, choose_window, observed
from dbopt.errors import ConfigurationError
from dbopt.lint.samples import load_extra
from dbopt.postgres.connect import connect, conninfo, translate

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from dbopt.advisor.report import AdvisorReport

__all__ = ["IndexAdvisor"]


class IndexAdvisor:
    """Recommend indexes for a workload, priced on the database itself.

    ``target`` is a SQLAlchemy ``Engine``/URL or a libpq connection string.
    The advisor is read-only: hypothetical indexes (hypopg) live in its own
    session; without hypopg it uses statistics, or, when ``real_indexes`` is
    True, builds real indexes inside a transaction that is always rolled
    back, only on tables up to ``real_index_max_table_bytes``; tables of
    more than ``real_index_sample_rows`` rows are priced on a sampled copy
    (see :class:`~dbopt.advisor.evaluate.RealIndexEvaluator`). It never
    creates an extension unless ``install_hypopg`` is True.

    Selection: at most ``max_indexes`` indexes and ``max_total_bytes``
    (estimated built sizes, B-tree deduplication included); each index
    must save at least ``min_saving`` (0..1, default 0.3 %) of the whole
    workload's cost, net of its write overhead: rows inserted, updated
    (non-HOT, and HOT updates it would prevent) and deleted in the
    workload's window (``write_window``, see :mod:`dbopt.advisor.writes`:
    by default the table counters only when they cover the same period as
    the workload), times ``write_scale``, at ``index_write_cost`` planner
    units per row. ``report.rejected`` says why each other candidate was
    not recommended.

    ``probe_risk`` (on by default) prices the nested-loop probes of a
    candidate on a large table with the heap pages they really read, not
    the planner's cached estimate (``probe_page_cost`` per page read, default
    ``seq_page_cost``; the cache that keeps pages between probes is
    ``probe_cache_bytes``, default ``shared_buffers``; see
    :mod:`dbopt.advisor.risk`).
    """

    def __init__(
        self,
        target: Engine | URL | str,
        *,
        max_indexes: int | None = 20,
        max_total_bytes: int | None = None,
        min_saving: float = 0.003,
        max_columns: int = 4,
        max_include: int = 3,
        partial_max_selectivity: float = 0.5,
        write_scale: float = 1.0,
        index_write_cost: float = 1.0,
        use_hypopg: bool = True,
        install_hypopg: bool = False,
        real_indexes: bool = False,
        real_index_max_table_bytes: int = 64 * 1024 * 1024,
        real_index_sample_rows: int | None = 100_000,
        findings: bool = True,
        existing: ExistingOptions | None = None,
        statement_timeout_ms: int = 10_000,
        verify_repeat: int = 3,
        write_window: str = "auto",
        probe_risk: bool = True,
        probe_page_cost: float | None = None,
        probe_cache_bytes: int | None = None,
    ) -> None:
        if not 0.0 <= min_saving <= 1.0 or not 0.0 < partial_max_selectivity <= 1.0:
            raise ConfigurationError("min_saving and partial_max_selectivity are shares (0..1)")
        if max_columns < 1 or max_include < 0 or (max_indexes is not None and max_indexes < 0):
            raise ConfigurationError("max_columns must be >= 1, max_include and max_indexes >= 0")
        if write_scale < 0 or index_write_cost < 0 or verify_repeat < 1:
            raise ConfigurationError("write_scale and index_write_cost must be >= 0")
        if write_window not in WRITE_WINDOWS:
            raise ConfigurationError(f"write_window must be one of {', '.join(WRITE_WINDOWS)}")
        if probe_page_cost is not None and probe_page_cost < 0:
            raise ConfigurationError("probe_page_cost must be >= 0")
        self.write_window = write_window
        self.probe_risk = probe_risk
        self.probe_page_cost = probe_page_cost
        self.probe_cache_bytes = probe_cache_bytes
        self.conninfo = conninfo(target, "IndexAdvisor")
        self.selection = SelectionOptions(
            max_indexes, max_total_bytes, min_saving, max_columns=max_columns
        )
        self._context: tuple[Any, ...] = ()
        self.candidate_options = CandidateOptions(
            max_columns, max_include, partial_max_selectivity=partial_max_selectivity
        )
        self.write_scale = write_scale
        self.index_write_cost = index_write_cost
        self.use_hypopg = use_hypopg
        self.install_hypopg = install_hypopg
        self.real_indexes = real_indexes
        self.real_index_max_table_bytes = real_index_max_table_bytes
        self.real_index_sample_rows = real_index_sample_rows
        self.findings = findings
        self.existing = existing or ExistingOptions()
        self.statement_timeout_ms = statement_timeout_ms
        self.verify_repeat = verify_repeat

    def _connect(self) -> psycopg.Connection[Any]:
        # not read-only: the real-index evaluator builds (and rolls back) indexes;
        # _evaluator() makes the session read-only for the other evaluators
        return connect(
            self.conninfo,
            "advisor",
            read_only=False,
            statement_timeout_ms=self.statement_timeout_ms,
            lock_timeout_ms=None,
            connect_timeout_s=10,
            settings={"client_min_messages": "warning"},
        )

    def advise(self, workload: Any, *, verify: bool = False) -> AdvisorReport:
        """Advise on ``workload`` (a QueryStats, ``"pg_stat_statements"``, SQL list or file).

        Statements that cannot be parsed or explained become ``report.errors``.
        ``verify=True`` then builds the recommendations in a transaction that
        is rolled back and measures every statement with EXPLAIN ANALYZE
        before and after (this executes the statements; writes are rolled
        back; the builds lock the tables against writes meanwhile).
        """
        started = time.perf_counter()
        notes: list[str] = []
        with self._connect() as conn:
            try:
                evaluator, catalog = self._evaluator(conn, notes)
                # the snapshot the index findings judge, read before any index is tried
                index_catalog = catalog.snapshot if self.findings else None
                if index_catalog is not None:
                    # how long the statistics cover (never reset: the database's age),
                    # so that IDX003 waits for them as LINT006 does
                    load_extra(conn, index_catalog, {"stats_period"})
                try:
                    wl = load_workload(workload, conn)
                    notes.extend(n for n in wl.notes if n not in notes)
                    report, targets = self._advise(conn, catalog, wl, evaluator, notes)
                finally:
                    evaluator.close()
            except psycopg.Error as exc:
                raise translate(exc, "index advisor failed") from exc
        if index_catalog is not None:
            report.findings = existing_findings(index_catalog, self.existing)
        if verify and report.recommendations:
            from dbopt.advisor.verify import measure

            report.measurements = measure(self.conninfo, report, targets, self.verify_repeat, notes)
        report.elapsed_s = time.perf_counter() - started
        return report

    def _risk(self, catalog: Catalog) -> RiskModel | None:
        """The repeated-probe pricing (see :mod:`dbopt.advisor.risk`), unless turned off."""
        if not self.probe_risk:
            return None
        return RiskModel.of(catalog, self.probe_page_cost, self.probe_cache_bytes)

    def _evaluator(self, conn: psycopg.Connection[Any], notes: list[str]) -> tuple[Any, Catalog]:
        catalog = load_catalog(conn)
        if self.use_hypopg and "hypopg" not in catalog.extensions and self.install_hypopg:
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
                notes.append("installed the hypopg extension (install_hypopg=True)")
                catalog = load_catalog(conn)
            except psycopg.Error as exc:
                notes.append(f"could not install hypopg: {str(exc).strip()}")
        if self.use_hypopg and "hypopg" in catalog.extensions:
            conn.execute("SET default_transaction_read_only = on")
            hypo = HypoEvaluator(conn, catalog, catalog.extensions["hypopg"], self._risk(catalog))
            return hypo, catalog
        if self.real_indexes:
            notes.append("hypopg not installed; building real indexes in a rolled-back transaction")
            return (
                RealIndexEvaluator(
                    conn,
                    catalog,
                    max_table_bytes=self.real_index_max_table_bytes,
                    sample_rows=self.real_index_sample_rows,
                    risk=self._risk(catalog),
                ),
                catalog,
            )
        conn.execute("SET default_transaction_read_only = on")
        if self.use_hypopg:
            notes.append("hypopg not installed; using heuristics")
        else:
            notes.append("hypopg disabled; using heuristics")
        return HeuristicEvaluator(conn, catalog), catalog

    def _advise(
        self,
        conn: psycopg.Connection[Any],
        catalog: Catalog,
        wl: Workload,
        evaluator: Any,
        notes: list[str],
    ) -> tuple[AdvisorReport, list[Target]]:
        errors: list[tuple[int | None, str, str]] = [(None, s, m) for s, m in wl.errors]
        skipped: dict[int, str] = {}
        targets: list[Target] = []
        writers: list[tuple[int, Any, PlanCost | None]] = []
        for i, stmt in enumerate(wl.statements):
            text, values = stmt.parse_text()
            analyzer = Analyzer(catalog, lambda oid: catalog.viewdef(conn, oid), values)
            try:
                shape = analyzer.analyze(text)
            except AnalysisError as exc:
                errors.append((i, stmt.sql, str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - one odd statement must not stop the rest
                errors.append((i, stmt.sql, f"cannot analyze: {type(exc).__name__}: {exc}"))
                continue
            for note in shape.notes:
                if note not in notes:
                    notes.append(note)
            if shape.kind == "other":
                skipped[i] = "not a query or data-modifying statement"
                continue
            mode = stmt.explain_mode(shape.params)
            if not shape.accesses:
                probe = Target(i, stmt, text, mode, shape.params, shape, frozenset())
                result = evaluator.costs([], [probe])[0]
                if isinstance(result, ExplainError):
                    errors.append((i, stmt.sql, f"cannot explain: {result}"))
                else:
                    skipped[i] = "no user tables" if not shape.tables else "no tables to index"
                    if shape.written:
                        writers.append((i, shape, result))
                continue
            if shape.written:
                writers.append((i, shape, None))
            tables = frozenset(catalog.root(a.relation).oid for a in shape.accesses)
            targets.append(Target(i, stmt, text, mode, shape.params, shape, tables))
        for rel in {catalog.root(a.relation).oid for t in targets for a in t.shape.accesses}:
            r = catalog.relations[rel]
            if not r.analyzed:
                notes.append(f"{r.qualified} has no statistics; run ANALYZE for better advice")
        base: dict[int, PlanCost] = {}
        good: list[Target] = []
        for t, result in zip(targets, evaluator.costs([], targets), strict=True):
            if isinstance(result, ExplainError):
                errors.append((t.index, t.stmt.sql, f"cannot explain: {result}"))
            else:
                base[t.index] = result
                good.append(t)
        window = self._window(catalog, wl, good, writers, base)
        dropped: list[Rejection] = []
        candidates = self._candidates(catalog, good, evaluator, notes, window, dropped)
        heuristic = None
        if isinstance(evaluator, HypoEvaluator):
            heuristic = HeuristicEvaluator(conn, catalog)
            for cand in candidates:
                cand.heuristic = cand.spec.method != "btree"  # hypopg has no GIN
        selector = Selector(
            evaluator,
            good,
            candidates,
            base,
            self.selection,
            heuristic,
            attributes=_attributes(catalog, good),
            variant=self._variant,
            sizer=self._estimate,
            reach=lambda cand: _reach(good, cand, catalog),
            reads=_reads(catalog, good),
        )
        selection = selector.run()
        if self.selection.max_total_bytes is not None:
            notes.append(f"selection under the byte budget: {selection.strategy}")
        candidates = [
            c for c in selector.cands.values() if not c.generated or c.id in selection.chosen
        ]
        for error in sorted({c.error for c in candidates if c.error is not None}):
            notes.append(f"candidate skipped: {error}")
        report = build_report(
            catalog, wl, good, candidates, selection, errors, skipped, notes, evaluator.method
        )
        labels = {c.id: c.spec.label(c.relation) for c in candidates}
        report.rejected = dropped + rejections(
            selector, candidates, selection, self.selection, labels
        )
        report.notes.extend(risk_notes(selector, selection, labels))
        report.errors = [
            AdvisorError(sql, message, wl.statements[i].line if i is not None else None)
            for i, sql, message in errors
        ]
        report.writes = self._writes_info(catalog, window, candidates)
        report.statements = _explain_unchanged(report, wl, candidates, report.rejected, labels)
        report.hotspots = find_hotspots(good, selector, selection, candidates)
        for spot in report.hotspots:
            note = f"hot, no index fixes it; dominated by {spot.dominant}"
            report.statements = [
                replace(r, reason=f"{note}. {r.reason}" if r.reason else note)
                if r.sql == spot.sql and r.status == "unchanged"
                else r
                for r in report.statements
            ]
        return report, good

    def _window(
        self,
        catalog: Catalog,
        wl: Workload,
        good: list[Target],
        writers: list[tuple[int, Any, PlanCost | None]],
        base: dict[int, PlanCost],
    ) -> WriteWindow:
        """The writes charged per table: the workload's window (see dbopt.advisor.writes)."""
        valid = {i.oid for i in catalog.indexes if i.valid}
        indexed = {
            (catalog.root(catalog.relations[s.table_oid]).oid, c)
            for oid, s in existing_specs(catalog).items()
            if oid in valid and s.table_oid in catalog.relations
            for c in s.columns
        }
        own: dict[int, TableWrites] = defaultdict(TableWrites)
        for i, shape, probed in writers:
            stmt = wl.statements[i]
            plan = probed if probed is not None else base.get(i)
            if stmt.rows > 0:
                rows = float(stmt.rows)
            elif plan is not None:
                rows = _plan_written_rows(plan.plan) * max(1, stmt.calls)
            else:
                continue
            for oid, kind in shape.written.items():
                w = own[oid]
                if kind == "insert":
                    w.inserted += rows
                elif kind == "delete":
                    w.deleted += rows
                else:
                    w.updated += rows
                    cols: set[str] = next(
                        (
                            c
                            for o, c in shape.updated.items()
                            if catalog.root(catalog.relations[o]).oid == oid
                        ),
                        set(),
                    )
                    if not any((oid, c) in indexed for c in cols):
                        w.hot_updated += rows  # no index on what it sets: it can be HOT
        tables = {catalog.root(a.relation).oid for t in good for a in t.shape.accesses}
        tables.update(own)
        return choose_window(self.write_window, catalog, wl, dict(own), tables)

    @staticmethod
    def _writes_info(
        catalog: Catalog, window: WriteWindow, candidates: list[Candidate]
    ) -> dict[str, Any]:
        tables = {c.relation.oid for c in candidates} | set(window.tables)
        return {
            "mode": window.mode,
            "reason": window.reason,
            "scale": window.scale,
            "charged": {
                catalog.relations[oid].qualified: w.to_dict()
                for oid, w in sorted(window.tables.items())
                if oid in catalog.relations and (w.inserted or w.updated or w.deleted)
            },
            "observed": observed(catalog, tables),
        }

    def _candidates(
        self,
        catalog: Catalog,
        targets: list[Target],
        evaluator: Any,
        notes: list[str],
        window: WriteWindow,
        dropped: list[Rejection],
    ) -> list[Candidate]:
        frequency: dict[tuple[int, tuple[str, str | None]], float] = defaultdict(float)
        updates: dict[int, list[tuple[float, set[str]]]] = defaultdict(list)
        preds: dict[str, PartialPred] = {}
        for t in targets:
            for access in t.shape.accesses:
                preds.update((p.text, p) for p in access.partial)
                root = catalog.root(access.relation).oid
                for key in [*access.eq, *access.join, *access.ranges, *(access.order or [])]:
                    frequency[(root, key.plain().ident)] += t.weight
            for oid, cols in t.shape.updated.items():
                root = catalog.root(catalog.relations[oid]).oid
                updates[root].append((t.weight, cols))
        existing = [
            (i, s)
            for i, s in existing_specs(catalog).items()
            if any(e.oid == i and e.valid for e in catalog.indexes)
        ]
        self._context = (catalog, updates, preds, window)
        unique_oids = {i.oid for i in catalog.indexes if i.unique and i.valid}
        unique = [(i, s) for i, s in existing if i in unique_oids]
        names = {i.oid: i.name for i in catalog.indexes}
        found: dict[tuple[object, ...], Candidate] = {}
        seen: set[tuple[object, ...]] = set()

        def drop(spec: IndexSpec, code: str, message: str) -> None:
            if spec.identity not in seen:
                seen.add(spec.identity)
                label = spec.label(catalog.relations[spec.table_oid])
                dropped.append(Rejection(label, code, message))

        varying = _varying_predicates(catalog, targets)
        for t in targets:
            for seen_access in t.shape.accesses:
                access = seen_access
                root = catalog.root(access.relation).oid
                if any(p.kind == "eq" and (root, p.column) in varying for p in access.partial):
                    access = replace(
                        access,
                        partial=[
                            p
                            for p in access.partial
                            if p.kind != "eq" or (root, p.column) not in varying
                        ],
                    )
                for spec in candidates_for(access, catalog, frequency, self.candidate_options):
                    cover = next((i for i, s in existing if s.covers(spec)), None)
                    if cover is not None:
                        drop(spec, "covered", f"covered by the existing index {names[cover]}")
                        continue
                    lookup = next((i for i, s in existing if _same_lookup(s, spec, access)), None)
                    if lookup is not None and spec.identity not in found:
                        drop(
                            spec,
                            "covered",
                            f"the existing index {names[lookup]} has the same columns in "
                            "another order, and the statement compares them all with =",
                        )
                        continue
                    on_leaves = _partitions_cover(spec, catalog, existing)
                    if on_leaves:
                        shown = ", ".join(names[i] for i in on_leaves[:3])
                        more = f" (+{len(on_leaves) - 3} more)" if len(on_leaves) > 3 else ""
                        drop(
                            spec,
                            "covered",
                            f"every partition already has such an index: {shown}{more}",
                        )
                        continue
                    probe = next(
                        (
                            i
                            for i, s in unique
                            if (spec.include and _unique_probe(s, spec))
                            or _unique_probe(s, spec, proper=True)
                        ),
                        None,
                    )
                    if probe is not None:
                        drop(
                            spec,
                            "covered",
                            f"the unique index {names[probe]} already finds at most one row",
                        )
                        continue
                    cand = found.get(spec.identity)
                    if cand is None:
                        rel = catalog.relations[spec.table_oid]
                        cand = Candidate(len(found), spec, rel)
                        cand.write_cost = self._write_cost(spec, catalog, updates, preds, window)
                        cand.estimated_bytes = self._estimate(spec)
                        found[spec.identity] = cand
        for cand in found.values():
            cand.targets.update(_reach(targets, cand, catalog))
        out = list(found.values())
        if isinstance(evaluator, RealIndexEvaluator):
            too_big = {c.relation.qualified for c in out if not evaluator.eligible(c.relation)}
            for name in sorted(too_big):
                notes.append(f"{name} is larger than real_index_max_table_bytes; not evaluated")
            for c in out:
                if not evaluator.eligible(c.relation):
                    drop(
                        c.spec,
                        "not_evaluated",
                        "its table is larger than real_index_max_table_bytes",
                    )
            out = [c for c in out if evaluator.eligible(c.relation)]
        return out

    def _variant(self, spec: IndexSpec, _base: Candidate) -> float:
        """Write cost of a candidate the selection derived from another one."""
        catalog, updates, preds, window = self._context
        return self._write_cost(spec, catalog, updates, preds, window)

    def _estimate(self, spec: IndexSpec) -> int | None:
        """Built size of a B-tree candidate with deduplication (None for other methods)."""
        catalog, _, preds, _ = self._context
        if spec.method != "btree":
            return None
        rel = catalog.relations[spec.table_oid]
        return btree_size(spec, rel, catalog, _fraction(spec, rel, preds))

    def _write_cost(
        self,
        spec: IndexSpec,
        catalog: Catalog,
        updates: dict[int, list[tuple[float, set[str]]]],
        preds: dict[str, PartialPred],
        window: WriteWindow,
    ) -> float:
        """Planner units an index costs to maintain over the workload's window."""
        rel = catalog.relations[spec.table_oid]
        per_row = self.index_write_cost * (3.0 if spec.method == "gin" else 1.0)
        fraction = _fraction(spec, rel, preds)
        writes = window.writes(rel.oid)
        calls = sum(w for w, _ in updates.get(rel.oid, []))
        hitting = sum(w for w, cols in updates.get(rel.oid, []) if cols & spec.columns)
        hot_prevented = writes.hot_updated * (hitting / calls if calls else 0.0)
        others = len([i for i in catalog.indexes_on(rel.oid) if i.valid])
        rows = writes.inserted + (writes.updated - writes.hot_updated) + hot_prevented
        cost = fraction * per_row * (rows + 0.1 * writes.deleted)
        cost += hot_prevented * others * self.index_write_cost
        return self.write_scale * cost


def _partitions_cover(
    spec: IndexSpec, catalog: Catalog, existing: list[tuple[int, IndexSpec]]
) -> list[int]:
    """The partition indexes that cover ``spec`` when every leaf partition has one ([] if not).

    Indexes created on each partition (Pagila's ``idx_fk_payment_p2022_01_customer_id``
    ...) serve a partitioned table as a parent index would; matched by definition.
    """
    rel = catalog.relations[spec.table_oid]
    if rel.kind != "p":
        return []
    leaves = [leaf for leaf in catalog.leaves(rel) if leaf.kind == "r"]
    if not leaves:
        return []
    found = []
    for leaf in leaves:
        mine = replace(spec, table_oid=leaf.oid)
        hit = next((i for i, s in existing if s.table_oid == leaf.oid and s.covers(mine)), None)
        if hit is None:
            return []
        found.append(hit)
    return found


def _same_lookup(existing: IndexSpec, spec: IndexSpec, access: Any) -> bool:
    """True if ``existing`` leads with ``spec``'s key columns in another order and the
    access compares every one of them with ``=`` (a filter or a join).

    Equality on all the keys finds the same entries whatever their order:
    Chinook's ``playlist_track (track_id, playlist_id)`` next to its primary key
    ``(playlist_id, track_id)`` only looked cheaper to the planner.
    """
    if (
        existing.table_oid != spec.table_oid
        or existing.method != "btree"
        or spec.method != "btree"
        or spec.include
        or existing.predicate != spec.predicate
        or len(existing.keys) < len(spec.keys)
    ):
        return False
    equal = {k.columns[0] for k in [*access.eq, *access.join] if k.is_column}
    mine = [k for k in spec.keys if k.is_column and not k.opclass and not k.desc]
    if len(mine) != len(spec.keys) or not {k.columns[0] for k in mine} <= equal:
        return False
    lead = existing.keys[: len(spec.keys)]
    if any(not k.is_column or k.opclass for k in lead):
        return False
    return {k.columns[0] for k in lead} == {k.columns[0] for k in mine}


def _varying_predicates(catalog: Catalog, targets: list[Target]) -> set[tuple[int, str]]:
    """(table, column) pairs whose equality value is not the same across the workload.

    A partial index ``WHERE col = 'x'`` only pays when every call filters on
    that value: if another statement compares ``col`` with another value or
    a parameter, or the statement was merged from calls with other literals,
    a plain index on ``col`` serves them all.
    """
    values: dict[tuple[int, str], set[str]] = defaultdict(set)
    uses: dict[tuple[int, str], int] = defaultdict(int)
    fixed: dict[tuple[int, str], int] = defaultdict(int)
    for t in targets:
        for access in t.shape.accesses:
            root = catalog.root(access.relation).oid
            eq_cols = {k.columns[0] for k in access.eq if k.is_column}
            for col in eq_cols:
                uses[(root, col)] += 1
            if t.stmt.varying_literals:
                continue  # calls with other literals: no value is constant
            for p in access.partial:
                if p.kind == "eq" and p.column in eq_cols:
                    values[(root, p.column)].add(p.text)
                    fixed[(root, p.column)] += 1
    return {key for key in uses if len(values.get(key, ())) > 1 or fixed[key] < uses[key]}


def _fraction(spec: IndexSpec, rel: Any, preds: dict[str, PartialPred]) -> float:
    """Share of the table's rows a (partial) index holds."""
    if spec.predicate is None:
        return 1.0
    pred = preds.get(spec.predicate)
    col = rel.columns.get(pred.column) if pred is not None else None
    share = selectivity(pred, col) if pred is not None else None
    return share if share is not None else 0.5


def _attributes(catalog: Catalog, targets: list[Target]) -> dict[int, list[KeyElem]]:
    """Per table, the keys the workload filters, joins, groups or sorts on (most used first)."""
    weight: dict[int, dict[tuple[str, str | None], float]] = defaultdict(dict)
    keys: dict[int, dict[tuple[str, str | None], KeyElem]] = defaultdict(dict)
    for t in targets:
        for access in t.shape.accesses:
            root = catalog.root(access.relation).oid
            for key in [
                *access.eq,
                *access.join,
                *access.ranges,
                *(access.order or []),
                *(access.group or []),
            ]:
                k = key.plain()
                keys[root].setdefault(k.ident, k)
                weight[root][k.ident] = weight[root].get(k.ident, 0.0) + t.weight
    return {
        oid: sorted(found.values(), key=lambda k, oid=oid: -weight[oid][k.ident])  # type: ignore[misc]
        for oid, found in keys.items()
    }


def _plan_written_rows(plan: Any) -> float:
    """Rows the ModifyTable nodes of a JSON plan are estimated to write."""
    if not plan:
        return 0.0
    total = 0.0
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        children = node.get("Plans", ())
        if node.get("Node Type") == "ModifyTable" and children:
            total += float(children[0].get("Plan Rows", 0.0))
        stack.extend(children)
    return total


def _explain_unchanged(
    report: AdvisorReport,
    wl: Workload,
    candidates: list[Candidate],
    rejected: list[Rejection],
    labels: dict[int, str],
) -> list[Any]:
    """Statements no recommendation improves, with the reasons of their candidates."""
    by_label = {r.label: r for r in rejected}
    if len(report.statements) != len(wl.statements):
        return report.statements
    out = []
    for pos, result in enumerate(report.statements):
        if result.status != "unchanged" or result.reason:
            out.append(result)
            continue
        before, after = result.cost_before, result.cost_after
        if result.indexes and before and after and after > 1.05 * before:
            # the planner picks a recommended index for it that its own estimate
            # favours and the data does not (see evaluate._prefix_limit)
            out.append(
                replace(
                    result,
                    reason=f"slower with {', '.join(result.indexes)}, which the planner "
                    f"would choose for it: cost {before:,.0f} -> {after:,.0f}",
                )
            )
            continue
        reasons = [
            f"{labels[c.id]} {by_label[labels[c.id]].message}"
            for c in candidates
            if pos in c.targets and labels[c.id] in by_label
        ]
        if reasons:
            text = "; ".join(reasons[:3]) + (
                f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
            )
        else:
            text = "no candidate index for its predicates, joins or order"
        out.append(replace(result, reason=text))
    return out


def _unique_probe(unique: IndexSpec, spec: IndexSpec, proper: bool = False) -> bool:
    """True if ``spec``'s keys (a proper prefix of them) hold all keys of a unique index.

    Such an index finds at most one row per probe: more keys, or INCLUDE columns,
    only save that one heap fetch.
    """
    if unique.table_oid != spec.table_oid or unique.predicate is not None:
        return False
    keys = spec.keys[:-1] if proper else spec.keys
    idents = {k.ident for k in keys}
    return all(k.ident in idents for k in unique.keys)


def _reads(catalog: Catalog, targets: list[Target]) -> dict[tuple[int, int], set[str] | None]:
    """Per (target, table): the columns the statement reads there (None: every column)."""
    out: dict[tuple[int, int], set[str] | None] = {}
    for t in targets:
        for access in t.shape.accesses:
            key = (t.index, catalog.root(access.relation).oid)
            have = out.get(key, set())
            if have is None or access.referenced is None:
                out[key] = None
            else:
                out[key] = have | access.referenced
    return out


def _reach(targets: list[Target], cand: Candidate, catalog: Catalog) -> set[int]:
    """The statements whose plans may use ``cand``."""
    lead = cand.spec.keys[0].ident
    return {
        t.index
        for t in targets
        if cand.relation.oid in t.tables and _may_use(t, cand, lead, catalog)
    }


def _may_use(t: Target, cand: Candidate, lead: tuple[str, str | None], catalog: Catalog) -> bool:
    """True if ``t`` filters, joins, groups or sorts on ``lead``, or ``cand`` covers its reads.

    A B-tree holding every column a statement reads from the table can serve
    it by a full index-only scan, whatever its leading column.
    """
    for access in t.shape.accesses:
        if catalog.root(access.relation).oid != cand.relation.oid:
            continue
        if cand.spec.method == "gin":
            col = cand.spec.keys[0].columns[0]
            if col in {c for c, _ in access.gin} or col in access.trigram:
                return True
            continue
        keys = [
            *access.eq,
            *access.join,
            *access.ranges,
            *access.alternatives,
            *(access.order or []),
            *(access.group or []),
        ]
        if any(k.plain().ident == lead for k in keys):
            return True
        if (
            cand.spec.method == "btree"
            and cand.spec.predicate is None
            and access.referenced
            and access.referenced <= cand.spec.columns
        ):
            return True
    return False
