"""Price statements under a set of indexes: hypothetical (hypopg) or real, rolled back.

An evaluator answers one question: what does EXPLAIN say each statement
costs when exactly these candidate indexes exist (next to the real ones)?
:class:`HypoEvaluator` uses hypopg (nothing is written; hypothetical indexes
live in the advisor's own session). :class:`RealIndexEvaluator` builds real
indexes inside a savepoint that is always rolled back; it is opt-in because
the build holds a SHARE lock on the table while it runs.
"""

from __future__ import annotations

import contextlib
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import psycopg

from dbopt.advisor.analyze import StatementShape
from dbopt.advisor.catalog import Catalog, Relation
from dbopt.advisor.ddl import reusable_index
from dbopt.advisor.model import IndexSpec, KeyElem
from dbopt.advisor.risk import ProbeRisk, RiskModel, probe_risks
from dbopt.advisor.workload import WorkloadStatement
from dbopt.postgres.render import ident, qualified

__all__ = [
    "CandidateError",
    "ExplainError",
    "HypoEvaluator",
    "PlanCost",
    "RealIndexEvaluator",
    "Target",
    "explain",
    "plan_cost",
]

_HYPO_NAME = re.compile(r"<(\d+)>")
_PREPARED = "dbopt_advisor_stmt"


@dataclass
class Target:
    """A statement ready to be explained, with its analyzed shape."""

    index: int
    stmt: WorkloadStatement
    text: str
    mode: str
    nparams: int
    shape: StatementShape
    tables: frozenset[int]

    @property
    def weight(self) -> float:
        """How much one unit of plan cost of this statement counts: its calls."""
        return float(max(1, self.stmt.calls))


@dataclass(frozen=True)
class PlanCost:
    """Total plan cost and the candidate ids the plan uses.

    ``risks``: repeated probes of candidate indexes priced above the
    planner's estimate (see :mod:`dbopt.advisor.risk`); ``cost`` includes
    their extra, ``planner_cost`` is EXPLAIN's own total.
    """

    cost: float
    used: frozenset[int]
    plan: Any = None
    risks: tuple[ProbeRisk, ...] = ()

    @property
    def planner_cost(self) -> float:
        """The plan's cost as EXPLAIN gave it, without the probe risk."""
        return self.cost - sum(r.extra for r in self.risks)


class ExplainError(Exception):
    """EXPLAIN of a workload statement failed."""


class CandidateError(Exception):
    """A candidate index cannot be created (hypothetically or for real)."""

    def __init__(self, candidate: int, message: str) -> None:
        super().__init__(message)
        self.candidate = candidate


def explain(conn: psycopg.Connection[Any], target: Target, options: str = "FORMAT JSON") -> Any:
    """``EXPLAIN (options)`` of ``target`` on ``conn``; raises :class:`ExplainError`."""
    try:
        if target.mode == "plain":
            row = conn.execute(f"EXPLAIN ({options}) {target.stmt.sql}").fetchone()
        elif target.mode == "params":
            params = target.stmt.params
            if isinstance(params, (list, tuple)) and params and isinstance(params[0], (dict, list)):
                params = params[0]
            row = conn.execute(f"EXPLAIN ({options}) {target.stmt.sql}", params).fetchone()
        else:
            row = _explain_prepared(conn, target, options)
    except psycopg.Error as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExplainError(message) from exc
    if row is None:
        raise ExplainError("EXPLAIN returned nothing")
    if "ANALYZE" not in options.upper():
        _prefix_limit(conn, target, row[0])
    return row[0]


_LIKE_PREFIX = re.compile(r"""\(*"?(\w+)"?\)?(?:::[\w ]+)?\s+~~\s+'((?:[^'%_\\]|'')+)%'""")


