"""Read a statement's parse tree (pglast): which tables it scans and how.

For every base-table occurrence the result has an :class:`Access`: columns
compared for equality, joined, compared by range, ordered, grouped; constant
predicates (partial-index material); jsonb/array containment (GIN); ``LIKE
'%x%'`` (trigram). Views, CTEs, subqueries, set operations, schema-qualified
and quoted names resolve to base tables; materialized CTEs, LIMITed
subqueries and window functions stop pushdown as PostgreSQL's planner does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pglast
from pglast import ast, enums

from dbopt.advisor.catalog import Catalog
from dbopt.advisor.model import Access, KeyElem
from dbopt.advisor.predicates import PredicateMixin
from dbopt.advisor.sources import Cte, Ref, Scope, Side, SourceMixin
from dbopt.advisor.sqltree import (
    children,
    count_refs,
    default_name,
    deparse,
    is_node,
    max_param,
    nodes_in,
    normalize_predicate,
)

__all__ = ["AnalysisError", "Analyzer", "StatementShape", "deparse", "normalize_predicate"]


class AnalysisError(Exception):
    """The statement cannot be analyzed (parse error, unsupported shape)."""


@dataclass
class StatementShape:
    """What :class:`Analyzer` found in one statement."""

    kind: str
    accesses: list[Access] = field(default_factory=list)
    updated: dict[int, set[str]] = field(default_factory=dict)
    params: int = 0
    notes: list[str] = field(default_factory=list)
    tables: int = 0
    written: dict[int, str] = field(default_factory=dict)


class Analyzer(SourceMixin, PredicateMixin):
    """Turn SQL text into a :class:`StatementShape` using ``catalog``.

    ``viewdef`` fetches a view's definition by oid; ``param_values`` maps
    ``$n`` to the value the application used (for LIKE patterns).
    """

    def __init__(
        self,
        catalog: Catalog,
        viewdef: Any,
        param_values: dict[int, Any] | None = None,
    ) -> None:
        self.catalog = catalog
        self.viewdef = viewdef
        self.params = param_values or {}
        self.shape = StatementShape(kind="other")
        self.equalities = []
        self._view_depth = 0

    def analyze(self, text: str) -> StatementShape:
        """Shape of ``text`` (one statement); raises :class:`AnalysisError`."""
        try:
            stmts = pglast.parse_sql(text)
        except pglast.parser.ParseError as exc:
            raise AnalysisError(f"cannot parse: {exc}") from exc
        if len(stmts) != 1:
            raise AnalysisError(f"expected one statement, got {len(stmts)}")
        stmt = stmts[0].stmt
        self.shape.params = max_param(stmt)
        try:
            self._statement(stmt)
        except RecursionError as exc:  # pragma: no cover - pathological nesting
            raise AnalysisError("statement too deeply nested") from exc
        self._propagate()
        return self.shape

    # statements -------------------------------------------------------

    def _statement(self, stmt: Any) -> None:
        kinds = {ast.InsertStmt: "insert", ast.UpdateStmt: "update", ast.DeleteStmt: "delete"}
        for node_type, kind in kinds.items():
            if is_node(stmt, node_type) and is_node(stmt.relation, ast.RangeVar):
                rel = self.catalog.lookup(stmt.relation.schemaname, stmt.relation.relname)
                if rel is not None and rel.kind in ("r", "p"):
                    self.shape.written.setdefault(self.catalog.root(rel).oid, kind)
        if is_node(stmt, ast.SelectStmt):
            self.shape.kind = "select"
            self._select(stmt, None)
        elif is_node(stmt, ast.UpdateStmt):
            self.shape.kind = "update"
            scope = Scope(None)
            self._with(stmt.withClause, scope, stmt)
            src = self._add_from(stmt.relation, scope, [])
            if src is not None and src.access is not None:
                cols = {t.name for t in stmt.targetList or () if t.name}
                self.shape.updated.setdefault(src.access.relation.oid, set()).update(cols)
            quals: list[Any] = []
            for item in stmt.fromClause or ():
                self._add_from(item, scope, quals)
            for target in stmt.targetList or ():
                self._walk(target.val, scope)
            self._quals([stmt.whereClause, *quals], scope)
        elif is_node(stmt, ast.DeleteStmt):
            self.shape.kind = "delete"
            scope = Scope(None)
            self._with(stmt.withClause, scope, stmt)
            self._add_from(stmt.relation, scope, [])
            quals = []
            for item in stmt.usingClause or ():
                self._add_from(item, scope, quals)
            self._quals([stmt.whereClause, *quals], scope)
        elif is_node(stmt, ast.InsertStmt):
            self.shape.kind = "insert"
            if is_node(stmt.selectStmt, ast.SelectStmt) and not stmt.selectStmt.valuesLists:
                scope = Scope(None)
                self._with(stmt.withClause, scope, stmt)
                self._select(stmt.selectStmt, scope)
        elif is_node(stmt, ast.ExplainStmt):
            raise AnalysisError("EXPLAIN statements are not advised; pass the statement itself")
        else:
            self.shape.kind = "other"

    def _with(self, clause: Any, scope: Scope, owner: Any) -> None:
        if clause is None:
            return
        for cte in clause.ctes or ():
            name = cte.ctename
            refs = count_refs(owner, name)
            mode = cte.ctematerialized
            materialized = (
                mode == enums.CTEMaterialize.CTEMaterializeAlways
                or clause.recursive
                or not is_node(cte.ctequery, ast.SelectStmt)
                or (refs > 1 and mode != enums.CTEMaterialize.CTEMaterializeNever)
            )
            colnames = [c.sval for c in cte.aliascolnames or ()]
            entry = Cte(name, cte.ctequery, materialized, colnames, scope)
            if materialized:
                self._statement_in_scope(cte.ctequery, scope)
            scope.ctes[name] = entry

    def _statement_in_scope(self, stmt: Any, scope: Scope) -> None:
        if is_node(stmt, ast.SelectStmt):
            self._select(stmt, scope)
        else:
            saved = self.shape.kind
            self._statement(stmt)
            self.shape.kind = saved

    # SELECT -----------------------------------------------------------

    def _select(self, stmt: Any, parent: Scope | None) -> list[tuple[str, list[Ref] | None]]:
        if stmt.op != enums.SetOperation.SETOP_NONE:
            left = self._select(stmt.larg, parent)
            right = self._select(stmt.rarg, parent)
            merged: list[tuple[str, list[Ref] | None]] = []
            for i, (name, refs) in enumerate(left):
                other = right[i][1] if i < len(right) else None
                both = None if refs is None or other is None else refs + other
                merged.append((name, both))
            return merged
        if stmt.valuesLists:
            width = len(stmt.valuesLists[0]) if stmt.valuesLists else 0
            return [(f"column{i + 1}", None) for i in range(width)]
        scope = Scope(parent)
        self._with(stmt.withClause, scope, stmt)
        quals: list[Any] = []
        for item in stmt.fromClause or ():
            self._add_from(item, scope, quals)
        self.shape.tables += sum(1 for s in scope.sources if s.access is not None)
        self._quals([stmt.whereClause, *quals], scope)
        outputs: list[tuple[str, list[Ref] | None]] = []
        targets: list[tuple[str | None, Any]] = []
        for target in stmt.targetList or ():
            val = target.val
            if is_node(val, ast.ColumnRef) and is_node(val.fields[-1], ast.A_Star):
                outputs.extend(self._star(val, scope))
                targets.append((None, None))
                continue
            self._walk(val, scope)
            name = target.name or default_name(val)
            refs = None
            if is_node(val, ast.ColumnRef):
                found = self._resolve(val, scope)
                refs = found[1] if found is not None and found[0] == 0 else None
            outputs.append((name, refs))
            targets.append((target.name, val))
        if stmt.havingClause is not None:
            self._walk(stmt.havingClause, scope)
        limited = stmt.limitCount is not None
        self._order(stmt.sortClause, targets, scope, limited)
        self._group(stmt.groupClause, targets, scope)
        for clause in (stmt.sortClause, stmt.groupClause, stmt.distinctClause):
            for node in nodes_in(clause):
                self._walk(node, scope)
        return outputs

    def _star(self, val: Any, scope: Scope) -> list[tuple[str, list[Ref] | None]]:
        qualifier = val.fields[0].sval if len(val.fields) > 1 else None
        out: list[tuple[str, list[Ref] | None]] = []
        for src in scope.sources:
            if qualifier is not None and src.alias != qualifier:
                continue
            for ref in src.all_refs():
                ref[0].reference(ref[1])
            if src.access is not None:
                out.extend((c, [(src.access, c)]) for c in src.access.relation.columns)
            elif src.outputs is not None:
                out.extend(src.outputs.items())
            elif src.names:
                out.extend((n, None) for n in src.names)
        return out

    def _order(
        self, clause: Any, targets: list[tuple[str | None, Any]], scope: Scope, limited: bool
    ) -> None:
        if not clause:
            return
        items: list[tuple[Access, KeyElem]] = []
        for sb in clause:
            node = self._target_node(sb.node, targets)
            if node is None:
                return
            side = self._side(node, scope, order=True)
            if side.kind != "key" or len(side.keys) != 1:
                return
            access, key = side.keys[0]
            desc = sb.sortby_dir == enums.SortByDir.SORTBY_DESC
            nulls = None
            if sb.sortby_nulls == enums.SortByNulls.SORTBY_NULLS_FIRST:
                nulls = True
            elif sb.sortby_nulls == enums.SortByNulls.SORTBY_NULLS_LAST:
                nulls = False
            items.append((access, key.ordered(desc, nulls)))
        first = items[0][0]
        if all(a is first for a, _ in items):
            first.order = [k for _, k in items]
            first.limited = first.limited or limited

    def _group(self, clause: Any, targets: list[tuple[str | None, Any]], scope: Scope) -> None:
        if not clause:
            return
        items: list[tuple[Access, KeyElem]] = []
        for item in clause:
            node = self._target_node(item, targets)
            if node is None:
                return
            side = self._side(node, scope, order=True)
            if side.kind != "key" or len(side.keys) != 1:
                return
            items.append(side.keys[0])
        first = items[0][0]
        if all(a is first for a, _ in items):
            first.group = [k for _, k in items]

    @staticmethod
    def _target_node(node: Any, targets: list[tuple[str | None, Any]]) -> Any:
        if is_node(node, ast.A_Const) and is_node(node.val, ast.Integer):
            pos = node.val.ival - 1
            if 0 <= pos < len(targets) and all(t[1] is not None for t in targets):
                return targets[pos][1]
            return None
        if is_node(node, ast.ColumnRef) and len(node.fields) == 1:
            name = getattr(node.fields[0], "sval", None)
            for alias, val in targets:
                if alias is not None and alias == name:
                    return val
        return node

    def _notes(self) -> list[str]:
        return self.shape.notes

    def _found(self, access: Access) -> None:
        self.shape.accesses.append(access)

    def _mixed(self) -> Side:
        return Side("mixed")

    def _walk(self, node: Any, scope: Scope) -> None:
        """Mark the columns ``node`` reads and analyze the subqueries inside it."""
        if node is None:
            return
        if is_node(node, ast.ColumnRef):
            if is_node(node.fields[-1], ast.A_Star):
                return
            found = self._resolve(node, scope)
            if found is not None and found[1]:
                for access, col in found[1]:
                    access.reference(col)
            return
        if is_node(node, ast.SubLink):
            if is_node(node.subselect, ast.SelectStmt):
                self._select(node.subselect, scope)
            if node.testexpr is not None:
                self._walk(node.testexpr, scope)
            return
        if is_node(node, ast.SelectStmt):
            self._select(node, scope)
            return
        for child in children(node):
            self._walk(child, scope)
