"""Predicates of a query block: what each comparison tells an index.

A mixin of :class:`Analyzer`: equality, range, IN and BETWEEN, joins,
``IS NULL`` and boolean tests (partial-index material), LIKE (prefix btree
with a pattern opclass, or trigram GIN), jsonb/array containment (GIN),
``IN (SELECT ...)`` as a join.
"""

from __future__ import annotations

from typing import Any

from pglast import ast, enums

from dbopt.advisor.catalog import Catalog
from dbopt.advisor.model import Access, KeyElem, PartialPred
from dbopt.advisor.sqltree import deparse, is_node, normalize_predicate, pattern_ops

__all__ = ["PredicateMixin"]

_RANGE_OPS = frozenset({"<", ">", "<=", ">="})
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "&&": "&&"}
_JSONB_OPS = frozenset({"@>", "?", "?|", "?&"})
_ARRAY_OPS = frozenset({"@>", "<@", "&&"})


_CATEGORICAL = 20  # at most this many distinct values: a column of states


class PredicateMixin:
    """Turns WHERE / JOIN ON clauses into :class:`Access` entries."""

    catalog: Catalog
    equalities: list[tuple[tuple[Access, KeyElem], tuple[Access, KeyElem]]]

    def _walk(self, node: Any, scope: Any) -> None:
        raise NotImplementedError

    def _side(self, node: Any, scope: Any, order: bool = False) -> Any:
        raise NotImplementedError

    def _select(self, stmt: Any, parent: Any) -> list[tuple[str, Any]]:
        raise NotImplementedError

    def _mixed(self) -> Any:
        raise NotImplementedError

    def _propagate(self) -> None:
        """``a.x = b.y AND b.y = $1`` makes ``a.x`` an equality column too (as the planner does)."""
        changed = True
        while changed:
            changed = False
            for (a, ka), (b, kb) in self.equalities:
                a_eq = any(k.ident == ka.ident for k in a.eq)
                b_eq = any(k.ident == kb.ident for k in b.eq)
                if a_eq and not b_eq:
                    b.add(b.eq, kb)
                    changed = True
                elif b_eq and not a_eq:
                    a.add(a.eq, ka)
                    changed = True

    def _quals(self, nodes: list[Any], scope: Any) -> None:
        for node in nodes:
            if node is not None:
                self._qual(node, scope, alternative=False)

    def _qual(self, node: Any, scope: Any, alternative: bool) -> None:
        if is_node(node, ast.SubLink) and node.subLinkType == enums.SubLinkType.ANY_SUBLINK:
            self._in_subquery(node, scope)
            return
        if is_node(node, ast.BoolExpr):
            if node.boolop == enums.BoolExprType.AND_EXPR:
                for arg in node.args:
                    self._qual(arg, scope, alternative)
            elif node.boolop == enums.BoolExprType.OR_EXPR:
                for arg in node.args:
                    self._qual(arg, scope, alternative=True)
            else:
                self._walk(node, scope)
                arg = node.args[0]
                side = self._side(arg, scope)
                if is_node(arg, ast.ColumnRef) and side.kind == "key" and not alternative:
                    for access, key in side.keys:
                        self._partial(access, key, "false", None)
            return
        self._walk(node, scope)
        if is_node(node, ast.A_Expr):
            self._expr(node, scope, alternative)
        elif is_node(node, ast.NullTest):
            side = self._side(node.arg, scope)
            for access, key in side.keys if side.kind == "key" else []:
                if node.nulltesttype == enums.NullTestType.IS_NULL:
                    access.add(access.alternatives if alternative else access.eq, key)
                    if not alternative:
                        self._partial(access, key, "null", None)
                elif not alternative:
                    self._partial(access, key, "notnull", None)
        elif is_node(node, ast.BooleanTest):
            side = self._side(node.arg, scope)
            kinds = {
                enums.BoolTestType.IS_TRUE: "true",
                enums.BoolTestType.IS_FALSE: "false",
            }
            kind = kinds.get(node.booltesttype)
            for access, key in side.keys if side.kind == "key" and kind else []:
                if not alternative:
                    self._partial(access, key, kind or "true", None)
        elif is_node(node, ast.ColumnRef):
            side = self._side(node, scope)
            for access, key in side.keys if side.kind == "key" else []:
                if not alternative:
                    self._partial(access, key, "true", None)

    def _expr(self, node: Any, scope: Any, alternative: bool) -> None:
        kind = node.kind
        op = node.name[-1].sval if node.name else ""
        left = self._side(node.lexpr, scope) if node.lexpr is not None else self._mixed()
        if kind in (enums.A_Expr_Kind.AEXPR_IN, enums.A_Expr_Kind.AEXPR_OP_ANY) and op == "=":
            values = node.rexpr if isinstance(node.rexpr, (list, tuple)) else [node.rexpr]
            sides = [self._side(v, scope) for v in values]
            if left.kind == "key" and all(s.kind == "value" for s in sides):
                for access, key in left.keys:
                    access.add(access.alternatives if alternative else access.eq, key)
            return
        if kind in (
            enums.A_Expr_Kind.AEXPR_BETWEEN,
            enums.A_Expr_Kind.AEXPR_BETWEEN_SYM,
        ):
            if left.kind == "key" and all(self._side(v, scope).kind == "value" for v in node.rexpr):
                for access, key in left.keys:
                    access.add(access.alternatives if alternative else access.ranges, key)
            return
        if isinstance(node.rexpr, (list, tuple)) or node.rexpr is None:
            return
        right = self._side(node.rexpr, scope)
        if kind in (enums.A_Expr_Kind.AEXPR_LIKE, enums.A_Expr_Kind.AEXPR_ILIKE):
            if left.kind == "key" and right.kind == "value":
                self._like(left, right, op, alternative)
            return
        if kind != enums.A_Expr_Kind.AEXPR_OP:
            return
        if left.kind != "key" and right.kind == "key":
            left, right = right, left
            op = _FLIP.get(op, "")
        if left.kind != "key":
            return
        if right.kind == "key":
            if op == "=":
                mine = {id(a) for a, _ in left.keys}
                if all(id(a) not in mine for a, _ in right.keys):
                    for access, key in left.keys + right.keys:
                        access.add(access.join, key)
                    if not alternative:
                        self.equalities.extend((a, b) for a in left.keys for b in right.keys)
            return
        if right.kind != "value":
            return
        for access, key in left.keys:
            if op == "=":
                access.add(access.alternatives if alternative else access.eq, key)
                if right.const and key.is_column and not alternative:
                    self._partial_eq(access, key, node.rexpr, right.value)
            elif op in _RANGE_OPS:
                access.add(access.alternatives if alternative else access.ranges, key)
            elif op in ("~", "~*"):
                self._trigram(access, key)
            elif key.is_column:
                col = access.relation.columns.get(key.columns[0])
                if col is None:
                    continue
                if col.typname == "jsonb" and op in _JSONB_OPS:
                    access.gin.append((key.columns[0], "jsonb_path_ops" if op == "@>" else None))
                elif col.category == "A" and op in _ARRAY_OPS:
                    access.gin.append((key.columns[0], None))

    def _like(self, left: Any, right: Any, op: str, alternative: bool) -> None:
        pattern = right.value if right.has_value and isinstance(right.value, str) else None
        if op.startswith("!"):
            return
        case_sensitive = op == "~~"
        for access, key in left.keys:
            prefix = (
                pattern is not None
                and case_sensitive
                and not pattern.startswith(("%", "_"))
                and len(pattern) > 0
            )
            if prefix and key.is_column:
                opclass = None if self._c_collated(access, key) else pattern_ops(access, key)
                elem = KeyElem.column(key.columns[0], opclass)
                access.add(access.alternatives if alternative else access.ranges, elem)
            else:
                self._trigram(access, key)

    def _c_collated(self, access: Access, key: KeyElem) -> bool:
        col = access.relation.columns.get(key.columns[0])
        if col is not None and col.collation in ("C", "POSIX"):
            return True
        return self.catalog.c_collation and (col is None or col.collation in (None, "default"))

    def _trigram(self, access: Access, key: KeyElem) -> None:
        if "pg_trgm" in self.catalog.extensions and key.is_column:
            col = access.relation.columns.get(key.columns[0])
            if col is not None and col.category == "S" and key.columns[0] not in access.trigram:
                access.trigram.append(key.columns[0])

    def _partial(self, access: Access, key: KeyElem, kind: str, value: str | None) -> None:
        if not key.is_column:
            return
        col = key.columns[0]
        texts = {
            "null": f"{key.expr} IS NULL",
            "notnull": f"{key.expr} IS NOT NULL",
            "true": key.expr,
            "false": f"NOT {key.expr}",
        }
        if kind in ("true", "false"):
            column = access.relation.columns.get(col)
            if column is None or column.typname != "bool":
                return
            access.add(access.eq, key)
        access.partial.append(PartialPred(normalize_predicate(texts[kind]), col, kind, value))

    def _partial_eq(self, access: Access, key: KeyElem, node: Any, value: Any) -> None:
        """``col = 'literal'`` on a categorical column is partial-index material."""
        col = access.relation.columns.get(key.columns[0])
        if col is not None and col.typname == "bool" and isinstance(value, (str, bool)):
            # the planner's canonical form (col / NOT col), which predicate proof matches
            truth = str(value).lower() in ("true", "t", "1", "yes", "on", "y")
            self._partial(access, key, "true" if truth else "false", None)
            return
        if col is None or not isinstance(value, (str, bool)) or col.n_distinct is None:
            return
        # a state or kind (status, rating, type: a handful of values), not a value the
        # application passes (a city, a name: Chinook's 53 billing cities all fit in
        # pg_stats' most common values, yet `billing_city = 'Paris'` varies per call)
        categorical = 0 < col.n_distinct <= _CATEGORICAL or (
            len(col.mcv or ()) <= _CATEGORICAL and sum(col.mcf or ()) >= 0.95
        )
        if categorical or col.typname == "bool":
            text = normalize_predicate(f"{key.expr} = {deparse(node)}")
            access.partial.append(PartialPred(text, key.columns[0], "eq", str(value)))

    def _in_subquery(self, node: Any, scope: Any) -> None:
        sub = node.subselect
        if node.testexpr is not None:
            self._walk(node.testexpr, scope)
        if not is_node(sub, ast.SelectStmt):
            return
        outputs = self._select(sub, scope)
        left = self._side(node.testexpr, scope) if node.testexpr is not None else None
        if left is None or left.kind != "key" or len(outputs) != 1 or not outputs[0][1]:
            return
        right = [(a, KeyElem.column(c)) for a, c in outputs[0][1]]
        for access, key in left.keys + right:
            access.add(access.join, key)