def _prefix_limit(conn: psycopg.Connection[Any], target: Target, plan: Any) -> None:
    """Re-cost ``ORDER BY col LIMIT n`` over an index scan in ``col`` order filtering
    ``col LIKE 'prefix%'`` (in place; the top node's total cost).

    The planner expects the filter's matches spread evenly along the index
    order and stops after ``n / selectivity`` rows; but the rows matching a
    prefix of ``col`` are contiguous in ``col`` order, after every row that
    sorts before the prefix. Without this, a plain index on ``col`` (which
    cannot serve ``LIKE`` outside the C collation) looks like it fixes the
    statement and makes it ten times slower (Chinook's track search). The
    scan is charged the share of the index it passes, from the column's
    histogram.
    """
    top = plan[0]["Plan"]
    stack = [top]
    while stack:
        node = stack.pop()
        children = node.get("Plans", ())
        stack.extend(children)
        if node.get("Node Type") != "Limit" or len(children) != 1:
            continue
        scan = children[0]
        if scan.get("Node Type") not in ("Index Scan", "Index Only Scan"):
            continue
        if scan.get("Index Cond") or not scan.get("Filter"):
            continue
        m = _LIKE_PREFIX.search(str(scan["Filter"]))
        if m is None:
            continue
        column, prefix = m.group(1), m.group(2).replace("''", "'")
        access = next(
            (
                a
                for a in target.shape.accesses
                if a.relation.name == scan.get("Relation Name")
                and a.order
                and a.order[0].columns == (column,)
            ),
            None,
        )
        if access is None:
            continue
        rel = access.relation
        row = conn.execute(
            "SELECT (SELECT count(*) FROM unnest(histogram_bounds::text::text[]) b"
            " WHERE b < %s)::float8 / array_length(histogram_bounds::text::text[], 1)"
            " FROM pg_stats WHERE schemaname = %s AND tablename = %s AND attname = %s"
            " AND histogram_bounds IS NOT NULL",
            (prefix, rel.schema, rel.name, column),
        ).fetchone()
        if row is None or row[0] is None:
            continue
        before = float(row[0])
        share = before if scan.get("Scan Direction") != "Backward" else 1.0 - before
        start, total = float(scan["Startup Cost"]), float(scan["Total Cost"])
        wanted = start + share * (total - start)
        if wanted > float(node["Total Cost"]):
            delta = wanted - float(node["Total Cost"])
            node["Total Cost"] = wanted
            if node is not top:
                top["Total Cost"] = float(top["Total Cost"]) + delta


def _explain_prepared(conn: psycopg.Connection[Any], target: Target, options: str) -> Any:
    global _COUNTER  # noqa: PLW0603 - a process-wide counter for unique statement names
    _COUNTER += 1
    name = f"{_PREPARED}_{_COUNTER}"
    _prepare(conn, name, target)
    try:
        if target.mode == "generic":
            conn.execute("SET plan_cache_mode = force_generic_plan")
            args = ", ".join(["NULL"] * target.nparams)
            call = f"EXECUTE {name}({args})" if target.nparams else f"EXECUTE {name}"
            return conn.execute(f"EXPLAIN ({options}) {call}").fetchone()
        conn.execute("SET plan_cache_mode = force_custom_plan")
        params = list(target.stmt.params or ())
        args = ", ".join(["%s"] * len(params))
        return conn.execute(f"EXPLAIN ({options}) EXECUTE {name}({args})", params).fetchone()
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.execute(f"DEALLOCATE {name}")


_COUNTER = 0
_NO_FUNCTION = re.compile(
    r'function ((?:"[^"]+"|[\w$]+)(?:\.(?:"[^"]+"|[\w$]+))?)\((.*)\) does not exist'
)
# statement text -> parameter type list that made it PREPARE (see _prepare)
_PARAM_TYPES: dict[tuple[str, str, str], str] = {}


