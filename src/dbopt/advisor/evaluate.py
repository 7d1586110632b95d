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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from dbopt.advisor.analyze import StatementShape
from dbopt.advisor.catalog import Catalog, Relation
from dbopt.advisor.ddl import reusable_index
from dbopt.advisor.model import IndexSpec, KeyElem
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
    """Total plan cost and the candidate ids the plan uses."""

    cost: float
    used: frozenset[int]
    plan: Any = None


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
    return row[0]


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


def plan_cost(plan: Any, names: dict[str, int]) -> PlanCost:
    """Total cost of a JSON plan and the candidates (by index name) it uses."""
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
    return PlanCost(float(top["Total Cost"]), frozenset(used), plan)


def index_ddl(spec: IndexSpec, rel: Relation, name: str | None = None) -> str:
    """A plain ``CREATE INDEX`` for ``spec`` (no CONCURRENTLY) for evaluation."""
    head = f"CREATE INDEX {ident(name, force=True)}" if name else "CREATE INDEX"
    return f"{head} ON {qualified(rel.schema, rel.name, force=True)} {spec.body()}"


class HypoEvaluator:
    """Hypothetical indexes through hypopg, in the advisor's own session."""

    method = "hypopg"

    def __init__(self, conn: psycopg.Connection[Any], catalog: Catalog, schema: str) -> None:
        self.conn = conn
        self.catalog = catalog
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
        out: list[PlanCost | ExplainError] = []
        for target in targets:
            try:
                out.append(plan_cost(explain(self.conn, target), names))
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
    """

    method = "real"

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        catalog: Catalog,
        *,
        max_table_bytes: int,
        lock_timeout_ms: int = 1000,
    ) -> None:
        self.conn = conn
        self.catalog = catalog
        self.max_table_bytes = max_table_bytes
        self.sizes: dict[int, int] = {}
        self.built: dict[int, tuple[str, list[str]]] = {}  # cid -> (qualified name, all names)
        self.failed: dict[int, str] = {}
        conn.execute("BEGIN")
        conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")

    def eligible(self, rel: Relation) -> bool:
        """True if ``rel`` is small enough to build indexes on."""
        return rel.size_bytes <= self.max_table_bytes

    def _build(self, cid: int, spec: IndexSpec) -> None:
        """Build candidate ``cid`` once (it stays until close); raises CandidateError."""
        if cid in self.failed:
            raise CandidateError(cid, self.failed[cid])
        if cid in self.built:
            return
        conn = self.conn
        rel = self.catalog.relations[spec.table_oid]
        name = f"dbopt_advisor_candidate_{cid}"
        conn.execute("SAVEPOINT dbopt_build")
        try:
            conn.execute(index_ddl(spec, rel, name))
            # a partitioned index has one index per partition, with names of their own
            rows = conn.execute(
                "SELECT c.relname, pg_relation_size(c.oid)"
                " FROM pg_partition_tree(%s::regclass) t JOIN pg_class c ON c.oid = t.relid",
                (qualified(rel.schema, name, force=True),),
            ).fetchall()
            unusable = conn.execute(
                "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE i.indcheckxmin AND c.relname = ANY(%s)",
                ([name, *(r[0] for r in rows)],),
            ).fetchone()
        except psycopg.Error as exc:
            conn.execute("ROLLBACK TO SAVEPOINT dbopt_build")
            self.failed[cid] = str(exc).strip().splitlines()[0]
            raise CandidateError(cid, self.failed[cid]) from exc
        if unusable and unusable[0]:
            conn.execute("ROLLBACK TO SAVEPOINT dbopt_build")
            self.failed[cid] = (
                f"{rel.qualified} has HOT update chains: an index built in a transaction "
                "is not usable inside it (VACUUM the table, or install hypopg)"
            )
            raise CandidateError(cid, self.failed[cid])
        conn.execute("RELEASE SAVEPOINT dbopt_build")
        if not rows:
            rows = conn.execute(
                "SELECT %s, pg_relation_size(%s::regclass)",
                (name, qualified(rel.schema, name, force=True)),
            ).fetchall()
        self.sizes[cid] = sum(int(size) for _, size in rows)
        self.built[cid] = (
            qualified(rel.schema, name, force=True),
            [name, *(r[0] for r in rows)],
        )

    def costs(
        self, config: Sequence[tuple[int, IndexSpec]], targets: Sequence[Target]
    ) -> list[PlanCost | ExplainError]:
        """Cost of each target with exactly the indexes of ``config`` among the built ones."""
        conn = self.conn
        for cid, spec in config:
            self._build(cid, spec)
        wanted = {cid for cid, _ in config}
        names: dict[str, int] = {}
        for cid in wanted:
            for n in self.built[cid][1]:
                names[n] = cid
        conn.execute("SAVEPOINT dbopt_config")
        try:
            hidden = [q for cid, (q, _) in self.built.items() if cid not in wanted]
            if hidden:
                conn.execute(f"DROP INDEX {', '.join(hidden)}")
            out: list[PlanCost | ExplainError] = []
            for target in targets:
                conn.execute("SAVEPOINT dbopt_explain")
                try:
                    out.append(plan_cost(explain(conn, target), names))
                    conn.execute("RELEASE SAVEPOINT dbopt_explain")
                except ExplainError as exc:
                    conn.execute("ROLLBACK TO SAVEPOINT dbopt_explain")
                    out.append(exc)
            return out
        finally:
            conn.execute("ROLLBACK TO SAVEPOINT dbopt_config")

    def size(self, cid: int) -> int | None:
        """Measured size in bytes, once the candidate was built."""
        return self.sizes.get(cid)

    def close(self) -> None:
        """Roll back everything."""
        self.built.clear()
        with contextlib.suppress(psycopg.Error):
            self.conn.execute("ROLLBACK")