def _prepare(conn: psycopg.Connection[Any], name: str, target: Target) -> None:
    """``PREPARE name AS text``; retried with one parameter typed when that resolves it.

    An untyped parameter that only flows through a CTE or subquery output
    (PostgREST's ``WITH pgrst_payload AS (SELECT $1 AS json_data)``) is
    resolved as ``text``, and then ``json_typeof(json_data)`` does not exist.
    The application binds it with a type of its own; here, when the only
    function of that name and arity takes other types for the text
    arguments, each parameter is tried in turn with those types (the others
    left to inference, ``unknown``) until the statement prepares.
    """
    key = (conn.info.host, conn.info.dbname, target.text)
    known = _PARAM_TYPES.get(key)
    if known is not None:
        conn.execute(f"PREPARE {name}({known}) AS {target.text}")
        return
    savepoint = conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    if savepoint:
        conn.execute("SAVEPOINT dbopt_prepare")
    try:
        conn.execute(f"PREPARE {name} AS {target.text}")
    except psycopg.Error as exc:
        if savepoint:
            conn.execute("ROLLBACK TO SAVEPOINT dbopt_prepare")
        for types in _typed_retries(conn, exc, target.nparams):
            if savepoint:
                conn.execute("SAVEPOINT dbopt_prepare")
            try:
                conn.execute(f"PREPARE {name}({types}) AS {target.text}")
            except psycopg.Error:
                if savepoint:
                    conn.execute("ROLLBACK TO SAVEPOINT dbopt_prepare")
                continue
            if savepoint:
                conn.execute("RELEASE SAVEPOINT dbopt_prepare")
            _PARAM_TYPES[key] = types
            return
        raise exc from None
    if savepoint:
        conn.execute("RELEASE SAVEPOINT dbopt_prepare")


def _typed_retries(conn: psycopg.Connection[Any], exc: psycopg.Error, nparams: int) -> list[str]:
    """Parameter type lists to try after ``function f(text, ...) does not exist``."""
    m = _NO_FUNCTION.search(str(exc))
    if m is None or nparams == 0:
        return []
    args = [a.strip() for a in m.group(2).split(",")] if m.group(2).strip() else []
    if "text" not in args:
        return []
    name = m.group(1).split(".")[-1].strip('"')
    rows = conn.execute(
        "SELECT array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) t)"
        " FROM pg_proc p WHERE p.proname = %s AND p.pronargs = %s"
        " AND pg_function_is_visible(p.oid)",
        (name, len(args)),
    ).fetchall()
    if len(rows) != 1:
        return []
    wanted = {t for a, t in zip(args, rows[0][0], strict=True) if a == "text" and t != "text"}
    if len(wanted) != 1:
        return []
    (typ,) = wanted
    if not re.fullmatch(r"[\w .\[\]]+", typ):
        return []
    out = []
    for i in range(min(nparams, 32)):
        types = ["unknown"] * nparams
        types[i] = typ
        out.append(", ".join(types))
    return out


def plan_cost(
    plan: Any,
    names: dict[str, int],
    risk: RiskModel | None = None,
    specs: dict[int, IndexSpec] | None = None,
) -> PlanCost:
    """Total cost of a JSON plan and the candidates (by index name) it uses.

    With ``risk`` (and the candidates' ``specs``), repeated probes of a
    candidate that the planner prices too low add their extra cost.
    """
    top = plan[0]["Plan"]
    used: set[int] = set()
    stack = [top]
    while stack:
        node = stack.pop()
        name = node.get("Index Name")
        if name is not None:
            m = _HYPO_NAME.match(name)
            key = m.group(1) if m else name
            if key in names:
                used.add(names[key])
        stack.extend(node.get("Plans", ()))
    risks: tuple[ProbeRisk, ...] = ()
    if risk is not None and specs and used:
        risks = tuple(probe_risks(risk, plan, names, specs))
    extra = sum(r.extra for r in risks)
    return PlanCost(float(top["Total Cost"]) + extra, frozenset(used), plan, risks)


def index_ddl(spec: IndexSpec, rel: Relation, name: str | None = None) -> str:
    """A plain ``CREATE INDEX`` for ``spec`` (no CONCURRENTLY) for evaluation."""
    head = f"CREATE INDEX {ident(name, force=True)}" if name else "CREATE INDEX"
    return f"{head} ON {qualified(rel.schema, rel.name, force=True)} {spec.body()}"


class HypoEvaluator:
    """Hypothetical indexes through hypopg, in the advisor's own session."""

    method = "hypopg"

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        catalog: Catalog,
        schema: str,
        risk: RiskModel | None = None,
    ) -> None:
        self.conn = conn
        self.catalog = catalog
        self.risk = risk
        self.fn = f"{ident(schema, force=True)}."
        self.sizes: dict[int, int] = {}
        self.live: dict[int, int] = {}  # candidate id -> hypothetical index oid
        self.conn.execute(f"SELECT {self.fn}hypopg_reset()")

    def costs(
        self, config: Sequence[tuple[int, IndexSpec]], targets: Sequence[Target]
    ) -> list[PlanCost | ExplainError]:
        """Cost of each target with exactly ``config`` hypothetical indexes present.

        The hypothetical indexes of the previous call are kept and only the
        difference is dropped and created.
        """
        wanted = {cid for cid, _ in config}
        for cid in [c for c in self.live if c not in wanted]:
            oid = self.live.pop(cid)
            self.conn.execute(f"SELECT {self.fn}hypopg_drop_index(%s)", (oid,))
        names: dict[str, int] = {str(oid): cid for cid, oid in self.live.items()}
        for cid, spec in config:
            if cid in self.live:
                continue
            rel = self.catalog.relations[spec.table_oid]
            priced = spec
            if rel.kind == "p" and spec.predicate is not None and spec.predicate_columns:
                # hypopg cannot match a partial index's predicate through a partitioned
                # parent; price it as the full index led by the predicate's column, which
                # serves the same scans, and size it as the partial index it is.
                lead = KeyElem.column(spec.predicate_columns[0])
                priced = IndexSpec(spec.table_oid, spec.method, (lead, *spec.keys), spec.include)
            oid = self._create(cid, index_ddl(priced, rel))
            self.live[cid] = oid
            names[str(oid)] = cid
            if cid not in self.sizes:
                self.sizes[cid] = self._size(oid, spec, rel)
        specs = dict(config)
        out: list[PlanCost | ExplainError] = []
        for target in targets:
            try:
                out.append(plan_cost(explain(self.conn, target), names, self.risk, specs))
            except ExplainError as exc:
                out.append(exc)
        return out

    def _create(self, cid: int, ddl: str) -> int:
        try:
            row = self.conn.execute(
                f"SELECT indexrelid FROM {self.fn}hypopg_create_index(%s)", (ddl,)
            ).fetchone()
        except psycopg.Error as exc:
            raise CandidateError(cid, str(exc).strip().splitlines()[0]) from exc
        if row is None:
            raise CandidateError(cid, "hypopg created no index")
        return int(row[0])

    def _size(self, oid: int, spec: IndexSpec, rel: Relation) -> int:
        """hypopg's size estimate; summed over the leaf partitions of a partitioned table.

        Partitions whose matching index would be attached, not built, add nothing.
        """
        fn = self.fn
        if rel.kind != "p":
            row = self.conn.execute(f"SELECT {fn}hypopg_relation_size(%s)", (oid,)).fetchone()
            return int(row[0]) if row and row[0] is not None else 0
        total = 0
        for leaf in self.catalog.leaves(rel):
            if leaf.kind != "r" or reusable_index(spec, leaf, self.catalog) is not None:
                continue
            row = self.conn.execute(
                f"SELECT indexrelid FROM {fn}hypopg_create_index(%s)", (index_ddl(spec, leaf),)
            ).fetchone()
            if row is None:
                continue
            size = self.conn.execute(f"SELECT {fn}hypopg_relation_size(%s)", (row[0],)).fetchone()
            self.conn.execute(f"SELECT {fn}hypopg_drop_index(%s)", (row[0],))
            total += int(size[0]) if size and size[0] is not None else 0
        return total

    def size(self, cid: int) -> int | None:
        """Estimated size in bytes, known once the candidate was created."""
        return self.sizes.get(cid)

    def close(self) -> None:
        """Drop every hypothetical index of the session."""
        self.live.clear()
        with contextlib.suppress(psycopg.Error):
            self.conn.execute(f"SELECT {self.fn}hypopg_reset()")


@dataclass
class _Sample:
    """A sampled copy of a large table (and its partitions) in the session's temp schema."""

    fraction: float
    rows: float
    names: frozenset[str]  # the copied relations' names (the same in both schemas)
    schema: str  # the real table's schema


class RealIndexEvaluator:
    """Real indexes built inside a transaction that is always rolled back.

    Each candidate is built once, the first time a configuration needs it,
    and stays until :meth:`close` rolls everything back; a configuration is
    priced inside a savepoint that drops the built indexes it does not
    contain (a catalog change, no rebuild) and is rolled back after the
    EXPLAINs. Only tables up to ``max_table_bytes`` are eligible; each build
    holds a SHARE lock on its table (writes wait) until the advisor is done,
    and waits at most ``lock_timeout_ms`` for it; the drops hold an ACCESS
    EXCLUSIVE lock only while one configuration is explained.

    Tables with more than ``sample_rows`` rows are not indexed for real: a
    Bernoulli sample of about ``sample_rows`` rows is copied into a temporary
    table of the same name (partitioned as the original, with its indexes),
    which the session's search path finds first, and the candidates are
    built there. A statement on such a table is priced as its real cost
    without the table's candidates times the ratio the candidates give on
    the sample (``with / without``, both explained on the sample). A
    statement that reaches the table other than by its unqualified name
    (schema-qualified, through a view) falls back to a real build, or, on a
    table over ``max_table_bytes``, is priced without that table's candidates.
    """

    method = "real"

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        catalog: Catalog,
        *,
        max_table_bytes: int,
        lock_timeout_ms: int = 1000,
        sample_rows: int | None = None,
        risk: RiskModel | None = None,
    ) -> None:
        self.conn = conn
        self.catalog = catalog
        self.risk = risk
        self.max_table_bytes = max_table_bytes
        self.sample_rows = sample_rows
        self.sizes: dict[int, int] = {}
        self.built: dict[int, tuple[str, list[str]]] = {}  # cid -> (qualified name, all names)
        self.failed: dict[int, str] = {}
        self.samples: dict[int, _Sample | None] = {}  # root oid -> its sampled copy
        self.sample_built: dict[int, tuple[str, list[str]]] = {}
        self.sample_failed: dict[int, str] = {}
        self.sample_ok: dict[int, bool] = {}  # target index -> reaches the copies
        self.sample_base: dict[tuple[int, frozenset[int]], PlanCost | ExplainError] = {}
        self.temp_schema: str | None = None
        self.tables: dict[int, int] = {}  # built cid -> root table oid
        self.real_plain: dict[tuple[int, frozenset[int]], PlanCost | ExplainError] = {}
        conn.execute("BEGIN")
        conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
        row = conn.execute("SELECT current_setting('search_path')").fetchone()
        self.search_path = str(row[0]) if row else "public"

    def eligible(self, rel: Relation) -> bool:
        """True if ``rel`` is small enough to build indexes on, or is priced on a sample."""
        return rel.size_bytes <= self.max_table_bytes or self._sampleable(rel)

    def _sampleable(self, rel: Relation) -> bool:
        if self.sample_rows is None:
            return False
        root = self.catalog.root(rel)
        leaves = self.catalog.leaves(root)
        if any(leaf.kind != "r" for leaf in leaves) or root.kind not in ("r", "p"):
            return False
        return sum(leaf.reltuples for leaf in leaves) > self.sample_rows

    def sampled(self, oid: int) -> _Sample | None:
        """The sampled copy of root table ``oid`` (made on first use), None if not sampled."""
        if oid in self.samples:
            return self.samples[oid]
        rel = self.catalog.relations[oid]
        sample = None
        if self._sampleable(rel):
            taken = {n for s in self.samples.values() if s is not None for n in s.names}
            sample = self._copy(rel, taken)
        self.samples[oid] = sample
        return sample

    def _copy(self, rel: Relation, taken: set[str]) -> _Sample | None:
        """Copy a sample of ``rel`` (and its partition tree) into the temp schema."""
        conn = self.conn
        rows = sum(leaf.reltuples for leaf in self.catalog.leaves(rel))
        fraction = min(1.0, float(self.sample_rows or 0) / max(rows, 1.0))
        conn.execute("SAVEPOINT dbopt_sample")
        try:
            leaves: list[tuple[str, str, bool]] = []
            names = self._copy_tree(rel.oid, None, None, leaves)
            if names & taken:
                raise psycopg.errors.DuplicateTable("a copy of that name exists")
            for temp, source, frozen in leaves:
                # COPY ... FREEZE into a table created in this subtransaction marks its
                # pages all-visible, as VACUUM left the original's: index-only scans
                # are then priced alike
                cur = conn.cursor()
                with cur.copy(
                    f"COPY (SELECT * FROM {source} TABLESAMPLE BERNOULLI"
                    f" ({100.0 * fraction!r}) REPEATABLE (7)) TO STDOUT"
                ) as out:
                    data = b"".join(bytes(chunk) for chunk in out)
                freeze = " (FREEZE)" if frozen else ""
                with cur.copy(f"COPY {temp} FROM STDIN{freeze}") as into:
                    into.write(data)
            temp = qualified("pg_temp", rel.name, force=True)
            conn.execute(f"ANALYZE {temp}")
            row = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()"
            ).fetchone()
        except psycopg.Error:
            conn.execute("ROLLBACK TO SAVEPOINT dbopt_sample")
            conn.execute("RELEASE SAVEPOINT dbopt_sample")
            return None
        conn.execute("RELEASE SAVEPOINT dbopt_sample")
        self.temp_schema = str(row[0]) if row else "pg_temp"
        # the real world: the temp copies are found after the real tables
        conn.execute(
            "SELECT set_config('search_path', %s, true)", (f"{self.search_path}, pg_temp",)
        )
        return _Sample(fraction, rows, frozenset(names), rel.schema)

    def _copy_tree(
        self, oid: int, parent: str | None, bound: str | None, leaves: list[tuple[str, str, bool]]
    ) -> set[str]:
        """Create the temp copy of ``oid``'s partition tree; ``leaves`` gets what to fill."""
        conn = self.conn
        rel = self.catalog.relations[oid]
        row = conn.execute(
            "SELECT c.relkind, pg_get_partkeydef(c.oid),"
            " c.relallvisible >= 0.5 * greatest(c.relpages, 1) FROM pg_class c WHERE c.oid = %s",
            (oid,),
        ).fetchone()
        if row is None:
            raise psycopg.errors.UndefinedTable(rel.qualified)
        kind, keydef, visible = row
        name = qualified("pg_temp", rel.name, force=True)
        source = qualified(rel.schema, rel.name, force=True)
        tail = f" PARTITION BY {keydef}" if kind == "p" else ""
        if parent is None:
            like = f"(LIKE {source} INCLUDING INDEXES INCLUDING STATISTICS)"
            conn.execute(f"CREATE TEMP TABLE {name} {like}{tail}")
        else:
            conn.execute(f"CREATE TEMP TABLE {name} PARTITION OF {parent} {bound}{tail}")
        names = {rel.name}
        if kind != "p":
            leaves.append((name, source, bool(visible)))
            return names
        children = conn.execute(
            "SELECT c.oid, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s ORDER BY c.oid",
            (oid,),
        ).fetchall()
        for child, child_bound in children:
            if child not in self.catalog.relations:
                raise psycopg.errors.UndefinedTable(str(child))
            names |= self._copy_tree(int(child), name, str(child_bound), leaves)
        return names

    def _build(self, cid: int, spec: IndexSpec, sample: bool = False) -> None:
        """Build candidate ``cid`` once (it stays until close); raises CandidateError.

        ``sample``: on the sampled copy of its table instead.
        """
        failed, built = (
            (self.sample_failed, self.sample_built)
            if sample
            else (
                self.failed,
                self.built,
            )
        )
        if cid in failed:
            raise CandidateError(cid, failed[cid])
        if cid in built:
            return
        conn = self.conn
        rel = self.catalog.relations[spec.table_oid]
        name = f"dbopt_advisor_{'sample' if sample else 'candidate'}_{cid}"
        schema = self.temp_schema if sample and self.temp_schema else rel.schema
        target = replace(rel, schema=schema) if sample else rel
        conn.execute("SAVEPOINT dbopt_build")
        try:
            conn.execute(index_ddl(spec, target, name))
            # a partitioned index has one index per partition, with names of their own
            rows = conn.execute(
                "SELECT c.relname, pg_relation_size(c.oid)"
                " FROM pg_partition_tree(%s::regclass) t JOIN pg_class c ON c.oid = t.relid",
                (qualified(schema, name, force=True),),
            ).fetchall()
            unusable = conn.execute(
                "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE i.indcheckxmin AND c.relname = ANY(%s)",
                ([name, *(r[0] for r in rows)],),
            ).fetchone()
        except psycopg.Error as exc:
            conn.execute("ROLLBACK TO SAVEPOINT dbopt_build")
            failed[cid] = str(exc).strip().splitlines()[0]
            raise CandidateError(cid, failed[cid]) from exc
        if unusable and unusable[0]:
            conn.execute("ROLLBACK TO SAVEPOINT dbopt_build")
            failed[cid] = (
                f"{rel.qualified} has HOT update chains: an index built in a transaction "
                "is not usable inside it (VACUUM the table, or install hypopg)"
            )
            raise CandidateError(cid, failed[cid])
        conn.execute("RELEASE SAVEPOINT dbopt_build")
        if not rows:
            rows = conn.execute(
                "SELECT %s, pg_relation_size(%s::regclass)",
                (name, qualified(schema, name, force=True)),
            ).fetchall()
        size = sum(int(size) for _, size in rows)
        if sample:
            copy = self.samples.get(self.catalog.root(rel).oid)
            if cid not in self.sizes and copy is not None:
                self.sizes[cid] = int(size / max(copy.fraction, 1e-9))
        else:
            self.sizes[cid] = size
        built[cid] = (qualified(schema, name, force=True), [name, *(r[0] for r in rows)])
        self.tables[cid] = self.catalog.root(rel).oid

    def _root(self, spec: IndexSpec) -> int:
        return self.catalog.root(self.catalog.relations[spec.table_oid]).oid

    def costs(
        self, config: Sequence[tuple[int, IndexSpec]], targets: Sequence[Target]
    ) -> list[PlanCost | ExplainError]:
        """Cost of each target with exactly the indexes of ``config`` among the built ones."""
        sampled = {oid for t in targets for oid in t.tables if self.sampled(oid) is not None}
        for t in targets:
            if t.index not in self.sample_ok and t.tables & sampled:
                self.sample_ok[t.index] = self._reaches_copies(t)
        # per target: the sampled tables it is priced on
        on_sample = {
            t.index: frozenset(t.tables & sampled) if self.sample_ok.get(t.index) else frozenset()
            for t in targets
        }
        real_targets = [t for t in targets if not on_sample[t.index]]
        out: dict[int, PlanCost | ExplainError] = {}
        # the real world: candidates on sampled tables only where a statement needs them
        # a sampled table a statement reaches other than by its name is built for real,
        # unless it is over max_table_bytes: then that statement is priced without it
        needs_real = {
            oid
            for t in real_targets
            for oid in t.tables
            if self.catalog.relations[oid].size_bytes <= self.max_table_bytes
        }
        real_config = [
            (cid, spec)
            for cid, spec in config
            if self._root(spec) not in sampled or self._root(spec) in needs_real
        ]
        plain = [(cid, spec) for cid, spec in config if self._root(spec) not in sampled]
        groups: dict[frozenset[int], list[Target]] = defaultdict(list)
        for t in targets:
            if on_sample[t.index]:
                groups[on_sample[t.index]].append(t)
        if real_targets:
            out.update(
                zip(
                    (t.index for t in real_targets),
                    self._world(real_config, real_targets),
                    strict=True,
                )
            )
        for tables, group in groups.items():
            mine = [(cid, spec) for cid, spec in config if self._root(spec) in tables]
            key = frozenset(cid for cid, _ in plain)
            missing = [t for t in group if (t.index, key) not in self.real_plain]
            if missing:
                for t, r in zip(missing, self._world(plain, missing), strict=True):
                    self.real_plain[(t.index, key)] = r
            real = [self.real_plain[(t.index, key)] for t in group]
            if not mine:
                out.update(zip((t.index for t in group), real, strict=True))
                continue
            missing = [t for t in group if (t.index, key) not in self.sample_base]
            if missing:
                for t, r in zip(missing, self._world(plain, missing, sample=True), strict=True):
                    self.sample_base[(t.index, key)] = r
            withs = self._world([*plain, *mine], group, sample=True)
            for t, r, w in zip(group, real, withs, strict=True):
                base = self.sample_base[(t.index, key)]
                if isinstance(r, ExplainError) or isinstance(w, ExplainError):
                    out[t.index] = r if isinstance(r, ExplainError) else w
                elif isinstance(base, ExplainError) or base.cost <= 0:
                    out[t.index] = r
                else:
                    ratio = w.cost / base.cost
                    out[t.index] = PlanCost(r.cost * ratio, r.used | w.used, r.plan)
        return [out[t.index] for t in targets]

    def _reaches_copies(self, t: Target) -> bool:
        """True if the statement, planned with the copies first, scans no sampled real table."""
        real_names = {
            (s.schema, n) for s in self.samples.values() if s is not None for n in s.names
        }
        conn = self.conn
        conn.execute("SAVEPOINT dbopt_reach")
        try:
            conn.execute("SELECT set_config('search_path', %s, true)", (self.search_path,))
            plan = explain(conn, t, "VERBOSE, FORMAT JSON")
        except ExplainError:
            return False
        finally:
            conn.execute("ROLLBACK TO SAVEPOINT dbopt_reach")
            conn.execute("RELEASE SAVEPOINT dbopt_reach")
        stack = [plan[0]["Plan"]]
        while stack:
            node = stack.pop()
            if (node.get("Schema"), node.get("Relation Name")) in real_names:
                return False
            stack.extend(node.get("Plans", ()))
        return True

    def _world(
        self,
        config: Sequence[tuple[int, IndexSpec]],
        targets: Sequence[Target],
        *,
        sample: bool = False,
    ) -> list[PlanCost | ExplainError]:
        """EXPLAIN ``targets`` with exactly ``config`` built: on the real tables or the copies.

        ``sample``: the candidates on sampled tables are those built on the copies, and
        the copies come first in the search path.
        """
        conn = self.conn
        on_copy = {
            cid for cid, spec in config if sample and self.samples.get(self._root(spec)) is not None
        }
        for cid, spec in config:
            self._build(cid, spec, sample=cid in on_copy)
        names: dict[str, int] = {}
        for cid, _ in config:
            for n in (self.sample_built if cid in on_copy else self.built)[cid][1]:
                names[n] = cid
        keep = {("s", c) if c in on_copy else ("r", c) for c, _ in config}
        # only the built indexes on tables these statements read can change their plans
        touched = {oid for t in targets for oid in t.tables}
        conn.execute("SAVEPOINT dbopt_config")
        try:
            hidden = [
                q
                for kind, built in (("r", self.built), ("s", self.sample_built))
                for cid, (q, _) in built.items()
                if (kind, cid) not in keep and self.tables.get(cid) in touched
            ]
            if hidden:
                conn.execute(f"DROP INDEX {', '.join(hidden)}")
            if sample:
                conn.execute("SELECT set_config('search_path', %s, true)", (self.search_path,))
            # the sample's row counts are not the table's: its probes are not re-priced
            risk = None if sample else self.risk
            specs = dict(config)
            out: list[PlanCost | ExplainError] = []
            for target in targets:
                conn.execute("SAVEPOINT dbopt_explain")
                try:
                    out.append(plan_cost(explain(conn, target), names, risk, specs))
                    conn.execute("RELEASE SAVEPOINT dbopt_explain")
                except ExplainError as exc:
                    conn.execute("ROLLBACK TO SAVEPOINT dbopt_explain")
                    out.append(exc)
            return out
        finally:
            conn.execute("ROLLBACK TO SAVEPOINT dbopt_config")

    def size(self, cid: int) -> int | None:
        """Measured size in bytes, once the candidate was built (scaled up from a sample)."""
        return self.sizes.get(cid)

    def close(self) -> None:
        """Roll back everything (the temporary copies too)."""
        self.built.clear()
        self.sample_built.clear()
        with contextlib.suppress(psycopg.Error):
            self.conn.execute("ROLLBACK")
